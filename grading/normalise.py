"""Stage 2, normalise: raw rows + layout → a typed DataFrame of canonical fields.

Every row that is dropped (unusable date/amount/code, 合计/小计 rows) or
repaired (padded or full-width codes, "(1,234.00)" negatives, "¥" signs) is
recorded as a Problem with file, sheet, row number, column and value.

Speed: columns are pulled out with itemgetter, and every conversion that
needs Python (codes, names, text dates) runs once per *distinct* value
(pandas.factorize), not once per row; numbers go through pandas.to_numeric.
"""

from __future__ import annotations

import re
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from .amounts import parse_amount, parse_amounts
from .codes import FIX_REASONS, FLOAT_NOTE, label_ids, normalise_codes, plain_in_arrow
from .dates import DateFormat, order_note, parse_dates
from .derive import UNDERIVABLE
from .fields import InputField
from .header import Layout
from .problems import Action, Problem, add_problem_rows
from .read import RawSheet
from .sheet_cells import matches

_TOTAL_EXACT = re.compile(r"^\s*(本页|本期|总|全部)?\s*(合\s*计|小\s*计|总\s*计|累\s*计)\s*([:：].*)?$")
_TOTAL_SUFFIX = re.compile(r"^.{1,40}?\s*(小计|合计)\s*[:：]?\s*$")
MONEY_FIELDS = ("amount", "amount_excl_tax", "opening", "billed", "received", "closing")


Factorized = tuple[np.ndarray, np.ndarray]
"""pandas.factorize of a column: (row → distinct index, -1 for None/NaN; the distinct values)."""


def _per_distinct(values: np.ndarray, fn: Callable[[Any], Any], dtype: Any = object,
                  factorized: Factorized | None = None) -> tuple[np.ndarray, np.ndarray]:
    """fn applied once per distinct value; returns (results per distinct value, row → distinct index,
    -1 for None/NaN). `factorized`: the column's factorization when the caller has it already."""
    codes, uniques = factorized if factorized is not None else pd.factorize(values, use_na_sentinel=True)
    mapped = np.empty(len(uniques), dtype=dtype)
    mapped[:] = [fn(u) for u in uniques.tolist()]
    return mapped, codes


def _take(mapped: np.ndarray, codes: np.ndarray, missing: Any) -> np.ndarray:
    """mapped[codes], `missing` where a code is -1 (codes as pandas.factorize gives them, -1 … len − 1: one take,
    -1 reads the appended `missing`)."""
    extended = np.empty(len(mapped) + 1, dtype=mapped.dtype)
    extended[:-1] = mapped
    extended[-1] = missing
    out: np.ndarray = extended[codes]
    return out


def blank_mask(values: np.ndarray, factorized: Factorized | None = None) -> np.ndarray:
    mapped, codes = _per_distinct(values, _is_blank, dtype=bool, factorized=factorized)
    return _take(mapped, codes, True)


def _blank_of(factorized: Factorized) -> np.ndarray:
    """blank_mask of a column given as its factorization."""
    mapped, codes = _per_distinct(np.empty(0, dtype=object), _is_blank, dtype=bool, factorized=factorized)
    return _take(mapped, codes, True)


class Cells:
    """One sheet column from the first data row on. Its values are built only when something needs them
    all: a text export read into Arrow gives its factorization, the cells at given rows and its amounts
    without a Python object per cell (grading.read.RawSheet.factorized / cells / amounts)."""

    def __init__(self, sheet: RawSheet, col: int, start: int, n: int) -> None:
        self.sheet, self.col, self.start, self.n = sheet, col, start, n
        self._values: np.ndarray | None = None

    def __len__(self) -> int:
        return self.n

    @property
    def values(self) -> np.ndarray:
        if self._values is None:
            self._values = self.sheet.column(self.col, self.start)
        return self._values

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        """The cells at `rows` (indices or a mask) as an object array."""
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        if self._values is None:
            got = self.sheet.cells(self.col, self.start, rows)
            if got is not None:
                return got
        out: np.ndarray = self.values[rows]
        return out

    def at(self, row: int) -> object:
        return self[np.array([row], dtype=np.intp)][0]

    def factorized(self) -> Factorized:
        known = self.sheet.factorized(self.col, self.start)
        return known if known is not None else pd.factorize(self.values, use_na_sentinel=True)

    def text_uniques(self) -> Any:
        """factorized()'s distinct values as an Arrow string array when the sheet holds them so, else None."""
        return self.sheet.text_uniques(self.col, self.start)

    def amounts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        known = self.sheet.amounts(self.col, self.start)
        return known if known is not None else _numbers(self.values)


