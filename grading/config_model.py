"""The typed, frozen shape of config.yaml (pydantic models).

The stage specs live with their implementations in grading/rules/ (one module\nper stage type) and are re-exported here. Field docstrings
become descriptions in the generated JSON Schema (config.schema.json).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import itertools
import re
import unicodedata
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
from .dates import DateFormat, parse_date_format
from .fields import METRICS, SOURCE_FIELDS, resolve_metric
from .units import format_amount, parse_amount

from .rules import (  # noqa: F401  (re-exported: the stage specs live in grading/rules/)
    ASSIGNING_TYPES,
    MODIFYING_TYPES,
    AdjustStage,
    AssigningSpec,
    Axis,
    AxisRule,
    Condition,
    GridStage,
    Indicator,
    LapsedStage,
    LinearScale,
    ParetoBand,
    ParetoStage,
    PointBand,
    ProvisionalStage,
    QuantileBand,
    QuantileStage,
    RfmStage,
    ScoreBand,
    ScoreStage,
    Stage,
    ThresholdBand,
    ThresholdStage,
)
from .rules.pins import Pin
from .rules.provides import unprovided
from .rules.spec import Amount, Grade, Model as _Model, Text, as_text as _as_text  # noqa: F401


# ------------------------------------------------------------- sources / period

AmountFrom = Literal["金额列", "数量×单价", "数量×单价×(1-折扣率)", "数量×单价-折扣额"]


def _amount_from(value: object) -> object:
    """Accept 数量*单价, 数量 x 单价, full-width brackets … as the canonical spelling."""
    if not isinstance(value, str):
        return value
    text = unicodedata.normalize("NFKC", value).replace(" ", "").replace("*", "×").replace("x", "×")
    return text.replace("X", "×").replace("−", "-")


def _date_format(value: object) -> object:
    if isinstance(value, str):
        parse_date_format(value)  # raises ValueError with the accepted forms
    return value


class SourceConfig(_Model):
    """One kind of export: which files, which sheet, extra header aliases."""

    files: list[str] = Field(default_factory=list)
    workbook_sheet: str | None = None  # Excel add-in: a sheet of the open workbook holding this export
    sheet: str | None = None
    header_row: int | None = Field(default=None, ge=1)
    unit: Literal["元", "万元"] | None = None
    columns: dict[str, list[str]] = Field(default_factory=dict)
    amount_from: Annotated[AmountFrom | None, BeforeValidator(_amount_from), Field(
        description="销售明细的金额从哪里来：不写则有金额列用金额列，没有时按 数量×单价 计算；"
                    "金额列 = 只用金额列；数量×单价、数量×单价×(1-折扣率)、数量×单价-折扣额 = 一律按公式计算")] = None
    date_format: Annotated[str | None, BeforeValidator(_date_format), Field(
        description="文本日期的写法：月/日/年、日/月/年、年/月/日（或 MM/DD/YYYY、DD/MM/YYYY），"
                    "或 strftime 写法如 %d.%m.%Y；不写则按每列的值自动判断")] = None

    @property
    def parsed_date_format(self) -> DateFormat | None:
        return parse_date_format(self.date_format) if self.date_format else None

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
    reviews: SourceConfig | None = None  # a previous output whose 评审 columns were filled in

    @model_validator(mode="after")
    def _known_columns(self) -> SourcesConfig:
        for name in ("sales", "receivables", "customers", "overrides", "reviews"):
            source = getattr(self, name)
            if source is None:
                continue
            known = {f.key for f in SOURCE_FIELDS[name]}
            if source.amount_from is not None and name != "sales":
                raise ValueError(f"{name}.amount_from 只适用于 sales（销售明细）")
            for key in source.columns:
                if key not in known:
                    raise ValueError(
                        f"{name}.columns 中的字段 {key!r} 不存在，可用字段：{'、'.join(sorted(known))}"
                    )
        return self


AS_OF_MIN = dt.date(1900, 1, 1)
AS_OF_MAX = dt.date(2099, 12, 31)
_FORBIDDEN_IN_NAME = frozenset('/\\<>:"|?*')


def _days_in_month(year: int, month: int) -> int:
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    return (nxt - dt.timedelta(days=1)).day


class PeriodConfig(_Model):
    """As-of date and window: metrics cover (as_of - months, as_of]."""

    as_of: dt.date
    months: int = Field(default=12, ge=1, le=120)
    name: str | None = None

    @field_validator("as_of")
    @classmethod
    def _as_of_range(cls, value: dt.date) -> dt.date:
        if not AS_OF_MIN <= value <= AS_OF_MAX:
            raise ValueError(f"截止日期 {value.isoformat()} 超出允许范围 {AS_OF_MIN.isoformat()} 至 {AS_OF_MAX.isoformat()}")
        return value

    @field_validator("name")
    @classmethod
    def _file_name_part(cls, value: str | None) -> str | None:
        if value is None:
            return None
        bad = sorted({c for c in value if c in _FORBIDDEN_IN_NAME or ord(c) < 32})
        if bad or ".." in value or value != value.strip(" .") or not value:
            shown = "、".join(c if ord(c) >= 32 else repr(c) for c in bad) if bad else \
                ".." if ".." in value else "开头或结尾的空格/点"
            raise ValueError(f"期间名称 {value!r} 会用作输出文件名的一部分，不能含有 {shown}"
                             "（不允许 / \\ .. < > : \" | ? * 和首尾空格），例如 2026H1、202606 或 2026-06")
        return value

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


ASSIGNING = AssigningSpec


class GradingConfig(_Model):
    stages: list[Stage] = Field(min_length=1)
    fallback_grade: Grade | None = None
    pins: list[Pin] = Field(default_factory=list)

    @model_validator(mode="after")
    def _first_assigns(self) -> GradingConfig:
        if not isinstance(self.stages[0], AssigningSpec):
            raise ValueError(f"第一个阶段必须是分级类型（{'、'.join(ASSIGNING_TYPES)}），"
                             f"{'、'.join(MODIFYING_TYPES)} 只能放在后面")
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
    record_excel: bool = True  # a Grade click in Excel records its period too (false: it only reads the history)


class ChecksConfig(_Model):
    """Checks of the inputs whose findings are shown first (CLI summary, add-in alert)."""

    dropped_share_warning: Annotated[Amount, Field(
        ge=0, le=1, description="被跳过的销售明细金额占全部金额超过这个比例时醒目警告，如 5%（默认）")] = 0.05


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
    checks: ChecksConfig = ChecksConfig()
    base_dir: SkipJsonSchema[Path] = Path(".")
    source_file: SkipJsonSchema[str] = "config.yaml"
    digest: SkipJsonSchema[str] = ""
    source_text: SkipJsonSchema[str] = ""

    def reference_issues(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Grades used by rules but not defined under grades, and values no configured source can
        provide: (YAML path, message) each."""
        out: list[tuple[tuple[str | int, ...], str]] = []
        defined = "、".join(self.grades)
        for i, stage in enumerate(self.grading.stages):
            at: tuple[str | int, ...] = ("grading", "stages", i)
            missing: dict[tuple[str | int, ...], list[str]] = {}
            for path, grade in stage.named_grades():
                if self.policy_key(grade) is None:
                    missing.setdefault(path, []).append(grade)
            for path, grades in missing.items():
                if len(grades) == 1:
                    out.append((at + path, f"用到的等级 {grades[0]!r} 没有在 grades 中定义，已定义：{defined}"))
                else:
                    shown = "、".join(grades[:12]) + (f" 等 {len(grades)} 个" if len(grades) > 12 else "")
                    out.append((at + path, f"组合出的等级代码 {shown} 没有在 grades 中定义"
                                f"（可逐个定义，或用通配符如 A*、*1），已定义：{defined}"))
            ladder = self.ladder(i)
            for path, grade in stage.ladder_grades():
                if grade not in ladder:
                    out.append((at + path, f"等级 {grade!r} 不在前一个分级阶段的等级中："
                                f"{'、'.join(ladder)}（调整只在这些等级之间升降）"))
            for ref in stage.inputs():
                why = unprovided(ref, self.sources)
                if why:
                    out.append((at, why))
        if self.grading.fallback_grade and self.policy_key(self.grading.fallback_grade) is None:
            out.append((("grading", "fallback_grade"),
                        f"用到的等级 {self.grading.fallback_grade!r} 没有在 grades 中定义，已定义：{defined}"))
        for j, pin in enumerate(self.grading.pins):
            if self.policy_key(pin.grade) is None:
                out.append((("grading", "pins", j, "grade"),
                            f"用到的等级 {pin.grade!r} 没有在 grades 中定义，已定义：{defined}"))
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
        before = [s for s in self.grading.stages[:stage_index] if isinstance(s, AssigningSpec)]
        return before[-1].levels if before else []

    @property
    def ordered_grades(self) -> list[str]:
        """Concrete grades, best first, as listed under grades (used to move up/down)."""
        return [k for k in self.grades if "*" not in k and "?" not in k]

    @property
    def fallback(self) -> str:
        if self.grading.fallback_grade:
            return self.grading.fallback_grade
        deciding = [s for s in self.grading.stages if isinstance(s, AssigningSpec)][-1]
        return deciding.levels[-1]

    def resolve(self, path: str) -> Path:
        p = Path(path)
        return p if p.is_absolute() else self.base_dir / p

    def output_path(self, override: str | None = None) -> Path:
        name = override or self.output.file
        return self.resolve(name.replace("{period}", self.period.label))

    def template_path(self) -> Path:
        """output.template resolved; the built-in default template when the default name is not there."""
        from .defaults import DEFAULT_TEMPLATE_NAME, default_template

        path = self.resolve(self.output.template)
        if not path.exists() and Path(self.output.template).as_posix() == DEFAULT_TEMPLATE_NAME:
            return default_template()
        return path

    def history_path(self, output: Path | None = None) -> Path | None:
        """The SQLite file, or None when history is switched off."""
        if not self.history.enabled:
            return None
        if self.history.database:
            return self.resolve(self.history.database)
        return (output or self.output_path()).parent / "客户分级历史.sqlite"


__all__ = [
    "ASSIGNING", "AdjustStage", "Amount", "AssigningSpec", "Axis", "AxisRule", "Condition", "Config", "Grade",
    "GradePolicy", "GradingConfig", "GridStage", "HistoryConfig", "Indicator", "LapsedStage", "LinearScale",
    "MetricsConfig", "OutputConfig", "ParetoBand", "ParetoStage", "PeriodConfig", "Pin", "PointBand",
    "ProvisionalStage", "QuantileBand", "QuantileStage", "RfmStage", "ScoreBand", "ScoreStage", "SourceConfig",
    "SourcesConfig", "Stage", "Text", "ThresholdBand", "ThresholdStage",
]
