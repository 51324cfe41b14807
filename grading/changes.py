"""Compare this period's grades with the last stored period: 上期等级 and 变动
per customer, the list of changes (incl. customers that left), the migration
matrix, and the optional stability rule (a downgrade takes effect only after
N consecutive periods below the bar; upgrades at once)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .config_model import Config
from .grade import grade_rank
from .history import PreviousPeriod

UP, DOWN, SAME, NEW, GONE = "升级", "降级", "不变", "新增", "流失"


@dataclass(frozen=True)
class Comparison:
    """Changes against the previous period (empty frames when there is none)."""

    previous: str | None
    changes: pd.DataFrame  # every customer whose grade changed, new or gone
    matrix: pd.DataFrame   # rows: last period's grade (+ 新增); columns: this period's grade (+ 流失)


def apply_stability(config: Config, graded: pd.DataFrame, prev: PreviousPeriod | None) -> pd.DataFrame:
    """Keep last period's grade for a downgrade until it has lasted `downgrade_after` periods."""
    out = graded.copy()
    out["rule_grade"] = out["grade"]
    out["below_streak"] = 0
    n = config.history.downgrade_after
    if prev is None or n is None:
        return out
    rank = grade_rank(config, [*out["grade"], *prev.table["grade"]])
    grades = out["grade"].tolist()
    reasons = out["reason"].tolist()
    streaks = [0] * len(out)
    pinned = out["pinned"].tolist()
    last_grade: dict[str, str] = dict(zip(prev.table.index, prev.table["grade"].astype(str)))
    last_streak: dict[str, int] = dict(zip(prev.table.index, prev.table["below_streak"].fillna(0).astype(int)))
    for i, code in enumerate(out.index):
        if code not in last_grade or pinned[i]:
            continue
        last = last_grade[code]
        if rank.get(grades[i], 0) <= rank.get(last, 0):
            continue
        streak = last_streak[code] + 1
        if streak >= n:
            reasons[i] += f"；等级稳定：连续 {streak} 期低于 {last}，降级生效 → {grades[i]}"
        else:
            reasons[i] += f"；等级稳定：规则结果 {grades[i]} 低于上期 {last}（连续 {streak}/{n} 期），暂保持 {last}"
            grades[i] = last
            streaks[i] = streak
    out["grade"] = grades
    out["reason"] = reasons
    out["below_streak"] = streaks
    return out


def compare(config: Config, graded: pd.DataFrame, prev: PreviousPeriod | None) -> tuple[pd.DataFrame, Comparison]:
    """Add prev_grade and change columns; build the change list and the migration matrix."""
    out = graded.copy()
    if prev is None:
        out["prev_grade"] = ""
        out["change"] = ""
        return out, Comparison(None, pd.DataFrame(), pd.DataFrame())
    last = prev.table
    rank = grade_rank(config, [*out["grade"], *last["grade"]])
    prev_grade = last["grade"].reindex(out.index)
    out["prev_grade"] = prev_grade.fillna("").astype(str)

    def kind(now: str, before: str) -> str:
        if not before:
            return NEW
        if now == before:
            return SAME
        return UP if rank[now] < rank[before] else DOWN

    out["change"] = [kind(g, p) for g, p in zip(out["grade"], out["prev_grade"])]

    moved = out[out["change"] != SAME]
    changes = pd.DataFrame({
        "customer_code": moved.index.astype(str),
        "customer_name": moved["customer_name"].to_numpy(),
        "prev_grade": moved["prev_grade"].to_numpy(),
        "grade": moved["grade"].to_numpy(),
        "change": moved["change"].to_numpy(),
        "prev_sales": last["net_sales"].reindex(moved.index).to_numpy(dtype=float),
        "sales": moved["net_sales"].to_numpy(dtype=float),
        "prev_score": last["score"].reindex(moved.index).to_numpy(dtype=float),
        "score": moved["score"].to_numpy(dtype=float),
        "reason": moved["reason"].to_numpy(),
    })
    gone_codes = last.index.difference(out.index)
    gone = pd.DataFrame({
        "customer_code": gone_codes.astype(str),
        "customer_name": last["customer_name"].reindex(gone_codes).to_numpy(),
        "prev_grade": last["grade"].reindex(gone_codes).to_numpy(),
        "grade": "", "change": GONE,
        "prev_sales": last["net_sales"].reindex(gone_codes).to_numpy(dtype=float),
        "sales": np.nan,
        "prev_score": last["score"].reindex(gone_codes).to_numpy(dtype=float),
        "score": np.nan, "reason": f"本期（{config.period.label}）没有该客户的数据",
    })
    changes = pd.concat([changes, gone], ignore_index=True) if len(gone) else changes
    changes["sales_change"] = changes["sales"].fillna(0) - changes["prev_sales"].fillna(0)
    order = {DOWN: 0, UP: 1, NEW: 2, GONE: 3}
    changes = changes.assign(_o=changes["change"].map(order)).sort_values(
        ["_o", "customer_code"], kind="stable").drop(columns="_o").reset_index(drop=True)

    rows = sorted(set(last["grade"]), key=lambda g: rank[g]) + [NEW]
    cols = sorted(set(out["grade"]), key=lambda g: rank[g]) + [GONE]
    counts: Counter[tuple[str, str]] = Counter(
        (before or NEW, now) for now, before in zip(out["grade"].astype(str), out["prev_grade"]))
    counts.update((str(g), GONE) for g in last["grade"].reindex(gone_codes))
    matrix = pd.DataFrame([[counts[(r, c)] for c in cols] for r in rows], index=rows, columns=cols, dtype=np.int64)
    return out, Comparison(prev.period, changes, matrix)
