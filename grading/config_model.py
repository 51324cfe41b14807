"""The typed, frozen shape of config.yaml (pydantic models).

Rules live here as data; grading/rules.py applies them. Field docstrings
become descriptions in the generated JSON Schema (config.schema.json).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import itertools
import re
from pathlib import Path
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from .config_views import CreditLimitRule, ViewsConfig, check_visits, visit_range
from .fields import METRICS, SOURCE_FIELDS, resolve_metric
from .units import format_amount, parse_amount

Amount = Annotated[float, BeforeValidator(parse_amount), WithJsonSchema({
    "anyOf": [{"type": "number"},
              {"type": "string", "pattern": r"^\s*[-+]?[\d,]+(\.\d+)?\s*(元|万元|万|亿元|亿|%)?\s*$"}],
    "description": "数字，或带单位：500万、1.2亿、3000元、80%",
})]


def _as_text(value: object) -> object:
    """Grades and levels may be written as numbers (1, 2, 3): keep them as text."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return f"{value:g}"
    return value


Text = Annotated[str, BeforeValidator(_as_text),
                 WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "number"}]})]
Grade = Annotated[str, BeforeValidator(_as_text), Field(min_length=1),
                  WithJsonSchema({"anyOf": [{"type": "string", "minLength": 1}, {"type": "number"}],
                                  "description": "等级或级别代码，如 A、关键、1"})]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


def _metric_key(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"应为指标名称，发现 {value!r}")
    metric = resolve_metric(value)
    if metric is None:
        names = "、".join(f"{m.label}({m.key})" for m in METRICS)
        raise ValueError(f"不认识的指标 {value!r}，可用的指标：{names}；客户档案中的自定义列请用 column: 列名")
    return metric.key


MetricName = Annotated[str, BeforeValidator(_metric_key), WithJsonSchema({
    "enum": [name for m in METRICS for name in (m.label, m.key)],
    "description": "指标：中文名称或英文键",
})]


class _ValueRef(_Model):
    """Where a stage reads its number: a computed metric or a column of the customer master."""

    metric: MetricName | None = None
    column: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> _ValueRef:
        if (self.metric is None) == (self.column is None):
            raise ValueError("必须二选一：metric（计算出的指标）或 column（客户档案中的列名）")
        return self

    @property
    def ref(self) -> str:
        return self.metric if self.metric is not None else f"col:{self.column}"


def _descending(values: list[float], what: str = "分段") -> None:
    for a, b in zip(values, values[1:]):
        if b >= a:
            raise ValueError(f"{what}必须从高到低排列，发现 {format_amount(a)} 在 {format_amount(b)} 之前")


def _ascending(values: list[float], what: str) -> None:
    for a, b in zip(values, values[1:]):
        if b <= a:
            raise ValueError(f"{what}必须从小到大（累计）排列，发现 {a:g} 在 {b:g} 之前")


# ------------------------------------------------------------- sources / period

