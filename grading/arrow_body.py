"""A sheet's rows held column-wise in Arrow, read by the cleaning without a Python object per cell.

Large exports are read into Arrow columns (text exports: grading.read_text_arrow; large xlsx sheets:
grading.read_arrow). An ArrowBody holds the rows from `start` on in an Arrow table and the rows before
it (titles, the header, the first data rows) as Python lists in `head`. Whatever the cleaning asks
gives exactly what the same question gives on the Python values of every cell (`convert` turns an
Arrow array into them: text as str, empty cells as "", numbers as float, dates as date/datetime):

- `objects(col, start)`: the column from sheet row index `start` on, as an object array;
- `factorized(col, start)`: pandas.factorize of that column (distinct values in order of first
  appearance, Python equality), from Arrow's hashing plus one Python value per distinct value;
- `text_uniques(col, start)`: those distinct values still in Arrow, when they are the column's own strings;
- `cells(col, start, rows)`: the values at some rows only;
- `amounts(col, start)`: grading.amounts.parse_amounts of the column, numbers and number-like text
  parsed in Arrow, every other text once per distinct value by parse_amount.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .amounts import MAX_AMOUNT, NUMBER_TEXT, parse_amount, parse_amounts

_NUMBER = "^" + NUMBER_TEXT + "$"  # read as written by grading.amounts (plain or grouped digits)
Factorized = tuple[np.ndarray, np.ndarray]


def text_values(array: Any) -> np.ndarray:
    """Python values of an Arrow string array without nulls (a text export's cells)."""
    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=object)


