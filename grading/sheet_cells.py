"""Cell XML of a filled table, built column by column with Arrow string kernels (no Python per cell).

A column's values become, row by row, `<c>` elements written exactly as the per-value writer
`cell` writes them: numbers as Python's repr (integers as int), text as an inline string (control
characters removed, cut at Excel's 32,767 characters, & < > escaped; never a formula), datetimes and
dates as Excel serials, booleans as t="b"; an empty value gives a bare styled cell, or nothing when
the column has no style. Columns of one type (plus None) take the vectorised path; anything else
(mixed types, tz-aware datetimes, huge ints) is written value by value with `cell`.

`rows_xml` joins the cells of several tables side by side into `<row>` elements and returns the
UTF-8 bytes as Arrow buffers, ready to be deflated into the package without a Python string.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

MAX_CHARS = 32767
_EPOCH = dt.datetime(1899, 12, 30)
_EPOCH_US = -2209161600 * 1_000_000  # 1899-12-30 in microseconds since 1970-01-01
_EPOCH_DAYS = -25569                  # the same in days
_CONTROL = {c: None for c in [*range(0, 9), 11, 12, *range(14, 32), 0xFFFE, 0xFFFF]}
_CONTROL_RE = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x{FFFE}\x{FFFF}]"
_SPECIAL_RE = r"[&<>\x00-\x08\x0b\x0c\x0e-\x1f\x{FFFE}\x{FFFF}]"
_TEXT = pa.large_string()
_EXACT = 2 ** 53  # integers up to here convert to float exactly (as Python's int / int does)

Chunk = Any  # bytes or a pyarrow Buffer: anything with the buffer protocol


# ---------------------------------------------------------------- one value (the reference formatting)

def cell(ref: str, value: object, style: str | None) -> str:
    """The `<c>` element of one value ("" when nothing is written)."""
    s = f' s="{style}"' if style else ""
    if value is None or value == "":
        return f'<c r="{ref}"{s}/>' if style else ""
    if isinstance(value, bool):
        return f'<c r="{ref}"{s} t="b"><v>{int(value)}</v></c>'
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return f'<c r="{ref}"{s}/>' if style else ""
        return f'<c r="{ref}"{s}><v>{value!r}</v></c>'
    if isinstance(value, dt.datetime):
        serial = (value.replace(tzinfo=None) - _EPOCH).total_seconds() / 86400
        return f'<c r="{ref}"{s}><v>{serial!r}</v></c>'
    if isinstance(value, dt.date):
        serial = (dt.datetime(value.year, value.month, value.day) - _EPOCH).days
        return f'<c r="{ref}"{s}><v>{serial}</v></c>'
    return text_cell(ref, s, str(value))


def text_cell(ref: str, s: str, value: str) -> str:
    text = value.translate(_CONTROL)
    if len(text) > MAX_CHARS:
        text = text[: MAX_CHARS - 1] + "…"
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f'<c r="{ref}"{s} t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>'


# ---------------------------------------------------------------- a whole column

@dataclass(frozen=True)
class Prepared:
    """A column ready to be cut into rows: `head` + value text pieces + `tail` after each cell's ref where
    `text` is not null; `empty` after the ref of an empty styled cell ("" when unstyled: no cell)."""

    head: str
    text: tuple[Any, ...]  # Arrow arrays of equal length, spliced in order (null: no value in that row)
    tail: str
    empty: str
    all_valid: bool
    values: Sequence[object] | None = None  # written one by one with `cell` (odd types)
    style: str | None = None


def prepare(values: Sequence[object] | np.ndarray, style: str | None) -> Prepared:
    """Format a column's values once (escaping, number text), independent of where its rows go."""
    s = f' s="{style}"' if style else ""
    empty = f'"{s}/>' if style else ""
    try:
        found = _formatted(values)
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        found = None
    if found is None:
        return Prepared("", (), "", empty, False, _python(values), style)
    kind, text, valid = found
    head, tail = {"number": (f'"{s}><v>', "</v></c>"), "bool": (f'"{s} t="b"><v>', "</v></c>"),
                  "text": (f'"{s} t="inlineStr"><is><t xml:space="preserve">', "</t></is></c>"),
                  "none": ("", "")}[kind]
    return Prepared(head, text, tail, empty, kind != "none" and bool(valid.all()))


