"""A large xlsx sheet parsed by fastexcel in two halves at once.

fastexcel parses one sheet on one core (about 3.5 s for a 700,000-line export), but it releases the GIL,
so two parses run side by side. The sheet XML is inflated once (ISA-L) and written, uncompressed, into
two small packages in a temporary folder: the first holds the rows up to a row boundary near the middle,
the second the rows from OVERLAP_ROWS rows before that boundary on (every other part but the worksheets
is copied into both; <dimension> is dropped, so each range starts at its first cell). The second package
is parsed by a second thread here or, in grade-etl's read pool, by its worker process (ELSEWHERE below).

The halves are joined only when they line up exactly: the second half's first row number comes from its
`r` attribute, the overlap rows (parsed in both halves) must agree cell for cell, one overlap row must
hold a value in column A and the first one a value at all (so the second range starts at column A and at
that row), and every column must have one type in both halves (an all-empty column takes the other's).
Otherwise None is returned and the caller parses the whole sheet as before.
"""

from __future__ import annotations

import logging
import math
import re
import shutil
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .zip_member import member_blocks

SPLIT_MIN_BYTES = 48 << 20   # inflated sheet XML from which two parses pay (about 85,000 lines)
# Two parses in threads here only pay when the second core would otherwise wait. In line it is on for Linux
# only: the half-packages are written to the temporary folder, and on Windows/macOS (the add-in) the cost of
# that, with virus scanners looking at each new file, is not measured. grade-etl's read pool sets it for each
# file it reads (grading.read_pool): true only for a file more than twice as large as all the others
# together; in the 1M mixed benchmark (金蝶 44 MB, the other files 39 MB) two threads here gained nothing
# (medians of 4 interleaved runs 10.47 s split, 10.52 s whole): the worker process reads the other files
# meanwhile. Splitting costs about 1 s of CPU per 700,000 lines.
SPARE_CORE = sys.platform.startswith("linux")


class Handed(Protocol):
    """The second part of a split sheet handed to another process: `take` gives its parse (Arrow, or None as
    strict_sheet gives), or `here()` when that process has not been given it yet (taken back); `drop`
    withdraws it."""

    def take(self, here: Callable[[], Any]) -> Any: ...

    def drop(self) -> None: ...


# Where the second part can be parsed instead of a second thread here: set by grade-etl's read pool while this
# process reads a file (grading.read_pool: its worker process takes it before its next file, or this process
# takes it back when the worker has not been given it by the time the first part is parsed). The worker has
# files of its own, so its part is the smaller one (ELSEWHERE_SHARE of the sheet XML). 1M mixed benchmark
# (金蝶 44 MB among 83 MB): medians of 4 interleaved runs 8.50 → 7.60 s; the worker, idle for 3 s at the
# end of loading before, parses 40% of the 金蝶 sheet between its own files.
ELSEWHERE: Callable[[Path, str, int], Handed | None] | None = None
ELSEWHERE_SHARE = 0.4
OVERLAP_ROWS = 20            # rows parsed in both halves and compared
_PREFIX = "kehu-fenji-split-"
_KEEP = 4 << 20              # bytes held back while looking for the boundary (the overlap rows lie in them)
_MAX_OTHER_BYTES = 64 << 20  # other parts (shared strings …) copied into both halves at most this large
_SHEET_DATA = re.compile(rb"<(\w+:)?sheetData\b[^>]*?(/?)>")
_DIMENSION = re.compile(rb"<(?:\w+:)?dimension\b[^>]*/>")
_ROW_END = re.compile(rb"</(?:\w+:)?row>")
_ROW_START = re.compile(rb"<(?:\w+:)?row[\s>/]")
_ROW_NUMBER = re.compile(rb"<(?:\w+:)?row\s[^>]*?\br=[\"'](\d+)[\"']")  # a row's number (its r attribute)
_PLAIN_ROW_NUMBER = re.compile(rb'<row r="(\d+)"')
_TAIL = 512  # bytes carried into the next block's search (a row tag cut at a block's edge is seen whole)

logging.getLogger("fastexcel").setLevel(logging.ERROR)


@dataclass(frozen=True)
class Halves:
    first: Path          # package: the rows up to and including row `first_end`
    second: Path         # package: the rows from row `second_start` on
    second_start: int    # 1-based sheet row number of the second half's first row
    first_end: int       # 1-based sheet row number of the first half's last row


