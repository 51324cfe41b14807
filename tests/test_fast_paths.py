"""Fast paths of the hot loop (issue #15) against the reference they replace: same results by construction,
checked here on generated values."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from pandas.api.types import union_categoricals

from grading.load import concat_frames

_LABELS = st.sampled_from(["", "A", "a", "00123", "123", "客户甲", "客户乙", " x", "17850", "Ｂ"])


def _part(values: list[str | None]) -> pd.Series:
    cat = pd.Categorical(values, categories=pd.Index(list(dict.fromkeys(v for v in values if v is not None)),
                                                     dtype=object))
    return pd.Series(cat)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.one_of(st.none(), _LABELS), max_size=8), min_size=2, max_size=4))
def test_concat_frames_categoricals_match_union_categoricals(parts_values: list[list[str | None]]) -> None:
    parts = [_part(v) for v in parts_values]
    got = concat_frames([pd.DataFrame({"c": p}) for p in parts])["c"]
    want = union_categoricals([p.astype(pd.CategoricalDtype(p.cat.categories.astype(object))) for p in parts],
                              ignore_order=True)
    assert isinstance(got.dtype, pd.CategoricalDtype)
    assert got.cat.categories.dtype == object
    assert got.cat.categories.tolist() == want.categories.tolist()
    assert got.cat.codes.tolist() == want.codes.tolist()
    assert got.cat.codes.dtype == want.codes.dtype
    assert got.astype(object).where(got.notna(), None).tolist() == \
        [v for values in parts_values for v in values]


def test_concat_frames_mixed_columns_kept() -> None:
    a = pd.DataFrame({"c": _part(["x", "y"]), "n": [1.0, 2.0]})
    b = pd.DataFrame({"c": _part(["y", None, "z"])})
    out = concat_frames([a, b])
    assert out["c"].cat.categories.tolist() == ["x", "y", "z"]
    assert out["c"].astype(object).where(out["c"].notna(), None).tolist() == ["x", "y", "y", None, "z"]
    assert np.isnan(out["n"].to_numpy(dtype=float)[2:]).all()


# code cells: the bulk path against the per-value rule it stands for

import grading.codes  # noqa: E402
from grading.codes import normalise_code, normalise_codes  # noqa: E402
from grading.normalise import CodeFixes, _categorical, _codes, _take  # noqa: E402

_CELL_TEXT = st.one_of(
    st.text(alphabet="AZaz09", max_size=6),
    st.text(alphabet="AZ09 -.+\u3000\u200b\ufeff\u00adＡ１\t", max_size=6),
    st.sampled_from(["", " ", "17850.0", "+12.00", "00123", "客户甲", " 客户甲 ", "C00001 小计", "ß", "Ⅻ"]),
)
_CELL = st.one_of(_CELL_TEXT, st.none(), st.booleans(), st.integers(-10**6, 10**6),
                  st.floats(allow_nan=True, allow_infinity=False, width=32))


def _distinct(values: list[object]) -> np.ndarray:
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    return pd.factorize(arr, use_na_sentinel=True)[1]


def _column(values: list[object]) -> np.ndarray:
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    return arr


def _same_categorical(got: pd.Categorical, want: pd.Categorical) -> None:
    assert got.categories.dtype == want.categories.dtype == object
    assert got.categories.tolist() == want.categories.tolist()
    assert [type(c) for c in got.categories] == [type(c) for c in want.categories]
    assert got.codes.tolist() == want.codes.tolist()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_CELL, _CELL_TEXT), max_size=30))
def test_normalise_codes_matches_normalise_code(values: list[object]) -> None:
    uniques = _distinct(values)
    want = [normalise_code(u) for u in uniques]
    block = grading.codes._BLOCK
    try:
        for size in (block, 3):  # small blocks: values in passing and in failing blocks
            grading.codes._BLOCK = size
            texts, fixes = normalise_codes(uniques)
            listed = fixes.tolist() if fixes is not None else [""] * len(uniques)
            assert [(t, f) for t, f in zip(texts.tolist(), listed)] == want
            assert fixes is not None or all(f == "" for _, f in want)  # None: every code as written
            assert all(type(t) is str for t in texts.tolist())
    finally:
        grading.codes._BLOCK = block


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_CELL, _CELL_TEXT), max_size=12))
def test_codes_column_matches_the_per_value_rule(values: list[object]) -> None:
    column = _column(values)
    got, got_fixes = _codes(column)
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    pairs = [normalise_code(u) for u in uniques]
    texts = np.empty(len(pairs), dtype=object)
    fixes = np.empty(len(pairs), dtype=object)
    texts[:] = [t for t, _ in pairs]
    fixes[:] = [f for _, f in pairs]
    _same_categorical(got, _categorical(texts, codes))
    assert _per_row(got_fixes, len(codes)) == _take(fixes, codes, "").tolist()
    for kind in ("space", "invisible", "float"):
        rows = got_fixes.rows(kind)
        want = [f == kind for f in _take(fixes, codes, "").tolist()]
        assert (rows.tolist() if rows is not None else [False] * len(want)) == want and (rows is None) == (not any(want))


def _per_row(fixes: CodeFixes, n: int) -> list[str]:
    """Each row's repair as CodeFixes.rows says it ("" where no repair names the row)."""
    out = [""] * n
    for kind in ("space", "invisible", "float"):
        rows = fixes.rows(kind)
        for i in np.flatnonzero(rows).tolist() if rows is not None else []:
            out[i] = kind
    return out


