"""Large xlsx sheets are read column-wise (grading.read_arrow) and must give exactly the cells the
row-wise python-calamine read gives: same first row, same rows, same values and value types in every
column; where that cannot be shown (mixed types, error cells, a range not starting in column A) the
sheet is read row-wise. The thresholds are lowered so that small generated sheets take the path."""

from __future__ import annotations

import datetime as dt
import re
import sys
from types import SimpleNamespace
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
import xlsxwriter
from openpyxl import Workbook

import grading.read_arrow as read_arrow
from grading.read import RawSheet, read_file

pytest.importorskip("fastexcel")


def _traced(monkeypatch: pytest.MonkeyPatch, module: Any, name: str, original: Any) -> list[bool]:
    """`module.name` replaced by `original` noting, call by call, whether it gave a result (not None)."""
    gave: list[bool] = []

    def traced(*args: Any) -> Any:
        result = original(*args)
        gave.append(result is not None)
        return result

    monkeypatch.setattr(module, name, traced)
    return gave


@pytest.fixture
def small_thresholds(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    monkeypatch.setattr(read_arrow, "MIN_SHEET_BYTES", 0)
    monkeypatch.setattr(read_arrow, "HEAD_ROWS", 12)
    monkeypatch.setattr(read_arrow, "OVERLAP", 6)
    return _traced(monkeypatch, read_arrow, "read_columns", read_arrow.read_columns)


def _row_wise(path: Path, monkeypatch: pytest.MonkeyPatch) -> RawSheet:
    with monkeypatch.context() as m:
        m.setattr(read_arrow, "MIN_SHEET_BYTES", 1 << 62)
        return read_file(path)[0]


def _same(a: RawSheet, b: RawSheet) -> None:
    assert (a.first_row, a.n_rows, a.sheet) == (b.first_row, b.n_rows, b.sheet)
    width = max(len(r) for r in b.rows)
    for i in range(b.n_rows):
        assert [(type(v), v) for v in a.row(i)] == [(type(v), v) for v in b.row(i)], i
    for c in range(width):
        got, expected = a.column(c, 0).tolist(), b.column(c, 0).tolist()
        assert [(type(v), v) for v in got] == [(type(v), v) for v in expected], c
    if a.body is None:
        return
    for start in sorted({0, 3, a.body.start - 1, a.body.start, a.body.start + 2, a.n_rows - 1}):
        for c in range(width):
            _same_questions(a, b.column(c, start), c, start)


def _same_questions(sheet: RawSheet, expected: np.ndarray, col: int, start: int) -> None:
    """What the cleaning asks an Arrow body gives what it gives on the Python values (grading.arrow_body)."""
    import pandas as pd

    from grading.amounts import parse_amounts

    typed = [(type(v), v) for v in expected.tolist()]
    fresh = RawSheet(sheet.file, sheet.sheet, sheet.rows, sheet.first_row, [], None, sheet.body)
    assert fresh.body is not None
    fresh.body._factorized.clear()
    picks = np.arange(len(expected))[::3]
    got = fresh.cells(col, start, picks)  # before any factorization: taken from Arrow
    assert got is not None and [(type(v), v) for v in got.tolist()] == [typed[i] for i in picks.tolist()]
    known = fresh.factorized(col, start)
    assert known is not None
    codes, uniques = pd.factorize(expected, use_na_sentinel=True)
    assert known[0].tolist() == codes.tolist()
    assert [(type(v), v) for v in known[1].tolist()] == [(type(v), v) for v in uniques.tolist()]
    amounts = fresh.amounts(col, start)
    if amounts is not None:
        for g, e in zip(amounts, parse_amounts(expected)):
            assert np.array_equal(g, e, equal_nan=True), (col, start)


def _export_shared(path: Path, rows: list[list[object]]) -> Path:
    """As Excel saves: text in the shared-strings part (xlsxwriter writes it so; openpyxl writes inline text)."""
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet("销售出库单")
    day, moment = wb.add_format({"num_format": "yyyy-mm-dd"}), wb.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    ws.write_string(0, 0, "销售出库单序时簿")
    ws.write_string(1, 0, "日期：2025-01-01 至 2025-12-31")
    for r, row in enumerate(rows, start=3):
        for c, value in enumerate(row):
            if isinstance(value, dt.datetime):
                ws.write_datetime(r, c, value, moment if value.hour else day)
            elif isinstance(value, bool):
                ws.write_boolean(r, c, value)
            elif isinstance(value, str):
                ws.write_string(r, c, value)
            elif value is not None:
                ws.write_number(r, c, value)
    wb.close()
    return path


def _export(path: Path, rows: list[list[object]], title: bool = True, start_col: int = 1) -> Path:
    wb = Workbook()
    ws = wb.active
    ws.title = "销售出库单"
    r = 1
    if title:
        ws.cell(1, start_col, "销售出库单序时簿")
        ws.cell(2, start_col, "日期：2025-01-01 至 2025-12-31")
        r = 4
    for row in rows:
        for c, value in enumerate(row):
            if value is not None:
                cell = ws.cell(r, start_col + c, value)
                if isinstance(value, dt.datetime) and value.hour:
                    cell.number_format = "yyyy-mm-dd hh:mm"
        r += 1
    wb.save(path)
    return path


HEADER = ["单据编号", "日期", "客户编码", "价税合计", "数量", "已审核"]


def _lines(n: int, seed: int = 1) -> list[list[object]]:
    rng = np.random.default_rng(seed)
    out: list[list[object]] = [list(HEADER)]
    for i in range(n):
        day = dt.datetime(2025, 1, 1) + dt.timedelta(days=int(rng.integers(0, 365)))
        if i % 7 == 3:
            day += dt.timedelta(hours=9, minutes=30)  # a time of day: datetime, not date
        out.append([f"XS{i:06d}", day, f"C{int(rng.integers(0, 50)):05d}", round(float(rng.normal(1e4, 5e3)), 2),
                    float(rng.integers(1, 200)), bool(i % 2)])
        if i % 9 == 8:
            out.append([None, None, f"C{i:05d} 小计", 123.45, None, None])  # a subtotal row, empty cells
    return out


@pytest.mark.parametrize("writer", ["inline", "shared"])
def test_typed_export_is_read_column_wise_with_calamines_cells(tmp_path: Path, small_thresholds: list[bool],
                                                               monkeypatch: pytest.MonkeyPatch, writer: str) -> None:
    rows = _lines(120)
    path = _export(tmp_path / "kingdee.xlsx", rows) if writer == "inline" else \
        _export_shared(tmp_path / "kingdee.xlsx", rows)
    if writer == "shared":
        with zipfile.ZipFile(path) as zf:
            assert zf.getinfo("xl/sharedStrings.xml").file_size > 2000  # the head needs only the first few
    fast = read_file(path)[0]
    assert small_thresholds == [True] and fast.body is not None
    _same(fast, _row_wise(path, monkeypatch))
    dates = {type(v) for v in fast.column(1, 4).tolist()}
    assert dates == {dt.date, dt.datetime, str}  # whole days as dates, 9:30 as datetime, "" for the 小计 rows


@pytest.mark.parametrize("case", ["mixed", "error", "right_of_a", "short"])
def test_what_cannot_be_shown_equal_is_read_row_wise(tmp_path: Path, small_thresholds: list[bool],
                                                     monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    rows = _lines(60)
    if case == "mixed":
        rows[45][3] = "(1,234.00)"  # a text amount among numbers: one column, two types
    if case == "error":
        rows[45][3] = "=1/0"  # turned into a #DIV/0! error cell below
    if case == "short":
        rows = rows[:5]
    path = _export(tmp_path / f"{case}.xlsx", rows, start_col=2 if case == "right_of_a" else 1)
    if case == "error":
        _with_error_cell(path)
    got = read_file(path)[0]
    assert small_thresholds == [False] and got.table is None and got.body is None
    _same(got, _row_wise(path, monkeypatch))


def _with_error_cell(path: Path) -> None:
    """The formula cell as Excel saves it after computing: an error value (t="e"), no formula."""
    with zipfile.ZipFile(path) as zf:
        parts = {i.filename: zf.read(i.filename) for i in zf.infolist()}
    sheet = "xl/worksheets/sheet1.xml"
    parts[sheet], n = re.subn(rb'<c r="(D\d+)"([^>]*)><f>1/0</f>(?:<v>[^<]*</v>|<v ?/>)?</c>',
                              rb'<c r="\1" t="e"><v>#DIV/0!</v></c>', parts[sheet])
    assert n == 1, parts[sheet][:3000]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in parts.items():
            zf.writestr(name, data)


days = st.one_of(st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2090, 1, 1)).map(
    lambda d: dt.datetime(d.year, d.month, d.day)),
    st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2090, 1, 1)).map(
        lambda d: d.replace(microsecond=0)))