class SourceConfig(_Model):
    """One kind of export: which files, which sheet, extra header aliases."""

    files: list[str] = Field(default_factory=list)
    workbook_sheet: str | None = None  # Excel add-in: a sheet of the open workbook holding this export
    sheet: str | None = None
    header_row: int | None = Field(default=None, ge=1)
    unit: Literal["元", "万元"] | None = None
    columns: dict[str, list[str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _somewhere(self) -> SourceConfig:
        if not self.files and not self.workbook_sheet:
            raise ValueError("需要 files（文件路径，可用通配符）或 workbook_sheet（加载项：当前工作簿中的工作表名）")
        return self


class SourcesConfig(_Model):
    sales: SourceConfig
    receivables: SourceConfig | None = None
    customers: SourceConfig | None = None
    overrides: SourceConfig | None = None

    @model_validator(mode="after")
    def _known_columns(self) -> SourcesConfig:
        for name in ("sales", "receivables", "customers", "overrides"):
            source = getattr(self, name)
            if source is None:
                continue
            known = {f.key for f in SOURCE_FIELDS[name]}
            for key in source.columns:
                if key not in known:
                    raise ValueError(
                        f"{name}.columns 中的字段 {key!r} 不存在，可用字段：{'、'.join(sorted(known))}"
                    )
        return self


def _days_in_month(year: int, month: int) -> int:
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    return (nxt - dt.timedelta(days=1)).day


class PeriodConfig(_Model):
    """As-of date and window: metrics cover (as_of - months, as_of]."""

    as_of: dt.date
    months: int = Field(default=12, ge=1, le=120)
    name: str | None = None

    @property
    def start(self) -> dt.date:
        """First day inside the window."""
        y, m = divmod(self.as_of.year * 12 + self.as_of.month - 1 - self.months, 12)
        if self.as_of.day == _days_in_month(self.as_of.year, self.as_of.month):
            day = _days_in_month(y, m + 1)  # month end → whole calendar months
        else:
            day = min(self.as_of.day, _days_in_month(y, m + 1))
        return dt.date(y, m + 1, day) + dt.timedelta(days=1)

    @property
    def label(self) -> str:
        return self.name or self.as_of.strftime("%Y%m")


class MetricsConfig(_Model):
    amount_basis: Literal["含税", "不含税"] = "含税"
    collection_rate: Literal["收回/(期初+应收)", "收回/应收"] = "收回/(期初+应收)"


# ------------------------------------------------------------- rule types that assign

class _Banded:
    """Mixin: a rule whose grades are its bands' grades (best first) and then `else`."""

    if TYPE_CHECKING:
        bands: Sequence[ThresholdBand | QuantileBand | ParetoBand]
        else_grade: str

    @property
    def levels(self) -> list[str]:
        return list(dict.fromkeys([b.grade for b in self.bands] + [self.else_grade]))


class ThresholdBand(_Model):
    grade: Grade
    min: Amount


class ThresholdStage(_Banded, _ValueRef):
    """Fixed thresholds: the first band (high → low) whose min is reached wins."""

    type: Literal["thresholds"]
    name: str = "阈值分级"
    inclusive: bool = True
    bands: list[ThresholdBand] = Field(min_length=1)
    else_grade: Grade = Field(alias="else")

    @field_validator("bands")
    @classmethod
    def _order(cls, bands: list[ThresholdBand]) -> list[ThresholdBand]:
        _descending([b.min for b in bands])
        return bands


class QuantileBand(_Model):
    grade: Grade
    top: Amount


class QuantileStage(_Banded, _ValueRef):
    """Top-N: customers ranked by value (ties: customer code); cumulative tops, e.g. 1% VIP, 20% A."""

    type: Literal["quantile"]
    name: str = "排名分级"
    by: Literal["percent", "count"] = "percent"
    bands: list[QuantileBand] = Field(min_length=1)
    else_grade: Grade = Field(alias="else")

    @model_validator(mode="after")
    def _order(self) -> QuantileStage:
        tops = [b.top for b in self.bands]
        _ascending(tops, "top（累计）")
        if self.by == "percent" and (tops[0] <= 0 or tops[-1] > 1):
            raise ValueError("by: percent 时 top 应在 0% 到 100% 之间（如 1%、20%）")
        if self.by == "count" and any(t < 1 or t != int(t) for t in tops):
            raise ValueError("by: count 时 top 应为正整数（客户个数）")
        return self


class ParetoBand(_Model):
    grade: Grade
    share: Amount


class ParetoStage(_Banded, _ValueRef):
    """Cumulative share: customers by value, high → low; the customer that crosses a share is inside it."""

    type: Literal["pareto"]
    name: str = "帕累托分级"
    bands: list[ParetoBand] = Field(min_length=1)
    else_grade: Grade = Field(alias="else")

    @field_validator("bands")
    @classmethod
    def _order(cls, bands: list[ParetoBand]) -> list[ParetoBand]:
        _ascending([b.share for b in bands], "share（累计占比）")
        if bands[0].share <= 0 or bands[-1].share > 1:
            raise ValueError("share 应在 0% 到 100% 之间（如 70%、90%）")
        return bands


class PointBand(_Model):
    min: Amount
    points: float


class LinearScale(_Model):
    """Points grow linearly from `low` (points_low) to `high` (points_high), clipped."""

    low: Amount
    high: Amount
    points_low: float = 0
    points_high: float

    @model_validator(mode="after")
    def _ordered(self) -> LinearScale:
        if self.high == self.low:
            raise ValueError("linear 的 low 和 high 不能相等")
        return self


class Indicator(_ValueRef):
    weight: float = Field(gt=0)
    bands: list[PointBand] | None = None
    linear: LinearScale | None = None
    missing_points: float = 0

    @model_validator(mode="after")
    def _one_scale(self) -> Indicator:
        if (self.bands is None) == (self.linear is None):
            raise ValueError("每个指标必须二选一：bands（分段给分）或 linear（线性给分）")
        if self.bands:
            _descending([b.min for b in self.bands])
        return self


class ScoreBand(_Model):
    grade: Grade
    min: float


class ScoreStage(_Model):
    """Weighted multi-indicator score: indicator points × weight, summed, then score bands."""

    type: Literal["score"]
    name: str = "综合评分"
    indicators: list[Indicator] = Field(min_length=1)
    grades: list[ScoreBand] = Field(min_length=1)
    else_grade: Grade = Field(alias="else")

    @field_validator("grades")
    @classmethod
    def _order(cls, bands: list[ScoreBand]) -> list[ScoreBand]:
        for a, b in zip(bands, bands[1:]):
            if b.min >= a.min:
                raise ValueError(f"分数段必须从高到低排列，发现 {a.min:g} 在 {b.min:g} 之前")
        return bands

    @property
    def levels(self) -> list[str]:
        return list(dict.fromkeys([b.grade for b in self.grades] + [self.else_grade]))


AxisRule = Annotated[ThresholdStage | QuantileStage | ParetoStage | ScoreStage, Field(discriminator="type")]


class Axis(_Model):
    """One axis of a grid: a rule on metrics, or a mapping of a customer-master column."""

    name: str
    rule: AxisRule | None = None
    column: str | None = None
    map: dict[str, Grade] | None = None
    else_grade: Grade | None = Field(default=None, alias="else")

    @model_validator(mode="after")
    def _one_kind(self) -> Axis:
        if (self.rule is None) == (self.column is None):
            raise ValueError("每个轴必须二选一：rule（按指标分级）或 column + map（客户档案中的列）")
        if self.column is not None and (not self.map or self.else_grade is None):
            raise ValueError("按列分级的轴需要 map（列值 → 级别）和 else（其余值的级别）")
        return self

    @property
    def levels(self) -> list[str]:
        if self.rule is not None:
            return self.rule.levels
        assert self.map is not None and self.else_grade is not None
        return list(dict.fromkeys([*self.map.values(), self.else_grade]))


class GridStage(_Model):
    """Nine-grid / n-axis codes: each axis gives a level, the code is their concatenation (A1, F1D1)."""

    type: Literal["grid"]
    name: str = "九宫格"
    axes: list[Axis] = Field(min_length=2)
    separator: str = ""

    @property
    def levels(self) -> list[str]:
        return [self.separator.join(p) for p in itertools.product(*(a.levels for a in self.axes))]


# ------------------------------------------------------------- rule types that modify

_CONDITION = re.compile(r"^\s*(.+?)\s*(<=|>=|==|!=|≤|≥|<|>|=)\s*(.+?)\s*$")


class Condition(_Model):
    """`回款率 < 80%`, `潜力 = 高`: a metric or master column, an operator, a value."""

    field: str
    op: Literal["<", "<=", ">", ">=", "=", "!="]
    value: float | str
    text: str

    @property
    def ref(self) -> str:
        metric = resolve_metric(self.field)
        return metric.key if metric else f"col:{self.field}"


def _condition(value: object) -> object:
    if not isinstance(value, str):
        return value
    m = _CONDITION.match(value)
    if not m:
        raise ValueError(f"条件应写成“指标 运算符 值”，如 回款率 < 80%、潜力 = 高，发现 {value!r}")
    field, op, raw = m.groups()
    op = {"≤": "<=", "≥": ">=", "==": "="}.get(op, op)
    val: float | str
    try:
        val = parse_amount(raw)
    except ValueError:
        if op not in ("=", "!="):
            raise ValueError(f"条件 {value!r} 中 {op} 后面应为数字（如 80%、500万）") from None
        val = raw.strip("\"'")
    return {"field": field, "op": op, "value": val, "text": value.strip()}


class AdjustStage(_Model):
    """After grading: move up/down N levels, or cap/floor at a grade, where a condition holds."""

    type: Literal["adjust"]
    name: str = "调整"
    when: Annotated[Condition, BeforeValidator(_condition),
                    WithJsonSchema({"type": "string", "description": "条件，如 回款率 < 80%、潜力 = 高"})]
    up: int | None = Field(default=None, ge=1)
    down: int | None = Field(default=None, ge=1)
    at_most: Grade | None = None
    at_least: Grade | None = None

    @model_validator(mode="after")
    def _one_action(self) -> AdjustStage:
        actions = [a for a in (self.up, self.down, self.at_most, self.at_least) if a is not None]
        if len(actions) != 1:
            raise ValueError("调整必须且只能有一个动作：up（升 N 级）、down（降 N 级）、at_most（最高为）、at_least（最低为）")
        return self


class ProvisionalStage(_Model):
    """New customers (tenure below N months) get a provisional grade until they qualify."""

    type: Literal["provisional"]
    name: str = "新客户暂定"
    tenure_below_months: int = Field(ge=1)
    grade: Grade


class LapsedStage(_Model):
    """Customers with no order for more than N days get a configured grade."""

    type: Literal["lapsed"]
    name: str = "流失客户"
    no_order_days: int = Field(ge=1)
    grade: Grade


Stage = Annotated[
    ThresholdStage | QuantileStage | ParetoStage | ScoreStage | GridStage | AdjustStage | ProvisionalStage
    | LapsedStage,
    Field(discriminator="type"),
]
ASSIGNING = (ThresholdStage, QuantileStage, ParetoStage, ScoreStage, GridStage)


class Pin(_Model):
    """A manager's fixed grade for one customer; wins over rules until it expires."""

    customer: Text
    grade: Grade
    reason: str = Field(min_length=1)
    by: str = Field(min_length=1)
    until: dt.date | None = None


class GradingConfig(_Model):
    stages: list[Stage] = Field(min_length=1)
    fallback_grade: Grade | None = None
    pins: list[Pin] = Field(default_factory=list)

    @model_validator(mode="after")
    def _first_assigns(self) -> GradingConfig:
        if not isinstance(self.stages[0], ASSIGNING):
            raise ValueError("第一个阶段必须是分级类型（thresholds、quantile、pareto、score、grid），"
                             "adjust、provisional、lapsed 只能放在后面")
        return self


class GradePolicy(_Model):
    """What a grade means to the business: label and service policy."""

    label: str
    visits_per_month: Annotated[str, BeforeValidator(check_visits),
                                WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "number"}],
                                                "description": "每月拜访次数：2 或范围 4-6"})] = ""
    service: str = ""
    discount: Text = ""
    credit_terms: Text = ""
    credit_limit: CreditLimitRule | None = None
    colour: str | None = Field(default=None, pattern=r"^#[0-9A-Fa-f]{6}$")

    @property
    def visit_range(self) -> tuple[float, float]:
        """Visits per month as numbers (min, max): `4-6` → (4, 6); checked when the config is read."""
        return visit_range(self.visits_per_month) or (0.0, 0.0)