def read_in_halves(path: Path, zf: zipfile.ZipFile, part: str, sheet: str, first_row: int, skip: int) -> Any:
    """The sheet's rows from range row `skip` on (range row 0 = sheet row `first_row`) as one Arrow table
    (each column in two chunks), as fastexcel's whole-sheet strict read gives them, or None (parse it whole)."""
    elsewhere = ELSEWHERE
    if not (SPARE_CORE or elsewhere is not None) or zf.getinfo(part).file_size < SPLIT_MIN_BYTES or first_row != 1:
        return None  # (fastexcel counts rows from row 1)
    _sweep()
    folder = Path(tempfile.mkdtemp(prefix=_PREFIX))
    handed: Handed | None = None
    try:
        halves = write_halves(zf, part, folder, ELSEWHERE_SHARE if elsewhere is not None else 0.5)
        if halves is None or halves.second_start <= first_row + skip:
            return None
        second_skip = halves.second_start - 1
        handed = elsewhere(halves.second, sheet, second_skip) if elsewhere is not None else None
        if handed is not None:  # the other process parses the second part meanwhile
            a = strict_sheet(halves.first, sheet, skip)
            if a is None:  # a cell fastexcel cannot type: the whole sheet goes to calamine (the part is dropped)
                return None
            b = handed.take(lambda: strict_sheet(halves.second, sheet, second_skip))
            handed = None
        elif SPARE_CORE:
            with ThreadPoolExecutor(2) as pool:
                first = pool.submit(strict_sheet, halves.first, sheet, skip)
                second = pool.submit(strict_sheet, halves.second, sheet, second_skip)
                a, b = first.result(), second.result()
        else:
            return None
        if a is None or b is None:
            return None
        return join(a, b, halves.second_start - (first_row + skip), halves.first_end - halves.second_start + 1)
    except Exception:  # an optimisation only: the whole sheet is parsed as before
        return None
    finally:
        try:
            if handed is not None:  # this read failed or was cancelled: the worker need not parse it
                handed.drop()
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def _sweep() -> None:
    """Remove half-package folders a killed run left in the temporary folder (older than an hour)."""
    try:
        for old in Path(tempfile.gettempdir()).glob(_PREFIX + "*"):
            if old.is_dir() and time.time() - old.stat().st_mtime > 3600:
                shutil.rmtree(old, ignore_errors=True)
    except OSError:
        pass


def strict_sheet(package: Path, sheet: str, skip: int) -> Any:
    """fastexcel's strict read of a sheet from range row `skip` on, as Arrow; None when a cell did not fit its
    column's type (an error cell, mixed types). Whatever else fastexcel refuses raises."""
    import fastexcel

    loaded = fastexcel.read_excel(str(package)).load_sheet(sheet, header_row=None, skip_rows=skip,
                                                          schema_sample_rows=None, dtype_coercion="strict")
    batch, errors = loaded.to_arrow_with_errors()
    if errors is not None and len(getattr(errors, "errors", [1])):
        return None
    return batch


def join(a: Any, b: Any, at: int, overlap: int) -> Any:
    """Batch `a` (rows from some row r0) and batch `b` (rows from r0 + `at`, the first `overlap` of them in
    `a` too) as one table, or None when they do not line up exactly (see the module's text)."""
    import pyarrow as pa

    if at < 0 or overlap < 1 or a.num_rows != at + overlap or b.num_rows < overlap:
        return None
    width = max(a.num_columns, b.num_columns)
    columns = []
    first_has_value = False
    column_a_has_value = False
    for i in range(width):
        left = a.column(i) if i < a.num_columns else None
        right = b.column(i) if i < b.num_columns else None
        if left is None or pa.types.is_null(left.type):
            kind = right.type if right is not None else pa.null()
        else:
            kind = left.type
        left = _as(left, kind, a.num_rows)
        right = _as(right, kind, b.num_rows)
        if left is None or right is None:
            return None
        if not left.slice(at, overlap).equals(right.slice(0, overlap)):
            return None
        # the first half shows which cells the second holds: its range starts at the first of them
        seen = left.slice(at, overlap).is_valid()
        first_has_value = first_has_value or bool(seen[0].as_py())
        if i == 0:
            column_a_has_value = bool(seen.to_numpy(zero_copy_only=False).any())
        columns.append(pa.chunked_array([left, right.slice(overlap)], type=kind))  # no copy of either half
    if not (first_has_value and column_a_has_value):
        return None
    return pa.Table.from_arrays(columns, names=[f"c{i}" for i in range(width)])


def _as(column: Any, kind: Any, rows: int) -> Any:
    """`column` as type `kind` (a missing or all-empty column becomes empty cells of it); None if it differs."""
    import pyarrow as pa

    if column is None or (pa.types.is_null(column.type) and not pa.types.is_null(kind)):
        return pa.nulls(rows, kind)
    return column if column.type == kind else None


