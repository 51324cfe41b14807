"""Large xlsx sheets read column-wise into Arrow (fastexcel), giving the very cells python-calamine gives.

python-calamine builds one Python list per row (a 700,000-row export: 7.7 M objects, 7 s). fastexcel
runs the same Rust parser about 1.7× faster and hands typed columns over. Its columns are typed per
column, so the sheet is read in two parts that together equal calamine's rows exactly:

- the head (the first HEAD_ROWS rows of the sheet: titles, headers, first data rows) by python-calamine
  from a small copy of the package whose sheet XML is cut after those rows: exactly calamine's cells;
- the rest, from row HEAD_ROWS − OVERLAP of the range on, by fastexcel with strict typing: every column
  must hold one type (text, number, date or true/false) besides empty cells, or this path is not taken.

The OVERLAP rows read both ways must agree cell for cell (same start row and column, same values and
types), and the widths must fit; otherwise — and for any error cell, unknown type, missing library or
fastexcel failure — None is returned and the caller reads the sheet with python-calamine as before.
Empty cells are "" as calamine gives them, whole-day dates `datetime.date`, others `datetime.datetime`.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import re
import zipfile
from pathlib import Path
from typing import Any, cast

import numpy as np

from python_calamine import CalamineWorkbook

from .arrow_body import ArrowBody, is_text
from .xlsx_extent import shared_strings_part
from .xlsx_split import read_in_halves, strict_sheet

HEAD_ROWS = 200   # as grading.read.HEAD_ROWS: rows kept as lists (header search, messages)
OVERLAP = 40      # rows read both ways and compared
MIN_SHEET_BYTES = 16 << 20  # inflated sheet XML from which this path pays (about 25,000 rows)
_ROW_END = re.compile(rb"</(?:\w+:)?row>")
_DIMENSION = re.compile(rb"<(?:\w+:)?dimension\b[^>]*/>")
_SHEET_DATA_END = b"</sheetData></worksheet>"
_SHARED_CELL = re.compile(rb"""<(?:\w+:)?c\b[^>]*?\st=["']s["'][^>]*>\s*<(?:\w+:)?v>\s*(\d+)\s*<""")
_SHARED_TYPE = re.compile(rb"""\st=["']s["']""")
_SST_ROOT = re.compile(rb"<(\w+:)?sst\b[^>]*>")
_SI_END = re.compile(rb"</(?:\w+:)?si>")

logging.getLogger("fastexcel").setLevel(logging.ERROR)  # it logs a warning for every all-empty column


def read_columns(path: Path, sheet: str, part: str, zf: zipfile.ZipFile) -> tuple[list[list[object]], int,
                                                                                   ArrowBody] | None:
    """(head rows, first row number, the rows from HEAD_ROWS − OVERLAP on as an Arrow body whose values are
    calamine's) or None (read it the usual way)."""
    try:
        import fastexcel  # noqa: F401  (installed: grading.xlsx_split.strict_sheet reads with it)
        import pyarrow as pa
    except ImportError:
        return None
    head = _head(zf, part, sheet)
    if head is None:
        return None
    rows, first_row, first_col = head
    if first_col != 0 or len(rows) < HEAD_ROWS:  # a range right of column A (or a short sheet): calamine
        return None
    skip = HEAD_ROWS - OVERLAP
    batch = read_in_halves(path, zf, part, sheet, first_row, skip)  # two parses at once, when it is large
    if batch is None:
        try:
            batch = strict_sheet(path, sheet, skip)
        except Exception:  # mixed types, error cells, anything fastexcel refuses: calamine reads it
            return None
        if batch is None:
            return None
    width = max(len(r) for r in rows)
    if batch.num_columns < width or batch.num_rows < OVERLAP:
        return None
    columns: list[np.ndarray] = []
    for i in range(batch.num_columns):
        values = _objects(batch.column(i).slice(0, OVERLAP))  # None: a type calamine never gives
        if values is None:
            return None
        columns.append(values)
    for r in range(OVERLAP):  # the rows read both ways agree exactly
        expected = rows[skip + r] + [""] * (batch.num_columns - len(rows[skip + r]))
        got = [c[r] for c in columns]
        if [(type(v), v) for v in got] != [(type(v), v) for v in expected]:
            return None
    head_rows = [r + [""] * (batch.num_columns - len(r)) for r in rows]  # calamine pads to the sheet's width
    table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
    return head_rows, first_row, ArrowBody(skip, table, head_rows[:skip], _values)


def _values(column: Any) -> np.ndarray:
    """_objects of a column whose type read_columns has checked."""
    values = _objects(column)
    assert values is not None
    return values


def _head(zf: zipfile.ZipFile, part: str, sheet: str) -> tuple[list[list[object]], int, int] | None:
    """The sheet's first rows as python-calamine reads them, from a copy of the package whose sheet XML
    ends after its first HEAD_ROWS + 50 rows with values; (rows, first row number, first column index)."""
    cut = _cut_sheet(zf, part, HEAD_ROWS + 50)
    if cut is None:
        return None
    strings = shared_strings_part(zf)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as mini:
        for info in zf.infolist():
            if info.filename == part:
                mini.writestr(info.filename, cut)
            elif info.filename == strings:
                head_strings = _cut_strings(zf, strings, _strings_used(cut))
                if head_strings is None:
                    return None
                mini.writestr(info.filename, head_strings)
            elif not info.filename.startswith("xl/worksheets/"):
                if info.file_size > 64 << 20:
                    return None
                mini.writestr(info.filename, zf.read(info.filename))
    try:
        wb = CalamineWorkbook.from_filelike(io.BytesIO(buffer.getvalue()))
        ws = wb.get_sheet_by_name(sheet)
        rows = cast(list[list[object]], ws.to_python(skip_empty_area=True, nrows=HEAD_ROWS))
        start = ws.start or (0, 0)
    except Exception:
        return None
    return rows, start[0] + 1, start[1]


def _strings_used(cut: bytes) -> int | None:
    """How many shared strings (from the first) the cells of `cut` refer to; None if that is not certain."""
    found = [int(m.group(1)) for m in _SHARED_CELL.finditer(cut)]
    if len(found) != len(_SHARED_TYPE.findall(cut)):  # a shared-string cell written another way
        return None
    return max(found) + 1 if found else 0


def _cut_strings(zf: zipfile.ZipFile, part: str, count: int | None) -> bytes | None:
    """The shared-strings XML with its first `count` strings only (all of it when `count` is None and it
    is not too large), closed; the sheet's first rows need no more."""
    if count is None:
        return zf.read(part) if zf.getinfo(part).file_size <= 64 << 20 else None
    data = b""
    with zf.open(part) as fh:
        while True:
            root = _SST_ROOT.search(data)
            if root is not None:
                if count == 0:
                    return data[: root.end()] + b"</" + (root.group(1) or b"") + b"sst>"
                seen = 0
                for match in _SI_END.finditer(data, root.end()):
                    seen += 1
                    if seen == count:
                        return data[: match.end()] + b"</" + (root.group(1) or b"") + b"sst>"
            block = fh.read(1 << 20)
            if not block:
                return data if root is not None else None  # fewer strings than referred to: calamine decides
            data += block
            if len(data) > 64 << 20:
                return None


def _cut_sheet(zf: zipfile.ZipFile, part: str, rows: int) -> bytes | None:
    """The sheet XML up to the end of its `rows`-th <row> element, closed (the whole XML if it has fewer),
    without <dimension> (calamine may size the range by it). None when it is not laid out this way."""
    data = b""
    seen = 0
    with zf.open(part) as fh:
        while True:
            block = fh.read(1 << 20)
            if not block:
                return _DIMENSION.sub(b"", data)
            start = max(len(data) - 16, 0)
            data += block
            for match in _ROW_END.finditer(data, start):
                seen += 1
                if seen == rows:
                    body = _DIMENSION.sub(b"", data[: match.end()])
                    return body + _SHEET_DATA_END if b"<sheetData" in body else None
            if len(data) > 64 << 20:
                return None


def _objects(column: Any) -> np.ndarray | None:
    """An Arrow column as calamine's Python values: "" for empty, str, float, bool, date/datetime."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(column, pa.ChunkedArray):  # a sheet read in halves: each half on its own, then joined
        parts = [_objects(chunk) for chunk in column.chunks]
        if any(part is None for part in parts):
            return None
        return np.concatenate(cast(list[np.ndarray], parts)) if parts else np.empty(0, dtype=object)
    kind = column.type
    n = len(column)
    out = np.full(n, "", dtype=object)
    valid = np.asarray(column.is_valid().to_numpy(zero_copy_only=False), dtype=bool) if column.null_count \
        else np.ones(n, dtype=bool)
    if pa.types.is_null(kind):
        return out
    if is_text(kind):
        # one Python string per distinct text, shared by its cells (codes, names, salespeople repeat):
        # less memory and time than a new string object per cell
        encoded = column.dictionary_encode()
        distinct = np.asarray(encoded.dictionary.to_numpy(zero_copy_only=False), dtype=object)
        values = distinct[np.asarray(encoded.indices.fill_null(0).to_numpy(), dtype=np.intp)] if len(distinct) \
            else np.full(n, "", dtype=object)
    elif pa.types.is_floating(kind):
        values = np.asarray(column.fill_null(0.0).to_numpy(), dtype=np.float64).astype(object)
    elif pa.types.is_boolean(kind):
        values = np.asarray(column.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool).astype(object)
    elif pa.types.is_timestamp(kind):
        if kind.tz is not None:
            return None
        stamps = column.cast(pa.timestamp("us"))
        micro = np.asarray(pc.fill_null(stamps.cast(pa.int64()), 0).to_numpy(), dtype=np.int64)
        whole_day = micro % 86_400_000_000 == 0
        values = np.asarray(stamps.to_numpy(zero_copy_only=False), dtype="datetime64[us]").astype(object)
        if whole_day.any():
            idx = np.flatnonzero(whole_day & valid)
            values[idx] = [v.date() if isinstance(v, dt.datetime) else v for v in values[idx].tolist()]
    else:  # durations, times, decimals …: not what calamine gives; read the usual way
        return None
    out[valid] = values[valid]
    return out
