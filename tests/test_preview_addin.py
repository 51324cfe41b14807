"""The ribbon's 预览 button through its seam `xlplugin.preview(book)` with autospec fakes: the
workbook's config.yaml sheet (new rules) against the rules of the last stored run, written into a
规则预览 sheet; the history and the other sheets stay as they were."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import yaml

from grading.config import load_config
from grading.pipeline import run_to_file
from xlplugin import preview

from .conftest import TEMPLATE, base_config, copy_template
from .test_addin import EXPORT
from .xlfakes import book_from_xlsx, link_books


def _rules(a: str, b: str) -> dict[str, object]:
    data = base_config()
    data["sources"] = {"sales": {"files": ["sales.csv"], "workbook_sheet": "ERP导出"}}
    data["grading"] = {"stages": [{"type": "thresholds", "metric": "净销售额", "else": "C",
                                   "bands": [{"grade": "A", "min": a}, {"grade": "B", "min": b}]}]}
    data["grades"] = {k: v for k, v in data["grades"].items() if k in "ABC"}
    return data


def test_preview_button_compares_the_workbook_rules_with_the_last_run(tmp_path: Path) -> None:
    copy_template(tmp_path)
    with (tmp_path / "sales.csv").open("w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh).writerows(EXPORT[3:])
    old = tmp_path / "config.yaml"
    old.write_text(yaml.safe_dump(_rules("500万", "100万"), allow_unicode=True), encoding="utf-8")
    run_to_file(load_config(old))  # the last run: ABC at 500万 / 100万, stored with its rules
    db = tmp_path / "output" / "客户分级历史.sqlite"
    before = hashlib.sha256(db.read_bytes()).hexdigest()

    fake = book_from_xlsx(TEMPLATE, tmp_path, "客户分级.xlsx")
    link_books(fake.app, tmp_path / "templates" / TEMPLATE.name, tmp_path)
    fake.add_sheet("ERP导出", EXPORT)
    new_text = yaml.safe_dump(_rules("150万", "6万"), allow_unicode=True)
    fake.add_sheet("config.yaml", [[line] for line in new_text.splitlines()])
    outcome = preview(fake.book)
    assert outcome.ok, outcome.message
    grid = fake.grids["规则预览"]
    col_a = grid.column(1, 1)
    assert col_a[0] == "规则预览"
    assert grid.cells[(2, 1)].startswith("原：原规则：上次运行（期间 2026H1，截止 2026-06-30）的规则")
    assert grid.cells[(3, 1)].startswith("新：新规则：客户分级.xlsx!config.yaml")
    start = col_a.index("三、等级变动的客户（2 个，按净销售额从高到低）") + 1
    movers = [[grid.cells.get((start + k, c)) for c in range(2, 8)] for k in (2, 3)]
    assert movers == [["C002", "=HYPERLINK(\"x\")乙公司", None, "B", "A", "升级"],  # text: Excel's prefix character
                      ["C003", "丙公司", None, "C", "B", "升级"]]
    assert [s for s, _ in fake.log.writes if s != "规则预览"] == []  # no other sheet written
    assert len([s for s, _ in fake.log.writes if s == "规则预览"]) == 1  # one bulk write
    assert [s for s, _ in fake.log.reads if s == "ERP导出"] == ["ERP导出", "ERP导出"]  # once per rule set
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    text = fake.app.alert.call_args.args[0]
    assert text.startswith("规则预览已写入工作表「规则预览」") and "等级变动的客户 2 个（升级 2）" in text
    assert fake.app.screen_updating is True and fake.app.status_bar is False

    fake.log.clears.clear()
    assert preview(fake.book).ok  # a second click replaces the sheet's contents
    assert [s for s, _ in fake.log.clears] == ["规则预览"]


def test_preview_button_without_history_says_what_to_do(tmp_path: Path) -> None:
    copy_template(tmp_path)
    fake = book_from_xlsx(TEMPLATE, tmp_path, "客户分级.xlsx")
    fake.add_sheet("config.yaml", [[line] for line in yaml.safe_dump(
        _rules("150万", "6万"), allow_unicode=True).splitlines()])
    outcome = preview(fake.book)
    assert not outcome.ok and outcome.message.startswith("[E252] 没有找到历史数据库")
    assert "规则预览" not in fake.grids
    assert fake.app.alert.call_args.kwargs["mode"] == "critical"


def test_review_round_trip_inside_the_open_workbook(tmp_path: Path) -> None:
    """sources.reviews: {workbook_sheet: 客户分级管理表}: the workbook's own 评审 columns, filled after
    one click of 分级, pin the customer on the next click; pending rows stay."""
    import datetime as dt

    from xlplugin import run

    from .test_addin import _config, _main_rows

    _config(tmp_path, {"sales": {"workbook_sheet": "ERP导出"}, "reviews": {"workbook_sheet": "客户分级管理表"}})
    fake = book_from_xlsx(TEMPLATE, tmp_path, "客户分级.xlsx")
    link_books(fake.app, tmp_path / "templates" / TEMPLATE.name, tmp_path)
    fake.add_sheet("ERP导出", EXPORT)
    first = run(fake.book)
    assert first.ok, first.message
    grid = fake.grids["客户分级管理表"]
    header = {grid.cells[(4, c)]: c for c in range(1, 60) if (4, c) in grid.cells}
    row = {r["客户编码"]: 5 + i for i, r in enumerate(_main_rows(fake))}
    for h, v in (("建议等级", "C"), ("理由", "回款差"), ("审批人", "王经理"), ("审批日期", dt.datetime(2026, 7, 2)),
                 ("状态", "通过")):
        grid.cells[(row["C001"], header[h])] = v
    for h, v in (("建议等级", "A"), ("理由", "待议"), ("状态", "待审")):
        grid.cells[(row["C002"], header[h])] = v
    second = run(fake.book)
    assert second.ok, second.message
    rows = {r["客户编码"]: r for r in _main_rows(fake)}
    assert (rows["C001"]["等级"], rows["C001"]["人工指定"]) == ("C", "人工指定")
    assert rows["C001"]["分级依据"].startswith("净销售额 600万 ≥ 500万 → A；人工指定：王经理 2026-07-02 通过，理由 回款差 → C")
    assert (rows["C001"]["状态"], rows["C002"]["状态"], rows["C002"]["理由"]) == ("通过", "待审", "待议")
    assert rows["C002"]["等级"] == "B"