def write_halves(zf: zipfile.ZipFile, part: str, folder: Path, second_share: float = 0.5) -> Halves | None:
    """Write the two packages (see the module's text) into `folder`, the second from about `second_share` of
    the sheet XML before its end; None when the sheet is not laid out for it (no row boundary past that point,
    rows without numbers, large other parts)."""
    others = [i for i in zf.infolist() if not i.filename.startswith("xl/worksheets/")]
    if sum(i.file_size for i in others) > _MAX_OTHER_BYTES:
        return None
    middle = int(zf.getinfo(part).file_size * (1 - second_share))
    first_path, second_path = folder / "first.xlsx", folder / "second.xlsx"
    with zipfile.ZipFile(first_path, "w", zipfile.ZIP_STORED) as first_zip, \
            zipfile.ZipFile(second_path, "w", zipfile.ZIP_STORED) as second_zip:
        for info in others:
            data = zf.read(info.filename)
            first_zip.writestr(info.filename, data)
            second_zip.writestr(info.filename, data)
        with first_zip.open(part, "w", force_zip64=True) as first, \
                second_zip.open(part, "w", force_zip64=True) as second:
            found = _stream(zf, part, middle, first, second)
    return Halves(first_path, second_path, *found) if found is not None else None


def _stream(zf: zipfile.ZipFile, part: str, middle: int, first: Any, second: Any) -> tuple[int, int] | None:
    """Stream the sheet XML into the two members; (second half's first row, first half's last row)."""
    head = b""           # the XML up to <sheetData …> (the start of both halves)
    prefix: bytes | None = None
    closing = b""
    pending: list[bytes] = []  # blocks held back near the middle, where the boundary is looked for
    held = 0
    position = 0         # XML offset of the first held byte
    found: tuple[int, int] | None = None
    tail = b""
    for block in member_blocks(zf, part):
        if found is not None:
            # a row numbered before the second half's first (rows out of order in the XML) would be skipped
            # by its read: then the halves are not used
            if _lowest_row(tail + block) < found[0]:
                return None
            tail = block[-_TAIL:]
            second.write(block)
            continue
        if prefix is None:
            head += block
            tag = _SHEET_DATA.search(head)
            if tag is None:
                if len(head) > _KEEP:
                    return None
                continue
            if tag.group(2):  # <sheetData/>: nothing to split
                return None
            ns = tag.group(1) or b""
            prefix = _DIMENSION.sub(b"", head[: tag.end()])
            closing = b"</" + ns + b"sheetData></" + ns + b"worksheet>"
            first.write(prefix)
            block, position = head[tag.end():], tag.end()
        pending.append(block)
        held += len(block)
        if position + held <= middle:
            while len(pending) > 1 and held - len(pending[0]) >= _KEEP:  # far from the middle: written through
                first.write(pending[0])
                position += len(pending[0])
                held -= len(pending[0])
                pending.pop(0)
            continue
        data = b"".join(pending)
        cut = _boundary(data, max(middle - position, 0))
        if cut is None:
            if held > 4 * _KEEP:  # no row end (with the overlap rows before it) in megabytes: not an export's rows
                return None
            pending, held = [data], len(data)
            continue
        end, start, second_start, first_end = cut
        if _lowest_row(data[start:]) < second_start:
            return None
        first.write(data[:end] + closing)
        second.write(prefix + data[start:])
        tail = data[-_TAIL:]
        found = (second_start, first_end)
    return found


def _lowest_row(text: bytes) -> float:
    """The lowest row number in `text` (infinity for none): `<row r="…"` as exports write it, else any form."""
    numbers = _PLAIN_ROW_NUMBER.findall(text)
    if b":row" in text or len(numbers) != text.count(b"<row") - text.count(b"<rowBreaks"):
        numbers = _ROW_NUMBER.findall(text)
    return min(map(int, numbers)) if numbers else math.inf


def _boundary(data: bytes, after: int) -> tuple[int, int, int, int] | None:
    """(end of the first half, start of the second, its first row number, the first half's last row number)
    for the first row end in `data` from `after` on, with OVERLAP_ROWS row starts before it; None if not yet."""
    end = _ROW_END.search(data, after)
    if end is None:
        return None
    starts = [m.start() for m in _ROW_START.finditer(data, max(end.end() - _KEEP, 0), end.end())]
    if len(starts) < OVERLAP_ROWS:
        return None
    start, last = starts[-OVERLAP_ROWS], starts[-1]
    first_number = _ROW_NUMBER.match(data, start)
    last_number = _ROW_NUMBER.match(data, last)
    if first_number is None or last_number is None:
        return None
    return end.end(), start, int(first_number.group(1)), int(last_number.group(1))