cells = st.one_of(st.none(), st.text(alphabet="C0合计 -.,()¥", max_size=6),
                  st.floats(allow_nan=False, allow_infinity=False, width=64, min_value=-1e12, max_value=1e12),
                  days, st.booleans())
# a column of one kind (every cell of that kind or empty), or of any
by_kind = {"text": st.one_of(st.none(), st.text(alphabet="C0合计 -", min_size=1, max_size=6)),
           "number": st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12,
                                                    max_value=1e12)),
           "date": st.one_of(st.none(), days),
           "bool": st.one_of(st.none(), st.booleans()), "any": cells}


def _sheet(data: st.DataObject, kinds: list[str], rows: tuple[int, int]) -> list[list[object]]:
    n = data.draw(st.integers(*rows))
    return [[f"列{i}" for i in range(len(kinds))]] + [[data.draw(by_kind[k]) for k in kinds] for _ in range(n)]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kinds=st.lists(st.sampled_from(["text", "number", "date", "bool", "any"]), min_size=1, max_size=5),
       data=st.data())
def test_any_sheet_reads_the_same_either_way(tmp_path_factory: pytest.TempPathFactory, small_thresholds: list[bool],
                                             monkeypatch: pytest.MonkeyPatch, kinds: list[str],
                                             data: st.DataObject) -> None:
    rows = _sheet(data, kinds, (13, 40))
    path = _export(tmp_path_factory.mktemp("sheet") / "s.xlsx", rows)
    _same(read_file(path)[0], _row_wise(path, monkeypatch))


