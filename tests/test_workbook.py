"""The filled workbook: golden comparison cell by cell, template parts kept,
header matching, formula safety, atomic output."""

from __future__ import annotations

import hashlib
import math
import os
import re
import shutil
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from grading.errors import InputErrors
from grading.pipeline import run_to_file

from .conftest import FIXED_TIME, TEMPLATE

GOLDEN = Path(__file__).parent / "golden" / "demo_expected.xlsx"


def _run(demo, write_config, edit=None, output: Path | None = None):  # type: ignore[no-untyped-def]
    folder, _ = demo
    config = write_config(folder, edit, name="config_test.yaml")
    out = output or folder / "out" / "result.xlsx"
    return run_to_file(config, out, generated_at=FIXED_TIME), out


def _cells(path: Path) -> dict[str, list[list[Any]]]:
    wb = openpyxl.load_workbook(path)
    return {ws.title: [[(c.value, c.number_format) for c in row] for row in ws.iter_rows()] for ws in wb}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_demo_workbook_matches_golden_cell_by_cell(demo, write_config) -> None:  # type: ignore[no-untyped-def]
    _, out = _run(demo, write_config)
    if os.environ.get("UPDATE_GOLDEN"):
        shutil.copyfile(out, GOLDEN)
    got, want = _cells(out), _cells(GOLDEN)
    assert list(got) == list(want)
    for sheet in want:
        assert len(got[sheet]) == len(want[sheet]), sheet
        for r, (grow, wrow) in enumerate(zip(got[sheet], want[sheet]), 1):
            assert len(grow) == len(wrow), (sheet, r)
            for c, ((gv, gf), (wv, wf)) in enumerate(zip(grow, wrow), 1):
                assert _same(gv, wv), f"{sheet}!R{r}C{c}: {gv!r} != {wv!r}"
                assert gf == wf, f"{sheet}!R{r}C{c} format: {gf!r} != {wf!r}"


def test_template_parts_survive_and_template_is_untouched(demo, write_config) -> None:  # type: ignore[no-untyped-def]
    before = hashlib.sha256(TEMPLATE.read_bytes()).hexdigest()
    result, out = _run(demo, write_config)
    assert hashlib.sha256(TEMPLATE.read_bytes()).hexdigest() == before
    with zipfile.ZipFile(TEMPLATE) as t, zipfile.ZipFile(out) as o:
        names = set(o.namelist())
        assert set(t.namelist()) == names
        # the drawing of 分级汇总 keeps its charts where they are (four grades fit above them)
        for part in ("xl/theme/theme1.xml", "xl/drawings/drawing1.xml", "xl/worksheets/_rels/sheet3.xml.rels"):
            assert o.read(part) == t.read(part), part
        # styles are only extended: the template's own formats stay, grade colours from config are appended
        t_styles, o_styles = t.read("xl/styles.xml").decode(), o.read("xl/styles.xml").decode()
        assert o_styles.split("<dxfs")[0] == t_styles.split("<dxfs")[0]
        # A, B, C colours on the tables with a 等级 column: 总览, main, 分级汇总, two of 应收与信用
        assert o_styles.count("<dxf>") == t_styles.count("<dxf>") + 5 * 3
        main = o.read("xl/worksheets/sheet2.xml").decode()
        assert "<conditionalFormatting" in main and '<pane xSplit="5" ySplit="4"' in main  # up to 客户类别
        assert re.search(r'<conditionalFormatting sqref="D5:D1048576"><cfRule type="cellIs" dxfId="\d+" '
                         r'priority="1" operator="equal"><formula>"A"</formula></cfRule>', main)
        n = len(result.graded)
        assert "<tableParts" in main  # the template's tables are Excel Tables: ref and autoFilter stretched
        tables = {re.search(r'name="([^"]+)"', o.read(x).decode()).group(1): o.read(x).decode()  # type: ignore[union-attr]
                  for x in o.namelist() if x.startswith("xl/tables/")}
        assert f'ref="A4:AP{4 + n}"' in tables["客户分级表"] and f'<autoFilter ref="A4:AP{4 + n}"/>' in tables["客户分级表"]
        # the grade table holds the 4 grades its chart plots; the 合计 row sits just below it
        assert 'ref="A4:K8"' in tables["等级汇总表"] and '<autoFilter ref="A4:K8"/>' in tables["等级汇总表"]
        assert 'ref="M4:S14"' in tables["帕累托表"]
        chart = o.read("xl/charts/chart1.xml").decode()
        # four grades in config.yaml (A, B, C, 暂定): the template's 3-row ranges grow to 4 rows
        assert re.findall(r"<c:f>(.*?)</c:f>", chart) == ["分级汇总!$A$5:$A$8", "分级汇总!$D$5:$D$8",
                                                          "分级汇总!$A$5:$A$8", "分级汇总!$F$5:$F$8"]
        workbook = o.read("xl/workbook.xml").decode()
        assert "客户分级管理表!$1:$4" in workbook and 'fullCalcOnLoad="1"' in workbook
        strings = o.read("xl/sharedStrings.xml").decode()
        assert "{{期间}}" not in strings and "2025-07-01 至 2026-06-30" in strings


