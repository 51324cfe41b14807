"""Large text exports read into Arrow (grading.read_text_arrow) give the very cells pandas' C parser gives,
and amounts parsed in Arrow are those grading.amounts.parse_amount gives cell by cell."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import grading.read_text_arrow as read_text_arrow
from grading import read
from grading.amounts import parse_amount, parse_amounts
from grading.read import RawSheet
from grading.read_text_arrow import read_body

pytest.importorskip("pyarrow")

_CELL = st.text(alphabet=st.sampled_from(list("ab 0123456789,.-+\"\n\r¥()元，华为（）\t€é\u3000𠀀")), max_size=8)
_AMOUNT = st.one_of(
    st.sampled_from(["", " ", "0", "-0", "+5", "5.", ".5", "1e5", "1E+03", "inf", "nan", "1,234.50", "1,2345",
                     "(1,234.00)", "1,234-", "¥1,234", "￥12", "12元", "１，２３４．５", "—", "-", "--5", "12abc",
                     "9" * 16, "1" * 30 + ".5", "999999999999999.99", "1000000000000000.01", " 12 ", "+1,000"]),
    st.decimals(min_value=-10**13, max_value=10**13, places=2, allow_nan=False).map(str),
    st.integers(min_value=-10**18, max_value=10**18).map(lambda i: f"{i:,}"),
    st.floats(allow_nan=False, allow_infinity=False, width=64).map(repr),
)


def _csv(head: list[list[str]], body: list[list[str]], terminator: str, encoding: str) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator=terminator)
    writer.writerows(head + body)
    return out.getvalue().encode(encoding)


def _sniffed(raw: bytes) -> tuple[str, str, int]:
    """encoding, delimiter and widest record, as read_text finds them once for both readers."""
    encoding = read._encoding(raw)
    return (encoding, *read._probe(raw, encoding))


def _pandas_sheet(raw: bytes) -> RawSheet:
    table = read._fast_csv(raw, *_sniffed(raw))
    assert table is not None
    head = table.iloc[:read.HEAD_ROWS].to_numpy(dtype=object).tolist()
    return RawSheet(Path("x.csv"), "x", [read._trim(r) for r in head], 1, [], table)


def _arrow_sheet(raw: bytes) -> RawSheet | None:
    got = read._arrow_csv(raw, *_sniffed(raw))
    if got is None:
        return None
    records, body = got
    first = body.table.slice(0, max(read.HEAD_ROWS - len(records), 0))
    rows = records + [list(r) for r in zip(*(c.to_pylist() for c in first.columns))]
    return RawSheet(Path("x.csv"), "x", [read._trim(r) for r in rows], 1, [], None, body)


def _typed(values: np.ndarray) -> list[tuple[type, object]]:
    return [(type(v), v) for v in values.tolist()]


@settings(max_examples=120, deadline=None)
@given(width=st.integers(2, 5), titles=st.lists(st.lists(_CELL, min_size=0, max_size=1), max_size=3),
       rows=st.integers(3, 40), data=st.data(), terminator=st.sampled_from(["\n", "\r\n"]),
       encoding=st.sampled_from(["utf-8", "gb18030"]))
def test_arrow_body_gives_the_cells_of_pandas_c_parser(width: int, titles: list[list[str]], rows: int,
                                                       data: st.DataObject, terminator: str, encoding: str) -> None:
    body = [data.draw(st.lists(_CELL, min_size=width, max_size=width)) for _ in range(rows)]
    header = [f"列{i}" for i in range(width)]
    raw = _csv(titles + [header], body, terminator, encoding)
    arrow = _arrow_sheet(raw)
    if arrow is None:  # e.g. a row of blank cells written as an empty line: the careful path reads it
        return
    pandas = _pandas_sheet(raw)
    assert arrow.rows == pandas.rows
    assert arrow.n_rows == pandas.n_rows
    for start in range(0, arrow.n_rows + 1):
        for col in range(width + 1):
            expected = pandas.column(col, start)
            assert _typed(arrow.column(col, start)) == _typed(expected)
            known = arrow.factorized(col, start)
            if known is not None:
                codes, uniques = pd.factorize(expected, use_na_sentinel=True)
                assert known[0].tolist() == codes.tolist() and _typed(known[1]) == _typed(uniques)
                picks = np.arange(len(expected))[::2]
                got = arrow.cells(col, start, picks)
                assert got is not None and _typed(got) == _typed(expected[picks])
    for index in range(arrow.n_rows):
        assert arrow.row(index) == pandas.row(index)


def test_a_ragged_head_is_read_by_the_csv_module_and_the_rest_by_arrow() -> None:
    head = [["发货单列表"], [], ["单号", "客户", "金额"], ["D0", "C0", "1"], ["D1", "合计"]]  # a short data row
    body = [[f"D{i}", f"C{i % 3}", f"{i},000.50"] for i in range(2, 50)]
    raw = _csv(head, body, "\r\n", "gb18030")
    arrow = _arrow_sheet(raw)
    assert arrow is not None and arrow.body is not None and arrow.body.start == 5
    pandas = _pandas_sheet(raw)
    assert _typed(arrow.column(1, 3)) == _typed(pandas.column(1, 3))  # from before the body on
    got = arrow.amounts(2, 3)  # from before the body on: the head's values by grading.amounts, then Arrow's
    assert got is not None
    expected = parse_amounts(pandas.column(2, 3))
    for g, e in zip(got, expected):
        assert np.array_equal(g, e, equal_nan=True)
    assert arrow.rows == pandas.rows


@pytest.mark.parametrize("text", [
    "a,b\n1,2\n\n3,4\n",          # an empty line inside the body
    "a,b\n1,2\n3,4,5\n",          # a wider row
    "a,b\n1,2\n3\n",              # a shorter row after the head
    "a,b\n1,\"2\n",               # an unclosed quote
])
def test_bodies_arrow_cannot_take_exactly_are_left_to_the_other_readers(text: str) -> None:
    assert read_body(text.encode(), "utf-8", ",", 2) is None


def test_a_quote_left_open_at_the_end_is_left_to_the_other_readers() -> None:
    """A lone quote inside a cell makes the count of quotes even; pyarrow would still run the open cell to
    the end of the file, where pandas refuses it and the csv module names the line."""
    rows = [f"C{i},name{i},ok" for i in range(30)]
    rows[3] = 'C3,12" pipe,ok'
    rows[20] = 'C20,name,"oops'
    raw = ("code,name,note\n" + "\n".join(rows) + "\n").encode()
    assert raw.count(b'"') % 2 == 0
    assert read_body(raw, "utf-8", ",", 3) is None
    plain = [f"C{i},name{i},ok" for i in range(20)]
    closed = ("code,name,note\n" + "\n".join(plain + ['C20,name,"a\nb"']) + "\n").encode()
    assert read_body(closed, "utf-8", ",", 3) is not None  # a closed multi-line last cell is taken


def test_byte_order_marks_pandas_treats_otherwise_are_left_to_it() -> None:
    body = "".join(f"C{i},N{i}\n" for i in range(20))
    assert read_body("客户清单\n".encode() + b"\xef\xbb\xbf" + ("code,name\n" + body).encode(), "utf-8", ",", 2) is None
    assert read_body(("\ufeff客户清单\ncode,name\n" + body).encode("gb18030"), "gb18030", ",", 2) is None
    # where the body starts: kept as pandas keeps it when read as bytes, else left to pandas
    raw = ("客户清单\n\ufeffcode,name\n" + body).encode("gb18030")
    arrow, pandas = _arrow_sheet(raw), _pandas_sheet(raw)
    assert arrow is not None and arrow.rows == pandas.rows and arrow.rows[1][0] == "\ufeffcode"
    assert read_body(raw.replace(b",", b";"), "gb18030", ";", 2) is None


def test_more_head_records_than_head_rows_are_left_to_pandas() -> None:
    raw = ("".join(f"说明{i}\n" for i in range(read.HEAD_ROWS + 5)) + "code,name\n" +
           "".join(f"C{i},N{i}\n" for i in range(3000))).encode()
    assert read_body(raw, "utf-8", ",", 2) is not None
    assert read._arrow_csv(raw, *_sniffed(raw)) is None


def test_bytes_that_do_not_decode_are_left_to_the_other_readers() -> None:
    raw = "a,b\n华,1\n".encode("gb18030") + b"x,\x80\n"
    assert read_body(raw, "gb18030", ",", 2) is None
    for cut in (b"\x81", b"\x81\x30", b"\x81\x30\x81", "华".encode("gb18030")[:1]):  # a character cut short
        assert read_body("a,b\n华,1\n".encode("gb18030") + b"x," + cut + b"\n", "gb18030", ",", 2) is None
        assert read_body("a,b\n1,2\n".encode("gb18030") + cut + b",2\n", "gb18030", ",", 2) is None
    assert read_body(b"a,b\n1,2\n3,\xff\n", "utf-8", ",", 2) is None


@settings(max_examples=200, deadline=None)
@given(cells=st.lists(st.text(alphabet=st.sampled_from(list("a1 \x00\n华为€é\u3000𠀀")), max_size=4), max_size=30),
       cut=st.integers(0, 30), few=st.sampled_from([0, 2, 1000]))
def test_gb18030_cells_are_decoded_as_the_codec_decodes_each(cells: list[str], cut: int, few: int) -> None:
    """A GB18030 body parsed as bytes: every column as its cells decoded one by one (ASCII columns, columns of
    one kind or mixed, a few other cells or many, NUL inside a cell, in one chunk or two)."""
    import pyarrow as pa

    raw = [c.encode("gb18030") for c in cells]
    column = pa.chunked_array([pa.array(raw[:cut], pa.binary()), pa.array(raw[cut:], pa.binary())])
    with mock.patch.object(read_text_arrow, "_FEW", few):
        got = read_text_arrow._decoded(column)
    assert got.type == pa.string()
    assert got.to_pylist() == cells


@settings(max_examples=150, deadline=None)
@given(values=st.lists(_AMOUNT, min_size=1, max_size=60))
def test_amounts_in_arrow_are_parse_amount_cell_by_cell(values: list[str]) -> None:
    raw = _csv([["单号", "金额"]], [[f"D{i}", v] for i, v in enumerate(values)], "\n", "utf-8")
    sheet = _arrow_sheet(raw)
    if sheet is None:  # "" or " " alone on a line, etc.
        return
    got = sheet.amounts(1, 1)
    assert got is not None
    nums, bad, repaired = got
    cells = sheet.column(1, 1).tolist()
    for i, cell in enumerate(cells):
        value, is_bad, is_repaired = parse_amount(cell)
        assert (bool(bad[i]), bool(repaired[i])) == (is_bad, is_repaired), cell
        assert (math.isnan(value) and math.isnan(nums[i])) or value == nums[i], cell


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(st.integers(0, 40), min_size=1, max_size=30), limit=st.integers(1, 20))
def test_the_long_line_prefilter_never_misses_one(lines: list[int], limit: int) -> None:
    from grading import text_checks

    raw = b"\n".join(b"x" * n for n in lines)
    original = text_checks.MAX_LINE
    text_checks.MAX_LINE = limit
    try:
        if max(lines) > limit:
            assert text_checks._may_have_long_line(raw)
    finally:
        text_checks.MAX_LINE = original