@pytest.mark.parametrize("state", ["hidden", "veryHidden", "visible"])
def test_the_sheet_chosen_is_the_one_calamine_chooses(tmp_path: Path, small_thresholds: list[bool],
                                                      monkeypatch: pytest.MonkeyPatch, state: str) -> None:
    """The column-wise read picks the sheet from xl/workbook.xml itself: the first visible one, or the named one."""
    wb = Workbook()
    first = wb.active
    first.title = "参数"
    for r, row in enumerate(_lines(30, seed=2), start=1):
        for c, value in enumerate(row, start=1):
            first.cell(r, c, value)
    first.sheet_state = state
    second = wb.create_sheet("销售出库单")
    for r, row in enumerate(_lines(40), start=4):
        for c, value in enumerate(row, start=1):
            second.cell(r, c, value)
    second.cell(1, 1, "销售出库单序时簿")
    path = tmp_path / "two.xlsx"
    wb.save(path)
    got = read_file(path)[0]
    assert got.sheet == ("参数" if state == "visible" else "销售出库单")
    assert small_thresholds == [True]
    _same(got, _row_wise(path, monkeypatch))
    named = read_file(path, "参数")[0]
    assert named.sheet == "参数"
    _same(named, _row_wise_named(path, "参数", monkeypatch))


def _row_wise_named(path: Path, sheet: str, monkeypatch: pytest.MonkeyPatch) -> RawSheet:
    with monkeypatch.context() as m:
        m.setattr(read_arrow, "MIN_SHEET_BYTES", 1 << 62)
        return read_file(path, sheet)[0]


# ---------------------------------------------------------------- a large sheet parsed in two halves at once

import grading.xlsx_split as xlsx_split  # noqa: E402


@pytest.fixture
def split_small(monkeypatch: pytest.MonkeyPatch, small_thresholds: list[bool]) -> list[bool]:
    """The split read (grading.xlsx_split) taken by small sheets; records whether each read joined halves."""
    monkeypatch.setattr(xlsx_split, "SPLIT_MIN_BYTES", 0)
    monkeypatch.setattr(xlsx_split, "OVERLAP_ROWS", 3)
    monkeypatch.setattr(xlsx_split, "SPARE_CORE", True)
    return _traced(monkeypatch, read_arrow, "read_in_halves", xlsx_split.read_in_halves)


