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
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .plan_types import ArrayValues, TextValues
from .safe_text import xml_escape

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
    text = xml_escape(text)
    return f'<c r="{ref}"{s} t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>'


# ---------------------------------------------------------------- a whole column

@dataclass(frozen=True)
class Prepared:
    """A column ready to be cut into rows: each row's cell is `start` + row number + `head` + its text
    pieces + `tail` where `valid`, else `start` + row number + `empty` (nothing when `empty` is "");
    `whole`: the complete cells, for values written one by one."""

    start: str
    head: str
    text: tuple[Any, ...]  # Arrow arrays of equal length, spliced in order (null where not valid)
    tail: str
    empty: str
    valid: np.ndarray | None  # None: every row has a value
    whole: Any | None = None


def prepare(values: Sequence[object] | np.ndarray, style: str | None, letter: str, first_row: int) -> Prepared:
    """Format the values of column `letter`, from sheet row `first_row` down, once (escaping, number text)."""
    s = f' s="{style}"' if style else ""
    empty = f'"{s}/>' if style else ""
    start = f'<c r="{letter}'
    try:
        found = _formatted(values)
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        found = None
    if found is None:
        whole = [cell(f"{letter}{first_row + i}", v, style) for i, v in enumerate(_python(values))]
        return Prepared(start, "", (), "", empty, None, pa.array(whole, type=_TEXT))
    kind, text, valid = found
    head, tail = {"number": (f'"{s}><v>', "</v></c>"), "bool": (f'"{s} t="b"><v>', "</v></c>"),
                  "text": (f'"{s} t="inlineStr"><is><t xml:space="preserve">', "</t></is></c>"),
                  "none": ("", "")}[kind]
    return Prepared(start, head, text, tail, empty, None if kind != "none" and valid.all() else valid)


def _python(values: Sequence[object] | np.ndarray) -> Sequence[object]:
    """The values as Python objects (datetime64 as datetime, to the microsecond)."""
    if isinstance(values, np.ndarray):
        return (values.astype("datetime64[us]") if values.dtype.kind == "M" else values).tolist()  # type: ignore[no-any-return]
    return values


def _formatted(values: Sequence[object] | np.ndarray) -> tuple[str, tuple[Any, ...], np.ndarray] | None:
    """(kind, value text pieces with null where no cell, validity) or None when the values need `cell`."""
    if isinstance(values, np.ndarray) and values.dtype != object:
        return _from_array(values)
    if isinstance(values, ArrayValues) and not (values.array.dtype.kind == "M" and np.isnat(values.array).all()):
        return _from_array(values.array)  # (no date at all: no cell, as for a list of None below)
    if isinstance(values, TextValues) and len(values):
        return _texts(values.array.cast(_TEXT))
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
    if values.dtype.kind in "UT":  # via Python strings: Arrow cuts numpy's fixed-width text at a NUL
        return _texts(pa.array(values.astype(object), type=_TEXT))
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
    odd |= matches(text, "e")
    whole = valid & ~odd & ~matches(text, ".")
    if odd.any():
        fixed = pa.array([repr(v) for v in x[odd].tolist()], type=_TEXT)
        text = pc.replace_with_mask(text, pa.array(odd), fixed)
    dot = pc.if_else(pa.array(whole), _lit(".0"), _lit(""))
    return "number", (text, dot), valid


def matches(text: Any, needle: str) -> np.ndarray:
    """Which strings of an Arrow string array contain `needle` (a null: none)."""
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
    """As `text_cell`: control characters removed, cut at MAX_CHARS, & < > escaped; "" and None: no cell."""
    valid = _valid(arr) & (np.diff(_offsets(arr)) > 0)
    special = _found(arr, _SPECIAL_RE)
    if special and _found(arr, _CONTROL_RE):
        arr = pc.replace_substring_regex(arr, _CONTROL_RE, "")
    if len(arr) and int(np.diff(_offsets(arr)).max()) > MAX_CHARS:  # bytes ≥ characters
        long = pc.greater(pc.utf8_length(arr), MAX_CHARS)
        arr = pc.if_else(long, _join(pc.utf8_slice_codeunits(arr, 0, MAX_CHARS - 1), _lit("…")), arr)
    if special:
        for char, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;")):
            if _found(arr, re.escape(char)):  # one pass per character present, not three
                arr = pc.replace_substring(arr, char, entity)
    bitmap = pa.array(np.concatenate([np.zeros(arr.offset, dtype=bool), valid])).buffers()[1]
    text = pa.Array.from_buffers(_TEXT, len(arr), [bitmap, *arr.buffers()[1:]], offset=arr.offset)
    return "text", (text,), valid


