"""Real exports as they come: a shop export graded without hand edits and checked against an
independent pandas computation; derived amounts; English headers; text dates in either order;
one rule for customer codes; the value of dropped lines; cross-checks between sources."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import xlsxwriter
import yaml

from etl.cli import EXIT_INPUT, EXIT_OK, main
from grading.codes import normalise_code
from grading.config import load_config
from grading.dates import parse_dates, parse_date_format
from grading.errors import InputErrors
from grading.fields import SOURCE_FIELDS
from grading.header import detect_layout, norm_header
from grading.pipeline import grade_data
from grading.read import read_file

from .conftest import TEMPLATE
from .shop_export import AS_OF, shop_config, write_shop_csv


def _config(tmp_path: Path, text: str, **sales: Any):  # type: ignore[no-untyped-def]
    (tmp_path / "sales.csv").write_text(text, encoding="utf-8")
    return load_config(shop_config(tmp_path, TEMPLATE, ["sales.csv"], **sales))


def _reasons(result) -> list[str]:  # type: ignore[no-untyped-def]
    return [p.reason for p in result.problems]


# ---------------------------------------------------------------- done when: the shop export

def test_shop_export_matches_an_independent_pandas_computation(tmp_path: Path) -> None:
    path = write_shop_csv(tmp_path / "Online Retail.csv")
    config = load_config(shop_config(tmp_path, TEMPLATE, ["Online Retail.csv"]))
    result = grade_data(config)

    raw = pd.read_csv(path)
    raw["amount"] = (raw["Quantity"] * raw["UnitPrice"]).round(2)
    known = raw.dropna(subset=["CustomerID"]).copy()
    known["code"] = known["CustomerID"].astype("int64").astype(str)
    known["when"] = pd.to_datetime(known["InvoiceDate"], format="%m/%d/%Y %H:%M")
    start = pd.Timestamp(AS_OF) - pd.DateOffset(months=12) + pd.Timedelta(days=1)
    end = pd.Timestamp(AS_OF) + pd.Timedelta(days=1)
    upto = known[known["when"] < end]
    window = upto[upto["when"] >= start]
    net = window.groupby("code")["amount"].sum().reindex(upto["code"].unique(), fill_value=0.0)
    returns = -window[window["amount"] < 0].groupby("code")["amount"].sum().reindex(net.index, fill_value=0.0)

    graded = result.graded
    assert sorted(graded.index) == sorted(net.index)
    assert (graded["net_sales"].reindex(net.index).round(2) == net.round(2)).all()
    assert (graded["returns"].reindex(net.index).round(2) == returns.round(2)).all()
    assert (graded.loc[net.index, "region"] != "").all()  # Country → 地区

    # Pareto 70/90 by net sales (ties by code), negative sales count 0; the crossing customer is inside
    ranked = sorted(net.items(), key=lambda kv: (-kv[1], kv[0]))
    total = sum(max(v, 0.0) for _, v in ranked)
    before, expected = 0.0, {}
    for code, value in ranked:
        expected[code] = "A" if before < 0.7 else "B" if before < 0.9 else "C"
        before += max(value, 0.0) / total
    assert graded["grade"].to_dict() == expected

    # derived amount said once, no-customer lines dropped with their amount and share, warned first
    assert sum("没有金额列，金额按 「Quantity」×「UnitPrice」 计算" in r for r in _reasons(result)) == 1
    anonymous = raw[raw["CustomerID"].isna()]
    [drop] = result.drops
    assert (drop.reason, drop.lines) == ("客户编码为空", len(anonymous))
    assert drop.amount == pytest.approx(round(anonymous["amount"].sum(), 2), abs=0.005)
    assert drop.share == pytest.approx(anonymous["amount"].abs().sum() / raw["amount"].abs().sum())
    assert drop.share is not None and drop.share > 0.05
    assert any(w.startswith(f"被跳过的销售明细「客户编码为空」{len(anonymous):,} 行") for w in result.warnings)
    assert any("CustomerID" in p.column and "数值导出的小数形式（如 " in p.reason for p in result.problems)


def test_shop_export_cli_summary_shows_dropped_value_first(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    write_shop_csv(tmp_path / "shop.csv", lines=400, customers=30)
    cfg = shop_config(tmp_path, TEMPLATE, ["shop.csv"])
    assert main(["run", "-c", str(cfg)]) == EXIT_OK
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "请注意（2 条）："
    assert out[2].startswith("  ！被跳过的销售明细「客户编码为空」") and "（超过 5%，可在 config.yaml 的 checks." in out[2]
    assert out[3] == "  ！shop.csv / shop：没有金额列，金额按 数量 × 单价 计算"
    skipped = next(line for line in out if line.startswith("  [已跳过] 销售明细 客户编码为空："))
    assert "行，金额 " in skipped and "占全部金额 " in skipped and skipped.endswith("（超过警戒比例）")


# ---------------------------------------------------------------- 1. derived amount

def test_amount_derived_from_quantity_and_unit_price(tmp_path: Path) -> None:
    config = _config(tmp_path, "单据编号,日期,客户编码,数量,含税单价\nD1,2011-05-03,C1,3,2.55\nD2,2011-05-04,C1,-1,2.55\n"
                               "D3,2011-05-04,C2,,9\n")
    result = grade_data(config)
    assert result.graded["net_sales"].round(2).to_dict() == {"C1": 5.1}
    assert [p.reason for p in result.problems if p.action == "已跳过"] == ["无法计算金额：数量或单价为空或不是数字"]
    assert [p.value for p in result.problems if p.action == "已跳过"] == ["空 × 9"]


@pytest.mark.parametrize("formula,expected", [
    ("数量×单价×(1-折扣率)", 90.0 + 40.0),
    ("数量*单价-折扣额", 95.0 + 45.0),
])
def test_declared_derivation_with_discount(tmp_path: Path, formula: str, expected: float) -> None:
    config = _config(tmp_path, "单据编号,日期,客户编码,价税合计,Qty,Price,Discount %,折扣额\n"
                               "D1,2011-05-03,C1,999,10,10,10%,5\nD2,2011-05-03,C1,999,5,10,0.2,5\n",
                     amount_from=formula)
    result = grade_data(config)
    assert result.graded["net_sales"].round(2).to_dict() == {"C1": expected}
    assert any("（未使用金额列「价税合计」）" in r for r in _reasons(result))


def test_unit_price_mapped_as_amount_is_refused(tmp_path: Path) -> None:
    config = _config(tmp_path, "InvoiceNo,InvoiceDate,CustomerID,Quantity,UnitPrice\n1,2011-05-03,7,3,2.5\n",
                     columns={"amount": ["UnitPrice"]})
    with pytest.raises(InputErrors) as err:
        grade_data(config)
    assert str(err.value) == (
        "[E230] 销售明细：文件 sales.csv 工作表 sales：作为金额的列「UnitPrice」是单价，按它求和会把单价当作销售额。"
        "请从 config.yaml 的 sources.sales.columns.amount 中删除「UnitPrice」，金额将按 数量 × 单价 自动计算；"
        "如果这一列确实是每行的金额，请在 sources.sales 下写 amount_from: 金额列。")
    config = _config(tmp_path, "InvoiceNo,InvoiceDate,CustomerID,Quantity,UnitPrice\n1,2011-05-03,7,3,2.5\n",
                     columns={"amount": ["UnitPrice"]}, amount_from="金额列")
    assert grade_data(config).graded["net_sales"].to_dict() == {"7": 2.5}


def test_missing_amount_message_says_which_derivation_would_work(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "sales.csv").write_text("Invoice,Date,Customer ID,Qty,Note\n1,2011-05-03,7,3,x\n", encoding="utf-8")
    cfg = shop_config(tmp_path, TEMPLATE, ["sales.csv"])
    assert main(["run", "-c", str(cfg), "-q"]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert "找不到必需的列「价税合计」（字段 amount）" in err
    assert ("也可以按 数量 × 单价 计算金额：已找到数量「Qty」，还缺单价列（columns.unit_price）；"
            "如导出中有这一列，请在 config.yaml 的 sources.sales.columns 中写上列名。") in err


# ---------------------------------------------------------------- 2. English and bilingual headers

@pytest.mark.parametrize("headers,expected", [
    (["Invoice No.", "Invoice Date", "Customer ID", "Customer Name", "Net Value", "Amount", "Sales Rep", "Region"],
     {"doc_no": 0, "date": 1, "customer_code": 2, "customer_name": 3, "amount_excl_tax": 4, "amount": 5,
      "salesperson": 6, "region": 7}),
    (["BILLING_DOCUMENT", "POSTING_DATE", "SOLD-TO PARTY", "NAME 1", "NET VALUE", "SALES", "SALES GROUP"],
     {"doc_no": 0, "date": 1, "customer_code": 2, "customer_name": 3, "amount_excl_tax": 4, "amount": 5,
      "salesperson": 6}),
    (["OrderID", "OrderDate", "CustomerNumber", "Customer", "Total", "Salesperson", "Department"],
     {"doc_no": 0, "date": 1, "customer_code": 2, "customer_name": 3, "amount": 4, "salesperson": 5,
      "department": 6}),
    (["Document No 单据编号", "日期 Date", "客户编码 Customer ID", "Amount（价税合计）"],
     {"doc_no": 0, "date": 1, "customer_code": 2, "amount": 3}),
    (["Invoice/发票号", "Customer Code(客户编码)", "Posting Date 过账日期", "净价值 Net Value", "含税金额 Gross Amount"],
     {"doc_no": 0, "customer_code": 1, "date": 2, "amount_excl_tax": 3, "amount": 4}),
])
def test_english_headers_map_without_aliases(tmp_path: Path, headers: list[str], expected: dict[str, int]) -> None:
    path = tmp_path / "s.csv"
    path.write_text(",".join(headers) + "\n" + ",".join(["1"] * len(headers)) + "\n", encoding="utf-8")
    [sheet] = read_file(path)
    layout = detect_layout(sheet, SOURCE_FIELDS["sales"], {}, ("customer_code", "date", "amount"))
    assert dict(layout.columns) == expected


def test_no_header_alias_belongs_to_two_fields() -> None:
    for source, fields in SOURCE_FIELDS.items():
        owner: dict[str, str] = {}
        for f in fields:
            for alias in f.aliases:
                assert owner.setdefault(norm_header(alias), f.key) == f.key, (source, alias)


def test_english_receivables_and_master(tmp_path: Path) -> None:
    (tmp_path / "ar.csv").write_text("Customer ID,Customer Name,Opening Balance,Debit,Credit,Closing Balance\n"
                                     "7,Acme,0,100,80,20\n", encoding="utf-8")
    [sheet] = read_file(tmp_path / "ar.csv")
    layout = detect_layout(sheet, SOURCE_FIELDS["receivables"], {}, ("customer_code",))
    assert set(layout.columns) == {"customer_code", "customer_name", "opening", "billed", "received", "closing"}


# ---------------------------------------------------------------- 3. text dates in any order

def test_month_first_and_day_first_columns_are_detected() -> None:
    us, bad, finding = parse_dates(["10/30/2011 16:17", "3/4/2011 9:05", "12/1/2010 8:26"])
    assert [str(d)[:10] for d in us] == ["2011-10-30", "2011-03-04", "2010-12-01"] and not bad.any()
    assert finding.status == "decided"
    eu, bad, _ = parse_dates(["30.10.2011", "03.04.2011"])
    assert [str(d)[:10] for d in eu] == ["2011-10-30", "2011-04-03"] and not bad.any()
    iso, bad, _ = parse_dates(["2011-10-30T16:17:00", "2011-10-30T16:17:00+08:00", "2011年10月30日 16:17"])
    assert [str(d)[:10] for d in iso] == ["2011-10-30"] * 3 and not bad.any()


def test_ambiguous_order_is_said_once(tmp_path: Path) -> None:
    text = "单据编号,日期,客户编码,价税合计\n" + "".join(f"D{i},03/04/2011,C{i},10\n" for i in range(5))
    result = grade_data(_config(tmp_path, text))
    notes = [p for p in result.problems if "无法判断是 月/日/年 还是 日/月/年" in p.reason]
    assert len(notes) == 1 and notes[0].row is None
    assert notes[0].reason == ("日期列「日期」的值（如 03/04/2011）无法判断是 月/日/年 还是 日/月/年（没有大于 12 的日或月），"
                               "已按 月/日/年 读取；如应为 日/月/年，请在 config.yaml 的 sources.sales.date_format 中写 日/月/年")
    assert any("无法判断是 月/日/年" in w for w in result.warnings)
    assert result.graded["last_order_date"].iloc[0].date() == dt.date(2011, 3, 4)


def test_date_format_in_config_decides(tmp_path: Path) -> None:
    text = "单据编号,日期,客户编码,价税合计\nD1,03/04/2011,C1,10\n"
    result = grade_data(_config(tmp_path, text, date_format="DD/MM/YYYY"))
    assert result.graded["last_order_date"].iloc[0].date() == dt.date(2011, 4, 3)
    assert not any("无法判断" in r for r in _reasons(result))
    assert parse_date_format("%d.%m.%Y %H:%M").pattern == "%d.%m.%Y %H:%M"
    with pytest.raises(ValueError, match="不认识的日期格式"):
        parse_date_format("dd-mmm")


def test_mixed_orders_in_one_column_skip_only_the_undecidable(tmp_path: Path) -> None:
    dates, bad, finding = parse_dates(["30/10/2011", "10/30/2011", "03/04/2011"])
    assert finding.status == "conflict"
    assert [str(d)[:10] for d in dates[:2]] == ["2011-10-30", "2011-10-30"] and bad.tolist() == [False, False, True]


# ---------------------------------------------------------------- 4. one rule for codes

def test_one_code_rule_across_formats() -> None:
    assert normalise_code(17850.0) == normalise_code("17850.0")[:1] + ("",)
    assert normalise_code("17850.0") == ("17850", "float")
    assert normalise_code("00123") == ("00123", "")
    assert normalise_code("C\u200b001") == ("C001", "invisible")
    assert normalise_code("\ufeff C001 ") == ("C001", "invisible")
    assert normalise_code("Ｃ００１") == ("C001", "space")


def test_xlsx_period_then_csv_period_keeps_the_same_customers(tmp_path: Path) -> None:
    xlsx = tmp_path / "p1.xlsx"
    wb = xlsxwriter.Workbook(str(xlsx))
    ws = wb.add_worksheet("Sheet1")
    ws.write_row(0, 0, ["InvoiceNo", "InvoiceDate", "CustomerID", "Quantity", "UnitPrice"])
    ws.write_row(1, 0, ["1", "5/3/2011 10:00", 17850.0, 2, 3.5])
    ws.write_row(2, 0, ["2", "5/4/2011 10:00", 12346.0, 1, 10])
    wb.close()
    (tmp_path / "p2.csv").write_text("InvoiceNo,InvoiceDate,CustomerID,Quantity,UnitPrice\n"
                                     "3,11/3/2011 10:00,17850.0,2,3.5\n4,11/4/2011 10:00,12346.0,1,10\n",
                                     encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(shop_config(tmp_path, TEMPLATE, ["p1.xlsx"]).read_text(encoding="utf-8"))
    data["history"] = {"enabled": True, "database": "h.sqlite"}
    first = dict(data, period={"as_of": "2011-06-30", "months": 6, "name": "H1"})
    second = dict(data, period={"as_of": "2011-12-31", "months": 6, "name": "H2"},
                  sources={"sales": {"files": ["p2.csv"]}})
    for name, d in (("a.yaml", first), ("b.yaml", second)):
        (tmp_path / name).write_text(yaml.safe_dump(d, allow_unicode=True), encoding="utf-8")
    assert main(["run", "-c", str(tmp_path / "a.yaml"), "-q"]) == EXIT_OK
    assert main(["run", "-c", str(tmp_path / "b.yaml"), "-q"]) == EXIT_OK
    from grading.history import previous_period
    from grading.changes import compare

    config = load_config(tmp_path / "b.yaml")
    previous = previous_period(tmp_path / "h.sqlite", config.period.as_of, config.period.label)
    result = grade_data(config, previous=previous)
    assert sorted(result.graded.index) == ["12346", "17850"]
    assert set(result.graded["change"]) == {"不变"}
    assert compare is not None


def test_header_cells_are_shown_as_text(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "s.xlsx"
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet("S")
    ws.write_row(0, 0, ["日期", "客户编码", 573415, "金额说明"])
    ws.write_row(1, 0, ["2011-05-03", "C1", 5, "x"])
    wb.close()
    cfg = shop_config(tmp_path, TEMPLATE, ["s.xlsx"])
    assert main(["run", "-c", str(cfg), "-q"]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert "表头（第 1 行）中找到的列：日期、客户编码、573415、金额说明。" in err


def test_code_cases_are_listed(tmp_path: Path) -> None:
    text = ("单据编号,日期,客户编码,客户名称,价税合计\nD1,2011-05-03,00123,甲公司,10\nD2,2011-05-03,123,乙公司,10\n"
            "D3,2011-05-03,C9,丙公司,10\nD4,2011-05-04,C9,丙贸易,10\nD5,2011-05-04,C\u200b9,丙公司,10\n")
    result = grade_data(_config(tmp_path, text))
    assert sorted(result.graded.index) == ["00123", "123", "C9"]
    found = {(p.reason[:14], p.value, p.action) for p in result.problems}
    assert ("客户编码只差前导零：按不同客", "00123（销售明细）、123（销售明细）", "提示") in found
    assert ("同一客户编码对应多个客户名称", "C9：「丙公司」2 行、「丙贸易」1 行（销售明细）", "提示") in found
    assert ("编码含不可见字符（如零宽空格", "C\u200b9", "已修正") in found


def test_names_used_as_codes_is_said_clearly(tmp_path: Path) -> None:
    result = grade_data(_config(tmp_path, "日期,客户名称,价税合计\n2011-05-03,甲公司,10\n"))
    expected = ("销售明细没有客户编码列，以「客户名称」列的客户名称作为客户编码：名称写法不同会算作不同客户，同名的不同客户会被合并。"
                "如有编码列，请在 config.yaml 的 sources.sales.columns.customer_code 中写上列名")
    assert expected in _reasons(result)
    assert f"sales.csv / sales：{expected}" in result.warnings


# ---------------------------------------------------------------- 5. the value of dropped lines

def test_dropped_value_per_reason_and_configurable_warning(tmp_path: Path) -> None:
    text = ("单据编号,日期,客户编码,价税合计\nD1,2011-05-03,C1,900\nD2,2011-05-03,,60\nD3,2011/13/45,C1,40\n"
            "D4,2011-05-03,C1,abc\n")
    result = grade_data(_config(tmp_path, text))
    shown = [d.render() for d in result.drops]
    assert shown == ["客户编码为空：1 行，金额 60.00，占全部金额 6.0%（超过警戒比例）",
                     "日期无法识别（支持 2026-05-03、2026/5/3、2026年5月3日、Excel 日期）：1 行，金额 40.00，占全部金额 4.0%",
                     "金额不是有效数字：1 行（金额无法读取）"]
    assert len(result.warnings) == 1
    assert [p.amount for p in result.problems if p.action == "已跳过"] == [60.0, 40.0, None]
    data = yaml.safe_load((tmp_path / "shop.yaml").read_text(encoding="utf-8"))
    data["checks"] = {"dropped_share_warning": "3%"}
    (tmp_path / "shop.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    result = grade_data(load_config(tmp_path / "shop.yaml"))
    assert len(result.warnings) == 2 and all(w.startswith("被跳过的销售明细") for w in result.warnings)


def test_dropped_value_rows_in_the_problems_sheet(tmp_path: Path) -> None:
    from grading.fill_plan import SHEET_PROBLEMS

    result = grade_data(_config(tmp_path, "单据编号,日期,客户编码,价税合计\nD1,2011-05-03,C1,900\nD2,2011-05-03,,100\n"))
    [block] = next(s for s in result.plan.sheets if s.name == SHEET_PROBLEMS).blocks
    cols = {c.header: list(c.values) for c in block.columns}
    assert cols["文件"][0] == "（汇总）"
    assert cols["问题"][0] == "已跳过的销售明细 客户编码为空：1 行，金额 100.00，占全部金额 10.0%（超过警戒比例）"
    assert cols["金额"][:2] == [100.0, 100.0]


# ---------------------------------------------------------------- 6. cross-checks between sources

def _with_receivables(tmp_path: Path, title: str, sales: str) -> Any:
    (tmp_path / "sales.csv").write_text(sales, encoding="utf-8")
    (tmp_path / "ar.csv").write_text(f"应收账款余额表\n{title}\n客户编码,期初余额,本期应收,本期收回,期末余额\nC1,0,100,50,50\n",
                                     encoding="utf-8")
    data = yaml.safe_load(shop_config(tmp_path, TEMPLATE, ["sales.csv"]).read_text(encoding="utf-8"))
    data["sources"]["receivables"] = {"files": ["ar.csv"]}
    (tmp_path / "shop.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return load_config(tmp_path / "shop.yaml")


def test_receivables_period_not_covering_as_of_is_warned(tmp_path: Path) -> None:
    sales = "单据编号,日期,客户编码,价税合计\nD1,2011-05-03,C1,100\n"
    config = _with_receivables(tmp_path, "期间：2011年1月 至 2011年10月", sales)
    result = grade_data(config)
    expected = ("应收账款余额表的期间「期间：2011年1月 至 2011年10月」（2011-01-01 至 2011-10-31）不包含分级截止日期 2011-12-09："
                "期末余额、回款率与销售数据不是同一时点。请导出截至该日期的余额表，或检查 period.as_of")
    assert f"ar.csv / ar：{expected}" in result.warnings
    assert expected in _reasons(result)
    covered = grade_data(_with_receivables(tmp_path, "打印日期：2012-01-05 会计期间：2011.01 - 2011.12 制表人：张三", sales))
    assert not any("应收账款余额表的期间" in w for w in covered.warnings)
    short = grade_data(_with_receivables(tmp_path, "打印日期：2012-01-05 会计期间：2011.01 - 2011.11 制表人：张三", sales))
    assert any("期间「会计期间：2011.01 - 2011.11」（2011-01-01 至 2011-11-30）不包含" in w for w in short.warnings)


@pytest.mark.parametrize("title,span", [
    ("期间：2025年7月 至 2026年6月", ("2025-07-01", "2026-06-30")),
    ("截止日期：2026-06-30", ("2026-06-30", "2026-06-30")),
    ("日期从 2026/01/01 到 2026/06/30  打印时间 2026-07-02 08:00", ("2026-01-01", "2026-06-30")),
    ("会计期间 2026年06期", ("2026-06-01", "2026-06-30")),
])
def test_period_lines(title: str, span: tuple[str, str]) -> None:
    from grading.crosscheck import period_line

    found = period_line([["应收账款余额表"], [title]])
    assert found is not None and (f"{found[1]:%Y-%m-%d}", f"{found[2]:%Y-%m-%d}") == span
    assert period_line([["打印日期：2026-07-02"]]) is None


def test_partial_cost_is_noted_per_customer(tmp_path: Path) -> None:
    text = ("单据编号,日期,客户编码,价税合计,成本\nD1,2011-05-03,C1,100,60\nD2,2011-05-04,C1,50,\n"
            "D3,2011-05-04,C2,80,40\n")
    result = grade_data(_config(tmp_path, text))
    [found] = [p for p in result.problems if p.reason.startswith("只有部分明细有成本")]
    assert (found.row, found.value, found.amount) == (3, "客户 C1：期间内 2 行中 1 行没有成本", 50.0)
    assert result.warnings == ["1 个客户只有部分明细有成本（缺成本的明细金额 50.00）：这些客户的毛利、毛利率只按有成本的行计算，"
                               "详见「数据问题」"]
    assert np.isclose(result.graded.loc["C1", "gross_profit"], 40.0)


def test_partial_cost_names_each_customers_own_file_and_row(tmp_path: Path) -> None:
    """Customers whose first line without cost lies in different files: each finding names its own file,
    sheet and row, in the order of the customer codes as text (C1, C10, C2)."""
    head = "单据编号,日期,客户编码,价税合计,成本\n"
    (tmp_path / "a.csv").write_text(head + "D1,2011-05-03,C2,100,60\nD2,2011-05-04,C1,50,\nD3,2011-05-05,C10,70,30\n",
                                    encoding="utf-8")
    (tmp_path / "b.csv").write_text(head + "E1,2011-05-06,C1,20,10\nE2,2011-05-07,C2,30,\nE3,2011-05-08,C10,40,\n",
                                    encoding="utf-8")
    result = grade_data(load_config(shop_config(tmp_path, TEMPLATE, ["a.csv", "b.csv"])))
    found = [(p.file, p.sheet, p.row, p.value, p.amount) for p in result.problems
             if p.reason.startswith("只有部分明细有成本")]
    assert found == [("a.csv", "a", 3, "客户 C1：期间内 2 行中 1 行没有成本", 50.0),
                     ("b.csv", "b", 4, "客户 C10：期间内 2 行中 1 行没有成本", 40.0),
                     ("b.csv", "b", 3, "客户 C2：期间内 2 行中 1 行没有成本", 30.0)]


# ---------------------------------------------------------------- invariants

@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=10**12), st.integers(min_value=0, max_value=3))
def test_code_rule_is_one_rule_for_numbers_and_their_text(n: int, zeros: int) -> None:
    number, text, padded = normalise_code(float(n)), normalise_code(f"{n}.0"), normalise_code("0" * zeros + str(n))
    assert number[0] == text[0] == str(n)
    assert padded[0] == "0" * zeros + str(n)  # leading zeros of text codes are kept
    assert normalise_code(padded[0])[0] == padded[0]  # idempotent


@settings(max_examples=100, deadline=None)
@given(st.lists(st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2060, 12, 31)), min_size=1, max_size=30),
       st.sampled_from(["mdy", "dmy"]))
def test_short_dates_read_back_in_either_order(days: list[dt.date], order: str) -> None:
    days = [*days, dt.date(2011, 10, 30)]  # one day above 12 lets the column decide
    texts = [f"{d.month}/{d.day}/{d.year} 16:17" if order == "mdy" else f"{d.day}.{d.month}.{d.year}" for d in days]
    dates, bad, finding = parse_dates(texts)
    assert finding.order == order and not bad.any()
    assert [d.astype("datetime64[D]").item() for d in dates.to_numpy()] == days


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(min_value=-10**6, max_value=10**6)), min_size=1, max_size=40),
       st.floats(min_value=0, max_value=1))
def test_drop_summary_adds_up(lines: list[tuple[bool, int]], limit: float) -> None:
    from grading.problems import Problem, drop_summary

    problems = [Problem("f", "s", i, "", "", "客户编码为空" if flag else "日期无法识别", "已跳过", cents / 100)
                for i, (flag, cents) in enumerate(lines)]
    total = sum(abs(c) for _, c in lines) / 100 + 1.0
    drops = drop_summary(problems, total, limit)
    assert sum(d.lines for d in drops) == len(lines)
    assert round(sum(d.amount for d in drops), 2) == round(sum(c for _, c in lines) / 100, 2)
    assert all(d.share is not None and d.warning == (d.share > limit) for d in drops)


def test_receivables_dates_after_as_of_are_warned(tmp_path: Path) -> None:
    (tmp_path / "sales.csv").write_text("单据编号,日期,客户编码,价税合计\nD1,2011-05-03,C1,100\n", encoding="utf-8")
    (tmp_path / "ar.csv").write_text("客户编码,日期,期末余额\nC1,2011-12-31,50\n", encoding="utf-8")
    data = yaml.safe_load(shop_config(tmp_path, TEMPLATE, ["sales.csv"]).read_text(encoding="utf-8"))
    data["sources"]["receivables"] = {"files": ["ar.csv"]}
    (tmp_path / "shop.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    result = grade_data(load_config(tmp_path / "shop.yaml"))
    assert result.warnings == ["应收账款余额表中有截止日期 2011-12-09 之后的日期（最晚 2011-12-31）：期末余额、回款率与销售数据"
                               "不是同一时点。请导出截至该日期的余额表，或检查 period.as_of"]


def test_addin_alert_shows_the_warnings_first(tmp_path: Path) -> None:
    from xlplugin.addin import success_message

    write_shop_csv(tmp_path / "shop.csv", lines=300, customers=20)
    config = load_config(shop_config(tmp_path, TEMPLATE, ["shop.csv"]))
    lines = success_message(grade_data(config), config).splitlines()
    at = lines.index("请注意（2 条）：")
    assert lines[at + 1].startswith("  ！被跳过的销售明细「客户编码为空」")
    assert lines[at + 2] == "  ！shop.csv / shop：没有金额列，金额按 数量 × 单价 计算"
    skipped = next(line for line in lines if line.startswith("  [已跳过] 销售明细 客户编码为空："))
    assert "行，金额 " in skipped and "占全部金额 " in skipped


def test_pinned_customer_codes_follow_the_code_rule() -> None:
    from grading.config_model import Pin

    assert Pin(customer=1234567, grade="A", reason="框架协议", by="张经理").customer == "1234567"
    assert Pin(customer=17850.0, grade="A", reason="框架协议", by="张经理").customer == "17850"
    assert Pin(customer="00123", grade="A", reason="框架协议", by="张经理").customer == "00123"


def test_rules_snapshot_names_the_amount_source_and_date_format(tmp_path: Path) -> None:
    from grading.describe import describe_rules

    (tmp_path / "sales.csv").write_text("x\n", encoding="utf-8")
    data = yaml.safe_load(shop_config(tmp_path, TEMPLATE, ["sales.csv"], amount_from="数量*单价",
                                      date_format="日/月/年").read_text(encoding="utf-8"))
    data["checks"] = {"dropped_share_warning": "2%"}
    (tmp_path / "shop.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    rows = describe_rules(load_config(tmp_path / "shop.yaml"))
    assert ("销售明细金额", "按 数量×单价 计算") in rows
    assert ("日期写法（sales）", "日/月/年") in rows
    assert ("数据检查", "被跳过的销售明细金额超过全部金额的 2% 时警告") in rows


def test_derived_amount_on_the_net_basis_asks_for_a_net_price(tmp_path: Path) -> None:
    (tmp_path / "sales.csv").write_text("单据编号,日期,客户编码,数量,单价\nD1,2011-05-03,C1,2,10\n", encoding="utf-8")
    data = yaml.safe_load(shop_config(tmp_path, TEMPLATE, ["sales.csv"]).read_text(encoding="utf-8"))
    data["metrics"] = {"amount_basis": "不含税"}
    (tmp_path / "shop.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    result = grade_data(load_config(tmp_path / "shop.yaml"))
    assert result.graded["net_sales"].round(2).to_dict() == {"C1": 20.0}
    assert any(r.endswith("共 1 行；金额口径为不含税，请确认「单价」是不含税单价") for r in _reasons(result))


def test_drop_summary_counts_sales_lines_only(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    config = _with_receivables(tmp_path, "期间：2011年12月", "单据编号,日期,客户编码,价税合计\nD1,2011-05-03,C1,90\n"
                                                          "D2,2011-05-03,,10\n")
    (tmp_path / "ar.csv").write_text("客户编码,期末余额\nC1,50\n,70\n", encoding="utf-8")
    [drop] = grade_data(config).drops
    assert (drop.lines, drop.amount) == (1, 10.0)
    assert main(["run", "-c", str(tmp_path / "shop.yaml")]) == EXIT_OK
    assert ("  [已跳过] 销售明细 客户编码为空：1 行，金额 10.00，占全部金额 10.0%（超过警戒比例）；其他数据源另有 1 条"
            in capsys.readouterr().out.splitlines())


def test_a_file_without_a_department_column_does_not_give_customers_another_department(tmp_path: Path) -> None:
    """Two exports, one without 部门: a customer's department is the one its latest line that names one says,
    never another customer's (a missing value once wrapped round to the last department seen)."""
    (tmp_path / "a.csv").write_text("日期,客户编码,价税合计,部门\n2011-03-01,C1,100,销售一部\n2011-03-02,C2,100,销售二部\n",
                                    encoding="utf-8")
    (tmp_path / "b.csv").write_text("日期,客户编码,价税合计\n2011-05-01,C1,50\n2011-05-02,C3,70\n", encoding="utf-8")
    result = grade_data(load_config(shop_config(tmp_path, TEMPLATE, ["a.csv", "b.csv"])))
    assert result.graded["department"].to_dict() == {"C1": "销售一部", "C2": "销售二部", "C3": ""}
