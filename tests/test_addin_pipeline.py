"""The Grade button and `grade-etl run` are one pipeline: same grades, same sheets, same history.
Plus what Excel itself does to the values the add-in writes (the fakes convert like Excel), tables
and charts that follow the data, the row limit, and the user's cells around the tables."""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
import shutil
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from etl.cli import EXIT_OK, main
from grading import write_xlsx
from grading.fill_plan import MAIN_COLUMNS
from grading.reviews import REVIEW_HEADERS
from grading.history import list_runs
from xlplugin import run
from xlplugin.book_io import excel_text

from .conftest import TEMPLATE, base_config, copy_template
from .xlfakes import ExcelError, Formula, Grid, book_from_xlsx, excel_parse, link_books

MAIN = "客户分级管理表"
# the default template's main table columns, then the 评审 columns (issue 13)
MAIN_WIDTH = sum(1 for c in MAIN_COLUMNS if c.in_template) + len(REVIEW_HEADERS)


def _project(folder: Path, demo_folder: Path, **history: Any) -> Path:
    shutil.copytree(demo_folder / "demo_data", folder / "demo_data")
    copy_template(folder)
    data = base_config()
    data["history"] = {"downgrade_after": 2, **history}
    (folder / "config.yaml").write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return folder / "config.yaml"


def _book(folder: Path) -> Any:
    fake = book_from_xlsx(TEMPLATE, folder, "客户分级.xlsx")
    link_books(fake.app, folder / "templates" / TEMPLATE.name, folder)
    return fake


def _normal(v: Any) -> Any:
    if isinstance(v, str):
        return re.sub(r"生成时间：\d{4}-\d\d-\d\d \d\d:\d\d", "生成时间：…", v)
    return v


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-9)
    return bool(type(a) is type(b) and a == b) or (isinstance(a, str) and isinstance(b, str) and a == b)


def test_grade_click_gives_exactly_what_grade_etl_run_gives(tmp_path, demo) -> None:  # type: ignore[no-untyped-def]
    cfg = _project(tmp_path, demo[0])
    assert main(["run", "-c", str(cfg), "--as-of", "2025-12-31", "--period", "2025H2", "-q"]) == EXIT_OK
    assert main(["run", "-c", str(cfg), "-q"]) == EXIT_OK  # the scheduled run of 2026H1
    output = tmp_path / "output" / "客户分级管理表_2026H1.xlsx"
    fake = _book(tmp_path)  # the workbook beside config.yaml: the add-in finds that config
    outcome = run(fake.book)
    assert outcome.ok, outcome.message
    book = openpyxl.load_workbook(output)
    for sheet in (MAIN, "等级变动", "分级汇总"):
        ws, grid = book[sheet], fake.grids[sheet]
        r1, c1, r2, c2 = grid.bounds()
        assert (ws.max_row, ws.max_column) == (r2, max(c2, ws.max_column)), sheet
        for r in range(1, ws.max_row + 1):
            for c in range(1, ws.max_column + 1):
                want, got = _normal(ws.cell(r, c).value), _normal(grid.cells.get((r, c)))
                assert _same(want, got), f"{sheet}!{ws.cell(r, c).coordinate}: file {want!r} ≠ Excel {got!r}"
    header = [c.value for c in book[MAIN][4]]
    prev = [r[header.index("上期等级")] for r in book[MAIN].iter_rows(min_row=5, values_only=True)]
    moves = {r[header.index("变动")] for r in book[MAIN].iter_rows(min_row=5, values_only=True)}
    assert sum(p is not None for p in prev) > 200 and {"升级", "不变"} <= moves  # downgrades held (downgrade_after: 2)
    assert "与上期 2025H2 比较：升级 " in outcome.message
    runs = list_runs(tmp_path / "output" / "客户分级历史.sqlite")
    assert [(r["period"], r["source"]) for r in runs] == [("2025H2", "run"), ("2026H1", "excel")]  # replaced
    assert runs[1]["output"] == str(tmp_path / "客户分级.xlsx")


def test_recording_from_excel_can_be_turned_off(tmp_path, demo) -> None:  # type: ignore[no-untyped-def]
    cfg = _project(tmp_path, demo[0], record_excel=False)
    assert main(["run", "-c", str(cfg), "--as-of", "2025-12-31", "--period", "2025H2", "-q"]) == EXIT_OK
    fake = _book(tmp_path)
    outcome = run(fake.book)
    assert outcome.ok and outcome.result is not None and outcome.result.history is None
    assert outcome.result.comparison is not None and outcome.result.comparison.previous == "2025H2"
    runs = list_runs(tmp_path / "output" / "客户分级历史.sqlite")
    assert [r["period"] for r in runs] == ["2025H2"]
    assert "已记录到历史" not in outcome.message


