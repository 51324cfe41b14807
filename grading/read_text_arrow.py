"""Large text exports (CSV/TSV) read column-wise into Arrow, giving the very cells pandas' C parser gives.

pandas' C parser (the path before this one) builds one Python string per cell: a 1,000,000-line export
of 11 columns is 11 M objects. pyarrow's CSV reader parses on both cores into string columns instead,
and the cleaning then touches Python objects only once per distinct value (codes, names, dates) or
not at all (amounts are parsed in Arrow, see `ArrowBody.amounts`).

The file is read in two parts:

- the head, the records up to the last one of the first lines whose width is not the table's (titles,
  blank lines, a short note above the header): by Python's csv module, as lists;
- the body, every record from there on, by pyarrow with exactly `width` string columns. A record of
  another width anywhere in the body (a blank line, a ragged row), bytes that do not decode, or any
  other error, and an odd number of quote characters (one left open at the end, which pyarrow would
  take, or a lone one inside a cell): None is returned and the caller reads the file as before.

Cells are the texts as written ("" for an empty cell), quotes removed and doubled quotes undone.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .amounts import MAX_AMOUNT, parse_amount

PROBE_BYTES = 200_000  # the head is looked for in this many first bytes
# a plain number, or one with commas between groups of three digits (grading.amounts reads both as written)
_NUMBER = r"^[+-]?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?$"


@dataclass
class ArrowBody:
    """Rows `start` … of a sheet, one Arrow string column per sheet column."""

    start: int
    table: Any  # pyarrow.Table
    _factorized: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict, init=False, repr=False, compare=False)

    @property
    def n_rows(self) -> int:
        return int(self.table.num_rows)

    @property
    def width(self) -> int:
        return int(self.table.num_columns)

    def _slice(self, col: int, offset: int) -> Any:
        return self.table.column(col).slice(offset).combine_chunks()

    def factorized(self, col: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
        """pandas.factorize of the column from body row `offset` on: (row → distinct index, the distinct
        texts in order of first appearance), made by Arrow's hashing without a Python object per cell."""
        key = (col, offset)
        if key not in self._factorized:
            encoded = self._slice(col, offset).dictionary_encode()
            uniques = np.asarray(encoded.dictionary.to_numpy(zero_copy_only=False), dtype=object)
            codes = np.asarray(encoded.indices.to_numpy(), dtype=np.intp)
            self._factorized[key] = (codes, uniques)
        return self._factorized[key]

    def objects(self, col: int, offset: int) -> np.ndarray:
        """The column from body row `offset` on as an object array of str (one object per distinct text)."""
        codes, uniques = self.factorized(col, offset)
        out: np.ndarray = uniques[codes] if len(uniques) else np.empty(0, dtype=object)
        return out

    def cells(self, col: int, offset: int, rows: np.ndarray) -> np.ndarray:
        """The cells at body rows `offset + rows` (rows: indices into the slice), as an object array."""
        out = np.empty(len(rows), dtype=object)
        if not len(rows):
            return out
        known = self._factorized.get((col, offset))
        if known is not None:
            codes, uniques = known
            out[:] = uniques[codes[rows]]
            return out
        out[:] = self._slice(col, offset).take(np.asarray(rows, dtype=np.int64)).to_pylist()
        return out

    def row(self, offset: int) -> list[object]:
        return [self.table.column(c)[offset].as_py() for c in range(self.width)]

    def any_text(self) -> bool:
        import pyarrow.compute as pc

        return any(bool(pc.any(pc.not_equal(column, "")).as_py()) for column in self.table.columns)

    def amounts(self, col: int, offset: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """grading.amounts.parse_amounts of the column from body row `offset` on: (floats, unreadable mask,
        repaired mask). Texts written as plain or grouped numbers (`1234.5`, `1,234.50`) are parsed by
        Arrow (correctly rounded, as Python's float()); every other text goes through parse_amount once
        per distinct value. Limits are those of parse_amount: beyond ±MAX_AMOUNT is unreadable."""
        import pyarrow as pa
        import pyarrow.compute as pc

        texts = self._slice(col, offset)
        n = len(texts)
        nums = np.full(n, np.nan)
        bad = np.zeros(n, dtype=bool)
        repaired = np.zeros(n, dtype=bool)
        number = np.asarray(pc.match_substring_regex(texts, _NUMBER).to_numpy(zero_copy_only=False), dtype=bool)
        idx = np.flatnonzero(number)
        if len(idx):
            plain = pc.replace_substring(texts.take(pa.array(idx)), ",", "")
            plain = pc.replace_substring_regex(plain, r"^\+", "")
            values = np.array(pc.cast(plain, pa.float64()).to_numpy(zero_copy_only=False), dtype=float)
            with np.errstate(invalid="ignore"):
                beyond = ~np.isfinite(values) | (np.abs(values) > MAX_AMOUNT)
            values[beyond] = np.nan
            nums[idx] = values
            bad[idx[beyond]] = True
        rest = np.flatnonzero(~number)
        if len(rest):
            encoded = texts.take(pa.array(rest)).dictionary_encode()
            results = [parse_amount(t) for t in encoded.dictionary.to_pylist()]
            codes = np.asarray(encoded.indices.to_numpy(), dtype=np.intp)
            nums[rest] = np.array([r[0] for r in results], dtype=float)[codes]
            bad[rest] = np.array([r[1] for r in results], dtype=bool)[codes]
            repaired[rest] = np.array([r[2] for r in results], dtype=bool)[codes]
        return nums, bad, repaired


def read_body(raw: bytes, encoding: str, delimiter: str,
              width: int) -> tuple[list[list[object]], ArrowBody] | None:
    """(the head records as lists, the body) of a text export, or None: read it the usual way.

    `encoding` is "utf-8", "utf-8-sig" or "gb18030" (nothing else is taken here); `width` the widest
    record among the first lines."""
    if encoding not in ("utf-8", "utf-8-sig", "gb18030") or width < 2:
        return None
    try:
        import pyarrow as pa
        import pyarrow.csv as pcsv
    except ImportError:
        return None
    bom = 3 if encoding == "utf-8-sig" else 0
    head = _head(raw, bom, encoding, delimiter, width)
    if head is None:
        return None
    records, offset = head
    body_bytes = memoryview(raw)[offset:]
    if raw.count(b'"', offset) % 2:  # a quote left open at the end (pyarrow would take it), or a lone one
        return None
    names = [f"c{i}" for i in range(width)]
    # GB18030 is decoded by Python's codec in pyarrow's reading thread (strict: a bad byte fails the read),
    # block by block while the parsing threads work, instead of a whole UTF-8 copy first
    codec = {"encoding": "gb18030"} if encoding == "gb18030" else {}
    try:
        table = pcsv.read_csv(
            pa.BufferReader(pa.py_buffer(body_bytes)),
            read_options=pcsv.ReadOptions(column_names=names, use_threads=True, block_size=8 << 20, **codec),
            parse_options=pcsv.ParseOptions(delimiter=delimiter, newlines_in_values=True, ignore_empty_lines=False),
            convert_options=pcsv.ConvertOptions(column_types={name: pa.string() for name in names},
                                                strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
    except Exception:  # a record of another width, bad UTF-8, anything: the careful path reads the file
        return None
    if table.num_rows == 0:
        return None
    return records, ArrowBody(len(records), table)


def _head(raw: bytes, bom: int, encoding: str, delimiter: str,
          width: int) -> tuple[list[list[object]], int] | None:
    """The records before the body (every one up to the last record of another width than `width` among
    the first PROBE_BYTES), and the byte offset where the body starts."""
    end = raw.rfind(b"\n", 0, PROBE_BYTES)
    if end < 0:
        return None
    lines = raw[bom:end + 1].splitlines(keepends=True)
    consumed = [bom]
    codec = "gb18030" if encoding == "gb18030" else "utf-8"

    def feed() -> Iterator[str]:
        for line in lines:
            consumed[0] += len(line)
            yield line.decode(codec)

    offsets: list[int] = []  # byte offset of each record's start
    records: list[list[str]] = []
    try:
        reader = csv.reader(feed(), delimiter=delimiter)
        while True:
            offsets.append(consumed[0])
            try:
                records.append(next(reader))
            except StopIteration:
                offsets.pop()
                break
    except (UnicodeDecodeError, csv.Error):
        return None
    if len(records) < 2:
        return None
    # the last record read may be cut by the probe's end (a quoted line break): it never counts
    other = [i for i, r in enumerate(records[:-1]) if len(r) != width]
    k = other[-1] + 1 if other else 0
    if k >= len(records) - 1:
        return None
    return [list(r) for r in records[:k]], offsets[k]
