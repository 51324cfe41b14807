"""Stage type `grid`: 2+ axes, each a nested rule or a master column + map; the
grade code is the levels joined (A1, F1D1). An axis whose value is unknown
falls back on its own (`fallback`, default `?`), the other axes still count."""

from __future__ import annotations

import itertools
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from ..problems import Problem
from .base import AssigningRule, AssigningSpec, Path, StageOutcome, column_values, series
from .pareto import ParetoStage
from .quantile import QuantileStage
from .score import ScoreStage, _text
from .spec import Grade, Model
from .thresholds import ThresholdStage

AxisRule = Annotated[ThresholdStage | QuantileStage | ParetoStage | ScoreStage, Field(discriminator="type")]


class Axis(Model):
    """One axis of a grid: a rule on metrics, or a mapping of a customer-master column."""

    name: str
    rule: AxisRule | None = None
    column: str | None = None
    map: dict[str, Grade] | None = None
    else_grade: Grade | None = Field(default=None, alias="else")
    fallback: Grade = "?"

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


class GridStage(AssigningSpec):
    """Nine-grid / n-axis codes: each axis gives a level, the code is their concatenation (A1, F1D1)."""

    type: Literal["grid"]
    name: str = "九宫格"
    axes: list[Axis] = Field(min_length=2)
    separator: str = ""

    @property
    def rule(self) -> GridRule:
        return GRID


class GridRule(AssigningRule[GridStage]):
    def apply(self, stage: GridStage, table: pd.DataFrame) -> StageOutcome:
        n = len(table)
        codes: list[list[str]] = [[] for _ in range(n)]
        parts: list[list[str]] = [[] for _ in range(n)]
        missing: list[list[str]] = [[] for _ in range(n)]
        notes: list[Problem] = []
        score: pd.Series | None = None
        for axis in stage.axes:
            if axis.rule is not None:
                sub = axis.rule.assign(table)
                levels = sub.grade.tolist()
                texts = sub.reason.tolist()
                for i, m in enumerate(sub.missing.tolist()):
                    if m:
                        missing[i].append(m)
                if sub.score is not None:
                    score = sub.score
            else:
                assert axis.map is not None and axis.else_grade is not None
                levels, texts = [], []
                for v in column_values(table, f"col:{axis.column}").tolist():
                    text = _text(v)
                    level = axis.map.get(text, axis.else_grade)
                    levels.append(level)
                    texts.append(f"{axis.column} = {text or '空'} → {level}")
            for i in range(n):
                level = levels[i]
                if not isinstance(level, str):  # this axis could not decide: it alone falls back
                    level = axis.fallback
                    texts[i] = f"{texts[i]}，该轴按兜底级别 → {level}"
                    notes.append(Problem("", stage.name, None, axis.name, str(table.index[i]),
                                         f"轴「{axis.name}」无法判断（{missing[i][-1] if missing[i] else '值为空'}），"
                                         f"该轴按兜底级别 {level}，其余轴照常", "提示"))
                codes[i].append(level)
                parts[i].append(f"{axis.name}：{texts[i]}")
        grades = [stage.separator.join(c) for c in codes]
        reasons = [f"{stage.name} {g}（{'；'.join(p)}）" for g, p in zip(grades, parts)]
        idx = table.index
        return StageOutcome(series(grades, idx), series(reasons, idx), series([""] * n, idx), score, tuple(notes))

    def describe(self, stage: GridStage) -> list[tuple[str, str]]:
        rows = [("多轴组合", f"等级代码 = {' + '.join(a.name for a in stage.axes)}")]
        for axis in stage.axes:
            if axis.rule is not None:
                text = "；".join(t for _, t in axis.rule.describe())
            else:
                assert axis.map is not None
                mapping = "，".join(f"{k} → {v}" for k, v in axis.map.items())
                text = f"客户档案列「{axis.column}」：{mapping}，其余 → {axis.else_grade}"
            rows.append((f"  轴 {axis.name}", text))
        return rows

    def levels(self, stage: GridStage) -> list[str]:
        return [stage.separator.join(p) for p in itertools.product(*(a.levels for a in stage.axes))]

    def named_grades(self, stage: GridStage) -> list[tuple[Path, str]]:
        return [(("axes",), code) for code in self.levels(stage)]

    def inputs(self, stage: GridStage) -> list[str]:
        out: list[str] = []
        for axis in stage.axes:
            out += axis.rule.inputs() if axis.rule is not None else [f"col:{axis.column}"]
        return out


GRID = GridRule()