class OutputConfig(_Model):
    template: str = "templates/客户分级管理表.xlsx"
    file: str = "output/客户分级管理表_{period}.xlsx"
    log_dir: str = "logs"


class HistoryConfig(_Model):
    """Grade history across periods (SQLite), for 上期等级/变动 and the stability rule."""

    enabled: bool = True
    database: str | None = None  # default: 客户分级历史.sqlite beside the output file
    downgrade_after: int | None = Field(default=None, ge=2)


class Config(_Model):
    """The whole validated config; paths are resolved against `base_dir`."""

    sources: SourcesConfig
    period: PeriodConfig
    metrics: MetricsConfig = MetricsConfig()
    grading: GradingConfig
    grades: dict[Annotated[str, BeforeValidator(_as_text)], GradePolicy] = Field(min_length=1)
    output: OutputConfig = OutputConfig()
    history: HistoryConfig = HistoryConfig()
    views: ViewsConfig = ViewsConfig()
    base_dir: SkipJsonSchema[Path] = Path(".")
    source_file: SkipJsonSchema[str] = "config.yaml"
    digest: SkipJsonSchema[str] = ""

    def reference_issues(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Grades used by rules but not defined under grades: (YAML path, message) each."""
        out: list[tuple[tuple[str | int, ...], str]] = []
        defined = "、".join(self.grades)

        def check(path: tuple[str | int, ...], grade: str) -> None:
            if self.policy_key(grade) is None:
                out.append((path, f"用到的等级 {grade!r} 没有在 grades 中定义，已定义：{defined}"))

        for i, stage in enumerate(self.grading.stages):
            at: tuple[str | int, ...] = ("grading", "stages", i)
            if isinstance(stage, GridStage):
                missing = [c for c in stage.levels if self.policy_key(c) is None]
                if missing:
                    shown = "、".join(missing[:12]) + (f" 等 {len(missing)} 个" if len(missing) > 12 else "")
                    out.append((at + ("axes",), f"组合出的等级代码 {shown} 没有在 grades 中定义"
                                f"（可逐个定义，或用通配符如 A*、*1），已定义：{defined}"))
            elif isinstance(stage, ASSIGNING):
                key = "grades" if isinstance(stage, ScoreStage) else "bands"
                named: list[str] = [b.grade for b in getattr(stage, key)]
                for j, grade in enumerate(named):
                    check(at + (key, j, "grade"), grade)
                check(at + ("else",), stage.else_grade)
            elif isinstance(stage, AdjustStage):
                ladder = self.ladder(i)
                for key in ("at_most", "at_least"):
                    grade = getattr(stage, key)
                    if grade is not None and grade not in ladder:
                        out.append((at + (key,), f"等级 {grade!r} 不在前一个分级阶段的等级中："
                                    f"{'、'.join(ladder)}（调整只在这些等级之间升降）"))
            else:
                check(at + ("grade",), stage.grade)
        if self.grading.fallback_grade:
            check(("grading", "fallback_grade"), self.grading.fallback_grade)
        for j, pin in enumerate(self.grading.pins):
            check(("grading", "pins", j, "grade"), pin.grade)
        return out

    def policy_key(self, grade: str) -> str | None:
        """The grades entry for a grade: exact key first, then the first wildcard pattern (A*, *1)."""
        if grade in self.grades:
            return grade
        for key in self.grades:
            if ("*" in key or "?" in key) and fnmatch.fnmatchcase(grade, key):
                return key
        return None

    def policy(self, grade: str) -> GradePolicy:
        key = self.policy_key(grade)
        return self.grades[key] if key is not None else GradePolicy(label=grade)

    def ladder(self, stage_index: int) -> list[str]:
        """Grades, best first, that an adjust stage moves within: those of the last assigning stage before it."""
        before = [s for s in self.grading.stages[:stage_index] if isinstance(s, ASSIGNING)]
        return before[-1].levels if before else []

    @property
    def ordered_grades(self) -> list[str]:
        """Concrete grades, best first, as listed under grades (used to move up/down)."""
        return [k for k in self.grades if "*" not in k and "?" not in k]

    @property
    def fallback(self) -> str:
        if self.grading.fallback_grade:
            return self.grading.fallback_grade
        deciding = [s for s in self.grading.stages if isinstance(s, ASSIGNING)][-1]
        return deciding.levels[-1]

    def resolve(self, path: str) -> Path:
        p = Path(path)
        return p if p.is_absolute() else self.base_dir / p

    def output_path(self, override: str | None = None) -> Path:
        name = override or self.output.file
        return self.resolve(name.replace("{period}", self.period.label))

    def history_path(self, output: Path | None = None) -> Path | None:
        """The SQLite file, or None when history is switched off."""
        if not self.history.enabled:
            return None
        if self.history.database:
            return self.resolve(self.history.database)
        return (output or self.output_path()).parent / "客户分级历史.sqlite"
