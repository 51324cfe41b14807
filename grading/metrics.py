"""Stage 3, metrics: per-customer numbers over the configured period.

The window is (as_of - months, as_of]; nothing reads today's clock.
Lines after as_of are ignored; lines before the window count only for
first order date and tenure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .config_model import Config
from .fields import AGING_BUCKETS

RECEIVABLE_EXTRAS = ("overdue_amount", *(f for f, _, _ in AGING_BUCKETS))  # summed when the export has them
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

    table, in_window, lines_before, lines_after = _sales_metrics(sales, amount_col, start, as_of)
    as_of_ts = pd.Timestamp(period.as_of)
    table["avg_order_value"] = table["net_sales"] / table["order_count"].replace(0, np.nan)
    table["recency_days"] = (as_of_ts - table["last_order_date"].dt.normalize()).dt.days
    table["tenure_months"] = _months_between(table["first_order_date"], as_of_ts)

    if receivables is not None and len(receivables):
        table = _add_receivables(table, receivables, config)
    else:
        for col in ("opening", "billed", "received", "closing", "collection_rate", "overdue_days"):
            table[col] = np.nan

    if customers is not None and len(customers):
        master = customers.drop_duplicates("customer_code", keep="last").set_index("customer_code")
        master.index = _plain_index(master.index)
        at = master.index.get_indexer(table.index)  # the master's row of each customer (-1: none), looked up once
        for attr in ATTRIBUTES:
            if attr in master:
                table[attr] = _master_first(master[attr], at, table.index, table[attr] if attr in table else None)
        for col in master.columns:
            if col.startswith("col:"):
                table[col] = _aligned(master[col], table.index, at)

    for attr in ATTRIBUTES:
        if attr not in table:
            table[attr] = ""
        table[attr] = table[attr].fillna("").astype(str)
    table.index.name = "customer_code"
    table = table.sort_index()
    return MetricsResult(table, in_window, lines_before, lines_after)


def _plain_index(index: pd.Index) -> pd.Index:
    """The same labels as a plain object index: reindexing by a categorical index compares and recodes
    its categories on every call (pandas), by an object index it only looks the labels up."""
    if not isinstance(index, pd.CategoricalIndex):
        return index
    plain: pd.Index = pd.Index(np.asarray(index, dtype=object), dtype=object, name=index.name)
    return plain


def _codes_of(column: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Integer codes and their labels for a (categorical or text) column: a text column's labels sorted,
    missing values -1 (as astype("category") gives them, without building the categorical)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.cat.codes.to_numpy(dtype=np.int64), pd.Index(column.cat.categories.astype(object))
    codes, labels = pd.factorize(column.to_numpy(dtype=object), sort=True, use_na_sentinel=True)
    return codes.astype(np.int64, copy=False), pd.Index(labels, dtype=object)


def _written(column: pd.Series) -> np.ndarray:
    """column.ne("") as a mask (missing counts as written); a categorical's categories are compared once."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        written = np.append(np.asarray(column.cat.categories, dtype=object) != "", True)  # code -1 → True
        return written[column.cat.codes.to_numpy()]
    return column.ne("").to_numpy(dtype=bool)