def test_chart_ranges_follow_number_of_grades(demo, write_config) -> None:  # type: ignore[no-untyped-def]
    def four_grades(d: dict[str, Any]) -> None:
        d["grading"]["stages"] = [{"type": "thresholds", "metric": "净销售额", "else": "D",
                                   "bands": [{"grade": "A", "min": "500万"}, {"grade": "B", "min": "100万"},
                                             {"grade": "C", "min": "10万"}]}]
        d["grades"]["D"] = {"label": "小客户"}

    _, out = _run(demo, write_config, four_grades)
    with zipfile.ZipFile(out) as o:
        chart = o.read("xl/charts/chart1.xml").decode()
    assert "分级汇总!$D$5:$D$9" in chart and "<c:numCache>" not in chart  # A, B, C, 暂定, D


def test_export_text_is_never_a_formula(demo, write_config) -> None:  # type: ignore[no-untyped-def]
    _, out = _run(demo, write_config)
    with zipfile.ZipFile(out) as o:
        sheets = [o.read(n).decode() for n in o.namelist() if n.startswith("xl/worksheets/sheet")]
    assert not any("<f>" in s or "<f " in s for s in sheets)
    ws = openpyxl.load_workbook(out)["客户分级管理表"]
    names = [ws.cell(r, 3).value for r in range(5, ws.max_row + 1)]
    hostile = [n for n in names if isinstance(n, str) and n[:1] in "=@"]
    assert sorted(hostile) == ['=HYPERLINK("http://x","点我")商行', "@SUM(1+1)电子"]
    assert all(ws.cell(r, 3).data_type == "s" for r in range(5, ws.max_row + 1))


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_reordered_and_dropped_columns_and_user_sheet(demo, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    wb = openpyxl.load_workbook(TEMPLATE)
    ws = wb["客户分级管理表"]
    ws["B4"], ws["C4"] = "客户名称", "客户编码"   # user swapped two columns
    ws.delete_cols([c.value for c in ws[4]].index("退货额") + 1)  # and dropped 退货额
    wb.create_sheet("我的备注")["A1"] = "请勿删除"
    custom = tmp_path / "my_template.xlsx"
    wb.save(custom)

    def use_custom(d: dict[str, Any]) -> None:
        d["output"]["template"] = str(custom)

    result, out = _run(demo, write_config, use_custom, output=tmp_path / "o.xlsx")
    book = openpyxl.load_workbook(out)
    main = book["客户分级管理表"]
    headers = [c.value for c in main[4]]
    assert "退货额" not in headers
    first = result.graded.iloc[0]
    assert main["B5"].value == first["customer_name"]
    assert main["C5"].value == result.graded.index[0]
    assert book["我的备注"]["A1"].value == "请勿删除"


def test_failed_run_keeps_previous_output(demo, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "kept.xlsx"
    _run(demo, write_config, output=out)
    before = out.read_bytes()
    bad = tmp_path / "bad.csv"
    bad.write_text("客户,金额\nX,1\n", encoding="utf-8")

    def broken(d: dict[str, Any]) -> None:
        d["sources"]["sales"]["files"] = [str(bad)]

    with pytest.raises(InputErrors):
        _run(demo, write_config, broken, output=out)
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".~")] == []


