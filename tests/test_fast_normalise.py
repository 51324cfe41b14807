"""Vectorised normalise kernels (issue #15): amounts, codes, 合计 rows, code findings, against the per-value
or sorting code they replace; the reference implementations live here, not in the product."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from grading.problems import Problem


def _column(values: list[object]) -> np.ndarray:
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    return arr


# amounts: a text column with thousands separators sorted by one regex pass over the joined column

import re  # noqa: E402

import grading.amounts  # noqa: E402
from grading.amounts import _GROUPED, _text_forms, parse_amounts  # noqa: E402

_AMOUNT_TEXT = st.one_of(
    st.text(alphabet=st.sampled_from(list("0123456789,.-+() e")), max_size=10),
    st.builds(lambda c, d: f"{c:,}" + d, st.integers(-10**12, 10**12), st.sampled_from(["", ".5", ".25", ".", ".x"])),
    st.sampled_from(["", "1,234", "12,34", "1,2345", "0,123", "-1,234.50", "(1,234.00)", "1e3", "1,234\n5", "9" * 20]),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_AMOUNT_TEXT, min_size=1, max_size=40))
def test_text_forms_match_the_per_cell_patterns(texts: list[str]) -> None:
    column = _column(texts)
    forms = _text_forms(column)
    if any("\n" in t for t in texts) or not any("," in t for t in texts):
        assert forms is None
        return
    assert forms is not None
    plain, grouped = forms
    assert plain.tolist() == [re.fullmatch(r"[+-]?[0-9]+(?:\.[0-9]+)?", t) is not None for t in texts]
    assert grouped.tolist() == [_GROUPED(t) is not None for t in texts]


@settings(max_examples=400, deadline=None)
@given(st.lists(_AMOUNT_TEXT, min_size=1, max_size=40), st.lists(st.one_of(st.none(), st.floats(-1e6, 1e6)),
                                                                   max_size=3))
def test_parse_amounts_text_path_matches_the_general_path(texts: list[str], others: list[float | None]) -> None:
    for values in (texts, texts + others):
        column = _column(list(values))
        got = parse_amounts(column)
        forms = grading.amounts._text_forms
        try:
            grading.amounts._text_forms = lambda arr: None  # type: ignore[assignment]
            want = parse_amounts(column)
        finally:
            grading.amounts._text_forms = forms
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)

# code findings: distinct (code, name) pairs by hashing, only the clashing leading-zero groups sorted

from grading.codes import (LEADING_ZEROS, SAME_CODE_NAMES, CodeUse, _locations, code_findings,  # noqa: E402
                           first_rows)


def _reference_ids(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    cat = column if isinstance(column.dtype, pd.CategoricalDtype) else column.astype(str).astype("category")
    return cat.cat.codes.to_numpy(dtype=np.int64), np.asarray(cat.cat.categories.astype(str), dtype=object)


def _reference_code_findings(uses: list[CodeUse]) -> list[Problem]:
    out: list[Problem] = []
    seen: dict[str, tuple[str, str, str, int | None]] = {}
    for use in uses:
        frame = use.frame
        cid, clabels = _reference_ids(frame["customer_code"])
        used, first = first_rows(cid, len(clabels))
        where = dict(zip(clabels[used].tolist(), _locations(frame, first)))
        if "customer_name" in frame:
            nid, nlabels = _reference_ids(frame["customer_name"])
            ok_c = np.append(clabels != "", False)
            ok_n = np.append(nlabels != "", False)
            valid = ok_c[cid] & ok_n[nid]
            width = max(len(nlabels), 1)
            pairs, counts = np.unique(cid[valid] * width + nid[valid], return_counts=True)
            pc, pn = pairs // width, pairs % width
            per_code = np.bincount(pc, minlength=len(clabels))
            clash = np.flatnonzero(per_code > 1)
            if len(clash):
                sel = np.isin(pc, clash)
                table = pd.DataFrame({"code": clabels[pc[sel]], "name": nlabels[pn[sel]], "n": counts[sel]})
                table = table.sort_values(["code", "n", "name"], ascending=[True, False, True], kind="stable")
                for code, group in table.groupby("code", sort=True):
                    shown = "、".join(f"「{n}」{c} 行" for n, c in zip(group["name"], group["n"]))
                    file, sheet, row = where[str(code)]
                    out.append(Problem(file, sheet, row, "客户编码", f"{code}：{shown}（{use.source}）",
                                       SAME_CODE_NAMES, "提示"))
        for code, (file, sheet, row) in where.items():
            if code and code not in seen:
                seen[code] = (use.source, file, sheet, row)
    groups: dict[str, list[str]] = {}
    for code in seen:
        groups.setdefault(code.lstrip("0") or "0", []).append(code)
    for key, members in sorted(groups.items()):
        if len(members) < 2:
            continue
        members.sort()
        shown = "、".join(f"{c}（{seen[c][0]}）" for c in members)
        source, file, sheet, row = seen[members[0]]
        out.append(Problem(file, sheet, row, "客户编码", shown, LEADING_ZEROS, "提示"))
    return out


_CODE = st.sampled_from(["1", "01", "001", "12", "012", "", "0", "00", "A1", "0A1"])
_NAME = st.sampled_from(["甲", "乙", "丙", ""])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.tuples(_CODE, _NAME), min_size=1, max_size=15), min_size=1, max_size=3),
       st.booleans())
def test_code_findings_match_the_sorting_version(sources: list[list[tuple[str, str]]], categorical: bool) -> None:
    uses = []
    for k, rows in enumerate(sources):
        codes = [c for c, _ in rows]
        names = [n for _, n in rows]
        frame = pd.DataFrame({
            "customer_code": pd.Categorical(codes, categories=pd.Index(list(dict.fromkeys(codes)), dtype=object))
            if categorical else pd.Series(codes, dtype=object),
            "customer_name": pd.Categorical(names, categories=pd.Index(list(dict.fromkeys(names)), dtype=object)),
            "_file": [f"f{k}.xlsx"] * len(rows), "_sheet": ["S"] * len(rows),
            "_row": np.arange(2, 2 + len(rows), dtype=np.int64)})
        uses.append(CodeUse(f"来源{k}", frame))
    assert code_findings(uses) == _reference_code_findings(uses)


# 合计 rows: labels tested once per distinct value, against the per-row test they replace

import datetime as dt  # noqa: E402
from pathlib import Path  # noqa: E402

from grading.fields import SALES_FIELDS  # noqa: E402
from grading.header import detect_layout  # noqa: E402
from grading.normalise import _TOTAL_EXACT, _TOTAL_SUFFIX, _first_text, _looks_like_code, normalise  # noqa: E402
from grading.read import RawSheet  # noqa: E402

_DOC = st.sampled_from(["", "XS-1", "合计", "本页合计：", "小计", "设计院单", "总 计"])
_CUST = st.one_of(st.none(), st.sampled_from(["C1", "C1小计", "合计", "客户甲 合计", "A-1合计", "", "计"]),
                  st.just(17850.0))
_CNAME = st.one_of(st.none(), st.sampled_from(["甲公司", "合计", "计算机公司", "", "累 计"]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.one_of(_DOC, st.none()), st.sampled_from(["", "合计", "备注"]), _CUST, _CNAME),
                min_size=1, max_size=25))
def test_total_rows_match_the_per_row_test(cells: list[tuple[object, str, object, object]]) -> None:
    header = ["单据编号", "摘要", "日期", "客户编码", "客户名称", "价税合计"]
    rows: list[list[object]] = [header] + [[d, note, dt.datetime(2026, 5, 3), c, nm, 100.0]
                                           for d, note, c, nm in cells]
    sheet = RawSheet(Path("x.xlsx"), "S", rows)
    required = ("customer_code", "date", "amount")
    layout = detect_layout(sheet, SALES_FIELDS, {}, required)
    problems: list[Problem] = []
    normalise(sheet, layout, SALES_FIELDS, problems)
    got = [(p.row, p.value) for p in problems if p.reason.startswith("合计/小计行")]

    def text(v: object) -> str:
        if v is None or (isinstance(v, float) and v != v):
            return ""
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        return str(v).strip()

    want = []
    for i, (d, _, c, nm) in enumerate(cells):
        if not any(isinstance(v, str) and "计" in v for v in (d, c, nm)):
            continue
        code_text = text(c)
        labels = [_first_text(rows[1 + i]), code_text, text(nm)]
        if any(_TOTAL_EXACT.match(t) for t in labels if t) or (
                _TOTAL_SUFFIX.match(code_text) and not _looks_like_code(code_text)):
            want.append((i + 2, labels[0] or code_text))
    assert got == want


# codes: the invisible-character scan skipped for printable text, plain codes found by string tests

import unicodedata  # noqa: E402

from grading.codes import _WHOLE_TEXT, _plain, normalise_code  # noqa: E402


def _reference_normalise_code(raw: str) -> tuple[str, str]:
    if raw.isascii() and raw.isalnum():
        return raw, ""
    text = unicodedata.normalize("NFKC", raw)
    fix = ""
    if any(unicodedata.category(ch) in ("Cf", "Cc") for ch in text):
        text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cf", "Cc"))
        fix = "invisible"
    text = text.strip()
    if not fix and text != raw and raw.strip():
        fix = "space"
    m = _WHOLE_TEXT.match(text)
    if m:
        text = m.group(1).lstrip("+")
        fix = fix or "float"
    return text, fix


_CODE_TEXT = st.text(alphabet="AZaz09 -.+_/\t\n\x00\x7f\u3000\u200b\ufeff\u00ad\u2028\u00a0Ａ１客", max_size=8)


@settings(max_examples=500, deadline=None)
@given(_CODE_TEXT)
def test_normalise_code_matches_the_full_scan(raw: str) -> None:
    assert normalise_code(raw) == _reference_normalise_code(raw)
    if _plain(raw):
        assert _reference_normalise_code(raw) == (raw, "")

from grading.normalise import _empty_text  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.sampled_from(["", "C1", " "])), max_size=20))
def test_empty_text_matches_eq_empty(values: list[str | None]) -> None:
    cats = pd.Index(list(dict.fromkeys(v for v in values if v is not None)), dtype=object)
    column = pd.Series(pd.Categorical(values, categories=cats))
    assert _empty_text(column).tolist() == column.eq("").to_numpy(dtype=bool).tolist()
    plain = pd.Series(values, dtype=object)
    assert _empty_text(plain).tolist() == plain.eq("").to_numpy(dtype=bool).tolist()

from grading.amounts import parse_amount  # noqa: E402


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**20, 10**20),
                          st.booleans(), st.sampled_from(["1e3", "12", "1,234", ""])), min_size=1, max_size=30))
def test_parse_amounts_of_number_cells_match_the_per_cell_rule(values: list[object]) -> None:
    for column in (values, [v for v in values if not isinstance(v, str)] or [1.0]):
        nums, bad, repaired = parse_amounts(_column(list(column)))
        want = [parse_amount(v) for v in column]
        np.testing.assert_array_equal(nums, np.array([w[0] for w in want], dtype=float))
        assert bad.tolist() == [w[1] for w in want] and repaired.tolist() == [w[2] for w in want]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.none() | st.text(alphabet="计合小a1 \ud800") | st.sampled_from(["合计", "小计：", "统计表"])
                | st.floats(allow_nan=True) | st.integers() | st.binary(max_size=3), max_size=30),
       st.sampled_from(["计", "合计", "小"]))
def test_values_containing_a_text_are_what_python_says(values: list[object], text: str) -> None:
    from grading.normalise import _containing

    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    expected = [isinstance(v, str) and text in v for v in values]
    assert _containing(arr, text).tolist() == expected


# plain codes found in an Arrow column's bytes, and the Arrow body's distinct strings used by the cleaning

from typing import Any  # noqa: E402

import pyarrow as pa  # noqa: E402

from grading.arrow_body import ArrowBody  # noqa: E402
from grading.codes import normalise_codes, plain_in_arrow  # noqa: E402

_ANY_TEXT = st.one_of(_CODE_TEXT, st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=6))


@settings(max_examples=400, deadline=None)
@given(st.lists(_ANY_TEXT, max_size=25), st.sampled_from([pa.string(), pa.large_string()]), st.integers(0, 3))
def test_plain_in_arrow_is_plain_string_by_string(texts: list[str], kind: pa.DataType, skip: int) -> None:
    array = pa.array(["x y", *texts], type=kind).slice(1)  # an offset into the buffers, as a slice has
    assert plain_in_arrow(array).tolist() == [_plain(t) for t in texts]
    assert plain_in_arrow(array.slice(skip)).tolist() == [_plain(t) for t in texts[skip:]]


def _fix_list(fixes: np.ndarray | None, uniques: Any) -> list[object]:
    """The repairs as a list ("" for each value when none was repaired: fixes None)."""
    return fixes.tolist() if fixes is not None else [""] * len(uniques)


@settings(max_examples=300, deadline=None)
@given(st.lists(_ANY_TEXT, max_size=25))
def test_codes_given_plain_from_arrow_are_the_codes_found_without(texts: list[str]) -> None:
    uniques = pd.factorize(np.array(texts, dtype=object))[1] if texts else np.empty(0, dtype=object)
    want_texts, want_fixes = normalise_codes(uniques)
    got_texts, got_fixes = normalise_codes(uniques, plain_in_arrow(pa.array(uniques.tolist(), type=pa.string())))
    assert got_texts.tolist() == want_texts.tolist() and _fix_list(got_fixes, uniques) == _fix_list(want_fixes, uniques)
    assert (got_fixes is None) == (want_fixes is None)
    assert (got_texts is uniques) == (want_texts is uniques)


_ROW = st.tuples(st.sampled_from(["XS-1", "XS-2", "合计", "小计：", "XS 3", "ＸＳ４", "XS-5.0", "x\u200b1", ""]),
                 st.sampled_from(["C1", "C 2", "C3合计", "合计", "00123", "123", "C\u00a04"]),
                 st.sampled_from(["甲公司", "合计", "乙", " 丙 "]))


@settings(max_examples=150, deadline=None)
@given(st.lists(_ROW, min_size=3, max_size=20), st.booleans(), st.sampled_from(["after the header", "with the header",
                                                                               "two rows in the head"]),
       st.sampled_from([pa.string(), pa.large_string()]))
def test_an_arrow_body_is_cleaned_as_its_python_rows(rows: list[tuple[str, str, str]], empty_cell: bool, shape: str,
                                                     kind: pa.DataType) -> None:
    header = ["单据编号", "日期", "客户编码", "客户名称", "价税合计"]
    cells: list[list[str | None]] = [[d, "2026-05-03", c, n, "100"] for d, c, n in rows]
    if empty_cell:  # an empty cell: an Arrow null, where the distinct values are not the column's strings
        cells[-1][0] = None
    python_rows: list[list[object]] = [[*header], *[[v if v is not None else "" for v in r] for r in cells]]
    python_sheet = RawSheet(Path("x.csv"), "S", python_rows)
    # the body from sheet row `start` on (0: the header in Arrow too, the column read from a slice of it;
    # 3: two data rows among the head rows, read as Python values before the Arrow ones)
    start = {"after the header": 1, "with the header": 0, "two rows in the head": 3}[shape]
    arrow_rows: list[list[str | None]] = [[*header], *cells]
    body = ArrowBody(start, pa.table({f"c{i}": pa.array([r[i] for r in arrow_rows[start:]], type=kind)
                                      for i in range(len(header))}), [list(r) for r in python_rows[:start]])

    def convert(array: Any) -> np.ndarray:
        return np.asarray([("" if v is None else v) for v in array.to_pylist()], dtype=object)

    body.convert = convert
    arrow_sheet = RawSheet(Path("x.csv"), "S", [list(r) for r in python_rows[:max(start, 1)]], body=body)
    required = ("customer_code", "date", "amount")
    results = []
    for sheet in (python_sheet, arrow_sheet):
        layout = detect_layout(sheet, SALES_FIELDS, {}, required)
        problems: list[Problem] = []
        frame = normalise(sheet, layout, SALES_FIELDS, problems)
        results.append((frame, [(p.row, p.column, p.value, p.reason) for p in problems]))
    pd.testing.assert_frame_equal(results[1][0], results[0][0])
    assert results[1][1] == results[0][1]
    in_arrow = body.text_uniques(2, 1) is not None  # the code column's distinct strings taken from Arrow
    assert in_arrow == (shape != "two rows in the head")
    assert (body.text_uniques(0, 1) is None) == (empty_cell or shape == "two rows in the head")
