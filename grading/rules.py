"""Rule types: each turns the metrics table into a grade (and maybe a score)
per customer with a reason. New methods slot in by adding a function to APPLIERS."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .config import Indicator, ScoreStage, ThresholdStage
from .fields import METRIC_BY_KEY
from .units import format_amount, format_ratio


@dataclass(frozen=True)
class StageOutcome:
    """Grade per customer (None where the stage could not decide), reasons, optional score."""

    grade: pd.Series
    reason: pd.Series
    missing: pd.Series  # str: labels of metrics that were empty ("" if none)
    score: pd.Series | None = None


def format_metric(key: str, value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "空"
    kind = METRIC_BY_KEY[key].kind
    if kind == "money":
        return format_amount(value)
    if kind == "ratio":
        return format_ratio(value)
    if kind == "days":
        return f"{value:g}天"
    if kind == "months":
        return f"{value:g}个月"
    return f"{value:g}"


def _bound(key: str, value: float) -> str:
    kind = METRIC_BY_KEY[key].kind
    return format_ratio(value) if kind == "ratio" else format_metric(key, value)


def apply_thresholds(stage: ThresholdStage, table: pd.DataFrame) -> StageOutcome:
    key = stage.metric
    label = METRIC_BY_KEY[key].label
    values = table[key].astype(float).to_numpy()
    missing = np.isnan(values)
    grades = np.full(len(values), stage.else_grade, dtype=object)
    decided = np.zeros(len(values), bool)
    band_of = np.full(len(values), -1, dtype=np.int64)
    for i, band in enumerate(stage.bands):
        hit = (values >= band.min) if stage.inclusive else (values > band.min)
        hit &= ~decided
        grades[hit] = band.grade
        band_of[hit] = i
        decided |= hit
    grades[missing] = None
    op = "≥" if stage.inclusive else ">"
    lowest = stage.bands[-1]
    reasons = []
    for v, b, miss in zip(values, band_of, missing):
        shown = format_metric(key, float(v))
        if miss:
            reasons.append(f"{label} 为空")
        elif b >= 0:
            band = stage.bands[b]
            reasons.append(f"{label} {shown} {op} {_bound(key, band.min)} → {band.grade}")
        else:
            neg = "<" if stage.inclusive else "≤"
            reasons.append(f"{label} {shown} {neg} {_bound(key, lowest.min)} → {stage.else_grade}")
    idx = table.index
    missing_labels = np.where(missing, label, "")
    return StageOutcome(pd.Series(grades, index=idx), pd.Series(reasons, index=idx),
                        pd.Series(missing_labels, index=idx))


def indicator_points(ind: Indicator, values: np.ndarray) -> np.ndarray:
    points = np.full(len(values), float(ind.missing_points))
    present = ~np.isnan(values)
    if ind.bands is not None:
        got = np.zeros(len(values), bool)
        pts = np.zeros(len(values))
        for band in ind.bands:
            hit = present & ~got & (values >= band.min)
            pts[hit] = band.points
            got |= hit
        points[present] = pts[present]
    elif ind.linear is not None:
        lin = ind.linear
        frac = np.clip((values - lin.low) / (lin.high - lin.low), 0.0, 1.0)
        scaled = lin.points_low + frac * (lin.points_high - lin.points_low)
        points[present] = scaled[present]
    return points


def apply_score(stage: ScoreStage, table: pd.DataFrame) -> StageOutcome:
    n = len(table)
    total = np.zeros(n)
    parts: list[list[str]] = [[] for _ in range(n)]
    missing: list[list[str]] = [[] for _ in range(n)]
    for ind in stage.indicators:
        values = table[ind.metric].astype(float).to_numpy()
        pts = indicator_points(ind, values)
        total += pts * ind.weight
        label = METRIC_BY_KEY[ind.metric].label
        for j in np.flatnonzero(np.isnan(values)).tolist():
            missing[j].append(label)
        weight = "" if ind.weight == 1 else f"×{ind.weight:g}"
        for i in range(n):
            parts[i].append(f"{label} {format_metric(ind.metric, float(values[i]))} 得 {pts[i]:.4g} 分{weight}")
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
    reasons = []
    for i in range(n):
        detail = "，".join(parts[i])
        if decided[i]:
            reasons.append(f"{stage.name} {total[i]:.4g} 分（{detail}）≥ {band_min[i]:g} → {grades[i]}")
        else:
            reasons.append(f"{stage.name} {total[i]:.4g} 分（{detail}）< {lowest:g} → {grades[i]}")
    idx = table.index
    return StageOutcome(pd.Series(grades, index=idx), pd.Series(reasons, index=idx),
                        pd.Series(["、".join(m) for m in missing], index=idx), pd.Series(total, index=idx))


APPLIERS: dict[type, Callable[[Any, pd.DataFrame], StageOutcome]] = {
    ThresholdStage: apply_thresholds,
    ScoreStage: apply_score,
}