def _found(arr: Any, pattern: str) -> bool:
    """Whether any value matches `pattern` (a character class): one search over all the text at once."""
    if not len(arr):
        return False
    offsets = _offsets(arr)
    bounds = pa.py_buffer(np.array([offsets[0], offsets[-1]], dtype=np.int64))
    whole = pa.Array.from_buffers(_TEXT, 1, [None, bounds, arr.buffers()[2]])
    return bool(pc.match_substring_regex(whole, pattern)[0].as_py())


# ---------------------------------------------------------------- rows

def row_numbers(first: int, n: int) -> Any:
    """Sheet row numbers first … first + n − 1 as Arrow text."""
    return pa.array(np.arange(first, first + n, dtype=np.int64)).cast(_TEXT)


def digits(first: int, n: int) -> np.ndarray:
    """The number of digits of the row numbers first … first + n − 1."""
    return 1 + np.searchsorted(_POWERS, np.arange(first, first + n, dtype=np.int64), side="right")


_POWERS = 10 ** np.arange(1, 19, dtype=np.int64)


def cell_bytes(p: Prepared, row_digits: np.ndarray) -> np.ndarray:
    """The UTF-8 size of each row's cell (`row_digits`: digits of each row's number, from `digits`)."""
    if p.whole is not None:
        return np.diff(_offsets(p.whole))
    ref = len(p.start) + row_digits
    empty = ref + len(p.empty) if p.empty else np.zeros(len(row_digits), dtype=np.int64)
    if not p.text:
        return empty
    full = ref + len(p.head.encode("utf-8")) + len(p.tail)
    for piece in p.text:
        full = full + np.diff(_offsets(piece))
    return full if p.valid is None else np.where(p.valid, full, empty)


def pieces(p: Prepared, lo: int, hi: int, rows: Any) -> list[Any]:
    """What the column's rows lo … hi − 1 are joined from (`rows`: their sheet row numbers as text):
    literal text and Arrow arrays without nulls, in order; [] when none of them writes anything."""
    if p.whole is not None:
        return [p.whole.slice(lo, hi - lo)]
    if not p.text:
        return [p.start, rows, p.empty] if p.empty else []
    text = [t.slice(lo, hi - lo) for t in p.text]
    if p.valid is None:
        return [p.start, rows, p.head, *text, p.tail]
    valid = pa.array(p.valid[lo:hi])
    front = [p.start, rows] if p.empty else [pc.if_else(valid, _lit(p.start), _lit("")),
                                             pc.if_else(valid, rows, _lit(""))]
    return [*front, pc.if_else(valid, _lit(p.head), _lit(p.empty)), *(pc.fill_null(t, _lit("")) for t in text),
            pc.if_else(valid, _lit(p.tail), _lit(""))]


def cells(p: Prepared, lo: int, hi: int, rows: Any) -> Any | None:
    """The `<c>` elements of the column's rows lo … hi − 1 ("" where none); None when there is none at all."""
    found = pieces(p, lo, hi, rows)
    return join(found) if found else None


def rows_xml(rows: Any, attrs: str, columns: Sequence[Any]) -> Chunk:
    """`<row>` elements of the sheet rows numbered `rows` (from `row_numbers`), their cells joined from
    `columns` (from `pieces`, in column order) as one UTF-8 buffer."""
    return utf8_bytes(join(['<row r="', rows, f'"{attrs}>', *columns, "</row>"]))


def join(found: Sequence[Any]) -> Any:
    """Row-wise concatenation of literal text and arrays (adjacent literals merged first)."""
    merged: list[Any] = []
    for x in found:
        if isinstance(x, str) and merged and isinstance(merged[-1], str):
            merged[-1] += x
        else:
            merged.append(x)
    return _join(*(_lit(x) if isinstance(x, str) else x for x in merged))


def _lit(text: str) -> Any:
    return pa.scalar(text, _TEXT)


def _join(*pieces: Any) -> Any:
    """Row-wise concatenation (null where any piece is null)."""
    return pc.binary_join_element_wise(*pieces, _lit(""))


def _offsets(text: Any) -> np.ndarray:
    return np.frombuffer(text.buffers()[1], dtype=np.int64, count=len(text) + 1, offset=8 * text.offset)


def utf8_bytes(text: Any) -> Chunk:
    """The concatenated values of an Arrow large string array, without copying."""
    if len(text) == 0:
        return b""
    offsets = _offsets(text)
    return text.buffers()[2][int(offsets[0]):int(offsets[-1])]
