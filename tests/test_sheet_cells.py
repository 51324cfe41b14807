"""Cell XML built column-wise (grading/sheet_cells.py) is exactly what the per-value writer wrote:
property tests against the reference below (the writer's loop before it was vectorised), exact-XML
tests of rows and of a rebuilt template sheet."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grading import sheet_body, write_xlsx, xlsx_package
from grading.plan_types import ArrayValues, Block, Column, TextValues
from grading.sheet_cells import cell_bytes, cells, digits, pieces, prepare, row_numbers, rows_xml
from grading.xlsx_template import TemplateCell, TemplateSheet

# ---------------------------------------------------------------- the reference: one value at a time

_EPOCH = dt.datetime(1899, 12, 30)
_CONTROL = {c: None for c in [*range(0, 9), 11, 12, *range(14, 32), 0xFFFE, 0xFFFF]}


def ref_cell(ref: str, value: object, style: str | None) -> str:
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
    text = str(value).translate(_CONTROL)
    if len(text) > 32767:
        text = text[:32766] + "…"
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f'<c r="{ref}"{s} t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>'


def built(values: Any, style: str | None, letter: str = "C", first: int = 5) -> list[str]:
    """Each row's cell, checked against the sizes announced beforehand and against rows cut anywhere."""
    n = len(values)
    prepared = prepare(values, style, letter, first)
    got = cells(prepared, 0, n, row_numbers(first, n))
    out = [""] * n if got is None else [x or "" for x in got.to_pylist()]
    assert cell_bytes(prepared, digits(first, n)).tolist() == [len(x.encode("utf-8")) for x in out]
    if n > 2:
        part = cells(prepared, 1, n - 1, row_numbers(first + 1, n - 2))
        assert ([""] * (n - 2) if part is None else [x or "" for x in part.to_pylist()]) == out[1:-1]
    return out


def expected(values: Any, style: str | None, letter: str = "C", first: int = 5) -> list[str]:
    return [ref_cell(f"{letter}{first + i}", v, style) for i, v in enumerate(values)]


styles = st.sampled_from([None, "7"])
floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [0.0, -0.0, 3.0, 1e-4, 9.99e-5, 1e15, 1e16, 123456789012345.6, 28218830.05, 5e-324, 0.1 + 0.2])
texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=12) | st.sampled_from(
    ["=1+2", "@SUM(1)", "-3", "+x", "a&b<c>d", " 前后空格 ", "\x01\x0b\x1f\ufffe\uffff", "", "客户\t名\n称"])
datetimes = st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 12, 31))


@settings(max_examples=300, deadline=None)
@given(st.lists(floats | st.none(), max_size=30), styles)
def test_floats_as_repr(values: list[float | None], style: str | None) -> None:
    assert built(values, style) == expected(values, style)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-2**63, 2**63 - 1) | st.none(), max_size=20), styles)
def test_ints(values: list[int | None], style: str | None) -> None:
    assert built(values, style) == expected(values, style)


@settings(max_examples=300, deadline=None)
@given(st.lists(texts | st.none(), max_size=20), styles)
def test_texts_escaped_never_formulas(values: list[str | None], style: str | None) -> None:
    assert built(values, style) == expected(values, style)


@settings(max_examples=200, deadline=None)
@given(st.lists(datetimes | st.none(), max_size=20), st.lists(st.dates() | st.none(), max_size=20), styles)
def test_datetimes_and_dates_as_serials(stamps: list[dt.datetime | None], days: list[dt.date | None],
                                        style: str | None) -> None:
    assert built(stamps, style) == expected(stamps, style)
    assert built(days, style) == expected(days, style)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.booleans(), st.integers(), floats, texts, datetimes, st.dates()),
                max_size=20), styles)
def test_mixed_and_odd_values_one_by_one(values: list[object], style: str | None) -> None:
    assert built(values, style) == expected(values, style)


