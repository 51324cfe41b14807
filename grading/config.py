"""config.yaml → frozen, typed objects, validated before any data is read.

Errors name the YAML key path and line, in Chinese, and all of them are
reported together (ConfigError). YAML is loaded with the safe loader only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import ConfigError, ConfigIssue
from .fields import SOURCE_FIELDS, resolve_metric
from .units import format_amount, parse_amount

Amount = Annotated[float, BeforeValidator(parse_amount)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _metric_key(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"应为指标名称，发现 {value!r}")
    metric = resolve_metric(value)
    if metric is None:
        from .fields import METRICS

        names = "、".join(f"{m.label}({m.key})" for m in METRICS)
        raise ValueError(f"不认识的指标 {value!r}，可用的指标：{names}")
    return metric.key


MetricName = Annotated[str, BeforeValidator(_metric_key)]


class SourceConfig(_Model):
    """One kind of export: which files, which sheet, extra header aliases."""

    files: list[str] = Field(min_length=1)
    sheet: str | None = None
    header_row: int | None = Field(default=None, ge=1)
    unit: Literal["元", "万元"] | None = None
    columns: dict[str, list[str]] = Field(default_factory=dict)


class SourcesConfig(_Model):
    sales: SourceConfig
    receivables: SourceConfig | None = None
    customers: SourceConfig | None = None

    @model_validator(mode="after")
    def _known_columns(self) -> SourcesConfig:
        for name in ("sales", "receivables", "customers"):
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

    def with_as_of(self, as_of: dt.date) -> PeriodConfig:
        return self.model_copy(update={"as_of": as_of})


def _days_in_month(year: int, month: int) -> int:
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    return (nxt - dt.timedelta(days=1)).day


class MetricsConfig(_Model):
    amount_basis: Literal["含税", "不含税"] = "含税"
    collection_rate: Literal["收回/(期初+应收)", "收回/应收"] = "收回/(期初+应收)"


class ThresholdBand(_Model):
    grade: str
    min: Amount


class ThresholdStage(_Model):
    """Fixed thresholds on one metric: first band whose min is reached wins."""

    type: Literal["thresholds"]
    name: str = "阈值分级"
    metric: MetricName
    inclusive: bool = True
    bands: list[ThresholdBand] = Field(min_length=1)
    else_grade: str = Field(alias="else")

    @field_validator("bands")
    @classmethod
    def _descending(cls, bands: list[ThresholdBand]) -> list[ThresholdBand]:
        for a, b in zip(bands, bands[1:]):
            if b.min >= a.min:
                raise ValueError(
                    f"分段必须从高到低排列，发现 {format_amount(a.min)} 在 {format_amount(b.min)} 之前"
                )
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


class Indicator(_Model):
    metric: MetricName
    weight: float = Field(gt=0)
    bands: list[PointBand] | None = None
    linear: LinearScale | None = None
    missing_points: float = 0

    @model_validator(mode="after")
    def _one_scale(self) -> Indicator:
        if (self.bands is None) == (self.linear is None):
            raise ValueError("每个指标必须二选一：bands（分段给分）或 linear（线性给分）")
        if self.bands:
            for a, b in zip(self.bands, self.bands[1:]):
                if b.min >= a.min:
                    raise ValueError(
                        f"分段必须从高到低排列，发现 {format_amount(a.min)} 在 {format_amount(b.min)} 之前"
                    )
        return self


class ScoreBand(_Model):
    grade: str
    min: float


class ScoreStage(_Model):
    """Weighted multi-indicator score: indicator points × weight, summed, then score bands."""

    type: Literal["score"]
    name: str = "综合评分"
    indicators: list[Indicator] = Field(min_length=1)
    grades: list[ScoreBand] = Field(min_length=1)
    else_grade: str = Field(alias="else")

    @field_validator("grades")
    @classmethod
    def _descending(cls, bands: list[ScoreBand]) -> list[ScoreBand]:
        for a, b in zip(bands, bands[1:]):
            if b.min >= a.min:
                raise ValueError(f"分数段必须从高到低排列，发现 {a.min:g} 在 {b.min:g} 之前")
        return bands


Stage = Annotated[ThresholdStage | ScoreStage, Field(discriminator="type")]


class GradingConfig(_Model):
    stages: list[Stage] = Field(min_length=1)
    fallback_grade: str | None = None


class GradePolicy(_Model):
    """What a grade means to the business: label and service policy."""

    label: str
    visits_per_month: str = ""
    service: str = ""
    discount: str = ""
    credit_terms: str = ""
    colour: str | None = Field(default=None, pattern=r"^#[0-9A-Fa-f]{6}$")

    @field_validator("visits_per_month", "discount", "credit_terms", mode="before")
    @classmethod
    def _text(cls, v: object) -> object:
        return str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v


class OutputConfig(_Model):
    template: str = "templates/客户分级管理表.xlsx"
    file: str = "output/客户分级管理表_{period}.xlsx"


class Config(_Model):
    """The whole validated config; paths are resolved against `base_dir`."""

    sources: SourcesConfig
    period: PeriodConfig
    metrics: MetricsConfig = MetricsConfig()
    grading: GradingConfig
    grades: dict[str, GradePolicy] = Field(min_length=1)
    output: OutputConfig = OutputConfig()
    base_dir: Path = Path(".")
    source_file: str = "config.yaml"
    digest: str = ""

    @model_validator(mode="after")
    def _grades_defined(self) -> Config:
        used: list[tuple[str, str]] = []
        for i, stage in enumerate(self.grading.stages):
            bands = stage.bands if isinstance(stage, ThresholdStage) else stage.grades
            used += [(f"grading.stages[{i}]", b.grade) for b in bands]
            used.append((f"grading.stages[{i}].else", stage.else_grade))
        if self.grading.fallback_grade:
            used.append(("grading.fallback_grade", self.grading.fallback_grade))
        missing = [(p, g) for p, g in used if g not in self.grades]
        if missing:
            where, grade = missing[0]
            raise ValueError(
                f"{where} 用到的等级 {grade!r} 没有在 grades 中定义，已定义：{'、'.join(self.grades)}"
            )
        return self

    @property
    def final_grades(self) -> list[str]:
        """Grades of the deciding (last) stage, best first."""
        stage = self.grading.stages[-1]
        bands = stage.bands if isinstance(stage, ThresholdStage) else stage.grades
        order = [b.grade for b in bands] + [stage.else_grade]
        return list(dict.fromkeys(order))

    @property
    def fallback(self) -> str:
        return self.grading.fallback_grade or self.final_grades[-1]

    def resolve(self, path: str) -> Path:
        p = Path(path)
        return p if p.is_absolute() else self.base_dir / p

    def output_path(self, override: str | None = None) -> Path:
        name = override or self.output.file
        return self.resolve(name.replace("{period}", self.period.label))


# ---------------------------------------------------------------- loading

_MESSAGES = {
    "missing": "缺少必填项",
    "extra_forbidden": "不认识的键",
    "bool_parsing": "应为 true 或 false",
    "int_parsing": "应为整数",
    "int_from_float": "应为整数",
    "float_parsing": "应为数字",
    "string_type": "应为文字",
    "list_type": "应为列表（每项以 - 开头）",
    "dict_type": "应为键值表",
    "model_type": "应为键值表",
    "date_from_datetime_parsing": "应为日期，格式 YYYY-MM-DD",
    "date_parsing": "应为日期，格式 YYYY-MM-DD",
    "date_type": "应为日期，格式 YYYY-MM-DD",
    "too_short": "至少需要一项",
    "greater_than": "必须大于 {gt}",
    "greater_than_equal": "不能小于 {ge}",
    "less_than_equal": "不能大于 {le}",
    "string_pattern_mismatch": "格式不对（颜色写作 #RRGGBB）",
    "union_tag_invalid": "type 只能是 {expected_tags}",
    "union_tag_not_found": "缺少 type（可选：thresholds、score）",
}


def load_config(path: str | Path, as_of: dt.date | None = None) -> Config:
    """Read, validate and freeze config.yaml; raise ConfigError listing every problem."""
    path = Path(path)
    name = path.name
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(name, [ConfigIssue("", None, f"无法读取配置文件 {path}：{exc.strerror}")])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(name, [ConfigIssue("", None, "配置文件必须保存为 UTF-8 编码")])
    try:
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader: no code, no Python objects
        lines = _line_map(yaml.compose(text, Loader=_Loader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(name, [ConfigIssue("", line, f"YAML 格式错误：{problem}（检查缩进和冒号）")])
    if not isinstance(data, dict):
        raise ConfigError(name, [ConfigIssue("", None, "配置文件应为键值表（sources、period、grading、grades …）")])
    if as_of is not None:
        period = data.get("period")
        if isinstance(period, dict):
            data["period"] = {**period, "as_of": as_of}
    data["base_dir"] = path.resolve().parent
    data["source_file"] = name
    data["digest"] = hashlib.sha256(raw).hexdigest()[:16]
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        issues = [_issue(err, data, lines) for err in exc.errors()]
        raise ConfigError(name, sorted(set(issues), key=lambda i: (i.line or 0, i.path))) from None


class _Loader(yaml.SafeLoader):
    """Safe loader that leaves dates as text, so a bad date becomes a config error with a line."""


_Loader.yaml_constructors = {
    k: v for k, v in yaml.SafeLoader.yaml_constructors.items() if k != "tag:yaml.org,2002:timestamp"
}
_Loader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)  # type: ignore[type-var]


def _line_map(node: yaml.Node | None) -> dict[tuple[object, ...], int]:
    """YAML path (keys and list indices) → 1-based line of its value."""
    out: dict[tuple[object, ...], int] = {}

    def walk(n: yaml.Node, path: tuple[object, ...]) -> None:
        out.setdefault(path, n.start_mark.line + 1)
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                key = k.value
                out[path + (key,)] = k.start_mark.line + 1
                walk(v, path + (key,))
                out[path + (key,)] = k.start_mark.line + 1
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                walk(v, path + (i,))

    if node is not None:
        walk(node, ())
    return out


def _issue(err: Mapping[str, Any], data: object, lines: dict[tuple[object, ...], int]) -> ConfigIssue:
    path: list[object] = []
    node: object = data
    for part in err["loc"]:
        if isinstance(node, dict) and part in node:
            node = node[part]
            path.append(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            path.append(part)
        elif isinstance(part, str) and err["type"] in ("missing", "extra_forbidden") and part == err["loc"][-1]:
            path.append(part)
        # else: a union tag or function name pydantic adds, not in the YAML
    line = None
    if err["type"] == "missing" and len(path) <= 1:
        return ConfigIssue(".".join(map(str, path)), None, _message(err))
    for n in range(len(path), -1, -1):
        line = lines.get(tuple(path[:n]))
        if line is not None:
            break
    text = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in path).replace(".[", "[")
    return ConfigIssue(text, line, _message(err))


def _message(err: Mapping[str, Any]) -> str:
    kind = err["type"]
    if kind == "value_error":
        return str(err["msg"]).removeprefix("Value error, ")
    ctx = err.get("ctx") or {}
    if kind == "literal_error":
        return f"只能是 {ctx.get('expected', '')}，发现 {err.get('input')!r}"
    template = _MESSAGES.get(kind)
    if template is None:
        return f"{err['msg']}（发现 {err.get('input')!r}）"
    try:
        msg = template.format(**ctx)
    except (KeyError, IndexError):
        msg = template
    if kind not in ("missing", "extra_forbidden", "too_short"):
        msg += f"，发现 {err.get('input')!r}"
    return msg