def _distinct_per(cid: np.ndarray, other: np.ndarray, k: int) -> np.ndarray:
    """How many distinct `other` values each customer id has."""
    if not len(cid):
        return np.zeros(k, dtype=np.int64)
    width = int(other.max()) + 1
    pairs = pd.unique(cid.astype(np.int64) * width + other.astype(np.int64))  # hashing: no sort needed to count
    return np.bincount(pairs // width, minlength=k)


def _sales_metrics(sales: pd.DataFrame, amount_col: str, start: np.datetime64,
                   as_of: np.datetime64) -> tuple[pd.DataFrame, int, int, int]:
    """Per-customer sales metrics with integer customer ids and numpy reductions (no string hashing)."""
    if not len(sales):
        empty = pd.DataFrame(columns=["net_sales", "gross_sales", "returns", "line_count", "order_count",
                                      "active_months", "first_order_date", "last_order_date", "gross_profit",
                                      "margin", "customer_name", "salesperson", "department"])
        empty.index = pd.Index([], dtype=object, name="customer_code")
        return empty, 0, 0, 0
    cid, labels = _codes_of(sales["customer_code"])
    k = len(labels)
    dates = sales["date"].to_numpy(dtype="datetime64[s]")
    amount = sales[amount_col].to_numpy(dtype=float)
    upto = dates <= as_of
    before = dates < start
    win = upto & ~before
    pos = win & (amount > 0)
    w_cid, w_amt = cid[win], amount[win]

    def total(mask: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        return np.bincount(cid[mask], weights=None if weights is None else weights, minlength=k)

    # money in integer cents (held exactly in float64 up to 2^53 cents): sums are exact, then back to yuan
    w_cents = np.rint(w_amt * 100.0)
    net = np.bincount(w_cid, weights=w_cents, minlength=k) / 100.0
    gross = np.bincount(w_cid, weights=np.where(w_cents > 0, w_cents, 0.0), minlength=k) / 100.0
    returns = np.bincount(w_cid, weights=np.where(w_cents < 0, -w_cents, 0.0), minlength=k) / 100.0
    if "doc_no" in sales and _written(sales["doc_no"])[pos].any():
        doc, _ = _codes_of(sales["doc_no"])
        orders = _distinct_per(cid[pos], doc[pos], k)
    else:
        day = dates.astype("datetime64[D]").astype(np.int64)
        orders = _distinct_per(cid[pos], day[pos] - day[pos].min() if pos.any() else day[pos], k)
    month = dates.astype("datetime64[M]").astype(np.int64)
    months = _distinct_per(cid[pos], month[pos] - month[pos].min() if pos.any() else month[pos], k)

    has_history = np.bincount(cid[upto], minlength=k) > 0
    hist_pos = upto & (amount > 0)

    table = pd.DataFrame({
        "net_sales": net, "gross_sales": gross, "returns": returns,
        "line_count": total(win).astype(np.int64), "order_count": orders.astype(np.int64),
        "active_months": months.astype(np.int64),
        "first_order_date": _extreme(np.minimum, cid[upto], dates[upto], k),
        "last_order_date": _extreme(np.maximum, cid[hist_pos], dates[hist_pos], k),
    })
    if "cost" in sales and sales["cost"].notna().any():
        base = sales["amount_excl_tax"].to_numpy(dtype=float) if "amount_excl_tax" in sales else amount
        cost = sales["cost"].to_numpy(dtype=float)
        costed = win & ~np.isnan(cost)
        base_c, cost_c = np.rint(base[costed] * 100.0), np.rint(cost[costed] * 100.0)
        profit = np.bincount(cid[costed], weights=base_c - cost_c, minlength=k) / 100.0
        revenue = np.bincount(cid[costed], weights=base_c, minlength=k) / 100.0
        has_cost = np.bincount(cid[costed], minlength=k) > 0
        table["gross_profit"] = np.where(has_cost, profit, np.nan)
        table["profit_base"] = np.where(has_cost, revenue, np.nan)  # revenue of the costed lines: margin's base
        with np.errstate(invalid="ignore", divide="ignore"):
            table["margin"] = np.where(has_cost & (revenue != 0), profit / revenue, np.nan)
    else:
        table["gross_profit"] = np.nan
        table["profit_base"] = np.nan
        table["margin"] = np.nan
    attrs = [a for a in ("customer_name", "salesperson", "department", "region") if a in sales]
    rank, row_of = _line_rank(dates, upto)
    for attr in attrs:  # each customer's latest line (by date, then position) that names the attribute
        codes, names = _codes_of(sales[attr])
        texts = names.to_numpy()
        named = np.append(texts != "", False)[codes]  # code -1 (a file without this column): not named
        best = np.full(k, -1, dtype=np.int64)
        sel = upto & named
        np.maximum.at(best, cid[sel], rank[sel])
        values = np.full(k, "", dtype=object)
        found = np.flatnonzero(best >= 0)
        values[found] = texts[codes[row_of(best[found])]]
        table[attr] = values
    table.index = pd.Index(labels, dtype=object, name="customer_code")
    table = table[has_history]
    return table, int(win.sum()), int((upto & before).sum()), int((~upto).sum())


def _aligned(column: pd.Series, target: pd.Index, at: np.ndarray) -> pd.Series:
    """column.reindex(target) for a column with a unique index, given at = column.index.get_indexer(target):
    float and object columns by one take (missing → NaN, as reindex fills them), others by reindex."""
    if len(column) and isinstance(column.dtype, np.dtype) and column.dtype in (np.float64, object):
        values = column.to_numpy()
        out = values[at]
        out[at < 0] = np.nan
        return pd.Series(out, index=target, name=column.name, dtype=values.dtype)
    return column.reindex(target)


def _line_rank(dates: np.ndarray, upto: np.ndarray) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """A key per line, increasing with (date, position) over the lines of `upto` (the order of a stable
    sort by date), and the map from a key back to its line. The key is date × lines + position, no
    sort needed, while that fits in int64; else the rank in a stable argsort."""
    n = len(dates)
    seconds = dates.astype("datetime64[s]").view(np.int64)
    if n and upto.any():
        low, high = int(seconds[upto].min()), int(seconds[upto].max())
        if (high - low + 1) * n < 2**62:
            key = (seconds - low) * n + np.arange(n, dtype=np.int64)  # lines outside `upto`: never read
            return key, lambda keys: keys % n
    order = np.argsort(dates, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n, dtype=np.int64)
    return rank, lambda keys: order[keys]


def _extreme(fn: np.ufunc, ids: np.ndarray, dates: np.ndarray, k: int) -> np.ndarray:
    """Per id 0..k-1 the earliest (np.minimum) or latest (np.maximum) of its dates; NaT for an id without any."""
    start = np.iinfo(np.int64).max if fn is np.minimum else np.iinfo(np.int64).min + 1
    out = np.full(k, start, dtype=np.int64)
    fn.at(out, ids, dates.astype("datetime64[s]").view(np.int64))
    out[np.bincount(ids, minlength=k) == 0] = np.iinfo(np.int64).min  # NaT
    return out.view("datetime64[s]")


def _add_receivables(table: pd.DataFrame, rec: pd.DataFrame, config: Config) -> pd.DataFrame:
    cols = [c for c in ("opening", "billed", "received", "closing", *RECEIVABLE_EXTRAS) if c in rec]
    grouped = rec.groupby("customer_code")
    sums = grouped[cols].sum(min_count=1).round(2)  # money at cent precision
    sums.index = _plain_index(sums.index)  # reindexed once per column below
    for col in ("overdue_days", "aging_days"):  # aging_days: the balance's age (账龄), for the aging buckets
        if col in rec:
            most = grouped[col].max()
            most.index = _plain_index(most.index)  # the same labels as sums': assigned without reindexing
            sums[col] = most
    index = table.index.union(sums.index)
    table = table.reindex(index)
    for col in ("net_sales", "gross_sales", "returns"):
        table[col] = table[col].fillna(0.0)
    for col in ("line_count", "order_count", "active_months"):
        table[col] = table[col].fillna(0).astype("int64")
    at = sums.index.get_indexer(index)  # sums' row of each customer (-1: none), looked up once
    for col in ("opening", "billed", "received", "closing", "overdue_days"):
        table[col] = _aligned(sums[col], index, at) if col in sums else np.nan
    for col in (*RECEIVABLE_EXTRAS, "aging_days"):
        if col in sums:
            table[col] = _aligned(sums[col], index, at)
    if config.metrics.collection_rate == "收回/应收":
        denominator = table["billed"]
    else:
        denominator = table["opening"].fillna(0) + table["billed"].fillna(0)
    table["collection_rate"] = table["received"] / denominator.where(denominator > 0)
    if "customer_name" in rec:  # the sales' name, else the receivables' (current.replace("", NaN).combine_first(theirs))
        theirs = _last_named(rec["customer_code"], rec["customer_name"], index)
        current = table["customer_name"].to_numpy(dtype=object) if "customer_name" in table \
            else np.full(len(index), np.nan, dtype=object)
        kept = pd.notna(current) & (current != "")
        table["customer_name"] = pd.Series(np.where(kept, current, theirs), index=index, dtype=object)
    return table


def _master_first(column: pd.Series, at: np.ndarray, index: pd.Index, current: pd.Series | None) -> pd.Series:
    """The master's value of each customer of `index` where it has one (not missing, not ""), else `current`'s
    (at: the master's row of each customer, -1 for none): column.replace("", NaN).reindex(index)
    .combine_first(current) as object values, by one take."""
    known = np.append(np.asarray(column, dtype=object), np.nan)[at]  # at -1: the appended NaN
    known[known == ""] = np.nan
    if current is not None:
        known = np.where(pd.isna(known), current.to_numpy(dtype=object), known)
    return pd.Series(known, index=index, dtype=object)


def _last_named(codes: pd.Series, names: pd.Series, index: pd.Index) -> np.ndarray:
    """For each label of `index`: the name of its last line with a name (not missing, not ""), NaN when it
    has none; as names[names.ne("")].groupby(codes).last().reindex(index), without grouping or reindexing."""
    ids, labels = _codes_of(codes)
    values = names.to_numpy(dtype=object)
    named = np.flatnonzero(pd.notna(values) & (values != "") & (ids >= 0))
    last = np.full(len(labels) + 1, -1, dtype=np.int64)  # the extra one: a label not among the codes (-1)
    np.maximum.at(last, ids[named], named)
    row = last[labels.get_indexer(index)]  # -1: no line, or none of its lines names it
    out: np.ndarray = np.append(values, np.nan)[row]
    return out


def _months_between(first: pd.Series, as_of: pd.Timestamp) -> pd.Series:
    valid = first.notna()
    out = pd.Series(np.nan, index=first.index)
    f = first[valid]
    months = (as_of.year - f.dt.year) * 12 + (as_of.month - f.dt.month) - (f.dt.day > as_of.day).astype(int)
    out[valid] = months.clip(lower=0)
    return out