def fast_categorical(codes: np.ndarray, categories: np.ndarray) -> pd.Categorical:
    """pd.Categorical.from_codes for codes known valid (-1 … len-1) and categories known distinct (as
    pandas.factorize gives them): neither is checked again (both checks hash every category)."""
    index = pd.Index(categories, dtype=object)
    from_fastpath = getattr(pd.CategoricalDtype, "_from_fastpath", None)
    dtype = from_fastpath(index, False) if from_fastpath is not None else pd.CategoricalDtype(index)
    small = next((t for t in (np.int8, np.int16, np.int32) if len(index) < np.iinfo(t).max), np.int64)
    return pd.Categorical.from_codes(codes.astype(small, copy=False), dtype=dtype, validate=False)


def normalise(sheet: RawSheet, layout: Layout, fields: Sequence[InputField],
              problems: list[Problem], keep_extra: bool = False, date_format: DateFormat | None = None,
              source_key: str = "sales", notes: list[str] | None = None) -> pd.DataFrame:
    """Typed frame with one column per mapped field plus _file, _sheet, _row;
    with `keep_extra`, every other headed column too, as `col:<header>` (raw values).
    Text dates follow `date_format` or the order the column's values show; an undecidable
    order is said once (a 提示 problem, and a line in `notes` for the first screen)."""
    start = layout.data_start
    n = max(sheet.n_rows - start, 0)
    kinds: dict[str, str] = {f.key: f.kind for f in fields}
    raw = {key: Cells(sheet, col, start, n) for key, col in layout.columns.items()}
    # amounts of an Arrow body are parsed by Arrow kernels, which release the GIL: in a thread, beside the rest
    numbers = [k for k in raw if kinds[k] == "number"] if sheet.body is not None else []
    with ThreadPoolExecutor(max_workers=1) if numbers else nullcontext() as pool:
        amounts = {k: pool.submit(raw[k].amounts) for k in numbers} if pool is not None else {}
        return _normalise(sheet, layout, problems, keep_extra, date_format, source_key, notes, raw, kinds, amounts)


