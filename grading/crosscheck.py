"""Checks across sources that no single file can make: does the receivables export cover the
grading as-of date, and is cost there for all of a customer's lines or only some.

Each finding is a 提示 in 数据问题 and a line for the first screen (CLI summary, add-in alert).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .codes import first_rows, location_columns
from .problems import Problem, add_problem_rows

_FULL = re.compile(r"(?<!\d)(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})(?!\d)\s*日?")
_MONTH = re.compile(r"(?<!\d)(\d{4})\s*[-/.年]\s*(\d{1,2})(?!\d)\s*(?:月|期)?")
_PERIOD_WORDS = re.compile(r"期间|截止|截至|日期|至|到|～|~|period|as\s*of|from", re.IGNORECASE)
_NOT_PERIOD = re.compile(  # the date of the printout, not of the data: 打印日期：2026-07-02 08:00
    r"(打印|制表|导出|生成|print|export)\D{0,12}?\d{4}\s*[-/.年]\s*\d{1,2}\s*[-/.月]\s*\d{1,2}\s*日?"
    r"(\s*\d{1,2}:\d{2}(:\d{2})?)?", re.IGNORECASE)


PARTIAL_COST = "只有部分明细有成本：毛利、毛利率只按有成本的行计算（金额为缺成本的明细金额）"


@dataclass(frozen=True)
class PeriodLine:
    """A 期间 line above a header: where, its text and the dates it spans."""

    where: str
    text: str
    start: dt.date
    end: dt.date


def _span(text: str) -> tuple[dt.date, dt.date] | None:
    spans: list[tuple[dt.date, dt.date]] = []
    rest = text
    for m in _FULL.finditer(text):
        try:
            day = dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            continue
        spans.append((day, day))
    rest = _FULL.sub(" ", text)
    for m in _MONTH.finditer(rest):
        y, mo = int(m.group(1)), int(m.group(2))
        if 1 <= mo <= 12 and 1900 <= y <= 9999:
            spans.append((dt.date(y, mo, 1), dt.date(y, mo, calendar.monthrange(y, mo)[1])))
    if not spans:
        return None
    return min(s for s, _ in spans), max(e for _, e in spans)


def period_line(rows: Sequence[Sequence[object]]) -> tuple[str, dt.date, dt.date] | None:
    """The first title cell that states a period (期间：2026年1月 至 2026年6月, 截止日期 2026-06-30)."""
    for row in rows:
        for v in row:
            if not isinstance(v, str) or len(v) > 200:
                continue
            # drop the clauses that date the printout, not the data (打印日期：…, 制表时间 …)
            kept = _NOT_PERIOD.sub(" ", v)
            for part in re.split(r"\s*(?=打印|制表|导出|生成)", kept):
                if _PERIOD_WORDS.search(part):
                    span = _span(part)
                    if span is not None:
                        return part.strip(), span[0], span[1]
    return None


def receivables_coverage(periods: Sequence[PeriodLine], frame: pd.DataFrame | None,
                         as_of: dt.date) -> tuple[list[Problem], list[str]]:
    """Warn when a receivables export's period (its 期间 line, or else its dates) misses `as_of`."""
    problems: list[Problem] = []
    notes: list[str] = []
    for p in periods:
        if not p.start <= as_of <= p.end:
            span = f"{p.start:%Y-%m-%d}" if p.start == p.end else f"{p.start:%Y-%m-%d} 至 {p.end:%Y-%m-%d}"
            text = (f"应收账款余额表的期间「{p.text}」（{span}）不包含分级截止日期 {as_of:%Y-%m-%d}："
                    "期末余额、回款率与销售数据不是同一时点。请导出截至该日期的余额表，或检查 period.as_of")
            file, _, sheet = p.where.partition(" / ")
            problems.append(Problem(file, sheet, None, "", p.text, text, "提示"))
            notes.append(f"{p.where}：{text}")
    if not periods and frame is not None and "date" in frame and len(frame):
        dates = frame["date"].dropna()
        if len(dates):
            last = dates.max().date()
            month_start = as_of.replace(day=1)
            if last < month_start or last > as_of:
                text = (f"应收账款余额表的日期截至 {last:%Y-%m-%d}，与分级截止日期 {as_of:%Y-%m-%d} 不在同一月"
                        if last < month_start else
                        f"应收账款余额表中有截止日期 {as_of:%Y-%m-%d} 之后的日期（最晚 {last:%Y-%m-%d}）")
                text += "：期末余额、回款率与销售数据不是同一时点。请导出截至该日期的余额表，或检查 period.as_of"
                first = frame.loc[frame["date"] == dates.max()].iloc[0]
                problems.append(Problem(str(first.get("_file", "")), str(first.get("_sheet", "")), None,
                                        "", "", text, "提示"))
                notes.append(text)
    return problems, notes


def partial_cost(sales: pd.DataFrame, amount_col: str, start: dt.date, as_of: dt.date,
                 problems: list[Problem]) -> list[str]:
    """Customers whose in-window lines have cost on some lines only: their 毛利 covers those lines only.
    Integer customer ids and bincount; one problem per such customer (at its first line without cost),
    added to `problems` column-wise; returns the note."""
    if "cost" not in sales or not len(sales):
        return []
    dates = sales["date"].to_numpy(dtype="datetime64[s]")
    win = (dates >= np.datetime64(start, "s")) & (dates < np.datetime64(as_of + dt.timedelta(days=1), "s"))
    cost = sales["cost"].to_numpy(dtype=float)
    if not (win & ~np.isnan(cost)).any():
        return []
    column = sales["customer_code"]
    cat = column if isinstance(column.dtype, pd.CategoricalDtype) else column.astype(str).astype("category")
    cid = cat.cat.codes.to_numpy(dtype=np.int64)
    labels = np.asarray(cat.cat.categories.astype(str), dtype=object)
    k = len(labels)
    lacking = win & np.isnan(cost) & (cid >= 0)
    lines = np.bincount(cid[win & (cid >= 0)], minlength=k)
    missing = np.bincount(cid[lacking], minlength=k)
    partial = np.flatnonzero((missing > 0) & (missing < lines))
    if not len(partial):
        return []
    amount = sales[amount_col].to_numpy(dtype=float)
    amounts = np.bincount(cid[lacking], weights=np.nan_to_num(amount[lacking]), minlength=k)
    rows = np.flatnonzero(lacking)
    ids, first = first_rows(cid[rows], k)
    first_row = np.zeros(k, dtype=np.int64)
    first_row[ids] = rows[first]
    order = partial[np.argsort(labels[partial], kind="stable")]  # by customer code, as text
    at = first_row[order]
    texts = [f"客户 {label}：期间内 {n} 行中 {m} 行没有成本"
             for label, n, m in zip(labels[order].tolist(), lines[order].tolist(), missing[order].tolist())]
    files, sheets, numbers = location_columns(sales, at)  # (normalised lines always have a row number)
    add_problem_rows(problems, np.asarray(files, dtype=object), np.asarray(sheets, dtype=object),
                     np.asarray(numbers, dtype=np.int64), "成本", np.asarray(texts, dtype=object),
                     PARTIAL_COST, "提示", amounts=np.array([round(a, 2) for a in amounts[order].tolist()]))
    total = float(amounts[partial].sum())
    note = (f"{len(partial)} 个客户只有部分明细有成本（缺成本的明细金额 {total:,.2f}）："
            "这些客户的毛利、毛利率只按有成本的行计算，详见「数据问题」")
    return [note]