@settings(max_examples=100, deadline=None)
@given(st.lists(floats, max_size=20), st.lists(datetimes, max_size=20), st.lists(texts, max_size=10))
def test_numpy_columns_as_their_python_values(values: list[float], stamps: list[dt.datetime],
                                              words: list[str]) -> None:
    assert built(np.array(values), "7") == expected(values, "7")
    assert built(np.array(words, dtype=str), None) == expected(np.array(words, dtype=str).tolist(), None)
    assert built(np.array(stamps, dtype="datetime64[us]"), "7") == expected(stamps, "7")
    ints = [int(v) for v in values if math.isfinite(v) and abs(v) < 2**62]
    assert built(np.array(ints, dtype=np.int64), None) == expected(ints, None)
    assert built(np.array([True, False]), None) == expected([True, False], None)


@settings(max_examples=150, deadline=None)
@given(st.lists(floats, max_size=20), st.lists(datetimes | st.none(), max_size=20), styles)
def test_array_values_are_written_from_the_array_as_their_python_values(values: list[float],
                                                                         stamps: list[dt.datetime | None],
                                                                         style: str | None) -> None:
    ints = [int(v) for v in values if math.isfinite(v) and abs(v) < 2**62] + [-2**63, 2**63 - 1]
    columns = [ArrayValues(np.array(values, dtype=np.float64)), ArrayValues(np.array(ints, dtype=np.int64)),
               ArrayValues(np.array([np.datetime64("NaT") if t is None else t for t in stamps], dtype="datetime64[ns]")),
               ArrayValues(np.array(["NaT"] * len(stamps), dtype="datetime64[s]"))]  # no date at all
    for column in columns:
        got = built(column, style)
        python = list(column)  # what the add-in and the CSV beside the output read
        assert list(map(repr, python)) == list(map(repr, column.array.tolist())) and got == expected(python, style)
    assert list(columns[2]) == stamps and isinstance(columns[0][1:], ArrayValues)
    assert list(map(repr, columns[0][1:])) == list(map(repr, values[1:]))  # NaN: compared as written


@settings(max_examples=150, deadline=None)
@given(st.lists(texts, max_size=20), styles, st.booleans())
def test_text_values_are_written_from_the_arrow_array_as_their_python_values(words: list[str], style: str | None,
                                                                            large: bool) -> None:
    column = TextValues(pa.array(words, type=pa.large_string() if large else pa.string()))
    got = built(column, style)
    assert column._python is None or not words  # formatted from the array (no rows: as the empty list)
    assert list(column) == words and got == expected(words, style)
    for part in (column[1:], column[::2], column[5:2]):
        assert isinstance(part, TextValues)
    assert list(column[1:]) == words[1:] and list(column[::2]) == words[::2] and list(column[5:2]) == []
    assert built(column[1:], style) == expected(words[1:], style)


def test_text_values_hold_only_text_without_nulls() -> None:
    for bad in (pa.array(["a", None]), pa.array([1, 2])):
        with pytest.raises(TypeError):
            TextValues(bad)


def test_array_values_are_formatted_without_a_python_value_per_cell() -> None:
    columns = [ArrayValues(np.array([1.5, np.nan, -0.0, 1e20])), ArrayValues(np.arange(1, 6)),
               ArrayValues(np.array(["2026-05-03T10:00", "NaT", "1999-12-31"], dtype="datetime64[s]"))]
    for column in columns:
        got = built(column, "7")
        assert column._python is None  # formatted from the array
        assert got == expected(column.array.tolist(), "7")


