"""The add-in's seam `xlplugin.run(book)` driven by autospec fakes of an open
workbook: inputs from sheets and from files, sheets copied from the template,
a second run with fewer customers, config errors as alerts, and the number
of transfers (one read per source, one write per block)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from grading.fill_plan import MAIN_COLUMNS
from grading.reviews import REVIEW_HEADERS
from xlplugin import run
from xlplugin.addin import find_config

from .conftest import ROOT, TEMPLATE, base_config, copy_template
from .xlfakes import FakeWorkbook, Formula, book_from_xlsx, link_books

# the default template's main table columns, then the 评审 columns (issue 13)
MAIN_WIDTH = sum(1 for c in MAIN_COLUMNS if c.in_template) + len(REVIEW_HEADERS)

EXPORT = [
    ["销售出库单序时簿"],
    ["单位：元"],
    [],
    ["单据编号", "日期", "客户编码", "客户", "价税合计"],
    ["D1", dt.datetime(2026, 5, 3), "C001", "甲公司", 6_000_000.0],
    ["D2", dt.datetime(2026, 5, 4), "C002", "=HYPERLINK(\"x\")乙公司", 2_000_000.0],
    ["D3", "2026/5/5", "C003", "丙公司", "80,000.00"],
    ["D4", dt.datetime(2026, 5, 6), "C004", "丁公司", 50_000.0],
    ["合计", None, None, None, 8_130_000.0],
]


def _config(folder: Path, sources: dict[str, Any]) -> Path:
    copy_template(folder)
    data = base_config()
    data["sources"] = sources
    data["grading"] = {"stages": [{"type": "thresholds", "metric": "净销售额", "else": "C",
                                   "bands": [{"grade": "A", "min": "500万"}, {"grade": "B", "min": "100万"}]}]}
    data["grades"] = {k: v for k, v in data["grades"].items() if k in "ABC"}
    (folder / "config.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return folder / "config.yaml"


def _book(folder: Path, with_template_sheets: bool = True) -> FakeWorkbook:
    fake = book_from_xlsx(TEMPLATE, folder, "客户分级.xlsx") if with_template_sheets else \
        FakeWorkbook("客户分级.xlsx", folder)
    link_books(fake.app, folder / "templates" / TEMPLATE.name, folder)
    return fake


def _main_rows(fake: FakeWorkbook) -> list[dict[str, Any]]:
    grid = fake.grids["客户分级管理表"]
    header = {c: grid.cells[(4, c)] for c in range(1, 60) if (4, c) in grid.cells}
    rows = []
    r = 5
    while (r, 2) in grid.cells:
        rows.append({h: grid.cells.get((r, c)) for c, h in header.items()})
        r += 1
    return rows


def test_inputs_from_a_pasted_sheet(tmp_path) -> None:  # type: ignore[no-untyped-def]
    _config(tmp_path, {"sales": {"workbook_sheet": "ERP导出"}})
    fake = _book(tmp_path)
    fake.add_sheet("ERP导出", EXPORT)
    outcome = run(fake.book)
    assert outcome.ok, outcome.message
    rows = _main_rows(fake)
    assert [(r["客户编码"], r["等级"]) for r in rows] == [("C001", "A"), ("C002", "B"), ("C003", "C"), ("C004", "C")]
    assert rows[1]["客户名称"] == "=HYPERLINK(\"x\")乙公司"  # text, never a formula
    assert not isinstance(rows[1]["客户名称"], Formula)
    assert rows[0]["分级依据"] == "净销售额 600万 ≥ 500万 → A"
    source_reads = [a for s, a in fake.log.reads if s == "ERP导出"]
    assert len(source_reads) == 1  # one bulk read of the export
    main_writes = [a for s, a in fake.log.writes if s == "客户分级管理表"]
    assert main_writes[0] == (5, 1, 8, MAIN_WIDTH)  # one write: 4 customers × the template's columns
    problems = fake.grids["数据问题"]
    assert any(v == "合计/小计行，不计入客户数据" for v in problems.cells.values())
    fake.app.alert.assert_called_once()
    text = fake.app.alert.call_args.args[0]
    assert text.startswith("分级完成：4 个客户") and "  A 关键客户：1 个" in text
    assert fake.app.screen_updating is True and fake.app.calculation == "automatic"
    assert fake.app.status_bar is False


def test_inputs_from_files(tmp_path, demo) -> None:  # type: ignore[no-untyped-def]
    shutil.copytree(demo[0] / "demo_data", tmp_path / "demo_data")
    _config(tmp_path, {"sales": {"files": ["demo_data/sales_*.xlsx", "demo_data/sales_*.csv",
                                           "demo_data/sales_*.xls"], "workbook_sheet": "ERP导出"}})
    fake = _book(tmp_path)
    outcome = run(fake.book)
    assert outcome.ok and outcome.result is not None
    assert len(_main_rows(fake)) == len(outcome.result.graded) == 300
    assert not [s for s, _ in fake.log.reads if s == "ERP导出"]
    writes = [a for s, a in fake.log.writes if s == "客户分级管理表"]
    assert writes[0] == (5, 1, 304, MAIN_WIDTH)
    summary_writes = [a for s, a in fake.log.writes if s == "分级汇总"]
    # grade table, Pareto table, migration matrix, grid matrix, plus the title cells with placeholders
    assert len([a for a in summary_writes if a[0] >= 4]) == 4
    # the views' blocks are filled from the same plan: 总览's grade table and watch list, the visit load,
    # the per-customer credit table (one row per customer)
    views = [(s, a) for s, a in fake.log.writes if s in ("总览", "业务员与地区", "应收与信用") and a[0] >= 5]
    n_grades = outcome.result.graded["grade"].nunique()
    assert ("总览", (5, 1, 5 + n_grades, 6)) in views  # one row per grade and 合计
    assert any(s == "业务员与地区" and a[1] == 1 for s, a in views)
    assert ("应收与信用", (5, 22, 304, 36)) in views


def test_missing_template_sheets_are_copied_in(tmp_path) -> None:  # type: ignore[no-untyped-def]
    _config(tmp_path, {"sales": {"workbook_sheet": "ERP导出"}})
    fake = _book(tmp_path, with_template_sheets=False)
    fake.add_sheet("ERP导出", EXPORT)
    fake.add_sheet("我的备注", [["不要动"]])
    outcome = run(fake.book)
    assert outcome.ok, outcome.message
    assert outcome.copied_sheets == ("总览", "客户分级管理表", "分级汇总", "业务员与地区", "应收与信用", "等级变动",
                                     "数据问题", "分级规则")
    fake.app.books.open.assert_called_once()
    # 总览 goes first and is shown after the click (the sheet the workbook opens on); the user's sheets follow
    assert list(fake.sheets)[:3] == ["总览", "ERP导出", "我的备注"]
    fake.sheets["总览"].activate.assert_called()
    assert fake.grids["我的备注"].cells == {(1, 1): "不要动"}
    assert len(_main_rows(fake)) == 4
    title = fake.grids["客户分级管理表"].cells[(2, 1)]
    assert title.startswith("统计期间：2025-07-01 至 2026-06-30") and "{{" not in title


def test_second_run_with_fewer_customers_clears_stale_rows(tmp_path) -> None:  # type: ignore[no-untyped-def]
    _config(tmp_path, {"sales": {"workbook_sheet": "ERP导出"}})
    fake = _book(tmp_path)
    fake.add_sheet("ERP导出", EXPORT)
    fake.grids["客户分级管理表"].cells[(3, 31)] = "用户的备注"  # outside the template's table
    assert run(fake.book).ok
    assert len(_main_rows(fake)) == 4
    fake.grids["ERP导出"] = type(fake.grids["ERP导出"])()
    fake.grids["ERP导出"].put(1, 1, 3, 5, [EXPORT[3], EXPORT[4], EXPORT[5]])
    fake.log.clears.clear()
    assert run(fake.book).ok
    rows = _main_rows(fake)
    assert [r["客户编码"] for r in rows] == ["C001", "C002"]
    grid = fake.grids["客户分级管理表"]
    assert not any((r, c) in grid.cells for r in range(7, 10) for c in range(1, 30))
    assert ("客户分级管理表", (7, 1, 8, MAIN_WIDTH)) in fake.log.clears
    assert grid.cells[(3, 31)] == "用户的备注"


def test_config_error_becomes_an_alert(tmp_path) -> None:  # type: ignore[no-untyped-def]
    copy_template(tmp_path)
    (tmp_path / "config.yaml").write_text("sources:\n  sales:\n    files: []\nperiod: {as_of: 2026-13-01}\n",
                                          encoding="utf-8")
    fake = _book(tmp_path)
    outcome = run(fake.book)
    assert not outcome.ok
    text = fake.app.alert.call_args.args[0]
    assert text.startswith("[E100] 配置文件有 ")
    assert "config.yaml 第 4 行 period.as_of: 应为日期，格式 YYYY-MM-DD，发现 '2026-13-01'" in text
    assert "Traceback" not in text
    assert fake.app.alert.call_args.kwargs == {"title": "客户分级 - 需要处理", "mode": "critical"}
    assert not fake.log.writes
    assert fake.app.screen_updating is True and fake.app.calculation == "automatic"


def test_unexpected_error_propagates_and_restores_excel(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _config(tmp_path, {"sales": {"workbook_sheet": "ERP导出"}})
    fake = _book(tmp_path)
    fake.add_sheet("ERP导出", EXPORT)
    import xlplugin.addin as addin

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(addin, "run_pipeline", boom)
    with pytest.raises(RuntimeError):
        run(fake.book)
    assert fake.app.screen_updating is True and fake.app.calculation == "automatic"
    assert fake.app.status_bar is False


def test_config_lookup_order(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "book"
    folder.mkdir()
    fake = FakeWorkbook("客户分级.xlsx", folder)
    monkeypatch.delenv("KEHU_FENJI_CONFIG", raising=False)
    config, source = find_config(fake.book)
    assert source.kind == "default" and source.where == str(ROOT / "config.yaml")  # the shipped starter config
    assert config.base_dir == folder  # its paths are relative to the workbook
    env_cfg = _config(tmp_path, {"sales": {"files": ["x.csv"]}})
    monkeypatch.setenv("KEHU_FENJI_CONFIG", str(env_cfg))
    assert find_config(fake.book)[1].kind == "environment"
    _config(folder, {"sales": {"files": ["y.csv"]}})
    config, source = find_config(fake.book)
    assert source.kind == "beside-workbook" and config.sources.sales.files == ["y.csv"]
    text = (folder / "config.yaml").read_text(encoding="utf-8").replace("y.csv", "z.csv")
    fake.add_sheet("config.yaml", [[line] for line in text.splitlines()])
    config, source = find_config(fake.book)
    assert source.kind == "workbook-sheet" and config.sources.sales.files == ["z.csv"]
    assert config.base_dir == folder