def _python(values: Sequence[object] | np.ndarray) -> Sequence[object]:
    """The values as Python objects (datetime64 as datetime, to the microsecond)."""
    if isinstance(values, np.ndarray):
        return (values.astype("datetime64[us]") if values.dtype.kind == "M" else values).tolist()  # type: ignore[no-any-return]
    return values


def _formatted(values: Sequence[object] | np.ndarray) -> tuple[str, tuple[Any, ...], np.ndarray] | None:
    """(kind, value text pieces with null where no cell, validity) or None when the values need `cell`."""
    if isinstance(values, np.ndarray) and values.dtype != object:
        return _from_array(values)
    items = values if isinstance(values, list) else list(values)
    types = set(map(type, items))
    types.discard(type(None))
    if not types:
        return "none", (), np.zeros(len(items), dtype=bool)
    if len(types) > 1:
        return None
    kind = types.pop()
    if kind is float:
        return _floats(np.array(items, dtype=np.float64))  # None → NaN
    if kind is int:
        arr = pa.array(items, type=pa.int64())
        return "number", (arr.cast(_TEXT),), _valid(arr)
    if kind is bool:
        arr = pa.array(items, type=pa.bool_())
        return "bool", (arr.cast(pa.int8()).cast(_TEXT),), _valid(arr)
    if kind is str:
        return _texts(pa.array(items, type=_TEXT))
    if kind is dt.datetime:
        arr = pa.array(items)
        if arr.type.tz is not None:
            return None
        return _datetimes(arr.cast(pa.timestamp("us")))
    if kind is dt.date:
        return _dates(pa.array(items, type=pa.date32()))
    return None


def _from_array(values: np.ndarray) -> tuple[str, tuple[Any, ...], np.ndarray] | None:
    if values.dtype.kind == "f":
        return _floats(values.astype(np.float64, copy=False))
    if values.dtype.kind in "iu":
        arr = pa.array(values)
        return "number", (arr.cast(_TEXT),), np.ones(len(values), dtype=bool)
    if values.dtype.kind == "b":
        return "bool", (pa.array(values.astype(np.int8)).cast(_TEXT),), np.ones(len(values), dtype=bool)
    if values.dtype.kind == "M":
        return _datetimes(pa.array(values, from_pandas=True).cast(pa.timestamp("us")))
    if values.dtype.kind in "UT":
        return _texts(pa.array(values, type=_TEXT))
    return None


def _valid(arr: Any) -> np.ndarray:
    return np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


def _floats(x: np.ndarray) -> tuple[str, tuple[Any, ...], np.ndarray]:
    """Python's repr of each finite float: Arrow's shortest digits where both write them positionally
    (Arrow omits the ".0" of whole numbers), repr itself for the few others."""
    valid = np.isfinite(x)
    text = pa.array(x, mask=~valid).cast(_TEXT)
    ax = np.abs(x)
    odd = valid & ((ax >= 1e15) | ((ax < 1e-4) & (x != 0)))
    odd |= _matches(text, "e")
    whole = valid & ~odd & ~_matches(text, ".")
    if odd.any():
        fixed = pa.array([repr(v) for v in x[odd].tolist()], type=_TEXT)
        text = pc.replace_with_mask(text, pa.array(odd), fixed)
    dot = pc.if_else(pa.array(whole), _lit(".0"), _lit(""))
    return "number", (text, dot), valid


def _matches(text: Any, needle: str) -> np.ndarray:
    found = pc.match_substring(text, needle).fill_null(False)
    return np.asarray(found.to_numpy(zero_copy_only=False), dtype=bool)


