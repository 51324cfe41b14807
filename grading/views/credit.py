"""应收与信用: aging buckets, overdue amount and collection rate per grade with the
credit terms; the hand-off list of customers whose credit terms change; the optional
credit limit per customer against the current balance."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..config_model import Config
from ..fields import AGING_BUCKETS
from ..fill_plan import Block, _col, grade_colours, grade_summary

SHEET_CREDIT = "应收与信用"
BUCKETS = [f for f, _, _ in AGING_BUCKETS]


def aging_basis(graded: pd.DataFrame) -> str:
    """Which numbers the aging and the overdue amount come from, said on the sheet."""
    if any(c in graded and graded[c].notna().any() for c in BUCKETS):
        aging = "账龄：来自应收导出的账龄分段列"
    elif "aging_days" in graded and graded["aging_days"].notna().any():
        aging = "账龄：按应收导出的账龄天数把期末余额归入一个账龄段"
    elif "overdue_days" in graded and graded["overdue_days"].notna().any():
        aging = "账龄：导出没有账龄列，按逾期天数把期末余额归入一个账龄段"
    else:
        return "账龄：本期没有账龄数据"
    if "overdue_amount" in graded and graded["overdue_amount"].notna().any():
        return f"{aging}；逾期金额：来自导出的逾期金额列"
    if "overdue_days" in graded and graded["overdue_days"].notna().any():
        return f"{aging}；逾期金额：逾期天数 > 0 的客户的期末余额"
    return aging


def aging(graded: pd.DataFrame) -> pd.DataFrame:
    """Per customer the balance by age bucket (columns BUCKETS), NaN where nothing is known."""
    n = len(graded)
    out = {c: np.full(n, np.nan) for c in BUCKETS}  # filled as arrays, one frame at the end
    present = [c for c in BUCKETS if c in graded]
    by_columns = graded[present].notna().any(axis=1).to_numpy(dtype=bool) if present else np.zeros(n, bool)
    for c in BUCKETS:
        if c in graded:
            out[c][by_columns] = graded[c].astype(float).fillna(0.0).to_numpy(dtype=float)[by_columns]
        else:
            out[c][by_columns] = 0.0
    days_column = "aging_days" if "aging_days" in graded and graded["aging_days"].notna().any() else "overdue_days"
    if days_column in graded and "closing" in graded:
        days = pd.to_numeric(graded[days_column], errors="coerce").to_numpy(dtype=float)
        closing = pd.to_numeric(graded["closing"], errors="coerce").to_numpy(dtype=float)
        derive = ~by_columns & ~np.isnan(days) & ~np.isnan(closing)
        lower = -np.inf
        for field, _, upper in AGING_BUCKETS:
            inside = derive & (days > lower) & (days <= upper)
            out[field][derive] = np.where(inside[derive], closing[derive], 0.0)
            lower = upper
    return pd.DataFrame(out, index=graded.index, columns=list(BUCKETS), dtype=float)


def overdue_amount(graded: pd.DataFrame) -> pd.Series:
    """The export's 逾期金额 where given; otherwise the closing balance of customers overdue (> 0 days)."""
    closing = pd.to_numeric(graded.get("closing", pd.Series(np.nan, index=graded.index)), errors="coerce")
    days = pd.to_numeric(graded.get("overdue_days", pd.Series(np.nan, index=graded.index)), errors="coerce")
    derived = pd.Series(np.where(days > 0, closing, np.where(days.notna(), 0.0, np.nan)), index=graded.index)
    if "overdue_amount" in graded:
        return pd.to_numeric(graded["overdue_amount"], errors="coerce").combine_first(derived)
    return derived


def credit_limits(config: Config, graded: pd.DataFrame) -> pd.Series:
    """Per customer: monthly average sales × months_of_sales, capped; NaN where the grade has no rule."""
    monthly = graded["net_sales"].astype(float) / config.period.months
    out = pd.Series(np.nan, index=graded.index, dtype=float)
    grades = graded["grade"].astype(str)
    for grade in set(grades.tolist()):
        rule = config.policy(grade).credit_limit
        if rule is None:
            continue
        sel = grades == grade
        limit = (monthly[sel].clip(lower=0) * rule.months_of_sales).round(2)
        out[sel] = limit.clip(upper=rule.cap) if rule.cap is not None else limit
    return out


