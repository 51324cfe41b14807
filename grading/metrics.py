"""Stage 3, metrics: per-customer numbers over the configured period.

The window is (as_of - months, as_of]; nothing reads today's clock.
Lines after as_of are ignored; lines before the window count only for
first order date and tenure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .config_model import Config

ATTRIBUTES = ("customer_name", "salesperson", "department", "region", "category")


@dataclass(frozen=True)
class MetricsResult:
    """Per-customer frame (index customer_code) and counts of lines by window position."""

    table: pd.DataFrame
    lines_in_window: int
    lines_before: int
    lines_after: int


def compute_metrics(config: Config, sales: pd.DataFrame, receivables: pd.DataFrame | None = None,
                    customers: pd.DataFrame | None = None) -> MetricsResult:
    period = config.period
    as_of = np.datetime64(period.as_of, "s") + np.timedelta64(1, "D") - np.timedelta64(1, "s")
    start = np.datetime64(period.start, "s")
    amount_col = "amount" if config.metrics.amount_basis == "含税" else "amount_excl_tax"

    dates = sales["date"].to_numpy(dtype="datetime64[s]") if len(sales) else np.array([], "datetime64[s]")
    upto = dates <= as_of
    before = dates < start
    hist = sales.loc[upto]
    win = sales.loc[upto & ~before].copy()
    amount = win[amount_col].astype(float)
    win["_amt"] = amount
    win["_pos"] = amount.where(amount > 0, 0.0)
    win["_neg"] = (-amount).where(amount < 0, 0.0)
    win["_month"] = win["date"].dt.to_period("M")
    g = win.groupby("customer_code", sort=True)

    table = pd.DataFrame({
        "net_sales": g["_amt"].sum(),
        "gross_sales": g["_pos"].sum(),
        "returns": g["_neg"].sum(),
        "line_count": g.size(),
    })
    positive = win.loc[win["_amt"] > 0]
    gp = positive.groupby("customer_code")
    if "doc_no" in win and win["doc_no"].ne("").any():
        table["order_count"] = gp["doc_no"].nunique()
    else:
        table["order_count"] = gp["date"].nunique()
    table["active_months"] = gp["_month"].nunique()
    table["last_order_date"] = gp["date"].max()

    first = hist.groupby("customer_code")["date"].min()
    all_codes = table.index.union(first.index)
    table = table.reindex(all_codes)
    for col in ("net_sales", "gross_sales", "returns", "line_count", "order_count", "active_months"):
        table[col] = table[col].fillna(0)
    for col in ("line_count", "order_count", "active_months"):
        table[col] = table[col].astype("int64")
    table["first_order_date"] = first.reindex(all_codes)
    last_any = hist.loc[hist[amount_col] > 0].groupby("customer_code")["date"].max()
    table["last_order_date"] = last_any.reindex(all_codes)
    table["avg_order_value"] = table["net_sales"] / table["order_count"].replace(0, np.nan)

    as_of_ts = pd.Timestamp(period.as_of)
    table["recency_days"] = (as_of_ts - table["last_order_date"].dt.normalize()).dt.days
    table["tenure_months"] = _months_between(table["first_order_date"], as_of_ts)

    if "cost" in win and win["cost"].notna().any():
        base_col = "amount_excl_tax" if "amount_excl_tax" in win else amount_col
        costed = win.loc[win["cost"].notna()]
        profit = (costed[base_col] - costed["cost"]).groupby(costed["customer_code"]).sum()
        revenue = costed[base_col].groupby(costed["customer_code"]).sum()
        table["gross_profit"] = profit.reindex(all_codes)
        table["margin"] = (profit / revenue.where(revenue != 0)).reindex(all_codes)
    else:
        table["gross_profit"] = np.nan
        table["margin"] = np.nan

    for attr in ("customer_name", "salesperson", "department"):
        if attr in hist:
            latest = hist.loc[hist[attr].ne("")].sort_values("date", kind="stable")
            table[attr] = latest.groupby("customer_code")[attr].last().reindex(all_codes)

    if receivables is not None and len(receivables):
        table = _add_receivables(table, receivables, config)
    else:
        for col in ("opening", "billed", "received", "closing", "collection_rate", "overdue_days"):
            table[col] = np.nan

    if customers is not None and len(customers):
        master = customers.drop_duplicates("customer_code", keep="last").set_index("customer_code")
        for attr in ATTRIBUTES:
            if attr in master:
                known = master[attr].replace("", np.nan).reindex(table.index)
                table[attr] = known.combine_first(table[attr]) if attr in table else known
        for col in master.columns:
            if col.startswith("col:"):
                table[col] = master[col].reindex(table.index)

    for attr in ATTRIBUTES:
        if attr not in table:
            table[attr] = ""
        table[attr] = table[attr].fillna("").astype(str)
    table.index.name = "customer_code"
    table = table.sort_index()
    return MetricsResult(table, len(win), int((upto & before).sum()), int((~upto).sum()))


def _add_receivables(table: pd.DataFrame, rec: pd.DataFrame, config: Config) -> pd.DataFrame:
    cols = [c for c in ("opening", "billed", "received", "closing") if c in rec]
    grouped = rec.groupby("customer_code")
    sums = grouped[cols].sum(min_count=1)
    if "overdue_days" in rec:
        sums["overdue_days"] = grouped["overdue_days"].max()
    names = rec.loc[rec.get("customer_name", pd.Series("", index=rec.index)).ne("")] \
        if "customer_name" in rec else None
    index = table.index.union(sums.index)
    table = table.reindex(index)
    for col in ("net_sales", "gross_sales", "returns"):
        table[col] = table[col].fillna(0.0)
    for col in ("line_count", "order_count", "active_months"):
        table[col] = table[col].fillna(0).astype("int64")
    for col in ("opening", "billed", "received", "closing", "overdue_days"):
        table[col] = sums[col].reindex(index) if col in sums else np.nan
    if config.metrics.collection_rate == "收回/应收":
        denominator = table["billed"]
    else:
        denominator = table["opening"].fillna(0) + table["billed"].fillna(0)
    table["collection_rate"] = table["received"] / denominator.where(denominator > 0)
    if names is not None:
        rec_names = names.groupby("customer_code")["customer_name"].last().reindex(index)
        current = table["customer_name"] if "customer_name" in table else pd.Series(np.nan, index=index)
        table["customer_name"] = current.replace("", np.nan).combine_first(rec_names)
    return table


def _months_between(first: pd.Series, as_of: pd.Timestamp) -> pd.Series:
    valid = first.notna()
    out = pd.Series(np.nan, index=first.index)
    f = first[valid]
    months = (as_of.year - f.dt.year) * 12 + (as_of.month - f.dt.month) - (f.dt.day > as_of.day).astype(int)
    out[valid] = months.clip(lower=0)
    return out