@dataclass
class ArrowBody:
    """Rows `start` … of a sheet in `table` (one Arrow column per sheet column), the rows before in `head`."""

    start: int
    table: Any  # pyarrow.Table
    head: list[list[object]]
    convert: Callable[[Any], np.ndarray] = text_values
    _factorized: dict[tuple[int, int], Factorized] = field(default_factory=dict, init=False, repr=False,
                                                            compare=False)
    _columns: dict[int, Any] = field(default_factory=dict, init=False, repr=False, compare=False)
    _text_uniques: dict[tuple[int, int], Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def n_rows(self) -> int:
        return int(self.table.num_rows)

    @property
    def width(self) -> int:
        return int(self.table.num_columns)

    def _column(self, col: int) -> Any:
        """The column as one Arrow array (a sheet read in halves has two chunks: joined once)."""
        if col not in self._columns:
            column = self.table.column(col)
            self._columns[col] = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
        return self._columns[col]

    def _prefix(self, col: int, start: int) -> np.ndarray:
        """The head rows' values from `start` on (a row shorter than the table holds "" there)."""
        values = [r[col] if col < len(r) else "" for r in self.head[start:self.start]]
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out

    def objects(self, col: int, start: int) -> np.ndarray:
        codes, uniques = self.factorized(col, start)
        out: np.ndarray = uniques[codes] if len(uniques) else np.empty(0, dtype=object)
        return out

    def factorized(self, col: int, start: int) -> Factorized:
        key = (col, start)
        if key not in self._factorized:
            self._factorized[key] = self._factorize(col, start)
        return self._factorized[key]

    def text_uniques(self, col: int, start: int) -> Any:
        """The distinct values of factorized(col, start) as an Arrow string array (value i is uniques[i]) when
        they are the column's own strings: a text column without nulls (cells holding "" are fine) read from
        `start` ≥ the body's first row (no head rows among them); else None."""
        self.factorized(col, start)
        return self._text_uniques.get((col, start))

    def _factorize(self, col: int, start: int) -> Factorized:
        column = self._column(col)
        if start > self.start:
            column = column.slice(start - self.start)
        encoded = column.dictionary_encode(null_encoding="encode")
        distinct = self._convert_distinct(encoded.dictionary)  # one Python value per distinct Arrow value
        codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.intp)
        prefix = self._prefix(col, start) if start < self.start else np.empty(0, dtype=object)
        text = is_text(column.type) and column.null_count == 0  # distinct str already
        if not len(prefix) and (text or _distinct(distinct)):
            if text:
                self._text_uniques[(col, start)] = encoded.dictionary
            return codes, distinct
        # values the head shows first, and Arrow values that are equal as Python values (an empty cell and
        # "", -0.0 and 0.0): one distinct value each, in order of first appearance, as pandas.factorize
        head_codes, head_uniques = pd.factorize(prefix, use_na_sentinel=True)
        order = np.argsort(_first_seen(codes, len(distinct)), kind="stable")  # distinct values by first row
        if is_text(column.type) and _all_text(distinct):
            # text (no NaN among the values): pandas' hashing of the head's values then the column's, in that
            # order, is the loop below (Python's hash and ==), without a Python step per distinct value
            merged = np.empty(len(head_uniques) + len(distinct), dtype=object)
            merged[:len(head_uniques)] = head_uniques
            merged[len(head_uniques):] = distinct[order]
            ids, uniques_all = pd.factorize(merged, use_na_sentinel=True)
            remap = np.empty(len(distinct), dtype=np.intp)
            remap[order] = ids[len(head_uniques):]
            out = np.asarray(uniques_all, dtype=object)
            return np.concatenate([head_codes.astype(np.intp), remap[codes]]), out
        index: dict[object, int] = {}
        uniques: list[object] = []
        for value in head_uniques.tolist():
            index.setdefault(value, len(uniques))
            uniques.append(value)
        remap = np.empty(len(distinct), dtype=np.intp)
        for i in order.tolist():
            value = distinct[i]
            at = index.get(value)
            if at is None:
                at = index[value] = len(uniques)
                uniques.append(value)
            remap[i] = at
        out = np.empty(len(uniques), dtype=object)
        out[:] = uniques
        return np.concatenate([head_codes.astype(np.intp), remap[codes]]), out

    def _convert_distinct(self, dictionary: Any) -> np.ndarray:
        """`convert` of distinct Arrow values. Text: its strings as they are, without the converter's own
        pass to share one Python string among equal cells; the empty cell (null), if any, converted by it."""
        if not is_text(dictionary.type):
            return self.convert(dictionary)
        out = np.asarray(dictionary.to_numpy(zero_copy_only=False), dtype=object)
        if dictionary.null_count:
            nulls = dictionary.is_null()
            out[np.flatnonzero(np.asarray(nulls.to_numpy(zero_copy_only=False), dtype=bool))] = \
                self.convert(dictionary.filter(nulls))
        return out

    def cells(self, col: int, start: int, rows: np.ndarray) -> np.ndarray:
        """The values at rows `start + rows` (rows: indices into the column from `start`)."""
        out = np.empty(len(rows), dtype=object)
        if not len(rows):
            return out
        known = self._factorized.get((col, start))
        if known is not None:
            codes, uniques = known
            out[:] = uniques[codes[rows]]
            return out
        before = max(self.start - start, 0)
        head = rows < before
        if head.any():
            out[head] = self._prefix(col, start)[rows[head]]
        body = np.flatnonzero(~head)
        if len(body):
            at = rows[body] - before + max(start - self.start, 0)
            out[body] = self.convert(self._column(col).take(np.asarray(at, dtype=np.int64)))
        return out

    def row(self, index: int) -> list[object]:
        return self.rows_at(np.array([index], dtype=np.int64))[0]

    def rows_at(self, indices: np.ndarray) -> list[list[object]]:
        """The rows at sheet row indices `indices`, each as a list (a row of the head as it is)."""
        out: list[list[object]] = [[] for _ in range(len(indices))]
        body = np.flatnonzero(indices >= self.start)
        for i in np.flatnonzero(indices < self.start).tolist():
            out[i] = list(self.head[int(indices[i])])
        if len(body):
            at = np.asarray(indices[body] - self.start, dtype=np.int64)
            columns = [self.convert(self._column(c).take(at)).tolist() for c in range(self.width)]
            for i, values in zip(body.tolist(), zip(*columns)):
                out[i] = list(values)
        return out

    def any_text(self) -> bool:
        """Does any cell of the body hold something (text other than "", or any other value)?"""
        import pyarrow.compute as pc

        for column in self.table.columns:
            if is_text(column.type):
                if bool(pc.any(pc.not_equal(column, "")).as_py()):
                    return True
            elif column.null_count < len(column):
                return True
        return False

    def amounts(self, col: int, start: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """parse_amounts of the column from `start` on; None when its Arrow type is not text or float."""
        import pyarrow as pa

        column = self._column(col)
        if start > self.start:
            column = column.slice(start - self.start)
        if is_text(column.type):
            body = _text_amounts(column)
        elif pa.types.is_floating(column.type):
            body = _float_amounts(column)
        else:
            return None
        body[0][body[0] == 0] = 0.0  # "-0", -0.0: zero without a sign, as grading.amounts.parse_amounts gives it
        if start >= self.start:
            return body
        head = parse_amounts(self._prefix(col, start))
        nums, bad, repaired = (np.concatenate([h, b]) for h, b in zip(head, body))
        return nums, bad, repaired


def is_text(kind: Any) -> bool:
    """An Arrow string type (plain or large)."""
    import pyarrow as pa

    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _distinct(values: np.ndarray) -> bool:
    """Are the converted values distinct as Python values (nothing for the head-less path to merge)?"""
    seen = set()
    for v in values.tolist():
        if v in seen:
            return False
        seen.add(v)
    return True


def _first_seen(codes: np.ndarray, n: int) -> np.ndarray:
    """Row of the first appearance of each of `n` distinct values (given row → value codes)."""
    first = np.full(n, len(codes), dtype=np.int64)
    np.minimum.at(first, codes, np.arange(len(codes), dtype=np.int64))
    return first


def _all_text(values: np.ndarray) -> bool:
    """Every value a str (what a text column converts to): no NaN or None, where pandas' equality is not
    Python's."""
    return bool(pd.api.types.infer_dtype(values, skipna=False) == "string")


def _float_amounts(column: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """parse_amount of numeric cells: as they are within ±MAX_AMOUNT, else unreadable; empty cells NaN."""
    nums = np.array(column.fill_null(np.nan).to_numpy(zero_copy_only=False), dtype=float)
    valid = np.asarray(column.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    with np.errstate(invalid="ignore"):
        beyond = valid & (~np.isfinite(nums) | (np.abs(nums) > MAX_AMOUNT))
    nums[beyond] = np.nan
    nums[~valid] = np.nan
    return nums, beyond, np.zeros(len(nums), dtype=bool)


def _text_amounts(texts: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """parse_amounts of text cells: numbers written plainly or grouped (`1234.5`, `1,234.50`) parsed by Arrow
    (correctly rounded, as Python's float()), every other text once per distinct value by parse_amount."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(texts)
    nums = np.full(n, np.nan)
    bad = np.zeros(n, dtype=bool)
    repaired = np.zeros(n, dtype=bool)
    matched = pc.match_substring_regex(texts, _NUMBER)
    number = np.asarray(matched.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
    idx = np.flatnonzero(number)
    if len(idx):
        plain = texts if len(idx) == n else pc.filter(texts, matched.fill_null(False))
        plain = pc.replace_substring(plain, ",", "")
        if pc.any(pc.starts_with(plain, "+")).as_py():
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
        results = [parse_amount("" if t is None else t) for t in encoded.dictionary.to_pylist()]
        codes = np.asarray(encoded.indices.fill_null(len(results)).to_numpy(zero_copy_only=False), dtype=np.intp)
        results.append(parse_amount(""))
        nums[rest] = np.array([r[0] for r in results], dtype=float)[codes]
        bad[rest] = np.array([r[1] for r in results], dtype=bool)[codes]
        repaired[rest] = np.array([r[2] for r in results], dtype=bool)[codes]
    return nums, bad, repaired
