"""总览: the first sheet. Per grade customers/sales/share, this period's change counts,
the biggest movers and a watch list; every line names the customer and the reason."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd

from ..changes import DOWN, GONE, NEW, SAME, UP, Comparison
from ..config_model import Config
from ..fill_plan import Block, _col, grade_colours, grade_summary, ranked_by_sales
from ..units import format_amount, format_ratio

SHEET_OVERVIEW = "总览"
WATCH_ADJUSTED, WATCH_NEAR, WATCH_QUIET, WATCH_PIN = "大客户被规则降级", "接近上一等级", "大客户未下单", "人工指定将到期"


def large_customers(graded: pd.DataFrame, top: float, ranked: pd.DataFrame | None = None) -> pd.Index:
    """The top `top` share of customers by net sales (count = ⌈n·top⌉; ties by customer code); `ranked`:
    ranked_by_sales(graded), when the caller has it."""
    if not len(graded):
        return graded.index
    ranked = ranked if ranked is not None else ranked_by_sales(graded)
    return ranked.index[: math.ceil(len(ranked) * top)]


def watch_list(config: Config, graded: pd.DataFrame, ranked: pd.DataFrame | None = None) -> pd.DataFrame:
    """关注清单: kind, code, name, grade, net sales, reason — one row per customer and reason (`ranked`:
    ranked_by_sales(graded), when the caller has it)."""
    w = config.views.watch
    as_of = config.period.as_of
    large_mask = graded.index.isin(large_customers(graded, w.large_top, ranked))  # by position from here on
    picks: list[tuple[str, list[int], list[str]]] = []  # per kind: the rows (positions) and their reasons

    large_note = f"净销售额排名前 {format_ratio(w.large_top)}"
    if "adjusted_down" in graded:
        moved = graded["adjusted_down"].to_numpy(dtype=object)
        rows = [i for i in np.flatnonzero(large_mask).tolist() if moved[i]]
        picks.append((WATCH_ADJUSTED, rows, [f"{large_note}；{moved[i]}" for i in rows]))
    if "next_gap" in graded and "next_gap_ratio" in graded:
        ratio = pd.to_numeric(graded["next_gap_ratio"], errors="coerce")
        near = ratio.le(w.near_boundary) & graded["next_gap"].astype(str).ne("")
        rows = np.flatnonzero(near.to_numpy()).tolist()
        gaps = graded["next_gap"].astype(str).to_numpy(dtype=object)[rows].tolist()
        line = format_ratio(w.near_boundary)
        picks.append((WATCH_NEAR, rows, [f"距上一等级 {gap}（差距为分界值的 {format_ratio(r)}，关注线 {line}）"
                                         for gap, r in zip(gaps, ratio[near].astype(float).tolist())]))
    recency = pd.to_numeric(graded["recency_days"], errors="coerce")
    quiet = ((recency > w.quiet_days) & large_mask).to_numpy()
    rows, reasons = np.flatnonzero(quiet).tolist(), []
    for days, last in zip(recency[quiet].astype(float).tolist(), pd.to_datetime(graded["last_order_date"])[quiet].tolist()):
        when = f"，最近下单 {last:%Y-%m-%d}" if isinstance(last, pd.Timestamp) and not pd.isna(last) else ""
        reasons.append(f"{large_note}；{days:g} 天未下单（超过 {w.quiet_days} 天）{when}")
    picks.append((WATCH_QUIET, rows, reasons))
    grades = graded["grade"].astype(str).to_numpy(dtype=object)
    if "pin_until" in graded:
        horizon = as_of + dt.timedelta(days=w.pin_expiry_days)
        rule = graded["rule_grade"].astype(str).to_numpy(dtype=object) if "rule_grade" in graded else None
        rows, reasons = [], []
        pin_until = graded["pin_until"].to_numpy(dtype=object)
        for i in np.flatnonzero(pd.notna(pin_until) & (pin_until != "")).tolist():  # ISO text (issue 13) or a date
            raw = pin_until[i]
            until = dt.date.fromisoformat(raw) if isinstance(raw, str) else raw
            if isinstance(until, dt.date) and as_of <= until <= horizon:
                after = f"，到期后按规则为 {rule[i]}" if rule is not None else "，到期后按规则分级"
                rows.append(i)
                reasons.append(f"人工指定 {grades[i]} 将于 {until:%Y-%m-%d} 到期（还有 {(until - as_of).days} 天）{after}")
        picks.append((WATCH_PIN, rows, reasons))
    at = [i for _, rows, _ in picks for i in rows]
    if not at:
        return pd.DataFrame(columns=["kind", "code", "name", "grade", "sales", "reason"])
    frame = pd.DataFrame({
        "kind": [kind for kind, rows, _ in picks for _ in rows],
        "code": [str(c) for c in graded.index[at].tolist()],
        "name": graded["customer_name"].astype(str).to_numpy(dtype=object)[at].tolist(),
        "grade": grades[at].tolist(),
        "sales": graded["net_sales"].astype(float).to_numpy()[at].tolist(),
        "reason": [r for _, _, reasons in picks for r in reasons],
    })
    order = {WATCH_ADJUSTED: 0, WATCH_NEAR: 1, WATCH_QUIET: 2, WATCH_PIN: 3}
    frame = frame.assign(_o=frame["kind"].map(order)).sort_values(
        ["_o", "sales", "code"], ascending=[True, False, True], kind="stable")
    return frame.drop(columns="_o").reset_index(drop=True)


def change_counts(graded: pd.DataFrame, comparison: Comparison | None) -> list[tuple[str, int | None]]:
    """升级/降级/新增/流失/不变 counts against the previous stored period."""
    if comparison is None or comparison.previous is None:
        return [("（无上期数据）", None)]
    c = comparison.changes
    counted = c["change"].value_counts() if len(c) else pd.Series(dtype=int)
    same = int((graded["change"] == SAME).sum()) if "change" in graded else 0
    out: list[tuple[str, int | None]] = [(k, int(counted.get(k, 0))) for k in (UP, DOWN, NEW, GONE)]
    return [*out, (SAME, same)]


def biggest_movers(comparison: Comparison | None, top: int) -> pd.DataFrame:
    """Changed customers (up, down, new, gone) with the largest absolute change of net sales."""
    if comparison is None or not len(comparison.changes):
        return pd.DataFrame(columns=["customer_code", "customer_name", "prev_grade", "grade", "change",
                                     "sales_change", "note"])
    c = comparison.changes.copy()
    c["_abs"] = c["sales_change"].abs()
    c = c.sort_values(["_abs", "customer_code"], ascending=[False, True], kind="stable").head(top)
    c["note"] = [f"{ch} {p or '—'} → {g or '—'}，净销售额{'增加' if d >= 0 else '减少'} {format_amount(abs(d))}"
                 for ch, p, g, d in zip(c["change"], c["prev_grade"], c["grade"], c["sales_change"])]
    return c.drop(columns="_abs").reset_index(drop=True)


def overview_blocks(config: Config, graded: pd.DataFrame, comparison: Comparison | None,
                    ranked: pd.DataFrame | None = None) -> tuple[Block, ...]:
    s = grade_summary(config, graded)
    total_sales = float(s["sales"].sum()) if len(s) else 0.0
    grades = Block(("客户类别", "等级"), (
        _col("等级", [*s["grade"], "合计"]),
        _col("客户类别", [*s["label"], ""], "等级名称"),
        _col("客户数", [*s["customers"], int(s["customers"].sum()) if len(s) else 0]),
        _col("客户占比", [*s["customer_share"], 1.0 if len(graded) else 0.0]),
        _col("净销售额", [*s["sales"], total_sales], "销售额"),
        _col("销售占比", [*s["sales_share"], 1.0 if total_sales else 0.0]),
    ), len(s) + 1, colours=grade_colours(config, graded), optional=True)
    counts = change_counts(graded, comparison)
    changes = Block(("变动类型",), (
        _col("变动类型", [k for k, _ in counts]),
        _col("客户数", [v for _, v in counts]),
    ), len(counts), optional=True)
    m = biggest_movers(comparison, config.views.watch.movers)
    movers = Block(("净销售额变化",), (
        _col("客户编码", m["customer_code"]),
        _col("客户名称", m["customer_name"]),
        _col("上期等级", m["prev_grade"]),
        _col("本期等级", m["grade"]),
        _col("净销售额变化", m["sales_change"].astype(float)),
        _col("说明", m["note"], "原因"),
    ), len(m), optional=True)
    w = watch_list(config, graded, ranked)
    watch = Block(("关注类型",), (
        _col("序号", list(range(1, len(w) + 1))),
        _col("关注类型", w["kind"]),
        _col("客户编码", w["code"]),
        _col("客户名称", w["name"]),
        _col("等级", w["grade"]),
        _col("净销售额", w["sales"].astype(float)),
        _col("原因", w["reason"], "说明"),
    ), len(w), optional=True)
    return grades, changes, movers, watch


