"""Building blocks of rule specs (pydantic): amounts with units, grades
written as numbers, metric names, the value a rule reads, ordering checks.
Stage modules and config_model build their specs from these."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from ..fields import METRICS, resolve_metric
from ..units import format_amount, parse_amount

Amount = Annotated[float, BeforeValidator(parse_amount), WithJsonSchema({
    "anyOf": [{"type": "number"},
              {"type": "string", "pattern": r"^\s*[-+]?[\d,]+(\.\d+)?\s*(元|万元|万|亿元|亿|%)?\s*$"}],
    "description": "数字，或带单位：500万、1.2亿、3000元、80%",
})]


def as_text(value: object) -> object:
    """Grades and levels may be written as numbers (1, 2, 3): keep them as text."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return f"{value:g}"
    return value


Text = Annotated[str, BeforeValidator(as_text),
                 WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "number"}]})]
Grade = Annotated[str, BeforeValidator(as_text), Field(min_length=1),
                  WithJsonSchema({"anyOf": [{"type": "string", "minLength": 1}, {"type": "number"}],
                                  "description": "等级或级别代码，如 A、关键、1"})]


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


def metric_key(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"应为指标名称，发现 {value!r}")
    metric = resolve_metric(value)
    if metric is None:
        names = "、".join(f"{m.label}({m.key})" for m in METRICS)
        raise ValueError(f"不认识的指标 {value!r}，可用的指标：{names}；客户档案中的自定义列请用 column: 列名")
    return metric.key


MetricName = Annotated[str, BeforeValidator(metric_key), WithJsonSchema({
    "enum": [name for m in METRICS for name in (m.label, m.key)],
    "description": "指标：中文名称或英文键",
})]


class ValueRef(Model):
    """Where a stage reads its number: a computed metric or a column of the customer master."""

    metric: MetricName | None = None
    column: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ValueRef:
        if (self.metric is None) == (self.column is None):
            raise ValueError("必须二选一：metric（计算出的指标）或 column（客户档案中的列名）")
        return self

    @property
    def ref(self) -> str:
        return self.metric if self.metric is not None else f"col:{self.column}"


def descending(values: list[float], what: str = "分段") -> None:
    for a, b in zip(values, values[1:]):
        if b >= a:
            raise ValueError(f"{what}必须从高到低排列，发现 {format_amount(a)} 在 {format_amount(b)} 之前")


def ascending(values: list[float], what: str) -> None:
    for a, b in zip(values, values[1:]):
        if b <= a:
            raise ValueError(f"{what}必须从小到大（累计）排列，发现 {a:g} 在 {b:g} 之前")