def _normalise(sheet: RawSheet, layout: Layout, problems: list[Problem], keep_extra: bool,
               date_format: DateFormat | None, source_key: str, notes: list[str] | None, raw: dict[str, Cells],
               kinds: dict[str, str], amounts: dict[str, Future[tuple[np.ndarray, np.ndarray, np.ndarray]]]
               ) -> pd.DataFrame:
    start = layout.data_start
    n = max(sheet.n_rows - start, 0)
    file, name = sheet.file.name, sheet.sheet
    first = sheet.first_row + layout.data_start
    row_numbers = np.arange(first, first + n, dtype=np.int64)
    header_of = {k: layout.headers[c] for k, c in layout.columns.items()}
    factorized: dict[int, Factorized] = {}  # per sheet column: factorized once, used by every step below
    in_arrow: dict[int, Any] = {}  # per sheet column: its distinct values as Arrow strings, or None

    def distinct(col: int, values: Cells) -> Factorized:
        if col not in factorized:
            factorized[col] = values.factorized()
            in_arrow[col] = values.text_uniques()
        return factorized[col]

    def distinct_of(key: str) -> Factorized:
        return distinct(layout.columns[key], raw[key])

    def report(mask: np.ndarray, column: str, values: Cells, reason: str, action: Action) -> None:
        idx = np.flatnonzero(mask)
        add_problem_rows(problems, file, name, row_numbers[idx], column, values[idx], reason, action, _show)

    # a row is blank when every mapped cell is; test the (few-valued) code column on all rows first,
    # then the other columns only where that one is blank
    ordered = sorted(raw, key=lambda k: k != "customer_code")
    blank = _blank_of(distinct_of(ordered[0])) if ordered else np.ones(n, bool)
    for key in ordered[1:]:
        idx = np.flatnonzero(blank)
        if not len(idx):
            break
        blank[idx] = blank_mask(raw[key][idx])
    keep = ~blank

    # 合计 / 小计 rows: recognised by their label, never by substring of a real name.
    mapped_col = {col: key for key, col in layout.columns.items()}
    first_col = raw[mapped_col[0]] if 0 in mapped_col else Cells(sheet, 0, start, n)
    label_cols = [(0, first_col)] + [(layout.columns[k], raw[k]) for k in ("customer_code", "customer_name")
                                     if k in raw]
    candidate = np.zeros(n, bool)
    for col, values in dict(label_cols).items():
        codes, uniques = distinct(col, values)
        candidate |= _take(_containing(uniques, "计", in_arrow[col]), codes, False)
    # a candidate row is a total when its first non-empty cell, its code or its name is a 合计 label, or
    # its code ends in 小计/合计 without looking like a code: each tested once per distinct value
    total = np.zeros(n, bool)
    codes_raw = raw.get("customer_code")
    rows = np.flatnonzero(candidate & keep)
    if len(rows):
        def exact(t: str) -> bool:
            return bool(t) and _TOTAL_EXACT.match(t) is not None

        def suffix(t: str) -> bool:
            return _TOTAL_SUFFIX.match(t) is not None and not _looks_like_code(t)

        codes0, uniques0 = distinct(0, first_col)
        blank0 = np.append(uniques0 == "", True)[codes0[rows]]  # "" or None: the first text is further right
        first_texts = np.empty(len(rows), dtype=object)  # _first_text of each candidate row
        texts0 = np.empty(len(uniques0) + 1, dtype=object)
        used0 = np.unique(codes0[rows[~blank0]])
        texts0[used0] = [_text(u) for u in uniques0[used0].tolist()]
        first_texts[~blank0] = texts0[codes0[rows[~blank0]]]
        first_texts[blank0] = [_first_text(r) for r in sheet.rows_at(start + rows[blank0])]
        hit = _flags(*pd.factorize(first_texts, use_na_sentinel=True), exact)
        if codes_raw is not None:
            codes_c, uniques_c = distinct_of("customer_code")
            hit |= _flags(codes_c[rows], uniques_c, lambda t: exact(t) or suffix(t))
        if "customer_name" in raw:
            codes_n, uniques_n = distinct_of("customer_name")
            hit |= _flags(codes_n[rows], uniques_n, exact)
        total[rows[hit]] = True
        if hit.any():  # listed columnar, labelled by the first text (else the code)
            labels = first_texts[hit]
            for j in np.flatnonzero(labels == "").tolist():
                labels[j] = _text(codes_raw.at(int(rows[hit][j]))) if codes_raw is not None else ""
            add_problem_rows(problems, file, name, row_numbers[rows[hit]], "", labels, "合计/小计行，不计入客户数据",
                             "提示")
    keep &= ~total

    out: dict[str, Any] = {}
    for key, values in raw.items():
        kind = kinds[key]
        column = header_of[key]
        if kind == "code":
            known = distinct_of(key)
            arrow = in_arrow[layout.columns[key]]
            text, fixes = _codes(None, known, None if arrow is None else plain_in_arrow(arrow))
            for fix, reason in FIX_REASONS.items():
                repaired = fixes.rows(fix)
                if repaired is not None:
                    report(keep & repaired, column, values, reason, "已修正")
            float_rows = fixes.rows("float")
            floats = np.flatnonzero(keep & float_rows) if float_rows is not None else np.empty(0, dtype=np.intp)
            if len(floats):
                i = int(floats[0])
                note = FLOAT_NOTE.format(example=_show(values.at(i)), fixed=text[i])
                problems.append(Problem(file, name, None, column, "", f"{note}，共 {len(floats)} 行", "提示"))
            out[key] = text
        elif kind == "text":
            out[key] = _texts(None, distinct_of(key))
        elif kind == "number":
            nums, bad, repaired = amounts[key].result() if key in amounts else values.amounts()
            nums = nums * layout.multipliers.get(key, 1.0)
            report(keep & repaired, column, values, "金额写法特殊（括号负数/货币符号），已按数值读取", "已修正")
            if key in MONEY_FIELDS:
                out[key] = nums
                out[f"_{key}_bad"] = bad
                out[f"_{key}_empty"] = keep & np.isnan(nums) & ~bad
                out[f"_{key}_raw"] = _raw_where(values, bad)
            else:
                report(keep & bad, column, values, "不是有效数字，按空值处理", "已修正")
                out[key] = nums
        elif kind == "date":
            dates, bad, finding = parse_dates(None, date_format, distinct_of(key))
            order_text = order_note(finding, column, source_key)
            if order_text is not None:
                problems.append(Problem(file, name, None, column, "", order_text, "提示"))
                if notes is not None:
                    notes.append(f"{file} / {name}：{order_text}")
            out[key] = dates
            out[f"_{key}_bad"] = bad
            out[f"_{key}_empty"] = _date_blank(values, bad)
            out[f"_{key}_raw"] = _raw_where(values, bad)
    # the columns stay the arrays made above (copy=False): consolidating them into 2-D blocks copies every
    # number and flag column again (0.5 s at 3 M lines) for no later step that needs it
    frame = pd.DataFrame(out, index=pd.RangeIndex(n), copy=False)
    if keep_extra:
        mapped_cols = set(layout.columns.values())
        for col, header in enumerate(layout.headers):
            if col not in mapped_cols and header and f"col:{header}" not in frame:
                extra = sheet.column(col, start)
                frame[f"col:{header}"] = pd.Series([v.strip() if isinstance(v, str) else v for v in extra],
                                                   dtype=object)
    frame["_file"] = pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), categories=pd.Index([file]))
    frame["_sheet"] = pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), categories=pd.Index([name]))
    frame["_row"] = row_numbers
    frame["_keep"] = keep
    return frame


