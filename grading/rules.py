"""Rule types that assign a grade: each turns the customer table into a grade
(and maybe a score) per customer, with a reason that shows the numbers.

Ties are broken by a stated rule everywhere: value descending, then customer
code ascending. New methods slot in by adding a function to ASSIGNERS.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .config_model import (
    GridStage,
    Indicator,
    ParetoStage,
    QuantileStage,
    ScoreStage,
    ThresholdStage,
)
from .errors import MissingColumn
from .fields import METRIC_BY_KEY
from .normalise import _numbers
from .units import format_amount, format_ratio


@dataclass(frozen=True)
class StageOutcome:
    """Grade per customer (NaN where the stage could not decide), reasons, optional score."""

    grade: pd.Series
    reason: pd.Series
    missing: pd.Series  # str: labels of values that were empty ("" if none)
    score: pd.Series | None = None


def label_of(ref: str) -> str:
    return ref.removeprefix("col:") if ref.startswith("col:") else METRIC_BY_KEY[ref].label


def format_value(ref: str, value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "空"
    kind = "number" if ref.startswith("col:") else METRIC_BY_KEY[ref].kind
    if kind == "money":
        return format_amount(value)
    if kind == "ratio":
        return format_ratio(value)
    if kind == "days":
        return f"{value:g}天"
    if kind == "months":
        return f"{value:g}个月"
    return f"{value:g}"


def column_values(table: pd.DataFrame, ref: str) -> pd.Series:
    """The raw column for a metric key or `col:<master column>`; a clear error if the column is absent."""
    if ref in table:
        return table[ref]
    name = ref.removeprefix("col:")
    found = [c.removeprefix("col:") for c in table.columns if c.startswith("col:")]
    raise MissingColumn(
        f"分级规则用到客户档案中的列「{name}」，但客户档案中没有这一列。"
        f"客户档案中找到的自定义列：{'、'.join(found) or '（无，或未配置 sources.customers）'}。"
        "请在客户档案中加入该列，或修改 config.yaml 中的 column。"
    )


def numeric_values(table: pd.DataFrame, ref: str) -> np.ndarray:
    col = column_values(table, ref)
    if ref.startswith("col:"):
        nums, _, _ = _numbers(col.tolist())
        return nums
    return col.astype(float).to_numpy()


def _series(values: Any, index: pd.Index, dtype: Any = object) -> pd.Series:
    series: pd.Series = pd.Series(values, index=index, dtype=dtype)
    return series


def _outcome(grades: np.ndarray, reasons: list[str], missing: np.ndarray, ref: str, index: pd.Index,
             score: pd.Series | None = None) -> StageOutcome:
    labels = np.where(missing, label_of(ref), "")
    grades = grades.astype(object)
    grades[missing] = np.nan
    return StageOutcome(_series(grades, index), _series(reasons, index), _series(labels, index), score)


def apply_thresholds(stage: ThresholdStage, table: pd.DataFrame) -> StageOutcome:
    ref = stage.ref
    label = label_of(ref)
    values = numeric_values(table, ref)
    missing = np.isnan(values)
    grades = np.full(len(values), stage.else_grade, dtype=object)
    band_of = np.full(len(values), -1, dtype=np.int64)
    decided = np.zeros(len(values), bool)
    for i, band in enumerate(stage.bands):
        hit = ((values >= band.min) if stage.inclusive else (values > band.min)) & ~decided
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
    return _outcome(grades, reasons, missing, ref, table.index)


def _rank_order(values: np.ndarray, codes: pd.Index) -> np.ndarray:
    """Positions sorted by value descending, then customer code ascending; missing values last."""
    key = np.where(np.isnan(values), np.inf, -values)
    return np.lexsort((codes.astype(str).to_numpy(), key))


def apply_quantile(stage: QuantileStage, table: pd.DataFrame) -> StageOutcome:
    ref = stage.ref
    label = label_of(ref)
    values = numeric_values(table, ref)
    missing = np.isnan(values)
    n = int((~missing).sum())
    order = _rank_order(values, table.index)
    rank = np.empty(len(values), dtype=np.int64)
    rank[order] = np.arange(1, len(values) + 1)
    if stage.by == "percent":
        cutoffs = [min(n, math.ceil(round(n * b.top, 9))) for b in stage.bands]
        names = [f"前 {format_ratio(b.top)}" for b in stage.bands]
    else:
        cutoffs = [min(n, int(b.top)) for b in stage.bands]
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
    return _outcome(grades, reasons, missing, ref, table.index)


def apply_pareto(stage: ParetoStage, table: pd.DataFrame) -> StageOutcome:
    """Customer i (by value desc, code asc) is in the first band whose share exceeds the cumulative
    share *before* it: the customer that crosses 70% is still inside the 70% band."""
    ref = stage.ref
    label = label_of(ref)
    values = numeric_values(table, ref)
    missing = np.isnan(values)
    order = _rank_order(values, table.index)
    contrib = np.where(missing, 0.0, np.clip(values, 0.0, None))[order]
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
    return _outcome(grades, reasons, missing, ref, table.index)


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
        values = numeric_values(table, ind.ref)
        pts = indicator_points(ind, values)
        total += pts * ind.weight
        label = label_of(ind.ref)
        for j in np.flatnonzero(np.isnan(values)).tolist():
            missing[j].append(label)
        weight = "" if ind.weight == 1 else f"×{ind.weight:g}"
        for i, (v, p) in enumerate(zip(values.tolist(), pts.tolist())):
            parts[i].append(f"{label} {format_value(ind.ref, v)} 得 {p:.4g} 分{weight}")
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
    return StageOutcome(_series(grades, idx), _series(reasons, idx),
                        _series(["、".join(m) for m in missing], idx), _series(total, idx, float))


def apply_grid(stage: GridStage, table: pd.DataFrame) -> StageOutcome:
    n = len(table)
    codes: list[list[str]] = [[] for _ in range(n)]
    parts: list[list[str]] = [[] for _ in range(n)]
    missing: list[list[str]] = [[] for _ in range(n)]
    undecided = np.zeros(n, bool)
    score: pd.Series | None = None
    for axis in stage.axes:
        if axis.rule is not None:
            sub = ASSIGNERS[type(axis.rule)](axis.rule, table)
            levels = sub.grade.tolist()
            texts = sub.reason.tolist()
            for i, m in enumerate(sub.missing.tolist()):
                if m:
                    missing[i].append(m)
            if sub.score is not None:
                score = sub.score
        else:
            assert axis.column is not None and axis.map is not None and axis.else_grade is not None
            raw = column_values(table, f"col:{axis.column}").tolist()
            levels, texts = [], []
            for v in raw:
                text = "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v).strip()
                text = text[:-2] if text.endswith(".0") and text[:-2].isdigit() else text
                level = axis.map.get(text, axis.else_grade)
                levels.append(level)
                texts.append(f"{axis.column} = {text or '空'} → {level}")
        for i in range(n):
            level = levels[i]
            if isinstance(level, float) and math.isnan(level):
                undecided[i] = True
                parts[i].append(f"{axis.name}：{texts[i]}")
                continue
            codes[i].append(str(level))
            parts[i].append(f"{axis.name}：{texts[i]}")
    grades = np.array([stage.separator.join(c) for c in codes], dtype=object)
    grades[undecided] = np.nan
    reasons = [f"{stage.name} {'' if u else g}（{'；'.join(p)}）" if not u else f"{stage.name}（{'；'.join(p)}）"
               for g, p, u in zip(grades.tolist(), parts, undecided.tolist())]
    idx = table.index
    return StageOutcome(_series(grades, idx), _series(reasons, idx), _series(["、".join(m) for m in missing], idx),
                        score)


ASSIGNERS: dict[type, Callable[[Any, pd.DataFrame], StageOutcome]] = {
    ThresholdStage: apply_thresholds,
    QuantileStage: apply_quantile,
    ParetoStage: apply_pareto,
    ScoreStage: apply_score,
    GridStage: apply_grid,
}