def term_changes(config: Config, graded: pd.DataFrame) -> pd.DataFrame:
    """Customers whose grade's credit terms differ from last period's grade's (new customers excluded)."""
    cols = ["code", "name", "prev_grade", "grade", "old", "new", "reason"]
    if "prev_grade" not in graded:
        return pd.DataFrame(columns=cols)
    known: dict[str, str] = {}

    def terms(grade: str) -> str:
        if grade not in known:
            known[grade] = config.policy(grade).credit_terms
        return known[grade]

    prev_all, now_all = graded["prev_grade"].fillna("").astype(str), graded["grade"].astype(str)
    moved = ((prev_all != "") & (prev_all != now_all)).to_numpy()
    rows = []
    for code, prev, now, name, why in zip(graded.index[moved].tolist(), prev_all[moved].tolist(),
                                          now_all[moved].tolist(), graded["customer_name"][moved].tolist(),
                                          graded["reason"][moved].tolist()):
        old, new = terms(prev), terms(now)
        if old != new:
            rows.append({"code": str(code), "name": name, "prev_grade": prev, "grade": now,
                         "old": old or "（未设置）", "new": new or "（未设置）",
                         "reason": f"等级 {prev} → {now}：{why}"})
    return pd.DataFrame(rows, columns=cols)


def credit_blocks(config: Config, graded: pd.DataFrame) -> tuple[Block, ...]:
    buckets = aging(graded)
    overdue = overdue_amount(graded)
    closing = pd.to_numeric(graded.get("closing", pd.Series(np.nan, index=graded.index)), errors="coerce")
    s = grade_summary(config, graded)
    codes = [*s["grade"]] if len(s) else []
    rows: dict[str, list[object]] = {k: [] for k in ("terms", "customers", "closing", "overdue", "share", "rate",
                                                      *BUCKETS)}
    received = pd.to_numeric(graded.get("received", pd.Series(np.nan, index=graded.index)), errors="coerce")
    base = _collection_base(config, graded)
    for selector in [graded["grade"].astype(str) == g for g in codes] + [pd.Series(True, index=graded.index)]:
        bal = float(closing[selector].sum())
        over = float(overdue[selector].sum())
        denominator = float(base[selector].sum())
        rows["customers"].append(int(selector.sum()))
        rows["closing"].append(round(bal, 2))
        rows["overdue"].append(round(over, 2))
        rows["share"].append(over / bal if bal > 0 else None)
        rows["rate"].append(float(received[selector].sum()) / denominator if denominator > 0 else None)
        for c in BUCKETS:
            rows[c].append(round(float(buckets.loc[selector, c].sum()), 2))
    rows["terms"] = [*(config.policy(g).credit_terms for g in codes), ""]
    by_grade = Block(("逾期占比",), (
        _col("等级", [*codes, "合计"]),
        _col("信用政策", rows["terms"], "账期"),
        _col("客户数", rows["customers"]),
        _col("期末余额", rows["closing"]),
        _col("逾期金额", rows["overdue"]),
        _col("逾期占比", rows["share"]),
        _col("回款率", rows["rate"]),
        *(_col(label, rows[f]) for f, label, _ in AGING_BUCKETS),
    ), len(codes) + 1, colours=grade_colours(config, graded), optional=True)
    t = term_changes(config, graded)
    handoff = Block(("新信用政策",), (
        _col("客户编码", t["code"]),
        _col("客户名称", t["name"]),
        _col("上期等级", t["prev_grade"]),
        _col("本期等级", t["grade"]),
        _col("原信用政策", t["old"]),
        _col("新信用政策", t["new"]),
        _col("原因", t["reason"]),
    ), len(t), optional=True)
    limits = credit_limits(config, graded)
    use = (closing / limits.where(limits > 0))
    per_customer = Block(("额度占用率",), (
        _col("客户编码", graded.index.astype(str)),
        _col("客户名称", graded["customer_name"]),
        _col("等级", graded["grade"]),
        _col("信用政策", graded["credit_terms"], "账期"),
        _col("月均净销售额", (graded["net_sales"].astype(float) / config.period.months).round(2)),
        _col("信用额度", limits),
        _col("期末余额", closing),
        _col("额度占用率", use),
        _col("超出额度", (closing - limits).where(closing > limits)),
        _col("逾期金额", overdue),
        *(_col(label, buckets[f]) for f, label, _ in AGING_BUCKETS),
    ), len(graded), colours=grade_colours(config, graded), optional=True)
    return by_grade, handoff, per_customer


def _collection_base(config: Config, graded: pd.DataFrame) -> pd.Series:
    def num(col: str) -> pd.Series:
        return pd.to_numeric(graded.get(col, pd.Series(np.nan, index=graded.index)), errors="coerce")

    if config.metrics.collection_rate == "收回/应收":
        return num("billed").fillna(0.0).where(num("received").notna(), 0.0)
    return (num("opening").fillna(0.0) + num("billed").fillna(0.0)).where(num("received").notna(), 0.0)