def drop_invalid(frame: pd.DataFrame, layout: Layout, required: Sequence[str],
                 problems: list[Problem], optional_dates: Sequence[str] = (),
                 amount_key: str | None = None) -> pd.DataFrame:
    """Drop rows whose required fields are unusable (or whose optional dates are written but
    unreadable), each listed with its reason (and, with `amount_key`, the line's amount)."""
    keep = frame["_keep"].to_numpy().copy()
    header_of = {k: layout.headers[c] for k, c in layout.columns.items()}
    checks: list[tuple[np.ndarray, str, str]] = []
    if "customer_code" in required and "customer_code" in frame:
        checks.append((_empty_text(frame["customer_code"]), "customer_code", "客户编码为空"))
    for key in required:
        if f"_{key}_bad" in frame:
            label = "日期无法识别（支持 2026-05-03、2026/5/3、2026年5月3日、Excel 日期）" if key == "date" \
                else "金额不是有效数字"
            checks.append((frame[f"_{key}_bad"].to_numpy(), key, label))
        if f"_{key}_empty" in frame and key != "date":
            checks.append((frame[f"_{key}_empty"].to_numpy(), key, "金额为空"))
        if f"_{key}_underivable" in frame:
            checks.append((frame[f"_{key}_underivable"].to_numpy(dtype=bool), key, UNDERIVABLE))
    for key in optional_dates:
        if f"_{key}_bad" in frame:
            written_bad = frame[f"_{key}_bad"].to_numpy() & ~frame[f"_{key}_empty"].to_numpy()
            checks.append((written_bad, key, "日期无法识别（支持 2026-05-03、2026/5/3、2026年5月3日、Excel 日期）"))
    where: list[tuple[np.ndarray, np.ndarray]] = []  # _file, _sheet as (codes, labels), taken once when a check hits
    for mask, key, reason in checks:
        hit = keep & mask
        if hit.any():
            col = header_of.get(key, key)
            source = frame[f"_{key}_raw"].to_numpy() if f"_{key}_raw" in frame else None
            where = where or [label_ids(frame[c]) for c in ("_file", "_sheet")]
            (files, file_labels), (sheets, sheet_labels) = where
            rows = frame["_row"].to_numpy()
            amounts = frame[amount_key].to_numpy(dtype=float) if amount_key in frame else None
            idx = np.flatnonzero(hit)
            for f, sh in dict.fromkeys(zip(files[idx].tolist(), sheets[idx].tolist())):
                part = idx[(files[idx] == f) & (sheets[idx] == sh)]
                values = source[part] if source is not None else np.full(len(part), None, dtype=object)
                add_problem_rows(problems, str(file_labels[f]), str(sheet_labels[sh]), rows[part], col, values, reason,
                                 "已跳过", _shown_raw, None if amounts is None else amounts[part])
            keep &= ~mask
    helper = [c for c in frame.columns if c.startswith("_") and c not in ("_file", "_sheet", "_row")]
    kept = frame.drop(columns=helper)  # before the rows are taken: the helper columns are not copied
    return kept if keep.all() else kept.loc[keep].reset_index(drop=True)