@pytest.mark.parametrize("writer", ["inline", "shared"])
def test_a_sheet_read_in_halves_gives_calamines_cells(tmp_path: Path, split_small: list[bool],
                                                      monkeypatch: pytest.MonkeyPatch, writer: str) -> None:
    rows = _lines(300)
    path = _export(tmp_path / "k.xlsx", rows) if writer == "inline" else _export_shared(tmp_path / "k.xlsx", rows)
    fast = read_file(path)[0]
    assert split_small == [True] and fast.body is not None
    _same(fast, _row_wise(path, monkeypatch))
    with monkeypatch.context() as m:  # and the whole-sheet fastexcel read
        m.setattr(xlsx_split, "SPARE_CORE", False)
        _same(fast, read_file(path)[0])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kinds=st.lists(st.sampled_from(["text", "number", "date", "bool", "any"]), min_size=1, max_size=4),
       data=st.data())
def test_any_sheet_read_in_halves_reads_the_same(tmp_path_factory: pytest.TempPathFactory, split_small: list[bool],
                                                 monkeypatch: pytest.MonkeyPatch, kinds: list[str],
                                                 data: st.DataObject) -> None:
    rows = _sheet(data, kinds, (30, 80))
    path = _export(tmp_path_factory.mktemp("sheet") / "s.xlsx", rows)
    _same(read_file(path)[0], _row_wise(path, monkeypatch))


def test_halves_that_do_not_line_up_are_not_joined() -> None:
    import pyarrow as pa

    a = pa.table({"c0": ["a", "b", "c", "d"], "c1": [1.0, 2.0, None, 4.0]})
    b = pa.table({"c0": ["c", "d", "e"], "c1": [None, 4.0, 5.0]})
    joined = xlsx_split.join(a, b, 2, 2)
    assert joined is not None and joined.column(0).to_pylist() == ["a", "b", "c", "d", "e"]
    assert xlsx_split.join(a, b, 1, 3) is None  # one row off: the overlap differs
    assert xlsx_split.join(a, pa.table({"c0": ["c", "d"], "c1": ["x", "4"]}), 2, 2) is None  # another type
    empty = pa.table({"c0": ["c", "d", "e"], "c1": pa.nulls(3)})
    assert xlsx_split.join(pa.table({"c0": ["a", "b", "c", "d"], "c1": pa.nulls(4)}), empty, 2, 2) is not None
    no_a = pa.table({"c0": pa.array([None, None, None, None], pa.string()), "c1": [1.0, 2.0, 3.0, 4.0]})
    assert xlsx_split.join(no_a, pa.table({"c0": pa.array([None, None], pa.string()), "c1": [3.0, 4.0]}),
                           2, 2) is None  # nothing in column A: the second range might start further right


def test_the_read_pool_lets_only_a_dominant_file_use_both_cores(tmp_path: Path) -> None:
    from grading import read_pool

    seen: list[bool] = []
    xlsx_split.SPARE_CORE = True
    try:
        read_pool._in_worker(lambda *args: _Loaded(), "sales", None, None, tmp_path, False)  # type: ignore[arg-type]
        seen.append(xlsx_split.SPARE_CORE)
        read_pool._in_worker(lambda *args: _Loaded(), "sales", None, None, tmp_path, True)  # type: ignore[arg-type]
        seen.append(xlsx_split.SPARE_CORE)
    finally:
        xlsx_split.SPARE_CORE = True
    assert seen == [False, True]


class _Loaded:
    frames: list[Any] = []