def test_the_fake_converts_text_like_excel() -> None:
    assert excel_parse("000123") == 123.0
    assert excel_parse("1E5") == 100000.0
    assert excel_parse("4-6") == dt.datetime(2026, 4, 6) and excel_parse("2-4") == dt.datetime(2026, 2, 4)
    assert excel_parse("1/2") == dt.datetime(2026, 1, 2)
    assert excel_parse("TRUE") is True and excel_parse("false") is False
    assert excel_parse("12%") == 0.12
    assert excel_parse("123456789012345678") == 1.23456789012346e17
    assert isinstance(excel_parse("=1+2"), Formula) and isinstance(excel_parse("#N/A"), ExcelError)
    assert excel_parse("0-2") == "0-2" and excel_parse("关键客户") == "关键客户"
    grid = Grid(formats={(1, 2): "@"})
    grid.put(1, 1, 1, 3, [["000123", "000123", "'000123"]], typed=True)
    assert grid.cells == {(1, 1): 123.0, (1, 2): "000123", (1, 3): "000123"} and grid.prefixed == {(1, 3)}


@pytest.mark.parametrize("text", ["000123", "1E5", "4-6", "2-4", "1/2", "TRUE", "12%", "123456789012345678",
                                  "=A1", "-x", "'quoted", "#N/A", "月结60天", "关键客户", "3:30", "1 1/2"])
def test_text_written_by_the_add_in_arrives_as_the_same_text(text: str) -> None:
    grid = Grid()
    grid.put(1, 1, 1, 1, excel_text(text), typed=True)
    assert grid.cells[(1, 1)] == text and type(grid.cells[(1, 1)]) is str


EXPORT_TEXTS = [
    ["单据编号", "日期", "客户编码", "客户", "价税合计"],
    ["D1", dt.datetime(2026, 5, 3), "000123", "1E5", 6_000_000.0],
    ["D2", dt.datetime(2026, 5, 4), "123456789012345678", "TRUE", 2_000_000.0],
    ["D3", dt.datetime(2026, 5, 5), "C003", "12%", 80_000.0],
    ["D4", dt.datetime(2026, 5, 6), "C004", "1/2", 50_000.0],
]


