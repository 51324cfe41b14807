"""Readers and header detection on the shapes real exports take."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import xlsxwriter

from grading.fields import RECEIVABLE_FIELDS, SALES_FIELDS
from grading.header import detect_layout
from grading.normalise import _dates, _numbers, drop_invalid, normalise
from grading.problems import Problem
from grading.read import read_file

REQ = ("customer_code", "date", "amount")


def _frame(path: Path, fields=SALES_FIELDS, required=REQ):  # type: ignore[no-untyped-def]
    [sheet] = read_file(path)
    layout = detect_layout(sheet, fields, {}, required)
    problems: list[Problem] = []
    frame = drop_invalid(normalise(sheet, layout, fields, problems), layout, required, problems)
    return frame, layout, problems


def test_two_level_merged_header_and_total_row(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "ar.xlsx"
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet("余额表")
    ws.write(0, 0, "应收账款余额表")
    for c, h in enumerate(["客户编码", "客户名称", "期初余额"]):
        ws.merge_range(2, c, 3, c, h)
    ws.merge_range(2, 3, 2, 4, "本期发生")
    ws.write(3, 3, "本期应收")
    ws.write(3, 4, "本期收回")
    ws.merge_range(2, 5, 3, 5, "期末余额")
    ws.write_row(4, 0, ["C1", "甲公司", 10, "1,000.00", 800, 210])
    ws.write_row(5, 0, ["合计", "", 10, 1000, 800, 210])
    wb.close()
    frame, layout, problems = _frame(path, RECEIVABLE_FIELDS, ("customer_code",))
    assert layout.header_rows == 2
    assert layout.headers[3:5] == ["本期发生/本期应收", "本期发生/本期收回"]
    assert frame[["customer_code", "opening", "billed", "received", "closing"]].values.tolist() == \
        [["C1", 10.0, 1000.0, 800.0, 210.0]]
    assert [(p.row, p.reason) for p in problems] == [(6, "合计/小计行，不计入客户数据")]


def test_units_in_title_and_header(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "s.csv"
    path.write_text("销售统计表\n单位：万元\n\n单据编号,日期,客户编码,价税合计,成本(元)\nD1,2026-05-03,C1,1.5,9000\n",
                    encoding="utf-8")
    frame, layout, _ = _frame(path)
    assert frame["amount"].tolist() == [15000.0]
    assert frame["cost"].tolist() == [9000.0]
    assert layout.data_start == 4


def test_gbk_csv_fullwidth_codes_and_messy_numbers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "u8.csv"
    text = ("发货单号,发货日期,客户编码,客户名称,本币价税合计\n"
            "F1,2026/5/3,Ｃ０００１ ,合计贸易有限公司,\"1,234.50\"\n"
            "F2,2026年5月4日,C0001,合计贸易有限公司,\"(100.00)\"\n"
            "F3,20260505,C0001,合计贸易有限公司,¥2\n"
            "合计,,,,\"1,136.50\"\n")
    path.write_bytes(text.encode("gb18030"))
    frame, _, problems = _frame(path)
    assert frame["customer_code"].tolist() == ["C0001"] * 3
    assert frame["amount"].tolist() == [1234.5, -100.0, 2.0]
    assert [d.date() for d in frame["date"]] == [dt.date(2026, 5, 3), dt.date(2026, 5, 4), dt.date(2026, 5, 5)]
    reasons = [(p.row, p.column, p.value, p.action) for p in problems]
    assert (2, "客户编码", "Ｃ０００１ ", "已修正") in reasons
    assert (3, "本币价税合计", "(100.00)", "已修正") in reasons
    assert (5, "", "合计", "提示") in reasons


def test_bad_rows_are_dropped_and_listed_with_position(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "s.csv"
    path.write_text("单据编号,日期,客户编码,价税合计\nD1,2026-02-30,C1,5\nD2,2026-02-01,,5\nD3,2026-02-01,C2,abc\n"
                    "D4,2026-02-01,C3,\nD5,2026-02-01,C4,7\n", encoding="utf-8")
    frame, _, problems = _frame(path)
    assert frame["customer_code"].tolist() == ["C4"]
    assert [(p.row, p.column, p.value, p.reason) for p in problems] == [
        (3, "客户编码", "", "客户编码为空"),
        (2, "日期", "2026-02-30", "日期无法识别（支持 2026-05-03、2026/5/3、2026年5月3日、Excel 日期）"),
        (4, "价税合计", "abc", "金额不是有效数字"),
        (5, "价税合计", "", "金额为空"),
    ]


def test_html_table_saved_as_xls(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "web.xls"
    path.write_text("<html><body><table><tr><td colspan=3>销售明细</td></tr>"
                    "<tr><th>单据编号</th><th>日期</th><th>客户编码</th><th>价税合计</th></tr>"
                    "<tr><td>D1</td><td>2026-05-03</td><td>C1</td><td>1,000</td></tr></table></body></html>",
                    encoding="utf-8")
    frame, _, _ = _frame(path)
    assert frame[["customer_code", "amount"]].values.tolist() == [["C1", 1000.0]]


def test_xml_spreadsheet_2003_saved_as_xls(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "ss.xls"
    path.write_text(
        '<?xml version="1.0"?><Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet" '
        'xmlns:ss="urn:schemas-microsoft-com:office:spreadsheet"><Worksheet ss:Name="明细"><Table>'
        '<Row><Cell><Data ss:Type="String">单据编号</Data></Cell><Cell><Data ss:Type="String">日期</Data></Cell>'
        '<Cell><Data ss:Type="String">客户编码</Data></Cell><Cell><Data ss:Type="String">价税合计</Data></Cell></Row>'
        '<Row><Cell><Data ss:Type="String">D1</Data></Cell><Cell><Data ss:Type="DateTime">2026-05-03T00:00:00.000</Data></Cell>'
        '<Cell><Data ss:Type="String">C1</Data></Cell><Cell><Data ss:Type="Number">12.5</Data></Cell></Row>'
        '</Table></Worksheet></Workbook>', encoding="utf-8")
    frame, _, _ = _frame(path)
    assert frame["amount"].tolist() == [12.5]
    assert frame["date"].iloc[0].date() == dt.date(2026, 5, 3)


def test_utf16_tab_text_and_xlsx_renamed_xls(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "unicode.txt"
    path.write_bytes("单据编号\t日期\t客户编码\t价税合计\nD1\t2026-05-03\tC1\t3\n".encode("utf-16"))
    frame, _, _ = _frame(path)
    assert frame["amount"].tolist() == [3.0]
    renamed = tmp_path / "really_xlsx.xls"
    wb = xlsxwriter.Workbook(str(renamed))
    ws = wb.add_worksheet()
    ws.write_row(0, 0, ["单据编号", "日期", "客户编码", "价税合计"])
    ws.write_row(1, 0, ["D1", 46145, "C1", 4])  # 46145 = 2026-05-03 as an Excel serial
    wb.close()
    frame, _, _ = _frame(renamed)
    assert frame["date"].iloc[0].date() == dt.date(2026, 5, 3)


def test_number_and_date_parsers() -> None:
    nums, bad, repaired = _numbers([1, 2.5, "1,234.5", "(3)", "￥4", "", None, "x", "-", "１２"])
    assert nums[:5].tolist() == [1.0, 2.5, 1234.5, -3.0, 4.0] and nums[8] == 0.0 and nums[9] == 12.0
    assert np.isnan(nums[[5, 6, 7]]).all()
    assert bad.tolist() == [False] * 7 + [True, False, False]
    assert repaired.tolist() == [False, False, False, True, True, False, False, False, True, True]
    dates, bad = _dates([dt.datetime(2026, 1, 2, 10), dt.date(2026, 1, 3), 46145.0, "2026.1.4", "2026-01-05 08:00",
                         "", "31/12/2026"])
    assert [str(d)[:10] for d in dates[:5]] == ["2026-01-02", "2026-01-03", "2026-05-03", "2026-01-04", "2026-01-05"]
    assert str(dates[6])[:10] == "2026-12-31"  # day first: 31 cannot be a month
    assert bad.tolist() == [False] * 5 + [True, False]


@pytest.mark.parametrize("name", ["合计贸易有限公司", "小计电子商行"])
def test_company_named_like_total_is_kept(tmp_path, name) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "s.csv"
    path.write_text(f"单据编号,日期,客户编码,客户名称,价税合计\nD1,2026-05-03,C1,{name},5\n", encoding="utf-8")
    frame, _, problems = _frame(path)
    assert frame["customer_name"].tolist() == [name] and problems == []


def test_large_csv_fast_path_reads_the_same_as_the_csv_module(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from grading import read as read_module
    from grading.demo_data import generate_csv

    path = generate_csv(tmp_path / "big.csv", customers=500, lines=20_000)
    assert path.stat().st_size > 1 << 20  # large enough for pandas' C parser
    arrow, layout, arrow_problems = _frame(path)
    [sheet] = read_file(path)
    assert sheet.body is not None and sheet.n_rows == 20_000 + 6  # title, blank, header, 2 bad, 合计
    monkeypatch.setattr(read_module, "_arrow_csv", lambda *sniffed: None)  # pandas' C parser
    fast, _, fast_problems = _frame(path)
    [sheet] = read_file(path)
    assert sheet.body is None and sheet.table is not None and sheet.n_rows == 20_000 + 6
    monkeypatch.setattr(read_module, "_fast_csv", lambda *sniffed: None)  # the csv module
    slow, _, slow_problems = _frame(path)
    for other, other_problems in ((fast, fast_problems), (arrow, arrow_problems)):
        assert other.drop(columns=["_file", "_sheet"]).astype(object).equals(
            slow.drop(columns=["_file", "_sheet"]).astype(object))
        assert other_problems == slow_problems


def test_ragged_large_csv_falls_back_to_the_csv_module(tmp_path) -> None:  # type: ignore[no-untyped-def]
    head = "单据编号,日期,客户编码,价税合计\n"
    body = "".join(f"D{i},2026-05-03,C{i % 7},{i}\n" for i in range(60_000))
    (tmp_path / "r.csv").write_text(head + body + "D-extra,2026-05-03,C1,5,多出的列\n", encoding="utf-8")
    frame, _, _ = _frame(tmp_path / "r.csv")
    [sheet] = read_file(tmp_path / "r.csv")
    assert sheet.table is None and sheet.body is None  # a row wider than the first lines: every row still read
    assert len(frame) == 60_001 and frame["amount"].iloc[-1] == 5.0


def test_large_csv_with_undecodable_bytes_takes_the_careful_path(tmp_path) -> None:  # type: ignore[no-untyped-def]
    head = "单据编号,日期,客户编码,客户名称,价税合计\n".encode("gb18030")
    body = "".join(f"D{i},2026-05-03,C{i % 7},华为,{i}\n" for i in range(50_000)).encode("gb18030")
    (tmp_path / "g.csv").write_bytes(head + body + b"D-x,2026-05-03,C1,\x80,5\n")
    [sheet] = read_file(tmp_path / "g.csv")
    assert sheet.table is None and sheet.body is None and len(sheet.notes) == 1 and "无法识别的字节" in sheet.notes[0]
    frame, _, _ = _frame(tmp_path / "g.csv")
    assert len(frame) == 50_001


@pytest.mark.parametrize("large", [False, True])
def test_a_sheet_with_damaged_compressed_data_is_explained_in_chinese(tmp_path: Path, large: bool,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The package opens, but the sheet's deflate stream is damaged: [E202], not calamine's raw error."""
    import zipfile

    import grading.read_arrow as read_arrow
    from grading.errors import UnreadableFile

    if large:  # the column-wise read and the extent check meet the damage first
        monkeypatch.setattr(read_arrow, "MIN_SHEET_BYTES", 0)
    path = tmp_path / "销售.xlsx"
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet("销售")
    for r in range(3000):
        ws.write_row(r, 0, [f"D{r}", f"C{r % 50}", r * 1.5])
    wb.close()
    raw = bytearray(path.read_bytes())
    info = zipfile.ZipFile(path).getinfo("xl/worksheets/sheet1.xml")
    for i in range(info.header_offset + 2000, info.header_offset + 2300):
        raw[i] = 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(UnreadableFile) as exc:
        read_file(path)
    assert str(exc.value).startswith("[E202] 文件 销售.xlsx 看起来是 Excel (.xlsx/.xlsm/.xlsb/.ods) 格式，但无法读取")


def test_a_damaged_xlsx_is_explained_in_chinese(tmp_path: Path) -> None:
    from grading.errors import UnreadableFile

    path = tmp_path / "销售.xlsx"
    path.write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(UnreadableFile) as exc:
        read_file(path)
    text = str(exc.value)
    assert text.startswith("[E202] 文件 销售.xlsx 看起来是 Excel (.xlsx/.xlsm/.xlsb/.ods) 格式，但无法读取（读取程序 calamine 报告：")
    assert text.endswith("）。文件可能已损坏或加密，请在 Excel 中打开后另存为 .xlsx 再试。")