def test_tables_longer_than_excel_allows_go_to_csv_with_a_note(demo, write_config, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import csv

    from grading import write_xlsx

    monkeypatch.setattr(write_xlsx, "EXCEL_MAX_ROWS", 40)  # stands for 1,048,576 rows
    result, out = _run(demo, write_config, output=tmp_path / "big.xlsx")
    n = len(result.graded)
    main_note = next(m for m in result.overflows if m.startswith("工作表「客户分级管理表」"))
    assert main_note == (f"工作表「客户分级管理表」共 {n:,} 行，超过 Excel 每个工作表 40 行的上限；"
                         "工作簿中列出前 35 行，完整清单见 big_客户分级管理表.csv")
    assert any(m.startswith("工作表「数据问题」共 ") for m in result.overflows)
    # a sheet with several tables names the table in the CSV's name
    assert any(m.endswith("完整清单见 big_应收与信用_额度占用率.csv") for m in result.overflows)
    ws = openpyxl.load_workbook(out)["客户分级管理表"]
    assert ws.max_row == 40
    assert ws.cell(40, 1).value == main_note
    assert ws.cell(39, 2).value == result.graded.index[34]
    with open(tmp_path / "big_客户分级管理表.csv", encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    assert len(rows) == n + 1 and rows[0][:3] == ["序号", "客户编码", "客户名称"]
    assert [r[1] for r in rows[1:]] == list(result.graded.index)
    assert "'=HYPERLINK(\"http://x\",\"点我\")商行" in [r[2] for r in rows]  # formula-safe CSV


def test_number_columns_held_as_arrays_write_the_bytes_their_values_write(demo, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The plan keeps number and date columns as numpy arrays (ArrayValues) and text columns as Arrow strings
    (TextValues) for the file writer; written from
    the Python values they read as (what the add-in and the CSV beside the output get), every part is the same."""
    import dataclasses

    from grading.plan_types import ArrayValues, TextValues
    from grading.write_xlsx import write_workbook

    result, _ = _run(demo, write_config)
    plan = result.plan
    held = [c for s in plan.sheets for b in s.blocks for c in b.columns if isinstance(c.values, ArrayValues)]
    assert len(held) > 20  # the main sheet's and the views' number columns
    texts = [c for s in plan.sheets for b in s.blocks for c in b.columns if isinstance(c.values, TextValues)]
    assert len(texts) > 5  # the main sheet's text columns held as Arrow strings
    as_lists = dataclasses.replace(plan, sheets=tuple(
        dataclasses.replace(s, blocks=tuple(
            dataclasses.replace(b, columns=tuple(dataclasses.replace(c, values=list(c.values)) for c in b.columns))
            for b in s.blocks)) for s in plan.sheets))
    template = demo[0] / "templates" / TEMPLATE.name
    write_workbook(template, tmp_path / "arrays.xlsx", plan)
    write_workbook(template, tmp_path / "lists.xlsx", as_lists)
    with zipfile.ZipFile(tmp_path / "arrays.xlsx") as a, zipfile.ZipFile(tmp_path / "lists.xlsx") as b:
        assert a.namelist() == b.namelist()
        for name in a.namelist():
            assert a.read(name) == b.read(name), name
