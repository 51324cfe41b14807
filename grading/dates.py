"""Dates as exports write them: datetimes, Excel serials, and text in any order.

Text like `10/30/2011 16:17` or `30.10.2011` has no year first; its order
(month/day or day/month) is decided per column from the values: a first part
above 12 means day first, a second part above 12 means month first. A
`date_format` in config decides instead. When the values cannot decide, the
column is read in the usual order of its separator (`/` month first, `.` and `-`
day first) and the caller says so once.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

Order = Literal["ymd", "mdy", "dmy"]
ORDER_LABEL: dict[str, str] = {"mdy": "月/日/年", "dmy": "日/月/年", "ymd": "年/月/日"}
_ORDER_NAMES: dict[str, Order] = {
    "月/日/年": "mdy", "mm/dd/yyyy": "mdy", "m/d/y": "mdy", "mdy": "mdy", "m/d/yyyy": "mdy",
    "日/月/年": "dmy", "dd/mm/yyyy": "dmy", "d/m/y": "dmy", "dmy": "dmy", "dd.mm.yyyy": "dmy", "d/m/yyyy": "dmy",
    "年/月/日": "ymd", "yyyy-mm-dd": "ymd", "yyyy/mm/dd": "ymd", "y/m/d": "ymd", "ymd": "ymd",
}
FORMAT_HELP = "月/日/年、日/月/年、年/月/日（或 MM/DD/YYYY、DD/MM/YYYY），或 strftime 写法如 %d.%m.%Y %H:%M"

_DATE_SEP = re.compile(r"[年月/.]")
_SHORT = re.compile(r"^(\d{1,2})([/.\-])(\d{1,2})\2(\d{4}|\d{2})$")
_EXCEL_EPOCH = np.datetime64("1899-12-30")
_NAT = np.datetime64("NaT")


@dataclass(frozen=True)
class DateFormat:
    """A configured date format: an order of day/month/year, or a strptime pattern."""

    order: Order | None = None
    pattern: str | None = None


def parse_date_format(text: str) -> DateFormat:
    """Config text → DateFormat; ValueError (Chinese) when it is neither an order nor a pattern."""
    key = unicodedata.normalize("NFKC", text).strip().lower().replace(" ", "")
    if key in _ORDER_NAMES:
        return DateFormat(order=_ORDER_NAMES[key])
    if "%" in text:
        if not all(code in text for code in ("%d", "%m")) or not ("%Y" in text or "%y" in text):
            raise ValueError(f"日期格式 {text!r} 需要含 %d、%m 和 %Y（或 %y）")
        try:
            dt.datetime(2026, 1, 2).strftime(text)
        except ValueError as exc:
            raise ValueError(f"日期格式 {text!r} 无效：{exc}") from None
        return DateFormat(pattern=text)
    raise ValueError(f"不认识的日期格式 {text!r}，可写：{FORMAT_HELP}")


@dataclass(frozen=True)
class OrderFinding:
    """What the values of one column said about day/month order."""

    order: Order | None          # the order used for short dates (None: none in the column)
    status: Literal["none", "decided", "configured", "ambiguous", "conflict"]
    example: str = ""            # an undecidable value (ambiguous) or the two clashing ones (conflict)


def _year(text: str) -> int:
    y = int(text)
    if len(text) == 2:
        y += 2000 if y < 69 else 1900
    return y


def _ymd(y: int, m: int, d: int) -> np.datetime64:
    try:
        return np.datetime64(dt.date(y, m, d), "s")
    except ValueError:
        return _NAT


_ISO_TIME = re.compile(r"^(\d{4}-\d{1,2}-\d{1,2})T")


def _first_token(v: str) -> str:
    """The date part of a text cell: `10/30/2011 16:17` → `10/30/2011`, `2011-10-30T16:17:00` → `2011-10-30`."""
    parts = unicodedata.normalize("NFKC", v).strip().split()
    token = parts[0] if parts else ""
    m = _ISO_TIME.match(token)
    return m.group(1) if m else token


def _text_date(v: str, order: Order | None, pattern: str | None) -> np.datetime64:
    if pattern is not None:
        text = unicodedata.normalize("NFKC", v).strip()
        for candidate in (text, _first_token(v)):
            try:
                return np.datetime64(dt.datetime.strptime(candidate, pattern), "s")
            except ValueError:
                continue
        return _NAT
    token = _first_token(v)
    m = _SHORT.match(token)
    if m:
        a, b, y = int(m.group(1)), int(m.group(3)), _year(m.group(4))
        if order == "dmy" or (order is None and a > 12):
            return _ymd(y, b, a)
        if order == "mdy" or (order is None and b > 12):
            return _ymd(y, a, b)
        return _NAT
    text = _DATE_SEP.sub("-", token).rstrip("日-")
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return np.datetime64(dt.datetime.strptime(text, fmt), "s")
        except ValueError:
            continue
    return _NAT


def one_date(v: object, order: Order | None = None, pattern: str | None = None) -> np.datetime64:
    """One distinct cell → datetime64[s] (NaT when unreadable)."""
    if isinstance(v, dt.datetime):
        return np.datetime64(v.replace(tzinfo=None), "s")
    if isinstance(v, dt.date):
        return np.datetime64(v, "s")
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        if 1 <= v < 2958466:  # Excel serials 1900-01-01 … 9999-12-31
            return _EXCEL_EPOCH + np.timedelta64(int(round(v * 86400)), "s")
        return _NAT
    if isinstance(v, str) and v.strip():
        return _text_date(v, order, pattern)
    return _NAT


def column_order(texts: Sequence[object], configured: DateFormat | None = None) -> OrderFinding:
    """Decide month/day order of the short text dates (`10/30/2011`) among a column's distinct values."""
    first_big = second_big = undecided = ""
    separator = ""
    for v in texts:
        if not isinstance(v, str):
            continue
        m = _SHORT.match(_first_token(v))
        if not m:
            continue
        separator = separator or m.group(2)
        a, b = int(m.group(1)), int(m.group(3))
        if a > 12 and b <= 12:
            first_big = first_big or v.strip()
        elif b > 12 and a <= 12:
            second_big = second_big or v.strip()
        elif a <= 12 and b <= 12 and a != b:
            undecided = undecided or v.strip()
    if not (first_big or second_big or undecided or separator):
        return OrderFinding(None, "none")
    if configured is not None and (configured.order or configured.pattern):
        return OrderFinding(configured.order, "configured")
    if first_big and second_big:
        return OrderFinding(None, "conflict", f"{first_big}、{second_big}")
    if first_big:
        return OrderFinding("dmy", "decided")
    if second_big:
        return OrderFinding("mdy", "decided")
    default: Order = "mdy" if separator == "/" else "dmy"
    if not undecided:  # only values like 05/05/2011: either order reads the same
        return OrderFinding(default, "decided")
    return OrderFinding(default, "ambiguous", undecided)


