"""Stage type `rfm`: the eight RFM segments used by Chinese sales teams.

R (recency, 未下单天数: fewer days is better), F (frequency, 订单数) and M
(monetary, 净销售额) are each high or low against their mean, median or a
configured bound; the three give one of eight segments (重要价值客户 …
一般挽留客户), which are the grades and carry the policies. `scores: true`
also gives 1–5 R/F/M scores by quintile (rank by value, ties by customer code).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from .base import (AssigningRule, AssigningSpec, Path, StageOutcome, comparable, format_value, label_of,
                   numeric_values, rank_order, series)
from .spec import Amount, MetricName, Model

# (R high, F high, M high) → segment, best first
SEGMENTS: tuple[tuple[tuple[bool, bool, bool], str], ...] = (
    ((True, True, True), "重要价值客户"),
    ((True, False, True), "重要发展客户"),
    ((False, True, True), "重要保持客户"),
    ((False, False, True), "重要挽留客户"),
    ((True, True, False), "一般价值客户"),
    ((True, False, False), "一般发展客户"),
    ((False, True, False), "一般保持客户"),
    ((False, False, False), "一般挽留客户"),
)
SEGMENT_OF = dict(SEGMENTS)


class RfmAxis(Model):
    """One of R, F, M: which metric, and the split between high and low."""

    metric: MetricName
    split: Literal["mean", "median"] | Amount = "mean"


class RfmStage(AssigningSpec):
    """RFM: R (fewer days since the last order is high), F and M (at or above the split is high)."""

    type: Literal["rfm"]
    name: str = "RFM分群"
    recency: RfmAxis = RfmAxis(metric="recency_days", split="mean")
    frequency: RfmAxis = RfmAxis(metric="order_count", split="mean")
    monetary: RfmAxis = RfmAxis(metric="net_sales", split="mean")
    scores: bool = Field(default=False, description="同时给出 1–5 的 R/F/M 分（按五分位）")

    @property
    def rule(self) -> RfmRule:
        return RFM

    def axes(self) -> tuple[tuple[str, RfmAxis], ...]:
        return (("R", self.recency), ("F", self.frequency), ("M", self.monetary))


_SPLIT_NAME = {"mean": "均值", "median": "中位数"}


def quintile_scores(values: np.ndarray, codes: pd.Index, higher_is_better: bool) -> np.ndarray:
    """1–5 by quintile of rank (5 = best fifth); NaN for missing values."""
    present = ~np.isnan(values)
    n = int(present.sum())
    order = rank_order(values if higher_is_better else -values, codes)
    rank = np.empty(len(values))
    rank[order] = np.arange(len(values))
    out = np.where(present, 5 - np.floor(5 * rank / max(n, 1)), np.nan)
    return out


class RfmRule(AssigningRule[RfmStage]):
    @staticmethod
    def bound(axis: RfmAxis, values: np.ndarray) -> float:
        present = values[~np.isnan(values)]
        if axis.split == "mean":
            return float(np.round(present.mean(), 2)) if len(present) else float("nan")
        if axis.split == "median":
            return float(np.median(present)) if len(present) else float("nan")
        return float(axis.split)

    def apply(self, stage: RfmStage, table: pd.DataFrame) -> StageOutcome:
        n = len(table)
        highs: list[np.ndarray] = []
        texts: list[list[str]] = [[] for _ in range(n)]
        missing: list[list[str]] = [[] for _ in range(n)]
        score_parts: list[list[str]] = [[] for _ in range(n)]
        unknown = np.zeros(n, bool)
        for letter, axis in stage.axes():
            ref = axis.metric
            values = numeric_values(table, ref)
            bound = self.bound(axis, values)
            absent = np.isnan(values)
            exact, edge = comparable(ref, values), comparable(ref, bound)
            with np.errstate(invalid="ignore"):
                high = (exact <= edge) if letter == "R" else (exact >= edge)
            highs.append(high)
            unknown |= absent
            where = _SPLIT_NAME.get(str(axis.split), "界值")
            shown_bound = format_value(ref, bound)
            if stage.scores:
                pts = quintile_scores(values, table.index, higher_is_better=letter != "R")
            for i in range(n):
                if absent[i]:
                    texts[i].append(f"{letter} {label_of(ref)} 为空")
                    missing[i].append(label_of(ref))
                    continue
                op = ("≤" if high[i] else ">") if letter == "R" else ("≥" if high[i] else "<")
                texts[i].append(f"{letter} {label_of(ref)} {format_value(ref, float(values[i]))} {op} "
                                f"{where} {shown_bound} → {'高' if high[i] else '低'}")
                if stage.scores:
                    score_parts[i].append(f"{letter}{int(pts[i])}")
        grades = np.array([SEGMENT_OF[(bool(r), bool(f), bool(m))] for r, f, m in zip(*highs)], dtype=object)
        grades[unknown] = np.nan
        reasons = []
        for i in range(n):
            scores = f"；RFM 分 {' '.join(score_parts[i])}" if score_parts[i] else ""
            head = f"{stage.name} {grades[i]}" if not unknown[i] else stage.name
            reasons.append(f"{head}（{'；'.join(texts[i])}{scores}）")
        idx = table.index
        return StageOutcome(series(grades, idx), series(reasons, idx), series(["、".join(m) for m in missing], idx))

    def describe(self, stage: RfmStage) -> list[tuple[str, str]]:
        parts = []
        for letter, axis in stage.axes():
            where = _SPLIT_NAME.get(str(axis.split)) or format_value(axis.metric, float(axis.split))
            rel = "不高于" if letter == "R" else "不低于"
            parts.append(f"{letter} = {label_of(axis.metric)}（{rel}{where}为高）")
        segments = "，".join(f"{'高' if r else '低'}{'高' if f else '低'}{'高' if m else '低'} → {name}"
                            for (r, f, m), name in SEGMENTS)
        scores = "；另按五分位给出 1–5 的 R/F/M 分" if stage.scores else ""
        return [("RFM 分群", f"{'；'.join(parts)}；R/F/M {segments}{scores}")]

    def levels(self, stage: RfmStage) -> list[str]:
        return [name for _, name in SEGMENTS]

    def named_grades(self, stage: RfmStage) -> list[tuple[Path, str]]:
        return [((), name) for _, name in SEGMENTS]

    def inputs(self, stage: RfmStage) -> list[str]:
        return [axis.metric for _, axis in stage.axes()]


RFM = RfmRule()
