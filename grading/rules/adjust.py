"""Stage type `adjust`: where a condition holds (`回款率 < 80%`, `潜力 = 高`), move
the grade up/down N levels or cap/floor it, within the grades of the
assigning stage before. A customer without the value is not adjusted: the
explanation says the rule was skipped and 数据问题 lists it."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Annotated, Literal, overload

import numpy as np
import pandas as pd
from pydantic import BeforeValidator, Field, WithJsonSchema, model_validator

from ..fields import resolve_metric
from ..problems import Problem
from ..units import parse_amount
from .base import (Change, ModifyContext, ModifyingRule, ModifyingSpec, Path, column_values, comparable,
                   label_of, numeric_values, value_format)
from .spec import Grade, Model

_CONDITION = re.compile(r"^\s*(.+?)\s*(<=|>=|==|!=|≤|≥|<|>|=)\s*(.+?)\s*$")


class Condition(Model):
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


class AdjustStage(ModifyingSpec):
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

    @property
    def action(self) -> str:
        return (f"升 {self.up} 级" if self.up else f"降 {self.down} 级" if self.down
                else f"最高为 {self.at_most}" if self.at_most else f"最低为 {self.at_least}")

    @property
    def rule(self) -> AdjustRule:
        return ADJUST


class _Shown(Sequence[str]):
    """format_value of each value, formatted when asked for (a rule usually looks at few rows)."""

    def __init__(self, ref: str, values: np.ndarray) -> None:
        self.values, self._format = values, value_format(ref)

    def __len__(self) -> int:
        return len(self.values)

    @overload
    def __getitem__(self, i: int) -> str: ...

    @overload
    def __getitem__(self, i: slice) -> list[str]: ...

    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return [self._format(v) for v in self.values[i].tolist()]
        return self._format(float(self.values[i]))


def condition_mask(cond: Condition, table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, Sequence[str]]:
    """Where the condition holds, where the value is missing (never matches), and the shown values."""
    ref = cond.ref
    if isinstance(cond.value, float):
        values = numeric_values(table, ref)
        ops = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
               "=": np.equal, "!=": np.not_equal}
        absent = np.isnan(values)
        with np.errstate(invalid="ignore"):
            mask = ops[cond.op](comparable(ref, values), comparable(ref, cond.value)) & ~absent
        return mask, absent, _Shown(ref, values)
    raw = column_values(table, ref).tolist()
    texts = ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v).strip() for v in raw]
    absent = np.array([t == "" for t in texts], dtype=bool)
    hit = np.array([t == cond.value for t in texts], dtype=bool)
    return (hit if cond.op == "=" else ~hit & ~absent), absent, texts


class AdjustRule(ModifyingRule[AdjustStage]):
    def apply(self, stage: AdjustStage, grades: pd.Series, table: pd.DataFrame, context: ModifyContext) -> Change:
        order = context.ladder
        rank = {g: i for i, g in enumerate(order)}
        mask, absent, shown = condition_mask(stage.when, table)
        label = label_of(stage.when.ref)
        new = grades.copy()
        notes: dict[str, str] = {}
        problems: list[Problem] = []
        codes = grades.index.tolist()
        olds = grades.tolist()
        moved: dict[int, str] = {}
        for i in np.flatnonzero(absent).tolist():
            code = str(codes[i])
            notes[code] = f"{stage.name}：{label} 为空，未判断“{stage.when.text}”，本条规则跳过"
            problems.append(Problem("", stage.name, None, label, code,
                                    f"缺少 {label}，调整规则“{stage.when.text}”对该客户未执行", "提示"))
        for i in np.flatnonzero(mask).tolist():
            code = codes[i]
            old = str(olds[i])
            why = f"{stage.name}：{label} {shown[i]} 满足“{stage.when.text}”"
            if old not in rank:
                notes[code] = f"{why}，但等级 {old} 不在可调整的等级（{'、'.join(order)}）中，未调整"
                continue
            r = rank[old]
            if stage.up is not None:
                target = max(0, r - stage.up)
            elif stage.down is not None:
                target = min(len(order) - 1, r + stage.down)
            elif stage.at_most is not None:
                target = max(r, rank[stage.at_most])
            else:
                assert stage.at_least is not None
                target = min(r, rank[stage.at_least])
            if order[target] != old:
                moved[i] = order[target]
                notes[code] = f"{why} → {stage.action}：{old} → {order[target]}"
            else:
                notes[code] = f"{why} → {stage.action}：保持 {old}"
        if moved:
            new.iloc[list(moved)] = list(moved.values())
        return Change(new, notes, tuple(problems))

    def describe(self, stage: AdjustStage) -> list[tuple[str, str]]:
        return [("调整", f"当 {stage.when.text} 时 {stage.action}")]

    def named_grades(self, stage: AdjustStage) -> list[tuple[Path, str]]:
        return []

    def ladder_grades(self, stage: AdjustStage) -> list[tuple[Path, str]]:
        return [((key,), g) for key, g in (("at_most", stage.at_most), ("at_least", stage.at_least)) if g is not None]

    def inputs(self, stage: AdjustStage) -> list[str]:
        return [stage.when.ref]


ADJUST = AdjustRule()
