"""Stage type `thresholds`: fixed bands high → low on one value (≥ min, or > min
with `inclusive: false`), compared at cent precision for money."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from .base import (band_grades, band_levels, format_gap, AssigningRule, AssigningSpec, Gap, Path, StageOutcome, comparable, format_value, label_of,
                   next_better, numeric_values, outcome, step_of)
from .spec import Amount, Grade, Model, ValueRef, descending


class ThresholdBand(Model):
    grade: Grade
    min: Amount


class ThresholdStage(AssigningSpec, ValueRef):
    """Fixed thresholds: the first band (high → low) whose min is reached wins."""

    type: Literal["thresholds"]
    name: str = "阈值分级"
    inclusive: bool = True
    bands: list[ThresholdBand] = Field(min_length=1)
    else_grade: Grade = Field(alias="else")

    @field_validator("bands")
    @classmethod
    def _order(cls, bands: list[ThresholdBand]) -> list[ThresholdBand]:
        descending([b.min for b in bands])
        return bands

    @property
    def rule(self) -> ThresholdRule:
        return THRESHOLDS


class ThresholdRule(AssigningRule[ThresholdStage]):
    def apply(self, stage: ThresholdStage, table: pd.DataFrame) -> StageOutcome:
        ref = stage.ref
        label = label_of(ref)
        values = numeric_values(table, ref)
        exact = comparable(ref, values)
        missing = np.isnan(values)
        grades = np.full(len(values), stage.else_grade, dtype=object)
        band_of = np.full(len(values), -1, dtype=np.int64)
        decided = np.zeros(len(values), bool)
        for i, band in enumerate(stage.bands):
            bound = comparable(ref, band.min)
            with np.errstate(invalid="ignore"):
                hit = ((exact >= bound) if stage.inclusive else (exact > bound)) & ~decided
            grades[hit] = band.grade
            band_of[hit] = i
            decided |= hit
        op, neg = ("≥", "<") if stage.inclusive else (">", "≤")
        lowest = format_value(ref, stage.bands[-1].min)
        reasons = []
        for v, b, miss in zip(values.tolist(), band_of.tolist(), missing.tolist()):
            if miss:
                reasons.append(f"{label} 为空")
            elif b >= 0:
                band = stage.bands[b]
                reasons.append(f"{label} {format_value(ref, v)} {op} {format_value(ref, band.min)} → {band.grade}")
            else:
                reasons.append(f"{label} {format_value(ref, v)} {neg} {lowest} → {stage.else_grade}")
        return outcome(grades, reasons, missing, ref, table.index)

    def describe(self, stage: ThresholdStage) -> list[tuple[str, str]]:
        ref, op = stage.ref, "≥" if stage.inclusive else ">"
        parts = [f"{label_of(ref)} {op} {format_value(ref, b.min)} → {b.grade}" for b in stage.bands]
        return [("固定阈值", "；".join([*parts, f"其余 → {stage.else_grade}"]))]

    def levels(self, stage: ThresholdStage) -> list[str]:
        return band_levels(stage.bands, stage.else_grade)

    def named_grades(self, stage: ThresholdStage) -> list[tuple[Path, str]]:
        return band_grades("bands", stage.bands, stage.else_grade)

    def inputs(self, stage: ThresholdStage) -> list[str]:
        return [stage.ref]

    def gap(self, stage: ThresholdStage, table: pd.DataFrame, result: StageOutcome) -> Gap:
        ref = stage.ref
        values = numeric_values(table, ref)
        target = next_better(self.levels(stage), result.grade.to_numpy())
        bound_of = {}
        for band in stage.bands:  # the lowest min that gives each grade
            bound_of[band.grade] = band.min
        step = 0.0 if stage.inclusive else step_of(ref)
        boundary = np.array([bound_of[t] + step if t else np.nan for t in target], dtype=float)
        gap = np.round(boundary - values, 6)
        return Gap(gap, boundary, target, lambda x: format_gap(ref, x))


THRESHOLDS = ThresholdRule()
