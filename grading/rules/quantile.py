"""Stage type `quantile`: rank by value (ties: customer code), cumulative tops by
percent (count = ⌈n·p⌉) or by count."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from ..units import format_ratio
from .base import (band_grades, band_levels, format_gap, AssigningRule, AssigningSpec, Gap, Path, StageOutcome, format_value, label_of, next_better,
                   numeric_values, outcome, rank_order, step_of)
from .spec import Amount, Grade, Model, ValueRef, ascending


class QuantileBand(Model):
    grade: Grade
    top: Amount


class QuantileStage(AssigningSpec, ValueRef):
    """Top-N: customers ranked by value (ties: customer code); cumulative tops, e.g. 1% VIP, 20% A."""

    type: Literal["quantile"]
    name: str = "排名分级"
    by: Literal["percent", "count"] = "percent"
    bands: list[QuantileBand] = Field(min_length=1)
    else_grade: Grade = Field(alias="else")

    @model_validator(mode="after")
    def _order(self) -> QuantileStage:
        tops = [b.top for b in self.bands]
        ascending(tops, "top（累计）")
        if self.by == "percent" and (tops[0] <= 0 or tops[-1] > 1):
            raise ValueError("by: percent 时 top 应在 0% 到 100% 之间（如 1%、20%）")
        if self.by == "count" and any(t < 1 or t != int(t) for t in tops):
            raise ValueError("by: count 时 top 应为正整数（客户个数）")
        return self

    @property
    def rule(self) -> QuantileRule:
        return QUANTILE


class QuantileRule(AssigningRule[QuantileStage]):
    @staticmethod
    def cutoffs(stage: QuantileStage, n: int) -> list[int]:
        if stage.by == "percent":
            return [min(n, math.ceil(round(n * b.top, 9))) for b in stage.bands]
        return [min(n, int(b.top)) for b in stage.bands]

    def apply(self, stage: QuantileStage, table: pd.DataFrame) -> StageOutcome:
        ref = stage.ref
        label = label_of(ref)
        values = numeric_values(table, ref)
        missing = np.isnan(values)
        n = int((~missing).sum())
        order = rank_order(values, table.index)
        rank = np.empty(len(values), dtype=np.int64)
        rank[order] = np.arange(1, len(values) + 1)
        cutoffs = self.cutoffs(stage, n)
        if stage.by == "percent":
            names = [f"前 {format_ratio(b.top)}" for b in stage.bands]
        else:
            names = [f"前 {int(b.top)} 名" for b in stage.bands]
        grades = np.full(len(values), stage.else_grade, dtype=object)
        reasons = []
        for i in range(len(values)):
            if missing[i]:
                reasons.append(f"{label} 为空")
                continue
            r = int(rank[i])
            shown = f"{label} {format_value(ref, float(values[i]))} 排名 {r}/{n}"
            j = next((j for j, c in enumerate(cutoffs) if r <= c), None)
            if j is not None:
                grades[i] = stage.bands[j].grade
                reasons.append(f"{shown}（{names[j]}）→ {grades[i]}")
            else:
                reasons.append(f"{shown}（不在{names[-1]}）→ {stage.else_grade}")
        return outcome(grades, reasons, missing, ref, table.index)

    def describe(self, stage: QuantileStage) -> list[tuple[str, str]]:
        percent = stage.by == "percent"
        parts = [f"前 {format_ratio(b.top) if percent else f'{int(b.top)} 名'} → {b.grade}" for b in stage.bands]
        return [("排名分级", f"按{label_of(stage.ref)}从高到低排名（同值按客户编码）："
                 + "；".join([*parts, f"其余 → {stage.else_grade}"]))]

    def levels(self, stage: QuantileStage) -> list[str]:
        return band_levels(stage.bands, stage.else_grade)

    def named_grades(self, stage: QuantileStage) -> list[tuple[Path, str]]:
        return band_grades("bands", stage.bands, stage.else_grade)

    def inputs(self, stage: QuantileStage) -> list[str]:
        return [stage.ref]

    def gap(self, stage: QuantileStage, table: pd.DataFrame, result: StageOutcome) -> Gap:
        """To reach a band a customer must rank above the last customer inside it: one step more than
        that customer's value (ties go by code, so equal is not enough)."""
        ref = stage.ref
        values = numeric_values(table, ref)
        present = ~np.isnan(values)
        order = rank_order(values, table.index)[: int(present.sum())]
        ranked = values[order]
        codes = table.index.astype(str).to_numpy()
        cut = dict(zip([b.grade for b in stage.bands], self.cutoffs(stage, len(ranked))))
        target = next_better(self.levels(stage), result.grade.to_numpy())
        step = step_of(ref)
        boundary = np.full(len(values), np.nan)
        for i, t in enumerate(target):
            if t and cut[t] > 0 and present[i]:
                last = order[cut[t] - 1]  # the last customer inside the band: equal value wins on a smaller code
                boundary[i] = ranked[cut[t] - 1] + (0.0 if codes[i] < codes[last] else step)
        gap = np.round(boundary - values, 6)
        return Gap(gap, boundary, target, lambda x: format_gap(ref, x))


QUANTILE = QuantileRule()
