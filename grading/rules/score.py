"""Stage type `score`: indicators → points (by bands, linear, or a map of a text
column), times weights summing to 100%, then score bands."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator, model_validator

from ..units import format_ratio
from .base import (band_grades, band_levels, AssigningRule, AssigningSpec, Gap, Path, StageOutcome, column_values, comparable,
                   distinct_texts, format_value, join_texts, label_of, next_better, numeric_values, series,
                   value_format)
from .spec import Amount, Grade, Model, ValueRef, descending


class PointBand(Model):
    min: Amount
    points: float


class LinearScale(Model):
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


class Indicator(ValueRef):
    """One indicator: `bands` or `linear` on a number, or `map` from the text of a master column."""

    weight: Amount = Field(gt=0)
    bands: list[PointBand] | None = None
    linear: LinearScale | None = None
    map: dict[str, float] | None = None
    missing_points: float = 0

    @model_validator(mode="after")
    def _one_scale(self) -> Indicator:
        if sum(x is not None for x in (self.bands, self.linear, self.map)) != 1:
            raise ValueError("每个指标必须三选一：bands（分段给分）、linear（线性给分）或 map（文字列按值给分，"
                             "如 潜力 高/中/低 → 3/2/1）")
        if self.bands:
            descending([b.min for b in self.bands])
        if self.map is not None and self.column is None:
            raise ValueError("map（按文字给分）只用于客户档案中的列：请写 column: 列名")
        return self


class ScoreBand(Model):
    grade: Grade
    min: float


class ScoreStage(AssigningSpec):
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

    @field_validator("indicators")
    @classmethod
    def _weights(cls, indicators: list[Indicator]) -> list[Indicator]:
        total = sum(i.weight for i in indicators)
        if abs(total - 1.0) > 1e-9:
            parts = " + ".join(format_ratio(i.weight) for i in indicators)
            raise ValueError(f"各指标权重之和应为 100%，发现 {format_ratio(total)}（{parts}）；"
                             "请调整 weight（可写 0.4 或 40%）")
        return indicators

    @property
    def rule(self) -> ScoreRule:
        return SCORE


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    text = str(value).strip()
    return text[:-2] if text.endswith(".0") and text[:-2].isdigit() else text


def indicator_points(ind: Indicator, values: np.ndarray) -> np.ndarray:
    points = np.full(len(values), float(ind.missing_points))
    present = ~np.isnan(values)
    if ind.bands is not None:
        exact = comparable(ind.ref, values)
        got = np.zeros(len(values), bool)
        pts = np.zeros(len(values))
        for band in ind.bands:
            with np.errstate(invalid="ignore"):
                hit = present & ~got & (exact >= comparable(ind.ref, band.min))
            pts[hit] = band.points
            got |= hit
        points[present] = pts[present]
    elif ind.linear is not None:
        lin = ind.linear
        frac = np.clip((values - lin.low) / (lin.high - lin.low), 0.0, 1.0)
        scaled = lin.points_low + frac * (lin.points_high - lin.points_low)
        points[present] = scaled[present]
    return points


class ScoreRule(AssigningRule[ScoreStage]):
    def apply(self, stage: ScoreStage, table: pd.DataFrame) -> StageOutcome:
        n = len(table)
        total = np.zeros(n)
        # every row's text is built column-wise: values formatted once per distinct value, then the pieces
        # joined row by row in one pass ("，".join of each row's parts, one per indicator)
        detail: list[np.ndarray | str] = []
        missing = np.full(n, "", dtype=object)  # "、".join of the labels of a row's empty values
        for k, ind in enumerate(stage.indicators):
            label = label_of(ind.ref)
            shown = np.empty(n, dtype=object)
            if ind.map is not None:
                texts = [_text(v) for v in column_values(table, ind.ref).tolist()]
                pts = np.array([ind.map.get(t, ind.missing_points) if t else ind.missing_points for t in texts])
                absent = np.array([t == "" for t in texts], dtype=bool)
                shown[:] = [t or "空" for t in texts]
            else:
                values = numeric_values(table, ind.ref)
                pts = indicator_points(ind, values)
                absent = np.isnan(values)
                shown = distinct_texts(values, value_format(ind.ref))
            total += pts * ind.weight
            gaps = np.flatnonzero(absent)
            if len(gaps):
                before = missing[gaps]
                missing[gaps] = np.where(before == "", label, before + f"、{label}")
            weight = "" if ind.weight == 1 else f"×{ind.weight:g}"
            detail += [*(["，"] if k else []), f"{label} ", shown, " 得 ", distinct_texts(pts, lambda p: f"{p:.4g}"),
                       f" 分{weight}"]
        total = np.round(total, 6)
        grades = np.full(n, stage.else_grade, dtype=object)
        band_min = np.full(n, np.nan)
        decided = np.zeros(n, bool)
        for band in stage.grades:
            hit = ~decided & (total >= band.min)
            grades[hit] = band.grade
            band_min[hit] = band.min
            decided |= hit
        lowest = stage.grades[-1].min
        bound = np.where(decided, "）≥ " + distinct_texts(band_min, lambda b: f"{b:g}"), f"）< {lowest:g}")
        reasons = join_texts([f"{stage.name} ", distinct_texts(total, lambda t: f"{t:.4g}"), " 分（", *detail,
                              bound, " → ", grades]) if n else []
        idx = table.index
        return StageOutcome(series(grades, idx), series(reasons, idx),
                            series(missing.tolist(), idx), series(total, idx, float))

    def describe(self, stage: ScoreStage) -> list[tuple[str, str]]:
        inds = []
        for ind in stage.indicators:
            ref = ind.ref
            if ind.bands is not None:
                scale = "，".join(f"≥{format_value(ref, b.min)} 得 {b.points:g} 分" for b in ind.bands)
            elif ind.linear is not None:
                lin = ind.linear
                scale = (f"{format_value(ref, lin.low)}→{lin.points_low:g} 分 至 "
                         f"{format_value(ref, lin.high)}→{lin.points_high:g} 分（线性）")
            else:
                assert ind.map is not None
                scale = "，".join(f"{k} 得 {v:g} 分" for k, v in ind.map.items())
            missing = f"，缺失按 {ind.missing_points:g} 分" if ind.missing_points else ""
            inds.append(f"{label_of(ref)}（权重 {ind.weight:g}）：{scale}{missing}")
        bands = "；".join(f"≥{b.min:g} 分 → {b.grade}" for b in stage.grades)
        return [("加权评分", "；".join(inds)), ("分数段", f"{bands}；其余 → {stage.else_grade}")]

    def levels(self, stage: ScoreStage) -> list[str]:
        return band_levels(stage.grades, stage.else_grade)

    def named_grades(self, stage: ScoreStage) -> list[tuple[Path, str]]:
        return band_grades("grades", stage.grades, stage.else_grade)

    def inputs(self, stage: ScoreStage) -> list[str]:
        return [i.ref for i in stage.indicators]

    def gap(self, stage: ScoreStage, table: pd.DataFrame, result: StageOutcome) -> Gap:
        assert result.score is not None
        total = result.score.to_numpy(dtype=float)
        bound_of = {b.grade: b.min for b in stage.grades}
        target = next_better(self.levels(stage), result.grade.to_numpy())
        boundary = np.array([bound_of[t] if t else np.nan for t in target], dtype=float)
        return Gap(np.round(boundary - total, 6), boundary, target, lambda x: f"{math.ceil(round(x * 100, 3)) / 100:g} 分")


SCORE = ScoreRule()