def _empty_text(column: pd.Series) -> np.ndarray:
    """column.eq("") as a mask; a categorical's categories are compared once (missing → False)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        empty = np.append(np.asarray(column.cat.categories, dtype=object) == "", False)
        out: np.ndarray = empty[column.cat.codes.to_numpy()]
        return out
    return column.eq("").to_numpy(dtype=bool)


def _flags(codes: np.ndarray, uniques: np.ndarray, test: Callable[[str], bool]) -> np.ndarray:
    """test(_text(value)) per row given as factorize codes (-1: None/NaN, whose text is ""), once per
    distinct value that occurs."""
    used = np.unique(codes[codes >= 0])
    flags = np.zeros(len(uniques) + 1, dtype=bool)  # the last one: code -1
    flags[used] = [test(_text(u)) for u in uniques[used].tolist()]
    flags[-1] = test("")
    out: np.ndarray = flags[codes]
    return out


def _shown_raw(raw: object) -> str:
    return "" if raw is None or (isinstance(raw, float) and np.isnan(raw)) else str(raw)


def _date_blank(values: Cells, bad: np.ndarray) -> np.ndarray:
    """Blank cells among the unreadable dates (only those can be blank)."""
    out = np.zeros(len(values), bool)
    idx = np.flatnonzero(bad)
    if len(idx):
        out[idx] = blank_mask(values[idx])
    return out


def _raw_where(values: Cells, mask: np.ndarray) -> pd.Series:
    """The cells at `mask` as shown in a problem (None elsewhere); kept as objects: no text column is made
    of them (pandas would turn them into an Arrow string column, a pass over every row)."""
    out = np.empty(len(values), dtype=object)
    idx = np.flatnonzero(mask)
    out[idx] = [_show(v) for v in values[idx].tolist()]
    return pd.Series(out, dtype=object, copy=False)


def _first_text(row: list[object]) -> str:
    for v in row:
        if v not in ("", None):
            return _text(v)
    return ""


def _containing(values: np.ndarray, text: str, arrow: Any = None) -> np.ndarray:
    """isinstance(v, str) and text in v, per value: by Arrow when every value is text (or None); `arrow`: the
    values as an Arrow string array already (grading.arrow_body.ArrowBody.text_uniques), when there is one."""
    if arrow is not None:
        return matches(arrow, text)
    items = values.tolist()
    if set(map(type, items)) <= {str, type(None)}:
        try:
            return matches(pa.array(items, type=pa.string()), text)
        except (UnicodeError, pa.ArrowException):  # a lone surrogate is no UTF-8
            pass
    return np.array([isinstance(v, str) and text in v for v in items], dtype=bool)


def _is_blank(v: object) -> bool:
    return v is None or (isinstance(v, str) and not v.strip()) or (isinstance(v, float) and np.isnan(v))


def _text(v: object) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def _looks_like_code(text: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9._-]+", text))


def _show(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _categorical(mapped: np.ndarray, codes: np.ndarray) -> pd.Categorical:
    """Row values as a categorical (compact: one string per distinct value); missing → ""."""
    labels = np.append(mapped, "")  # code -1 (None/NaN) → the trailing ""
    fine, categories = pd.factorize(labels)  # normalisation may have merged distinct raw values
    return fast_categorical(fine[codes], categories)


def _distinct_categorical(uniques: np.ndarray, codes: np.ndarray) -> pd.Categorical:
    """_categorical(uniques, codes) when the values are factorize's distinct uniques, unchanged (so none
    merge): the categories are the uniques, then "" if it is not one of them; no second factorize."""
    empty = np.flatnonzero(uniques == "")
    missing = int(empty[0]) if len(empty) else len(uniques)
    categories = uniques if len(empty) else np.append(uniques, "")
    return fast_categorical(np.where(codes >= 0, codes, missing), categories)


def _texts(values: np.ndarray | None, factorized: Factorized | None = None) -> pd.Categorical:
    """A text column (_text of every cell) as a categorical; when every distinct value is already its own
    text (_text gives the very same str back: no padding), the distinct values are the categories."""
    mapped, codes = _per_distinct(np.empty(0, dtype=object) if values is None else values, _text,
                                  factorized=factorized)
    uniques = factorized[1] if factorized is not None else None
    if uniques is not None and all(a is b for a, b in zip(mapped.tolist(), uniques.tolist())):
        return _distinct_categorical(uniques, codes)
    return _categorical(mapped, codes)


@dataclass(frozen=True)
class CodeFixes:
    """How each row's code was repaired ("" as written), held per distinct value: kinds[codes[row]]."""

    kinds: np.ndarray | None  # object: the repair of each distinct value; None: every one as written
    codes: np.ndarray  # each row's distinct value (-1: an empty cell, as written)

    def rows(self, fix: str) -> np.ndarray | None:
        """Which rows `fix` repaired; None when it repaired none."""
        if self.kinds is None:
            return None
        hit = self.kinds == fix
        return _take(hit, self.codes, False) if hit.any() else None