def _datetimes(ts: Any) -> tuple[str, tuple[Any, ...], np.ndarray] | None:
    """Serial days as `cell` computes them: (datetime − 1899-12-30).total_seconds() / 86400."""
    valid = _valid(ts)
    micros = np.asarray(ts.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64) - _EPOCH_US
    if np.abs(micros).max(initial=0) >= _EXACT:
        return None
    return _floats(np.where(valid, micros.astype(np.float64) / 1e6 / 86400, np.nan))


def _dates(days: Any) -> tuple[str, tuple[Any, ...], np.ndarray]:
    serial = pc.subtract(days.cast(pa.int32()).cast(pa.int64()), _EPOCH_DAYS)
    return "number", (serial.cast(_TEXT),), _valid(days)


def _texts(arr: Any) -> tuple[str, tuple[Any, ...], np.ndarray]:
    valid = np.asarray(pc.fill_null(pc.not_equal(arr, ""), False).to_numpy(zero_copy_only=False), dtype=bool)
    if pc.any(pc.match_substring_regex(arr, _CONTROL_RE)).as_py():
        arr = pc.replace_substring_regex(arr, _CONTROL_RE, "")
    long = pc.greater(pc.utf8_length(arr), MAX_CHARS)
    if pc.any(long).as_py():
        cut = _join(pc.utf8_slice_codeunits(arr, 0, MAX_CHARS - 1), _lit("…"))
        arr = pc.if_else(long, cut, arr)
    if pc.any(pc.match_substring_regex(arr, _SPECIAL_RE)).as_py():
        for char, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;")):
            arr = pc.replace_substring(arr, char, entity)
    return "text", (pc.if_else(pa.array(valid), arr, pa.scalar(None, _TEXT)),), valid


# ---------------------------------------------------------------- rows

def row_numbers(first: int, n: int) -> Any:
    """Sheet row numbers first … first + n − 1 as Arrow text."""
    return pa.array(np.arange(first, first + n, dtype=np.int64)).cast(_TEXT)


def cells(p: Prepared, letter: str, first_row: int, lo: int, hi: int, rows: Any) -> Any | None:
    """The `<c>` elements of rows lo … hi − 1 of a prepared column (row lo is sheet row first_row + lo;
    `rows` their numbers as text); None when none of them writes anything."""
    if p.values is not None:
        out = [cell(f"{letter}{first_row + i}", p.values[i], p.style) for i in range(lo, hi)]
        return pa.array(out, type=_TEXT) if any(out) else None
    start = _lit(f'<c r="{letter}')
    if not p.text:
        return _join(start, rows, _lit(p.empty)) if p.empty else None
    full = _join(start, rows, _lit(p.head), *(t.slice(lo, hi - lo) for t in p.text), _lit(p.tail))
    if p.all_valid:
        return full
    if p.empty:
        return pc.coalesce(full, _join(start, rows, _lit(p.empty)))
    return pc.fill_null(full, _lit(""))


def rows_xml(rows: Any, attrs: str, columns: Sequence[Any | None]) -> Chunk:
    """`<row>` elements of the sheet rows numbered `rows` (from `row_numbers`), their cells from
    `columns` (cell arrays from `cells`, in column order; None: nothing) as one UTF-8 buffer."""
    lines = _join(_lit('<row r="'), rows, _lit(f'"{attrs}>'), *(c for c in columns if c is not None), _lit("</row>"))
    return utf8_bytes(lines)


def _lit(text: str) -> Any:
    return pa.scalar(text, _TEXT)


def _join(*pieces: Any) -> Any:
    """Row-wise concatenation (null where any piece is null)."""
    return pc.binary_join_element_wise(*pieces, _lit(""))


def utf8_bytes(text: Any) -> Chunk:
    """The concatenated values of an Arrow (large) string array, without copying."""
    if len(text) == 0:
        return b""
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int64, count=len(text) + 1, offset=8 * text.offset)
    return text.buffers()[2][int(offsets[0]):int(offsets[-1])]