def test_a_row_out_of_order_past_the_middle_stops_the_split(tmp_path: Path, split_small: list[bool],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A row numbered before the second half's first but written after the middle would be skipped by the
    second half's read: the halves are not used and every row is read."""
    monkeypatch.setattr(xlsx_split, "_KEEP", 2048)
    path = _export(tmp_path / "k.xlsx", _lines(300))
    with zipfile.ZipFile(path) as zf:
        parts = {i.filename: zf.read(i.filename) for i in zf.infolist()}
    sheet = "xl/worksheets/sheet1.xml"
    xml = parts[sheet]
    rows = re.findall(rb"<row [^>]*>.*?</row>", xml, flags=re.S)
    moved = rows[20]  # an early row, written again near the end
    body = b"".join(r for r in rows[:-1] if r is not moved) + moved + rows[-1]
    start = xml.index(rows[0])
    end = xml.index(rows[-1]) + len(rows[-1])
    parts[sheet] = xml[:start] + body + xml[end:]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
    got = read_file(path)[0]
    assert split_small[-1] is False
    _same(got, _row_wise(path, monkeypatch))


def test_damaged_compressed_sheet_data_is_a_bad_zip_not_a_raw_error() -> None:
    import io

    from grading.zip_member import member_blocks

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("xl/worksheets/sheet1.xml", b"<row r=\"1\"><c r=\"A1\"><v>1</v></c></row>" * 20_000)
    raw = bytearray(buffer.getvalue())
    info = zipfile.ZipFile(io.BytesIO(bytes(raw))).getinfo("xl/worksheets/sheet1.xml")
    for i in range(info.header_offset + 80, info.header_offset + 200):
        raw[i] = 0xFF
    with pytest.raises(zipfile.BadZipFile):
        b"".join(member_blocks(zipfile.ZipFile(io.BytesIO(bytes(raw))), "xl/worksheets/sheet1.xml"))


def test_zero_amounts_have_no_sign_whichever_reader() -> None:
    import pyarrow as pa

    from grading.amounts import parse_amounts
    from grading.arrow_body import ArrowBody

    def arrow(values: list[object]) -> np.ndarray:
        got = ArrowBody(0, pa.table({"c0": values}), []).amounts(0, 0)
        assert got is not None
        return got[0]

    for nums in (parse_amounts(np.array(["-0", "5", "7"], dtype=object))[0],
                 parse_amounts(np.array(["-0.00", "5.5", "-0,000"], dtype=object))[0],
                 arrow(["-0", "5", "-0,000", "-0.00"]),
                 arrow([-0.0, 1.0])):
        assert not np.signbit(nums[nums == 0]).any()


# ---------------------------------------------------------------- a split sheet's second part parsed by the read pool's worker

def _split_job(name: str, source: Any, config: Any, path: Path) -> Any:
    """The read pool's job in these tests: a .csv file stands for another input (it waits `delay` seconds,
    written in it, in the worker); the .xlsx file is read (this process, which splits it)."""
    import time

    if path.suffix == ".csv":
        time.sleep(float(path.read_text(encoding="utf-8")))
        return _Loaded()
    loaded = _Loaded()
    loaded.sheet = read_file(path)[0]  # type: ignore[attr-defined]
    return loaded


def _read_in_pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, worker_delay: float, main_delay: float = 0.0,
                  fail_here: str = "", others: tuple[float, ...] = (0.7,),
                  before_split: float = 0.0) -> tuple[RawSheet, list[str], list[int]]:
    """A 300-line xlsx read by this process of a read pool whose worker first reads other files (`others`: their
    sizes, times the xlsx's; not small enough for two threads here) for `worker_delay` seconds each;
    strict_sheet notes the process and the part of each parse, and in this process the split waits
    `before_split` seconds and the first part `main_delay` seconds (or fails), so the worker's state when this
    process is done is known. Returns the sheet, the notes and the number of feeders busy when a part was
    handed on; the pool's queue holds no part once the sheet is read."""
    import os
    import time

    from grading import read_pool
    from grading.config_model import SourceConfig

    big = _export(tmp_path / "big.xlsx", _lines(300))
    delay = str(worker_delay)
    other = [tmp_path / f"other{i}.csv" for i in range(len(others))]
    for path, size in zip(other, others):
        path.write_text(delay + " " * int(big.stat().st_size * size - len(delay)), encoding="utf-8")
    write_halves = xlsx_split.write_halves

    def later(*args: Any) -> Any:
        time.sleep(before_split)
        return write_halves(*args)

    monkeypatch.setattr(xlsx_split, "write_halves", later)
    monkeypatch.setattr(read_pool, "PARALLEL_MIN_BYTES", 0)
    log = tmp_path / "parsed.log"
    busy: list[int] = []
    hand_on = read_pool.ReadPool._parse_elsewhere

    def noted_hand_on(pool: read_pool.ReadPool, package: Path, sheet: str, skip: int) -> Any:
        busy.append(pool._feeding)
        return hand_on(pool, package, sheet, skip)

    monkeypatch.setattr(read_pool.ReadPool, "_parse_elsewhere", noted_hand_on)
    parse = xlsx_split.strict_sheet
    here = os.getpid()

    def noted(package: Path, sheet: str, skip: int) -> Any:
        with log.open("a", encoding="utf-8") as fh:
            fh.write(f"{'here' if os.getpid() == here else 'worker'} {package.stem}\n")
        if os.getpid() == here and package.stem == "first":
            time.sleep(main_delay)
            if fail_here == "raises":
                raise RuntimeError("the first part's parse failed")
            if fail_here == "untyped":
                return None  # as strict_sheet gives for a cell that does not fit its column's type
        return parse(package, sheet, skip)

    monkeypatch.setattr(xlsx_split, "strict_sheet", noted)
    source = SourceConfig.model_validate({"files": ["*"]})

    def paths_of(name: str, source: SourceConfig, config: Any, own: Any) -> tuple[list[Path], list[Path]]:
        return [big, *other], []

    with read_pool.ReadPool(SimpleNamespace(), [("sales", source)], _split_job, paths_of, None, None,
                            enabled=True) as pool:
        got: RawSheet = pool.result("sales", big).sheet  # type: ignore[attr-defined]
        assert not any(isinstance(job, read_pool._Part) for job in pool._queue)
    _same(got, _row_wise(big, monkeypatch))
    return got, log.read_text(encoding="utf-8").split("\n")[:-1] if log.exists() else [], busy


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the read pool's workers are used on Linux")
@pytest.mark.parametrize("worker_delay, main_delay, second_part_by, feeding", [
    (0.0, 1.0, "worker", 0),  # the worker has nothing left to do: the part goes to it at once
    (1.0, 3.0, "worker", 1),  # the worker reads a file: it takes the part next, before this process is done
    (4.0, 0.0, "here", 1),    # the worker is still busy when this process is done: taken back, parsed here
])
def test_the_read_pool_worker_parses_a_split_sheets_second_part(tmp_path: Path, split_small: list[bool],
                                                                monkeypatch: pytest.MonkeyPatch, worker_delay: float,
                                                                main_delay: float, second_part_by: str,
                                                                feeding: int) -> None:
    got, parsed, busy = _read_in_pool(tmp_path, monkeypatch, worker_delay, main_delay,
                                      before_split=1.0 if worker_delay == 0 else 0.0)
    assert split_small == [True] and got.body is not None and busy == [feeding]
    assert sorted(parsed) == sorted(["here first", f"{second_part_by} second"])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the read pool's workers are used on Linux")
def test_a_sheet_no_larger_than_the_other_files_is_not_split(tmp_path: Path, split_small: list[bool],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # the worker busy with as much: it could not take a part in time, so the split would only cost
    got, parsed, busy = _read_in_pool(tmp_path, monkeypatch, 0.0, others=(0.7, 0.7))
    assert split_small == [False] and got.body is not None and parsed == [] and busy == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the read pool's workers are used on Linux")
@pytest.mark.parametrize("failure", ["raises", "untyped"])
def test_a_split_read_that_fails_withdraws_the_part_and_reads_the_sheet_whole(tmp_path: Path, split_small: list[bool],
                                                                              monkeypatch: pytest.MonkeyPatch,
                                                                              failure: str) -> None:
    # the worker busy for 2 s: the part waits in the queue, and is withdrawn when the first part's parse fails
    got, parsed, busy = _read_in_pool(tmp_path, monkeypatch, 2.0, fail_here=failure)
    assert split_small == [False] and got.body is not None  # read whole by fastexcel after the failure
    assert parsed == ["here first"] and busy == [1]  # the second part queued, then parsed nowhere