def parse_dates(values: Sequence[object] | np.ndarray | None, configured: DateFormat | None = None,
                factorized: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[pd.Series, np.ndarray, OrderFinding]:
    """datetime64[s] per row (NaT when unreadable), the unreadable mask, and what decided the order.
    `factorized`: pandas.factorize of `values` when the caller has it already."""
    if factorized is not None:
        codes, uniques = factorized
    else:
        assert values is not None
        arr = np.asarray(values, dtype=object) if not isinstance(values, np.ndarray) else values
        codes, uniques = pd.factorize(arr, use_na_sentinel=True)
    pattern = configured.pattern if configured is not None else None
    if pattern is None:  # only the first token (the date) is read: parse each distinct date once
        keys = [_first_token(u) if isinstance(u, str) else u for u in uniques]
        inner, distinct = pd.factorize(np.asarray(keys, dtype=object), use_na_sentinel=True)
    else:
        inner, distinct = np.arange(len(uniques)), uniques
    finding = column_order(list(distinct), configured)
    parsed = np.array([one_date(u, finding.order, pattern) for u in distinct] + [_NAT], dtype="datetime64[s]")
    mapped = np.append(parsed[inner], np.datetime64("NaT", "s"))
    out = mapped[codes]  # code -1 picks the trailing NaT
    return pd.Series(out), np.isnat(out), finding


def order_note(finding: OrderFinding, column: str, source_key: str) -> str | None:
    """The once-per-column message for an undecidable or mixed order (None when the values decided)."""
    where = f"config.yaml 的 sources.{source_key}.date_format"
    if finding.status == "ambiguous" and finding.order is not None:
        label = ORDER_LABEL[finding.order]
        other = "日/月/年" if finding.order == "mdy" else "月/日/年"
        return (f"日期列「{column}」的值（如 {finding.example}）无法判断是 月/日/年 还是 日/月/年"
                f"（没有大于 12 的日或月），已按 {label} 读取；如应为 {other}，请在 {where} 中写 {other}")
    if finding.status == "conflict":
        return (f"日期列「{column}」中既有日在前又有月在前的写法（如 {finding.example}），无法统一判断；"
                f"无法单独判断的日期已跳过。请在 {where} 中指定（如 日/月/年）")
    return None
