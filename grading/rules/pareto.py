"""Stage type `pareto`: cumulative share of the value, high → low (negative
values count 0); the customer that crosses a boundary is inside it."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from ..units import format_ratio
from .base import (band_grades, band_levels, format_gap, AssigningRule, AssigningSpec, Gap, Path, StageOutcome, format_value, label_of, next_better,
                   numeric_values, outcome, rank_order, step_of)
from .spec import Amount, Grade, Model, ValueRef, ascending


class ParetoBand(Model):
    grade: Grade
    share: Amount


class ParetoStage(AssigningSpec, ValueRef):
    """Cumulative share: customers by value, high → low; the customer that crosses a share is inside it."""

    type: Literal["pareto"]
    name: str = "帕累托分级"
    bands: list[ParetoBand] = Field(min_length=1)
    else_grade: Grade = Field(alias="else")

    @field_validator("bands")
    @classmethod
    def _order(cls, bands: list[ParetoBand]) -> list[ParetoBand]:
        ascending([b.share for b in bands], "share（累计占比）")
        if bands[0].share <= 0 or bands[-1].share > 1:
            raise ValueError("share 应在 0% 到 100% 之间（如 70%、90%）")
        return bands

    @property
    def rule(self) -> ParetoRule:
        return PARETO


def pareto_contributions(values: np.ndarray) -> np.ndarray:
    """What each customer adds to the Pareto total: its value, negatives and empties as 0."""
    return np.where(np.isnan(values), 0.0, np.clip(values, 0.0, None))


class ParetoRule(AssigningRule[ParetoStage]):
    def apply(self, stage: ParetoStage, table: pd.DataFrame) -> StageOutcome:
        """Customer i (by value desc, code asc) is in the first band whose share exceeds the cumulative
        share *before* it."""
        ref = stage.ref
        label = label_of(ref)
        values = numeric_values(table, ref)
        missing = np.isnan(values)
        order = rank_order(values, table.index)
        contrib = pareto_contributions(values)[order]
        total = float(contrib.sum())
        after_sorted = np.cumsum(contrib) / total if total > 0 else np.ones(len(values))
        before_sorted = np.concatenate(([0.0], after_sorted[:-1])) if len(values) else after_sorted
        before = np.empty(len(values))
        after = np.empty(len(values))
        before[order] = before_sorted
        after[order] = after_sorted
        grades = np.full(len(values), stage.else_grade, dtype=object)
        reasons = []
        for i in range(len(values)):
            if missing[i]:
                reasons.append(f"{label} 为空")
                continue
            shown = (f"{label} {format_value(ref, float(values[i]))}，累计占比 "
                     f"{format_ratio(float(before[i]))}→{format_ratio(float(after[i]))}")
            j = next((j for j, b in enumerate(stage.bands) if total > 0 and before[i] < b.share - 1e-12), None)
            if j is not None:
                grades[i] = stage.bands[j].grade
                reasons.append(f"{shown}（前 {format_ratio(stage.bands[j].share)} 内）→ {grades[i]}")
            else:
                reasons.append(f"{shown}（前 {format_ratio(stage.bands[-1].share)} 之外）→ {stage.else_grade}")
        return outcome(grades, reasons, missing, ref, table.index)

    def describe(self, stage: ParetoStage) -> list[tuple[str, str]]:
        parts = [f"累计前 {format_ratio(b.share)} → {b.grade}" for b in stage.bands]
        return [("帕累托", f"按{label_of(stage.ref)}从高到低累计占比（跨过分界的客户归入该段）："
                 + "；".join([*parts, f"其余 → {stage.else_grade}"]))]

    def levels(self, stage: ParetoStage) -> list[str]:
        return band_levels(stage.bands, stage.else_grade)

    def named_grades(self, stage: ParetoStage) -> list[tuple[Path, str]]:
        return band_grades("bands", stage.bands, stage.else_grade)

    def inputs(self, stage: ParetoStage) -> list[str]:
        return [stage.ref]

    def gap(self, stage: ParetoStage, table: pd.DataFrame, result: StageOutcome) -> Gap:
        """Smallest value x (on the value's step grid) that puts the customer inside the next better band.

        With a_0 ≥ a_1 ≥ … the others' values and P[p] = a_0 + … + a_{p-1}, the customer with value x and
        p others above it is inside a band of share s when P[p] < s·(T − v + x), i.e. x > P[p]/s − T + v.
        Having only p others above needs x > a_p. g(p) = P[p]/s − a_p grows with p, so the best p is found
        by one binary search and x = min(a_{p*−1}, P[p*]/s − T + v) + one step."""
        ref = stage.ref
        values = numeric_values(table, ref)
        step = step_of(ref)
        contrib = pareto_contributions(values)
        total = float(contrib.sum())
        order = rank_order(contrib, table.index)  # value desc, code asc: the rule's order
        ranked = contrib[order]
        codes = table.index.astype(str).to_numpy()
        ranked_codes = codes[order]
        prefix = np.concatenate(([0.0], np.cumsum(ranked)))
        share_of = {b.grade: b.share for b in stage.bands}
        target = next_better(self.levels(stage), result.grade.to_numpy())
        boundary = np.full(len(values), np.nan)
        for grade, share in share_of.items():
            rows = np.flatnonzero(np.array([t == grade for t in target], dtype=bool) & ~np.isnan(values))
            if not len(rows):
                continue
            g = prefix[: len(ranked)] / share - ranked
            v = contrib[rows]
            p_star = np.searchsorted(g, total - v, side="left")
            greater = np.searchsorted(-ranked, -v, side="left")  # others strictly above: x > v keeps these
            p_star = np.minimum(p_star, greater)
            f = prefix[p_star] / share - total + v
            over_f = (np.floor(np.round(f / step, 6)) + 1) * step  # strictly above f
            q = np.maximum(p_star - 1, 0)
            ties_win = codes[rows] < ranked_codes[q]  # equal value and a smaller code ranks first
            at_q = np.where(p_star > 0, ranked[q] + np.where(ties_win, 0.0, step), np.inf)
            need = np.maximum(np.minimum(at_q, over_f), v + step)
            boundary[rows] = np.round(need, 6)
        gap = np.round(boundary - values, 6)
        return Gap(gap, boundary, target, lambda x: format_gap(ref, x))


PARETO = ParetoRule()