def test_odd_values_exact_xml() -> None:
    tz = dt.datetime(2026, 6, 30, 12, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert built([tz, None], "3", "D", 9) == ['<c r="D9" s="3"><v>46203.5</v></c>', '<c r="D10" s="3"/>']
    assert built([2**70, 1], None) == [f'<c r="C5"><v>{2**70}</v></c>', '<c r="C6"><v>1</v></c>']
    assert built(["x" * 40000], None)[0] == (
        '<c r="C5" t="inlineStr"><is><t xml:space="preserve">' + "x" * 32766 + "…</t></is></c>")
    assert built(["a&b<c>"], "2") == [
        '<c r="C5" s="2" t="inlineStr"><is><t xml:space="preserve">a&amp;b&lt;c&gt;</t></is></c>']


def test_rows_join_tables_side_by_side_exact_xml() -> None:
    rows = row_numbers(5, 2)
    left = prepare([1.5, float("nan")], "7", "A", 5)
    right = prepare(["客户", None], None, "C", 5)
    got = rows_xml(rows, ' x14ac:dyDescent="0.25"', [*pieces(left, 0, 2, rows), *pieces(right, 0, 2, rows)])
    assert bytes(got).decode("utf-8") == (
        '<row r="5" x14ac:dyDescent="0.25"><c r="A5" s="7"><v>1.5</v></c>'
        '<c r="C5" t="inlineStr"><is><t xml:space="preserve">客户</t></is></c></row>'
        '<row r="6" x14ac:dyDescent="0.25"><c r="A6" s="7"/></row>')


# ---------------------------------------------------------------- a template sheet rebuilt

_SHEET = ('<worksheet><dimension ref="A1:E5"/><sheetData>'
          '<row r="1"><c r="A1" t="inlineStr"><is><t>标题</t></is></c></row>'
          '<row r="4" spans="1:5" ht="20"><c r="A4" s="1" t="inlineStr"><is><t>编码</t></is></c>'
          '<c r="B4" s="1" t="inlineStr"><is><t>金额</t></is></c><c r="E4" s="9"><v>1</v></c></row>'
          '<row r="5" spans="1:5"><c r="A5" s="2"/><c r="B5" s="3"/><c r="E5" s="9"><v>2</v></c></row>'
          '</sheetData><autoFilter ref="A4:B5"/></worksheet>')


def _placed(n: int, positional: bool = False) -> write_xlsx.Placed:
    block = Block(("编码",), (Column("编码", [f"K{i}" for i in range(n)]), Column("金额", [i + 0.5 for i in range(n)])),
                  n, positional=positional)
    return write_xlsx.Placed(block, 4, {0: block.columns[0], 1: block.columns[1]}, {0: "2", 1: "3"}, (0, 1),
                             {0: "1", 1: "1"} if positional else {})


def _sheet(n: int, positional: bool = False) -> tuple[str, str]:
    ts = TemplateSheet("表", "xl/worksheets/sheet1.xml", {(4, 0): TemplateCell("编码", "1")})
    xml, body = write_xlsx._rebuild_sheet(_SHEET, ts, [_placed(n, positional)])
    data = b"".join(bytes(x) for x in body.chunks())
    assert len(data) == body.size
    return xml, data.decode("utf-8")


def test_rebuilt_sheet_exact_xml() -> None:
    xml, body = _sheet(3)
    assert xml == ('<worksheet><dimension ref="A1:B7"/>\x00sheetData\x00<autoFilter ref="A4:B7"/></worksheet>')
    assert body == (
        '<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>标题</t></is></c></row>'
        '<row r="4" ht="20"><c r="A4" s="1" t="inlineStr"><is><t>编码</t></is></c>'
        '<c r="B4" s="1" t="inlineStr"><is><t>金额</t></is></c><c r="E4" s="9"><v>1</v></c></row>'
        '<row r="5"><c r="A5" s="2" t="inlineStr"><is><t xml:space="preserve">K0</t></is></c>'
        '<c r="B5" s="3"><v>0.5</v></c><c r="E5" s="9"><v>2</v></c></row>'
        '<row r="6"><c r="A6" s="2" t="inlineStr"><is><t xml:space="preserve">K1</t></is></c>'
        '<c r="B6" s="3"><v>1.5</v></c></row>'
        '<row r="7"><c r="A7" s="2" t="inlineStr"><is><t xml:space="preserve">K2</t></is></c>'
        '<c r="B7" s="3"><v>2.5</v></c></row></sheetData>')
    # no rows: the unused sample row goes, the template's cell beside it too (it sat in that row)
    assert _sheet(0)[1] == ('<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>标题</t></is></c></row>'
                            '<row r="4" ht="20"><c r="A4" s="1" t="inlineStr"><is><t>编码</t></is></c>'
                            '<c r="B4" s="1" t="inlineStr"><is><t>金额</t></is></c><c r="E4" s="9"><v>1</v></c>'
                            '</row><row r="5"><c r="E5" s="9"><v>2</v></c></row></sheetData>')
    # a matrix: its first row takes the header's style
    assert '<row r="5"><c r="A5" s="1" t="inlineStr"><is><t xml:space="preserve">K0</t></is></c>' \
           '<c r="B5" s="1"><v>0.5</v></c><c r="E5" s="9"><v>2</v></c></row>' in _sheet(2, positional=True)[1]


def test_rows_cut_into_chunks_give_the_same_xml(monkeypatch: pytest.MonkeyPatch) -> None:
    whole = _sheet(40)
    monkeypatch.setattr(sheet_body, "CHUNK_ROWS", 7)
    assert _sheet(40) == whole


class _Member:
    def __init__(self, fail_at: int | None = None) -> None:
        self.got: list[bytes] = []
        self.fail_at = fail_at

    def write(self, data: bytes) -> int:
        if len(self.got) == self.fail_at:
            raise OSError(28, "No space left on device")
        self.got.append(bytes(data))
        return len(data)


def test_pieces_are_written_in_order_by_a_second_thread_and_failures_surface() -> None:
    member = _Member()
    xlsx_package.deflate_behind(member, (b"%d," % i for i in range(50)))  # type: ignore[arg-type]
    assert b"".join(member.got) == b"".join(b"%d," % i for i in range(50))
    with pytest.raises(OSError, match="No space"):  # the writing thread's error, raised here
        xlsx_package.deflate_behind(_Member(fail_at=3), (b"x" for _ in range(50)))  # type: ignore[arg-type]

    def broken() -> Any:
        yield b"a"
        raise ValueError("built wrong")

    member = _Member()
    with pytest.raises(ValueError, match="built wrong"):  # the producer's error, the writer stopped
        xlsx_package.deflate_behind(member, broken())  # type: ignore[arg-type]
    assert member.got == [b"a"]


def test_isal_and_zlib_write_the_same_package(demo, write_config, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import zipfile

    from grading.pipeline import run_to_file

    from .conftest import FIXED_TIME

    folder, _ = demo
    config = write_config(folder, name="config_test.yaml")
    monkeypatch.setattr(xlsx_package, "BIG", 0)  # every part deflated by the second thread, at level 1
    outputs = {}
    isal = xlsx_package.isal_zlib
    for name, module in (("isal", isal), ("zlib", None)):
        monkeypatch.setattr(xlsx_package, "isal_zlib", module)
        outputs[name] = run_to_file(config, tmp_path / f"{name}.xlsx", generated_at=FIXED_TIME).output
    if isal is not None:
        assert outputs["isal"].read_bytes() != outputs["zlib"].read_bytes()  # ISA-L's deflate stream was used
    with zipfile.ZipFile(outputs["isal"]) as a, zipfile.ZipFile(outputs["zlib"]) as b:
        assert a.testzip() is None and b.testzip() is None  # CRCs right
        assert a.namelist() == b.namelist()
        assert all(a.read(n) == b.read(n) for n in a.namelist())


def test_numpy_text_with_a_nul_keeps_the_rest() -> None:
    """Arrow reads numpy's fixed-width text up to a NUL: '\\x000' became an empty (omitted) cell, not '0'."""
    words = np.array(["\x000", "a\x00b"], dtype=str)
    assert built(words, None) == expected(words.tolist(), None)