def test_plain_code_column_fast_path() -> None:
    column = _column(["C001", None, "C002", "C001", "", "XSCK2025"])
    cat, fixes = _codes(column)
    assert cat.categories.tolist() == ["C001", "C002", "", "XSCK2025"]
    assert list(cat.astype(object)) == ["C001", "", "C002", "C001", "", "XSCK2025"]
    assert _per_row(fixes, 6) == [""] * 6 and fixes.rows("space") is None


# sheet columns: cut from one 2-D array of the rows, against a pass over the rows

import datetime as dt  # noqa: E402
from pathlib import Path  # noqa: E402

import grading.read  # noqa: E402
from grading.read import RawSheet  # noqa: E402

_SHEET_CELL = st.one_of(st.none(), st.text(max_size=3), st.floats(allow_nan=True), st.integers(), st.booleans(),
                        st.just(dt.datetime(2026, 5, 3, 16, 17)), st.just(dt.date(2026, 5, 3)))


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 4), st.lists(st.lists(_SHEET_CELL, min_size=0, max_size=5), max_size=12), st.booleans(),
       st.integers(0, 6), st.integers(0, 14))
def test_sheet_columns_match_a_pass_over_the_rows(width: int, rows: list[list[object]], rectangular: bool,
                                                   col: int, start: int) -> None:
    if rectangular:
        rows = [(r + [None] * width)[:width] for r in rows]
    want = [r[col] if col < len(r) else None for r in rows[start:]]
    limit = grading.read.GRID_ROWS
    try:
        grading.read.GRID_ROWS = 1  # the 2-D path from the first row on
        sheet = RawSheet(Path("x.xlsx"), "S", rows)
        got = [sheet.column(c, start) for c in (col, col)]  # the second call uses the cached grid
    finally:
        grading.read.GRID_ROWS = limit
    for values in got:
        assert values.dtype == object and values.ndim == 1
        assert len(values) == len(want)
        assert all(a is b or (a == b and type(a) is type(b)) for a, b in zip(values.tolist(), want))


# history rows: numeric columns in bulk, against the per-value _clean

from grading.history import _clean, column_values  # noqa: E402

_NUMERIC_COLUMN = st.one_of(
    st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=8).map(lambda v: pd.Series(v, dtype=float)),
    st.lists(st.floats(allow_nan=True, width=32), max_size=8).map(lambda v: pd.Series(v, dtype=np.float32)),
    st.lists(st.integers(-2**62, 2**62), max_size=8).map(lambda v: pd.Series(v, dtype=np.int64)),
    st.lists(st.booleans(), max_size=8).map(lambda v: pd.Series(v, dtype=bool)),
    st.lists(st.one_of(st.none(), st.floats(allow_nan=True), st.text(max_size=2), st.integers()), max_size=8)
    .map(lambda v: pd.Series(v, dtype=object)),
)


@settings(max_examples=200, deadline=None)
@given(_NUMERIC_COLUMN)
def test_history_column_values_match_clean(column: pd.Series) -> None:
    got = column_values(column)
    want = [_clean(v) for v in column.tolist()]
    assert len(got) == len(want)
    assert all((a is None and b is None) or (a == b and type(a) is type(b)) or (a != a and b != b)
               for a, b in zip(got, want))


# categoricals built from factorize's output without pandas' checks, against the checked constructor

from grading.normalise import _text, _texts, fast_categorical  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), _LABELS), max_size=300))
def test_fast_categorical_matches_from_codes(values: list[str | None]) -> None:
    codes, uniques = pd.factorize(_column(values), use_na_sentinel=True)
    got = fast_categorical(codes, uniques)
    want = pd.Categorical.from_codes(codes, categories=pd.Index(uniques, dtype=object))
    _same_categorical(got, want)
    assert got.codes.dtype == want.codes.dtype


def test_fast_categorical_codes_dtype_grows_with_categories() -> None:
    for n in (1, 126, 127, 200, 40000):
        uniques = np.array([f"c{i}" for i in range(n)], dtype=object)
        codes = np.arange(n, dtype=np.int64)
        want = pd.Categorical.from_codes(codes, categories=pd.Index(uniques, dtype=object))
        assert fast_categorical(codes, uniques).codes.dtype == want.codes.dtype


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_CELL, _CELL_TEXT), max_size=12))
def test_text_column_matches_the_per_value_rule(values: list[object]) -> None:
    column = _column(values)
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    mapped = np.empty(len(uniques), dtype=object)
    mapped[:] = [_text(u) for u in uniques]
    want = _categorical(mapped, codes)
    _same_categorical(_texts(column, (codes, uniques)), want)
    _same_categorical(_texts(column), want)


@settings(max_examples=200, deadline=None)
@given(st.data(), st.lists(st.integers(-1, 7), max_size=20), st.sampled_from(["bool", "object", "float"]))
def test_take_maps_codes_and_missing(data: st.DataObject, codes: list[int], kind: str) -> None:
    element, missing = {"bool": (st.booleans(), False), "object": (st.one_of(st.text(max_size=2), st.none()), ""),
                        "float": (st.floats(allow_nan=True), float("nan"))}[kind]
    mapped = data.draw(st.lists(element, max_size=8))
    values = np.empty(len(mapped), dtype=object if kind == "object" else kind)
    values[:] = mapped
    idx = np.array([c for c in codes if c < len(values)], dtype=np.intp)
    got = _take(values, idx, missing)
    want = [missing if c < 0 else values.tolist()[c] for c in idx.tolist()]
    assert got.dtype == values.dtype and [repr(v) for v in got.tolist()] == [repr(v) for v in want]