def _pasted(folder: Path, grades: dict[str, Any] | None = None, bands: list[dict[str, Any]] | None = None) -> None:
    copy_template(folder)
    data = base_config()
    data["sources"] = {"sales": {"workbook_sheet": "ERP导出"}}
    data["grading"] = {"stages": [{"type": "thresholds", "metric": "净销售额", "else": "C",
                                   "bands": bands or [{"grade": "A", "min": "500万"}, {"grade": "B", "min": "100万"}]}]}
    data["grades"] = grades or {k: v for k, v in data["grades"].items() if k in "ABC"}
    (folder / "config.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def _rows(fake: Any, sheet: str = MAIN) -> list[dict[str, Any]]:
    grid = fake.grids[sheet]
    header = {c: grid.cells[(4, c)] for c in range(1, 60) if (4, c) in grid.cells}
    out, r = [], 5
    while (r, 2) in grid.cells:
        out.append({h: grid.cells.get((r, c)) for c, h in header.items()})
        r += 1
    return out


def test_text_stays_text_numbers_and_dates_keep_the_template_formats(tmp_path) -> None:  # type: ignore[no-untyped-def]
    _pasted(tmp_path)
    fake = _book(tmp_path)
    fake.add_sheet("ERP导出", EXPORT_TEXTS)
    assert run(fake.book).ok
    rows = _rows(fake)
    assert [(r["客户编码"], r["客户名称"]) for r in rows] == [
        ("000123", "1E5"), ("123456789012345678", "TRUE"), ("C003", "12%"), ("C004", "1/2")]
    assert [r["拜访频率(次/月)"] for r in rows] == ["4-6", "2-4", "0-2", "0-2"]
    assert all(type(r["客户编码"]) is str and type(r["客户名称"]) is str for r in rows)
    assert rows[0]["净销售额"] == 6_000_000.0 and rows[0]["最近下单日期"] == dt.datetime(2026, 5, 3)
    grid = fake.grids[MAIN]
    date_col = 1 + [grid.cells.get((4, c)) for c in range(1, 60)].index("最近下单日期")
    assert {grid.formats.get((r, date_col)) for r in range(5, 9)} == {"yyyy-mm-dd"}
    summary = _rows(fake, "分级汇总")
    assert [r["拜访频率(次/月)"] for r in summary[:3]] == ["4-6", "2-4", "0-2"]


def test_tables_and_charts_follow_the_number_of_grades(tmp_path) -> None:  # type: ignore[no-untyped-def]
    grades = {k: v for k, v in base_config()["grades"].items() if k in "ABC"}
    grades["D"] = {"label": "小客户"}
    _pasted(tmp_path, grades, [{"grade": "A", "min": "500万"}, {"grade": "B", "min": "100万"},
                               {"grade": "C", "min": "6万"}])
    fake = _book(tmp_path)
    fake.add_sheet("ERP导出", EXPORT_TEXTS)
    assert run(fake.book).ok
    assert fake.table_areas["等级汇总表"] == [4, 1, 8, 11]  # four grades; 合计 just below the table
    assert fake.grids["分级汇总"].cells[(9, 1)] == "合计"
    assert fake.table_areas["客户分级表"] == [4, 1, 8, MAIN_WIDTH] and fake.table_areas["帕累托表"] == [4, 13, 14, 19]
    [grade_chart, profit_chart, pareto_chart] = [c for c in fake.charts]
    assert {tuple(r) for r in grade_chart.refs} == {("分级汇总", 5, 1, 8, 1), ("分级汇总", 5, 4, 8, 4),
                                                    ("分级汇总", 5, 6, 8, 6)}
    assert {tuple(r) for r in profit_chart.refs} == {("分级汇总", 5, 1, 8, 1), ("分级汇总", 5, 4, 8, 4),
                                                     ("分级汇总", 5, 9, 8, 9)}  # 客户占比 vs 毛利占比
    assert {r[3] for r in pareto_chart.refs} == {14}


def test_a_note_under_a_table_survives_a_shorter_run(tmp_path) -> None:  # type: ignore[no-untyped-def]
    _pasted(tmp_path)
    fake = _book(tmp_path)
    fake.add_sheet("ERP导出", EXPORT_TEXTS)
    assert run(fake.book).ok
    grid = fake.grids[MAIN]
    grid.cells[(9, 2)] = "备注：3 月起由张三跟进"  # right under the 4-row table
    grid.cells[(12, 3)] = "用户的合计"
    fake.grids["ERP导出"] = Grid()
    fake.grids["ERP导出"].put(1, 1, 3, 5, EXPORT_TEXTS[:3])
    assert run(fake.book).ok
    assert [r["客户编码"] for r in _rows(fake)][:2] == ["000123", "123456789012345678"]
    assert not any((r, c) in grid.cells for r in (7, 8) for c in range(1, 31))
    assert grid.cells[(9, 2)] == "备注：3 月起由张三跟进" and grid.cells[(12, 3)] == "用户的合计"
    assert fake.table_areas["客户分级表"] == [4, 1, 6, MAIN_WIDTH]


def test_an_open_template_is_used_and_left_open(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from .xlfakes import FakeWorkbook

    _pasted(tmp_path)
    fake = FakeWorkbook("新工作簿.xlsx", tmp_path)
    link_books(fake.app, tmp_path / "templates" / TEMPLATE.name, tmp_path)
    template = book_from_xlsx(tmp_path / "templates" / TEMPLATE.name, tmp_path / "templates", TEMPLATE.name, fake.app)
    fake.add_sheet("ERP导出", EXPORT_TEXTS)
    outcome = run(fake.book)
    assert outcome.ok and outcome.copied_sheets[:2] == ("总览", MAIN)
    assert not template.closed and template.book in list(fake.app.books)
    fake.app.books.open.assert_not_called()
    assert "客户分级表" in fake.table_areas  # the copied sheet brought its table


def test_excel_row_limit_keeps_what_fits_with_a_note_and_the_full_csv(tmp_path, demo, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _project(tmp_path, demo[0])
    monkeypatch.setattr(write_xlsx, "EXCEL_MAX_ROWS", 40)  # stands for 1,048,576 rows
    fake = _book(tmp_path)
    outcome = run(fake.book)
    assert outcome.ok and outcome.result is not None
    n = len(outcome.result.graded)
    note = (f"工作表「客户分级管理表」共 {n:,} 行，超过 Excel 每个工作表 40 行的上限；"
            "工作簿中列出前 35 行，完整清单见 客户分级_客户分级管理表.csv")
    assert f"注意：{note}" in outcome.message
    grid = fake.grids[MAIN]
    assert grid.cells[(40, 1)] == note and not any(r > 40 for r, _ in grid.cells)
    with open(tmp_path / "客户分级_客户分级管理表.csv", encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    assert len(rows) == n + 1 and [r[1] for r in rows[1:]] == list(outcome.result.graded.index)
    assert fake.table_areas["客户分级表"] == [4, 1, 40, MAIN_WIDTH]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
       | st.from_regex(r"[0-9]{1,20}|[0-9]{1,2}[-/][0-9]{1,2}|[0-9.,]{1,8}%?|[+-]?[0-9]E[0-9]", fullmatch=True))
def test_any_text_arrives_as_the_same_text(text: str) -> None:
    grid = Grid()
    grid.put(1, 1, 1, 1, excel_text(text), typed=True)
    assert grid.cells.get((1, 1)) == text and type(grid.cells[(1, 1)]) is str


@pytest.mark.excel
def test_text_stays_text_in_real_excel(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Runs only where Microsoft Excel is installed: the fakes' conversions, checked against Excel itself."""
    import xlwings as xw

    texts = ["000123", "1E5", "4-6", "2-4", "1/2", "TRUE", "12%", "123456789012345678", "=A1", "'quoted", "#N/A"]
    app = xw.App(visible=False, add_book=False)
    try:
        sheet = app.books.add().sheets[0]
        sheet.range((1, 1), (1, len(texts))).value = [texts]
        raw = sheet.range((1, 1), (1, len(texts))).value
        assert [excel_parse(t) for t in texts[:2]] == raw[:2] and isinstance(raw[2], dt.datetime)  # the model holds
        sheet.range((2, 1), (2, len(texts))).value = [[excel_text(t) for t in texts]]
        assert sheet.range((2, 1), (2, len(texts))).value == texts
    finally:
        app.quit()
