"""The views of issue 14, each figure computed independently from the demo data's truth:
growth and 同比 from stored periods, credit-term changes, per-owner counts and visit load,
aging buckets, credit limits, profit per grade; the watch list on a graded frame built here;
grids as grids; optional blocks; charts below grown tables; printable sheets."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import openpyxl
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings, strategies as st

from grading.config import load_config
from grading.config_views import visit_range
from grading.errors import BlocksOverlap, ConfigError
from grading.pipeline import grade_data, run_to_file
from grading.views.overview import WATCH_ADJUSTED, WATCH_NEAR, WATCH_PIN, WATCH_QUIET, watch_list

from .conftest import FIXED_TIME, ROOT, TEMPLATE, base_config, copy_template

ABC = [{"type": "thresholds", "metric": "净销售额", "else": "C",
        "bands": [{"grade": "A", "min": "500万"}, {"grade": "B", "min": "100万"}]}]
TERMS = {"A": "月结60天", "B": "月结30天", "C": "款到发货"}
VISITS = {"A": (4, 6), "B": (2, 4), "C": (0, 2)}
PERIODS = (("2025H1", "2025-06-30", "2025-01-01"), ("2025H2", "2025-12-31", "2025-07-01"),
           ("2026H1", "2026-06-30", "2026-01-01"))


def _project(folder: Path, demo_folder: Path, edit: Any = None) -> Path:
    """ABC thresholds on net sales over six-month periods (grades computable from the truth)."""
    if not (folder / "demo_data").exists():
        shutil.copytree(demo_folder / "demo_data", folder / "demo_data")
    copy_template(folder)
    data = base_config()
    data["grading"] = {"stages": ABC}
    data["grades"] = {k: v for k, v in data["grades"].items() if k in "ABC"}
    data["period"]["months"] = 6
    data["sources"].pop("overrides")
    data["views"]["visit_capacity_per_month"] = 60
    if edit:
        edit(data)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _run(cfg: Path, period: str, as_of: str) -> Any:
    config = load_config(cfg, as_of=dt.date.fromisoformat(as_of), period=period)
    return run_to_file(config, None, generated_at=FIXED_TIME)


def _truth_sales(truth: Any, start: str, end: str) -> pd.Series:
    """Net sales per customer of the period, for every customer the run knows (orders so far or an account)."""
    lines = truth.lines
    window = lines[(lines["date"] >= pd.Timestamp(start)) & (lines["date"] <= pd.Timestamp(end))]
    known = set(lines[lines["date"] <= pd.Timestamp(end)]["customer_code"]) | set(truth.receivables["customer_code"])
    return window.groupby("customer_code")["amount"].sum().reindex(sorted(known), fill_value=0.0)


def _abc(sales: pd.Series) -> pd.Series:
    return sales.map(lambda s: "A" if s >= 5e6 else "B" if s >= 1e6 else "C")


def _sheet_rows(ws: Any, anchor: str, header_row: int = 4) -> list[dict[str, Any]]:
    """Rows of the table whose header row holds `anchor`: the contiguous headed cells around it."""
    head = [c.value for c in ws[header_row]]
    col = head.index(anchor)
    lo = col
    while lo > 0 and head[lo - 1]:
        lo -= 1
    hi = col
    while hi + 1 < len(head) and head[hi + 1]:
        hi += 1
    out = []
    for row in ws.iter_rows(min_row=header_row + 1, values_only=True):
        cells = row[lo:hi + 1]
        if all(v is None for v in cells):
            break
        out.append(dict(zip(head[lo:hi + 1], cells)))
    return out


@pytest.fixture(scope="module")
def three_periods(demo, tmp_path_factory):  # type: ignore[no-untyped-def]
    folder, _ = demo
    cfg = _project(tmp_path_factory.mktemp("views"), folder)
    return [_run(cfg, name, as_of) for name, as_of, _ in PERIODS]


def test_growth_and_yoy_from_stored_periods(demo, three_periods) -> None:  # type: ignore[no-untyped-def]
    _, truth = demo
    now = _truth_sales(truth, "2026-01-01", "2026-06-30")
    before = _truth_sales(truth, "2025-07-01", "2025-12-31")
    year_ago = _truth_sales(truth, "2025-01-01", "2025-06-30")
    result = three_periods[2]
    g = result.graded
    np.testing.assert_allclose(g["net_sales"].to_numpy(), now.reindex(g.index).to_numpy(), atol=1e-6)
    for code in g.index:
        prev = before.get(code, np.nan)
        assert g.at[code, "prev_sales"] == pytest.approx(prev, abs=1e-6, nan_ok=True), code
        growth = (now[code] - prev) / prev if prev > 0 else np.nan
        assert g.at[code, "growth"] == pytest.approx(growth, rel=1e-9, nan_ok=True), code
        ya = year_ago.get(code, np.nan)
        yoy = (now[code] - ya) / ya if ya > 0 else np.nan
        assert g.at[code, "yoy_growth"] == pytest.approx(yoy, rel=1e-9, nan_ok=True), code
    assert g["growth"].notna().sum() > 200  # for all customers, not only the changed ones
    book = openpyxl.load_workbook(result.output)
    main = {r["客户编码"]: r for r in _sheet_rows(book["客户分级管理表"], "客户编码")}
    code = next(c for c in g.index if before.get(c, 0) > 0)
    assert main[code]["上期净销售额"] == pytest.approx(before[code])
    assert main[code]["增长率"] == pytest.approx((now[code] - before[code]) / before[code])
    assert "同比期间：2025H1" in book["总览"]["A2"].value and "上期：2025H2" in book["总览"]["A2"].value


def test_credit_term_changes_hand_off_list(demo, three_periods) -> None:  # type: ignore[no-untyped-def]
    _, truth = demo
    before = _abc(_truth_sales(truth, "2025-07-01", "2025-12-31"))
    now = _abc(_truth_sales(truth, "2026-01-01", "2026-06-30"))
    expected = {c: (TERMS[before[c]], TERMS[now[c]]) for c in now.index
                if c in before.index and before[c] != now[c]}
    assert expected  # the demo has changes in both directions
    book = openpyxl.load_workbook(three_periods[2].output)
    rows = _sheet_rows(book["应收与信用"], "新信用政策")
    assert {r["客户编码"]: (r["原信用政策"], r["新信用政策"]) for r in rows} == expected
    for r in rows:
        assert r["原因"].startswith(f"等级 {before[r['客户编码']]} → {now[r['客户编码']]}：净销售额")


def test_owner_and_region_tables_and_visit_load(demo, three_periods) -> None:  # type: ignore[no-untyped-def]
    _, truth = demo
    grades = _abc(_truth_sales(truth, "2026-01-01", "2026-06-30"))
    master = truth.customers.set_index("customer_code")
    owner = master["salesperson"].reindex(grades.index)
    book = openpyxl.load_workbook(three_periods[2].output)
    ws = book["业务员与地区"]
    load = {r["业务员"]: r for r in _sheet_rows(ws, "负荷状态")}
    assert set(load) == set(owner)
    for name in set(owner):
        mine = grades[owner == name]
        low = sum(VISITS[g][0] for g in mine)
        high = sum(VISITS[g][1] for g in mine)
        row = load[name]
        assert (row["客户数"], row["拜访需求下限(次/月)"], row["拜访需求上限(次/月)"]) == (len(mine), low, high)
        status = row["负荷状态"]
        if low > 60:
            assert status.startswith("超负荷")
        elif high > 60:
            assert status.startswith("可能超负荷")
        else:
            assert status == "正常"
    # grade × 业务员 and grade × 地区: counts per cell
    anchor = next(c for c in ws[4] if c.value == "分组＼等级")
    head = [ws.cell(4, anchor.column + k).value for k in range(8)]
    assert head == ["分组＼等级", "名称", "A 客户数", "A 净销售额", "B 客户数", "B 净销售额", "C 客户数", "C 净销售额"]
    region = master["region"].reindex(grades.index)
    got: dict[tuple[str, str, str], int] = {}
    for r in range(5, ws.max_row + 1):
        group, name = ws.cell(r, anchor.column).value, ws.cell(r, anchor.column + 1).value
        if group is None:
            break
        for k, g in enumerate("ABC"):
            got[(group, name, g)] = ws.cell(r, anchor.column + 2 + 2 * k).value
    for (group, name, g), n in got.items():
        key = owner if group == "业务员" else region
        assert n == int(((key == name) & (grades == g)).sum()), (group, name, g)
    assert {k[1] for k in got if k[0] == "地区"} == set(region)


def test_aging_buckets_overdue_and_credit_limits_per_grade(demo, three_periods) -> None:  # type: ignore[no-untyped-def]
    _, truth = demo
    grades = _abc(_truth_sales(truth, "2026-01-01", "2026-06-30"))
    sales = _truth_sales(truth, "2026-01-01", "2026-06-30")
    rec = truth.receivables.set_index("customer_code")
    bounds = [("0-30天", -1e9, 30), ("31-60天", 30, 60), ("61-90天", 60, 90), ("91-180天", 90, 180),
              ("180天以上", 180, 1e9)]
    book = openpyxl.load_workbook(three_periods[2].output)
    ws = book["应收与信用"]
    assert "导出没有账龄列，按逾期天数把期末余额归入一个账龄段" in ws["A2"].value
    by_grade = {r["等级"]: r for r in _sheet_rows(ws, "逾期占比")}
    for g in "ABC":
        codes = [c for c in rec.index if grades.get(c) == g]
        part = rec.loc[codes]
        assert by_grade[g]["期末余额"] == pytest.approx(part["closing"].sum(), abs=0.01)
        assert by_grade[g]["逾期金额"] == pytest.approx(part.loc[part["overdue_days"] > 0, "closing"].sum(), abs=0.01)
        rate = part["received"].sum() / (part["opening"] + part["billed"]).sum()
        assert by_grade[g]["回款率"] == pytest.approx(rate, rel=1e-9)
        assert by_grade[g]["信用政策"] == TERMS[g]
        for label, lo, hi in bounds:
            inside = part[(part["overdue_days"] > lo) & (part["overdue_days"] <= hi)]
            assert by_grade[g][label] == pytest.approx(inside["closing"].sum(), abs=0.01), (g, label)
    assert by_grade["合计"]["期末余额"] == pytest.approx(rec["closing"].sum(), abs=0.01)
    # credit limit: A = 2 months of average sales, at most 300万; B = 1 month, at most 100万; C none
    rule = {"A": (2, 3e6), "B": (1, 1e6)}
    for r in _sheet_rows(ws, "额度占用率"):
        code, g = r["客户编码"], r["等级"]
        if g in rule:
            months, cap = rule[g]
            assert r["信用额度"] == pytest.approx(min(cap, sales[code] / 6 * months), abs=0.01)
        else:
            assert r["信用额度"] is None
        balance = rec["closing"].get(code)
        if balance is not None and r["信用额度"]:
            assert r["额度占用率"] == pytest.approx(balance / r["信用额度"])


def test_profit_per_grade_in_summary(demo, three_periods) -> None:  # type: ignore[no-untyped-def]
    _, truth = demo
    lines = truth.lines
    # of the demo exports only 用友's (2026 Q1) carries a cost column: 毛利 covers those lines
    costed = lines[(lines["date"] >= pd.Timestamp("2026-01-01")) & (lines["date"] < pd.Timestamp("2026-04-01"))]
    grades = _abc(_truth_sales(truth, "2026-01-01", "2026-06-30"))
    profit = (costed["amount_excl_tax"] - costed["cost"]).groupby(costed["customer_code"]).sum()
    base = costed.groupby("customer_code")["amount_excl_tax"].sum()
    book = openpyxl.load_workbook(three_periods[2].output)
    rows = {r["等级"]: r for r in _sheet_rows(book["分级汇总"], "毛利率")}
    for g in "ABC":
        codes = [c for c in profit.index if grades.get(c) == g]
        assert rows[g]["毛利"] == pytest.approx(profit[codes].sum(), abs=0.5)
        assert rows[g]["毛利率"] == pytest.approx(profit[codes].sum() / base[codes].sum(), rel=1e-6)
        assert rows[g]["毛利占比"] == pytest.approx(profit[codes].sum() / profit.sum(), rel=1e-6)
    assert rows["合计"]["毛利"] == pytest.approx(profit.sum(), abs=0.5)


def test_watch_list_on_a_graded_frame(write_config) -> None:  # type: ignore[no-untyped-def]
    config = write_config()
    as_of = config.period.as_of
    codes = [f"K{i:02d}" for i in range(10)]
    frame = pd.DataFrame({
        "customer_name": [f"客户{i}" for i in range(10)],
        "grade": ["A", "B", "B", "B", "C", "C", "C", "C", "C", "C"],
        "rule_grade": ["A", "B", "B", "B", "C", "C", "C", "B", "C", "C"],
        "net_sales": [9e6, 5e6, 3e6, 2e6, 1e6, 9e5, 8e5, 7e5, 6e5, 5e5],
        "recency_days": [10, 90, 5, 5, 200, 5, 5, 5, 5, 5],
        "last_order_date": pd.to_datetime(["2026-06-20", "2026-04-01", *["2026-06-25"] * 8]),
        "next_gap": ["", "差 40万 → A", "差 20万 → A", "差 30万 → A", "差 5万 → B", "差 12万 → B", "", "",
                     "差 9.5万 → B", ""],
        "next_gap_ratio": [np.nan, 0.08, 0.04, 0.06, 0.05, 0.12, np.nan, np.nan, 0.095, 0.1],
        "adjusted_down": ["回款调整（回款率 < 80%）：A → B", "", "", "", "", "", "", "", "", ""],
        "pin_until": [None, None, None, None, None, None, None, as_of + dt.timedelta(days=20),
                      as_of + dt.timedelta(days=45), None],
    }, index=pd.Index(codes, name="customer_code"))
    w = watch_list(config, frame)
    kinds: dict[str, set[str]] = {}
    for kind, code in zip(w["kind"], w["code"]):
        kinds.setdefault(kind, set()).add(code)
    assert kinds[WATCH_NEAR] == {"K01", "K02", "K03", "K04", "K08"}  # ≤ 10%, a gap shown; K09 has no gap text
    assert kinds[WATCH_ADJUSTED] == {"K00"}  # in the top 20% (2 of 10)
    assert kinds[WATCH_QUIET] == {"K01"}  # K04 is quiet but not large
    assert kinds[WATCH_PIN] == {"K07"}  # K08's pin expires after 30 days
    reasons = dict(zip(zip(w["kind"], w["code"]), w["reason"]))
    assert reasons[(WATCH_NEAR, "K02")] == "距上一等级 差 20万 → A（差距为分界值的 4%，关注线 10%）"
    assert reasons[(WATCH_ADJUSTED, "K00")] == "净销售额排名前 20%；回款调整（回款率 < 80%）：A → B"
    assert reasons[(WATCH_QUIET, "K01")] == "净销售额排名前 20%；90 天未下单（超过 60 天），最近下单 2026-04-01"
    assert reasons[(WATCH_PIN, "K07")] == "人工指定 C 将于 2026-07-20 到期（还有 20 天），到期后按规则为 B"
    assert list(w["kind"]) == sorted(w["kind"], key=[WATCH_ADJUSTED, WATCH_NEAR, WATCH_QUIET, WATCH_PIN].index)

    def tighter(d: dict[str, Any]) -> None:
        d["views"]["watch"]["near_boundary"] = "5%"
    narrow = watch_list(write_config(edit=tighter), frame)
    assert set(narrow.loc[narrow["kind"] == WATCH_NEAR, "code"]) == {"K02", "K04"}


def test_demo_overview_names_the_downgraded_large_customer(demo, write_config) -> None:  # type: ignore[no-untyped-def]
    folder, _ = demo
    config = write_config(folder, name="config_views.yaml")
    result = run_to_file(config, folder / "views" / "out.xlsx", generated_at=FIXED_TIME)
    book = openpyxl.load_workbook(result.output)
    assert book.sheetnames[0] == "总览" and book.active.title == "总览"
    ws = book["总览"]
    watch = _sheet_rows(ws, "关注类型")
    g = result.graded
    top = g["net_sales"].sort_values(ascending=False).index[: int(np.ceil(len(g) * 0.2))]
    adjusted = [r for r in watch if r["关注类型"] == WATCH_ADJUSTED]
    assert adjusted and all(r["客户编码"] in top for r in adjusted)
    second = g["net_sales"].sort_values(ascending=False).index[1]
    row = next(r for r in adjusted if r["客户编码"] == second)  # the 2,180万 customer that ends in C
    assert row["等级"] == "C" and "回款调整（回款率 < 80%）" in row["原因"]
    assert all(r["客户名称"] and r["原因"] for r in watch)
    grades = {r["等级"]: r for r in _sheet_rows(ws, "客户类别")}
    for code in ("A", "B", "C"):
        sel = g[g["grade"] == code]
        assert grades[code]["客户数"] == len(sel)
        assert grades[code]["净销售额"] == pytest.approx(sel["net_sales"].sum())
        assert grades[code]["销售占比"] == pytest.approx(sel["net_sales"].sum() / g["net_sales"].sum())
    assert [r["变动类型"] for r in _sheet_rows(ws, "变动类型")] == ["（无上期数据）"]


def test_biggest_movers_and_change_counts(demo, three_periods) -> None:  # type: ignore[no-untyped-def]
    _, truth = demo
    before = _abc(_truth_sales(truth, "2025-07-01", "2025-12-31"))
    now = _abc(_truth_sales(truth, "2026-01-01", "2026-06-30"))
    book = openpyxl.load_workbook(three_periods[2].output)
    ws = book["总览"]
    counts = {r["变动类型"]: r["客户数"] for r in _sheet_rows(ws, "变动类型")}
    rank = {"A": 0, "B": 1, "C": 2}
    common = [c for c in now.index if c in before.index]
    assert counts["升级"] == sum(rank[now[c]] < rank[before[c]] for c in common)
    assert counts["降级"] == sum(rank[now[c]] > rank[before[c]] for c in common)
    assert counts["不变"] == sum(now[c] == before[c] for c in common)
    assert counts["新增"] == len(set(now.index) - set(before.index))
    assert counts["流失"] == len(set(before.index) - set(now.index))
    movers = _sheet_rows(ws, "净销售额变化", header_row=12)
    assert 0 < len(movers) <= 10
    changes = [abs(r["净销售额变化"]) for r in movers]
    assert changes == sorted(changes, reverse=True)
    assert all(r["客户名称"] and r["说明"] for r in movers)


def test_grid_method_summary_shows_the_matrix(demo, tmp_path) -> None:  # type: ignore[no-untyped-def]
    folder, _ = demo
    shutil.copytree(folder / "demo_data", tmp_path / "demo_data")
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    config = load_config(tmp_path / "examples" / "nine_grid.yaml")
    result = run_to_file(config, tmp_path / "grid.xlsx", generated_at=FIXED_TIME)
    ws = openpyxl.load_workbook(result.output)["分级汇总"]
    anchor = next(c for row in ws.iter_rows(max_row=30) for c in row if c.value == "九宫格矩阵")
    r0, c0 = anchor.row + 1, anchor.column
    head = [ws.cell(r0, c0 + k).value for k in range(5)]
    assert head[4] == "合计" and head[0].startswith("客户数：")
    g = result.graded["grade"]
    for i in range(1, 4):
        label = ws.cell(r0 + i, c0).value
        level = label.split()[-1]
        for k in range(1, 4):
            assert ws.cell(r0 + i, c0 + k).value == int((g == f"{level}{head[k]}").sum()), (label, head[k])
    total = next(r for r in range(r0, r0 + 8) if ws.cell(r, c0).value == "合计")
    assert ws.cell(total, c0 + 4).value == len(g)


def test_four_axis_grid_stays_narrow_next_to_a_full_migration_matrix(demo, tmp_path) -> None:  # type: ignore[no-untyped-def]
    folder, _ = demo
    shutil.copytree(folder / "demo_data", tmp_path / "demo_data")
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    path = tmp_path / "examples" / "multi_axis_codes.yaml"
    run_to_file(load_config(path, as_of=dt.date(2025, 12, 31), period="2025H2"), tmp_path / "a.xlsx",
                generated_at=FIXED_TIME)
    result = run_to_file(load_config(path), tmp_path / "b.xlsx", generated_at=FIXED_TIME)  # 16 codes, 2 periods
    assert result.comparison is not None and result.comparison.previous == "2025H2"
    ws = openpyxl.load_workbook(result.output)["分级汇总"]
    anchor = next(c for row in ws.iter_rows(max_row=30) for c in row if c.value == "九宫格矩阵")
    from grading.config_model import GridStage
    stage = next(s for s in load_config(path).grading.stages if isinstance(s, GridStage))
    levels = stage.axes[-1].levels
    head = [ws.cell(anchor.row + 1, anchor.column + k).value for k in range(len(levels) + 3)]
    assert head[1:] == [*levels, "合计", None]  # rows: the other axes' codes; columns: the last axis
    assert len(levels) + 2 <= 7  # within the Pareto table's columns, left of the migration matrix
    g = result.graded["grade"]
    n_rows = len(stage.levels) // len(levels)
    section = range(anchor.row + 2, anchor.row + 2 + n_rows + 2)
    labels = [ws.cell(r, anchor.column).value for r in section]
    total_row = anchor.row + 2 + labels.index("合计")
    assert ws.cell(total_row, anchor.column + len(levels) + 1).value == len(g)


def test_member_points_discount_on_each_customer_row(demo, tmp_path) -> None:  # type: ignore[no-untyped-def]
    folder, _ = demo
    shutil.copytree(folder / "demo_data", tmp_path / "demo_data")
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    config = load_config(tmp_path / "examples" / "member_points.yaml")
    result = run_to_file(config, tmp_path / "points.xlsx", generated_at=FIXED_TIME)
    rows = _sheet_rows(openpyxl.load_workbook(result.output)["客户分级管理表"], "客户编码")
    discounts = {"钻石": "8折", "金卡": "8.8折", "银卡": "9折", "普通": "9.5折"}
    assert {r["等级"] for r in rows} <= set(discounts)
    assert all(r["折扣"] == discounts[r["等级"]] for r in rows)


def test_aging_export_with_bucket_columns(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import xlsxwriter

    (tmp_path / "sales.csv").write_text("单据编号,日期,客户编码,客户名称,价税合计\n"
                                        "D1,2026-05-01,K1,甲,1200000\nD2,2026-06-01,K2,乙,30000\n", encoding="utf-8")
    wb = xlsxwriter.Workbook(str(tmp_path / "aging.xlsx"))
    ws = wb.add_worksheet("账龄分析表")
    ws.write_row(0, 0, ["客户编码", "客户名称", "应收余额", "逾期金额", "账龄", "", "", "", ""])
    ws.write_row(1, 4, ["1-30天", "31-60天", "61-90天", "91-180天", "180天以上"])
    ws.write_row(2, 0, ["K1", "甲", 500000, 120000, 380000, 100000, 20000, 0, 0])
    ws.write_row(3, 0, ["K2", "乙", 9000, 9000, 0, 0, 0, 4000, 5000])
    wb.close()
    copy_template(tmp_path)
    data = base_config()
    data["sources"] = {"sales": {"files": ["sales.csv"]}, "receivables": {"files": ["aging.xlsx"]}}
    data["grading"] = {"stages": ABC}
    data["grades"] = {k: v for k, v in data["grades"].items() if k in "ABC"}
    data["history"] = {"enabled": False}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    result = run_to_file(load_config(tmp_path / "config.yaml"), tmp_path / "out.xlsx", generated_at=FIXED_TIME)
    ws2 = openpyxl.load_workbook(result.output)["应收与信用"]
    assert "账龄分段列" in ws2["A2"].value
    rows = {r["客户编码"]: r for r in _sheet_rows(ws2, "额度占用率")}
    assert [rows["K1"][k] for k in ("0-30天", "31-60天", "61-90天", "91-180天", "180天以上")] == \
        [380000, 100000, 20000, 0, 0]
    assert [rows["K2"][k] for k in ("0-30天", "31-60天", "61-90天", "91-180天", "180天以上")] == [0, 0, 0, 4000, 5000]
    assert rows["K1"]["逾期金额"] == 120000 and rows["K1"]["期末余额"] == 500000
    assert rows["K1"]["信用额度"] == pytest.approx(min(1e6, 1_200_000 / 12))  # grade B: 1 month, cap 100万


def test_aging_days_column_puts_the_balance_in_its_bucket(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "sales.csv").write_text("单据编号,日期,客户编码,价税合计\nD1,2026-05-01,K1,1000\nD2,2026-06-01,K2,500\n"
                                        "D3,2026-06-02,K3,800\n", encoding="utf-8")
    (tmp_path / "rec.csv").write_text("客户编码,期末余额,账龄(天),最长逾期天数\nK1,300,45,0\nK2,200,200,150\n"
                                      "K3,100,30,5\n", encoding="utf-8")
    copy_template(tmp_path)
    data = base_config()
    data["sources"] = {"sales": {"files": ["sales.csv"]}, "receivables": {"files": ["rec.csv"]}}
    data["grading"] = {"stages": ABC}
    data["grades"] = {k: v for k, v in data["grades"].items() if k in "ABC"}
    data["history"] = {"enabled": False}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    result = run_to_file(load_config(tmp_path / "config.yaml"), tmp_path / "out.xlsx", generated_at=FIXED_TIME)
    ws = openpyxl.load_workbook(result.output)["应收与信用"]
    assert "按应收导出的账龄天数把期末余额归入一个账龄段" in ws["A2"].value
    rows = {r["客户编码"]: r for r in _sheet_rows(ws, "额度占用率")}
    labels = ("0-30天", "31-60天", "61-90天", "91-180天", "180天以上")
    assert [rows["K1"][k] for k in labels] == [0, 300, 0, 0, 0]  # by 账龄, not by the overdue days
    assert [rows["K2"][k] for k in labels] == [0, 0, 0, 0, 200]
    assert [rows["K3"][k] for k in labels] == [100, 0, 0, 0, 0]
    assert [rows[c]["逾期金额"] for c in ("K1", "K2", "K3")] == [0, 200, 100]  # overdue > 0 days: the balance


def test_visit_frequencies_are_numeric_ranges(write_config) -> None:  # type: ignore[no-untyped-def]
    assert visit_range("4-6") == (4, 6) and visit_range("2") == (2, 2) and visit_range("") == (0, 0)
    assert visit_range("1～3次/月") == (1, 3) and visit_range("很多") is None and visit_range("6-4") is None
    config = write_config()
    assert config.policy("A").visits_per_month == "4-6" and config.policy("A").visit_range == (4, 6)

    def bad(d: dict[str, Any]) -> None:
        d["grades"]["B"]["visits_per_month"] = "经常"
    with pytest.raises(ConfigError) as err:
        write_config(edit=bad)
    assert "grades.B.visits_per_month" in str(err.value) and "拜访频率应写成次数或范围，如 2、4-6" in str(err.value)


def test_deleted_blocks_and_sheets_are_skipped(demo, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    wb = openpyxl.load_workbook(TEMPLATE)
    del wb["总览"]
    credit = wb["应收与信用"]
    for row in credit.iter_rows(min_row=4, max_row=5, min_col=14, max_col=20):  # the hand-off table
        for cell in row:
            cell.value = None
    custom = tmp_path / "mine.xlsx"
    wb.save(custom)

    def use_custom(d: dict[str, Any]) -> None:
        d["output"]["template"] = str(custom)
    folder, _ = demo
    config = write_config(folder, use_custom, name="config_skip.yaml")
    result = run_to_file(config, tmp_path / "o.xlsx", generated_at=FIXED_TIME)
    book = openpyxl.load_workbook(result.output)
    assert "总览" not in book.sheetnames
    assert len(_sheet_rows(book["应收与信用"], "额度占用率")) == len(result.graded)


def test_stacked_blocks_that_would_collide_are_refused(demo, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    wb = openpyxl.load_workbook(TEMPLATE)
    ws = wb["总览"]
    for k in range(6):  # move the movers table under the grade table (A, B, C, 暂定 and 合计 reach row 9)
        ws.cell(7, 1 + k).value = ws.cell(12, 8 + k).value
        ws.cell(12, 8 + k).value = None
    custom = tmp_path / "stacked.xlsx"
    wb.save(custom)
    folder, _ = demo

    def use_custom(d: dict[str, Any]) -> None:
        d["output"]["template"] = str(custom)
        d["history"] = {"enabled": False}
    config = write_config(folder, use_custom, name="config_stacked.yaml")
    with pytest.raises(BlocksOverlap) as err:
        run_to_file(config, tmp_path / "o.xlsx", generated_at=FIXED_TIME)
    assert str(err.value).startswith("[E330] ") and "工作表 总览" in str(err.value) and "第 7 行表头" in str(err.value)


def test_views_switched_off(demo, write_config) -> None:  # type: ignore[no-untyped-def]
    folder, _ = demo

    def off(d: dict[str, Any]) -> None:
        d["views"].update({"overview": False, "owners": False, "credit": False, "profit": False})
    result = grade_data(write_config(folder, off, name="config_off.yaml"), generated_at=FIXED_TIME)
    names = [sp.name for sp in result.plan.sheets]
    assert "总览" not in names and "业务员与地区" not in names and "应收与信用" not in names
    summary = next(sp for sp in result.plan.sheets if sp.name == "分级汇总")
    assert "毛利" not in [c.header for c in summary.blocks[0].columns]


def test_charts_stay_below_the_grade_table_with_many_grades(demo, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    folder, _ = demo
    labels = [f"G{i:02d}" for i in range(15)]

    def many(d: dict[str, Any]) -> None:
        d["grading"] = {"stages": [{"type": "quantile", "metric": "净销售额", "by": "count", "else": labels[-1],
                                    "bands": [{"grade": g, "top": 5 * (i + 1)} for i, g in enumerate(labels[:-1])]}]}
        d["grades"] = {g: {"label": f"第{i + 1}级"} for i, g in enumerate(labels)}
        d["history"] = {"enabled": False}
    result = run_to_file(write_config(folder, many, name="config_many.yaml"), tmp_path / "many.xlsx",
                         generated_at=FIXED_TIME)
    with zipfile.ZipFile(result.output) as z:
        drawing = z.read("xl/drawings/drawing1.xml").decode()
    tops = [int(r) for r in re.findall(r"<xdr:from><xdr:col>\d+</xdr:col><xdr:colOff>-?\d+</xdr:colOff>"
                                       r"<xdr:row>(\d+)</xdr:row>", drawing)]
    last_row = 4 + 15 + 1  # header row 4, 15 grades, 合计 (1-based)
    assert len(tops) == 3 and all(t + 1 > last_row for t in tops[:2])  # both pyramids under the grade table


def test_every_sheet_is_printable_and_the_overview_opens_first() -> None:
    with zipfile.ZipFile(TEMPLATE) as z:
        workbook = z.read("xl/workbook.xml").decode()
        names = re.findall(r'<sheet name="([^"]+)"', workbook)
        assert names[:5] == ["总览", "客户分级管理表", "分级汇总", "业务员与地区", "应收与信用"]
        assert 'activeTab="' not in workbook or 'activeTab="0"' in workbook
        titles = re.findall(r'<definedName name="_xlnm.Print_Titles" localSheetId="(\d+)">', workbook)
        assert sorted(map(int, titles)) == list(range(len(names)))
        for i in range(1, len(names) + 1):
            sheet = z.read(f"xl/worksheets/sheet{i}.xml").decode()
            assert 'orientation="landscape"' in sheet and 'fitToHeight="0"' in sheet, names[i - 1]
            assert '<pageSetUpPr fitToPage="1"/>' in sheet and 'ySplit="4"' in sheet, names[i - 1]
        assert 'tabSelected="1"' in z.read("xl/worksheets/sheet1.xml").decode()
    head = [c.value for c in openpyxl.load_workbook(TEMPLATE)["客户分级管理表"][4]]
    assert head.index("等级") < 5 and head.index("客户类别") < 5 and head.index("距上一等级") < 10


def test_anchor_moved_below_a_grown_table_exact_xml() -> None:
    from types import SimpleNamespace

    from grading.sheet_layout import move_anchors_below

    drawing = ('<xdr:wsDr><xdr:twoCellAnchor editAs="oneCell">'
               '<xdr:from><xdr:col>0</xdr:col><xdr:colOff>0</xdr:colOff><xdr:row>16</xdr:row>'
               '<xdr:rowOff>0</xdr:rowOff></xdr:from>'
               '<xdr:to><xdr:col>5</xdr:col><xdr:colOff>10</xdr:colOff><xdr:row>31</xdr:row>'
               '<xdr:rowOff>5</xdr:rowOff></xdr:to></xdr:twoCellAnchor></xdr:wsDr>')
    grade_table = SimpleNamespace(block=None, header_row=4, last_row=4 + 20, span=(0, 10))
    elsewhere = SimpleNamespace(block=None, header_row=4, last_row=400, span=(12, 18))
    moved = move_anchors_below(drawing, [grade_table, elsewhere])  # type: ignore[list-item]
    assert moved == drawing.replace("<xdr:row>16</xdr:row>", "<xdr:row>25</xdr:row>") \
        .replace("<xdr:row>31</xdr:row>", "<xdr:row>40</xdr:row>")  # one blank row under the table, same size
    short = SimpleNamespace(block=None, header_row=4, last_row=9, span=(0, 10))
    assert move_anchors_below(drawing, [short]) == drawing  # type: ignore[list-item]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-10**9, 10**9), st.one_of(st.none(), st.integers(-30, 4000))),
                min_size=1, max_size=30))
def test_aging_buckets_always_add_up_to_the_balance(rows: list[tuple[int, int | None]]) -> None:
    from grading.views.credit import BUCKETS, aging

    frame = pd.DataFrame({"closing": [c / 100 for c, _ in rows],
                          "overdue_days": [np.nan if d is None else float(d) for _, d in rows]},
                         index=[f"K{i}" for i in range(len(rows))])
    buckets = aging(frame)
    known = frame["overdue_days"].notna()
    assert buckets[known].sum(axis=1).round(2).tolist() == frame.loc[known, "closing"].round(2).tolist()
    assert ((buckets[known] != 0).sum(axis=1) <= 1).all()  # the whole balance in one bucket
    assert buckets[~known].isna().all(axis=None)
    assert list(buckets.columns) == BUCKETS


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 50), st.integers(0, 50))
def test_visit_range_reads_what_it_shows(low: int, high: int) -> None:
    text = f"{low}-{high}"
    assert visit_range(text) == ((low, high) if low <= high else None)
    assert visit_range(str(low)) == (low, low)