def _codes(values: np.ndarray | None, factorized: Factorized | None = None,
           plain: np.ndarray | None = None) -> tuple[pd.Categorical, CodeFixes]:
    """Codes by the one rule of grading.codes, and how each row was repaired. `plain`: which distinct values
    are plain codes, when known (grading.codes.normalise_codes)."""
    if factorized is None:
        assert values is not None
        factorized = pd.factorize(values, use_na_sentinel=True)
    codes, uniques = factorized
    texts, fixed = normalise_codes(uniques, plain)
    # every code as written (the common case): the distinct values are the categories already
    cat = _distinct_categorical(uniques, codes) if texts is uniques else _categorical(texts, codes)
    return cat, CodeFixes(fixed, codes)


def _number(v: object) -> tuple[float, bool, bool]:
    """(value, bad, repaired) for one cell (see grading.amounts)."""
    return parse_amount(v)


def _numbers(values: Sequence[object] | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Floats (NaN for empty), a mask of unparseable cells, a mask of repaired ones (see grading.amounts)."""
    return parse_amounts(values)


def _dates(values: Sequence[object] | np.ndarray,
           configured: DateFormat | None = None) -> tuple[pd.Series, np.ndarray]:
    dates, bad, _ = parse_dates(values, configured)
    return dates, bad
