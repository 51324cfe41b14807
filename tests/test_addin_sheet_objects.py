"""Charts below a table that grows follow it in the open workbook exactly as in grade-etl's file
(issue #10 item 3): the same config graded both ways, the charts' rows compared."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openpyxl
import yaml

from etl.cli import EXIT_OK, main
from xlplugin import run

from .conftest import base_config, copy_template
from .test_addin_pipeline import EXPORT_TEXTS, _book
from .xlfakes import ChartModel

GRADES = "ABCDEFGHIJKLMN"  # 14 grades: 等级汇总表 (header row 4) reaches row 18, its 合计 row 19


def _many_grades(folder: Path) -> Path:
    copy_template(folder)
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    for row in EXPORT_TEXTS:
        ws.append(row)
    wb.save(folder / "sales.xlsx")
    data = base_config()
    data["sources"] = {"sales": {"workbook_sheet": "ERP导出", "files": ["sales.xlsx"]}}
    data["grades"] = {g: {"label": f"{g}类客户"} for g in GRADES}
    bands = [{"grade": g, "min": f"{(len(GRADES) - k) * 10}万"} for k, g in enumerate(GRADES[:-1])]
    data["grading"] = {"stages": [{"type": "thresholds", "metric": "净销售额", "else": GRADES[-1], "bands": bands}]}
    cfg = folder / "config.yaml"
    cfg.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return cfg


def _chart_rows_in_file(path: Path, sheet: str) -> list[tuple[int, int, int, int]]:
    ws = openpyxl.load_workbook(path)[sheet]
    return [(c.anchor._from.row, c.anchor.to.row, c.anchor._from.col, c.anchor.to.col) for c in ws._charts]


def _row_of(grid: Any, top: float) -> int:
    """0-based row whose extent holds `top` points."""
    r = 1
    while grid.row_top(r + 1) <= top:
        r += 1
    return r - 1


def test_charts_below_a_grown_table_move_as_in_the_file(tmp_path: Path) -> None:
    cfg = _many_grades(tmp_path)
    assert main(["run", "-c", str(cfg), "-q"]) == EXIT_OK
    [output] = (tmp_path / "output").glob("客户分级管理表_*.xlsx")
    in_file = _chart_rows_in_file(output, "分级汇总")
    fake = _book(tmp_path)
    fake.add_sheet("ERP导出", EXPORT_TEXTS)
    grid = fake.grids["分级汇总"]
    over_table = ChartModel("logo", sheet="分级汇总", top=grid.row_top(10) + 3, left=grid.column_left(1),
                            width=80, height=50)  # a picture over rows 10–13 of the grade table
    aside = ChartModel("aside", sheet="分级汇总", top=grid.row_top(10), left=grid.column_left(30), width=80, height=50)
    fake.pictures += [over_table, aside]
    before = [(c.top, c.left, c.width, c.height) for c in fake.charts]
    outcome = run(fake.book)
    assert outcome.ok, outcome.message
    assert fake.table_areas["等级汇总表"] == [4, 1, 18, 11] and fake.grids["分级汇总"].cells[(19, 1)] == "合计"
    in_excel = [_row_of(grid, c.top) for c in fake.charts]
    assert in_excel == [r[0] for r in in_file] == [20, 20, 19]  # below 合计 (row 19, 0-based 18) and a gap
    assert [(c.left, c.width, c.height) for c in fake.charts] == [b[1:] for b in before]  # only moved down
    assert [c.top for c in fake.charts][2] == before[2][0]  # the Pareto chart covers no grown table
    # pictures follow the same rule (grade-etl moves every drawing anchor), keeping their offset in the row
    assert over_table.top == grid.row_top(21) + 3 and (over_table.width, over_table.height) == (80, 50)
    assert aside.top == grid.row_top(10)
    # a second click (the tables already long) moves nothing further
    assert run(fake.book).ok
    assert [_row_of(grid, c.top) for c in fake.charts] == in_excel


def test_charts_that_cover_no_table_stay(tmp_path: Path) -> None:
    from tests.test_addin_pipeline import _pasted

    _pasted(tmp_path)
    fake = _book(tmp_path)
    fake.add_sheet("ERP导出", EXPORT_TEXTS)
    before = [(c.top, c.left, c.width, c.height) for c in fake.charts]
    assert run(fake.book).ok
    assert [(c.top, c.left, c.width, c.height) for c in fake.charts] == before


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=80, deadline=None)
@given(st.lists(st.floats(0.5, 60), min_size=1, max_size=40), st.floats(0, 3000))
def test_the_row_holding_a_position_is_found_by_bisection(heights: list[float], position: float) -> None:
    from xlplugin.sheet_objects import _index_at

    def start_of(r: int) -> float:  # rows beyond the list have Excel's default 15 points
        return sum(heights[:r - 1]) + 15.0 * max(r - 1 - len(heights), 0)

    want = 1
    while want < 100_000 and start_of(want + 1) <= position:
        want += 1
    assert _index_at(position, start_of, 100_000) == want


# --- inputs pasted as sheets are recorded with a content hash, as files are ---------------------

def _stored(folder: Path) -> list[tuple[str, int, str]]:
    from grading.history import list_runs, stored_inputs

    db = folder / "output" / "客户分级历史.sqlite"
    [period] = [r["period"] for r in list_runs(db)]
    return [tuple(r) for r in stored_inputs(db, period)]  # type: ignore[misc]


def test_a_pasted_sheet_is_recorded_with_a_stable_content_hash(tmp_path: Path) -> None:
    import datetime as dt

    from grading.history import sheet_digest
    from tests.test_addin_pipeline import _pasted

    _pasted(tmp_path)
    fake = _book(tmp_path)
    fake.add_sheet("ERP导出", EXPORT_TEXTS)
    assert run(fake.book).ok
    [(label, size, sha)] = _stored(tmp_path)
    assert label == "客户分级.xlsx!ERP导出"
    assert (size, sha) == sheet_digest(fake.grids["ERP导出"].block(1, 1, len(EXPORT_TEXTS), 5))
    assert len(sha) == 64 and size > 0
    # the same content again (a re-click replaces the period): the same hash, whatever empty cells trail it
    fake.grids["ERP导出"].formats[(40, 12)] = "0.00"  # a formatted empty cell widens the used range
    assert run(fake.book).ok
    assert _stored(tmp_path) == [(label, size, sha)]
    # one changed amount: another hash
    fake.grids["ERP导出"].cells[(5, 5)] = 50_000.01
    assert run(fake.book).ok
    assert _stored(tmp_path)[0][2] != sha
    # what is hashed is the values with their types: text "1" and the number 1 differ, int 1 and 1.0 do not
    assert sheet_digest([["1"]]) != sheet_digest([[1.0]]) and sheet_digest([[1]]) == sheet_digest([[1.0]])
    assert sheet_digest([[dt.datetime(2026, 5, 3)]]) != sheet_digest([["2026-05-03T00:00:00"]])
    assert sheet_digest([["a", None], [None, None]]) == sheet_digest([["a"]])


# --- a sheet-level autofilter (outside an Excel table) is stretched as grade-etl stretches it ---------

MAIN = "客户分级管理表"


def _filter_template(folder: Path) -> Path:
    """The default template with the main table as a plain range under a sheet-level autofilter."""
    cfg = _many_grades(folder)
    template = folder / "templates" / "客户分级管理表.xlsx"
    wb = openpyxl.load_workbook(template)
    ws = wb[MAIN]
    [(name, ref)] = list(ws.tables.items())
    del ws.tables[name]
    ws.auto_filter.ref = str(ref)  # A4:..5: the header and the sample row
    wb.save(template)
    return cfg


def _file_filter(path: Path) -> str:
    return str(openpyxl.load_workbook(path)[MAIN].auto_filter.ref)


def _book_from(folder: Path) -> Any:
    from .xlfakes import book_from_xlsx, link_books

    fake = book_from_xlsx(folder / "templates" / "客户分级管理表.xlsx", folder, "客户分级.xlsx")
    link_books(fake.app, folder / "templates" / "客户分级管理表.xlsx", folder)
    fake.add_sheet("ERP导出", EXPORT_TEXTS)
    return fake


def test_a_sheet_autofilter_is_stretched_as_in_the_file(tmp_path: Path, monkeypatch: Any) -> None:
    from openpyxl.utils.cell import range_boundaries

    from xlplugin import sheet_objects

    cfg = _filter_template(tmp_path)
    assert main(["run", "-c", str(cfg), "-q"]) == EXIT_OK
    [output] = (tmp_path / "output").glob("客户分级管理表_*.xlsx")
    in_file = _file_filter(output)
    c1, r1, c2, r2 = range_boundaries(in_file)
    assert (r1, r2) == (4, 8)  # four customers under the header
    monkeypatch.setattr(sheet_objects, "COM", True)  # Excel on Windows: sheet.api is the COM Worksheet
    fake = _book_from(tmp_path)
    outcome = run(fake.book)
    assert outcome.ok, outcome.message
    assert fake.autofilters[MAIN] == [r1, c1, r2, c2]
    assert "筛选" not in outcome.message
    assert run(fake.book).ok and fake.autofilters[MAIN] == [r1, c1, r2, c2]  # a second click: the same


def test_a_filter_in_use_is_left_with_a_note(tmp_path: Path, monkeypatch: Any) -> None:
    from xlplugin import sheet_objects

    _filter_template(tmp_path)
    monkeypatch.setattr(sheet_objects, "COM", True)
    fake = _book_from(tmp_path)
    before = list(fake.autofilters[MAIN] or [])
    fake.filter_mode[MAIN] = True  # the user filtered the last output: rows are hidden
    outcome = run(fake.book)
    assert outcome.ok
    assert fake.autofilters[MAIN] == before and fake.filter_mode[MAIN]
    assert f"注意：工作表「{MAIN}」的筛选正在使用（部分行被隐藏），筛选范围没有扩展到新写入的行（应为 A4:" in outcome.message


def test_without_com_the_filter_stays(tmp_path: Path) -> None:
    """macOS (and any engine without the COM Worksheet): xlwings has no portable way to move the filter."""
    from xlplugin import sheet_objects

    assert sheet_objects.COM is False  # this machine (Linux)
    _filter_template(tmp_path)
    fake = _book_from(tmp_path)
    before = list(fake.autofilters[MAIN] or [])
    assert run(fake.book).ok
    assert fake.autofilters[MAIN] == before


_CELL = st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=5) \
    | st.datetimes(min_value=__import__("datetime").datetime(1990, 1, 1))


@settings(max_examples=120, deadline=None)
@given(st.lists(st.lists(_CELL, max_size=5), max_size=6), st.integers(0, 3), st.integers(0, 3))
def test_a_sheet_digest_ignores_trailing_empties_and_sees_every_value(
        rows: list[list[Any]], extra_rows: int, extra_cols: int) -> None:
    from grading.history import sheet_digest

    padded = [row + [None] * extra_cols for row in rows] + [[None] * extra_cols] * extra_rows
    assert sheet_digest(padded) == sheet_digest(rows)
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            if value is None or value == "":
                continue
            changed = [list(r) for r in rows]
            changed[i][j] = "≠" if not isinstance(value, str) else value + "≠"
            assert sheet_digest(changed) != sheet_digest(rows)
