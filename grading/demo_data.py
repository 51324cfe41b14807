"""Deterministic generator of realistic, messy ERP exports for the demo,
the tests and the benchmark.

It writes, for one year ending 2026-06-30 (plus history before and a few
lines after):
  sales_kingdee_2025.xlsx   金蝶 销售出库单序时簿: title rows, 小计 per customer, 合计, padded codes
  sales_u8_2026Q1.csv       用友 U8 in GBK: "1,234.50" text amounts, "2026/5/3" dates, full-width codes,
                            returns, a few broken rows
  sales_sap_2026Q2.xls      real BIFF .xls: SAP headers, 单位：万元, Excel serial dates
  receivables_u8.xlsx       应收账款余额表 with a two-level merged header (本期发生 → 本期应收/本期收回)
  customers_web.xls         客户档案 saved by a web ERP as an HTML table named .xls
and returns the ground truth so tests can check totals independently.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xlsxwriter
import xlwt

AS_OF = dt.date(2026, 6, 30)
_SURNAMES = "华 鑫 恒 盛 德 宏 泰 安 兴 隆 瑞 祥 金 达 通 联 博 远 嘉 明".split()
_WORDS = "科技 贸易 实业 电子 机械 建材 化工 医药 食品 物流 五金 纺织 塑胶 照明 包装".split()
_CITIES = "上海 深圳 广州 杭州 苏州 成都 武汉 南京 天津 重庆 宁波 厦门 青岛 长沙".split()
_SALES = ["张伟", "王芳", "李娜", "刘洋", "陈静", "杨帆"]
_REGIONS = ["华东", "华南", "华北", "西南", "华中"]
_ITEMS = [(f"M{n:04d}", name) for n, name in enumerate(
    "不锈钢螺栓 铝合金型材 工业轴承 液压阀 PVC管材 LED灯管 纸箱 电缆 密封圈 齿轮箱".split(), 1)]


@dataclass(frozen=True)
class DemoTruth:
    """What the generator meant: valid sales lines and receivables per customer."""

    lines: pd.DataFrame          # customer_code, date, doc_no, amount, amount_excl_tax, cost
    receivables: pd.DataFrame    # customer_code, opening, billed, received, closing
    customers: pd.DataFrame      # customer_code, customer_name, salesperson, region, potential, points, …
    bad_rows: int                # rows written broken on purpose (dropped by the reader)
    files: list[Path]


def _customers(rng: random.Random, n: int) -> pd.DataFrame:
    rows = []
    names: set[str] = set()
    for i in range(1, n + 1):
        while True:
            name = f"{rng.choice(_CITIES)}{rng.choice(_SURNAMES)}{rng.choice(_SURNAMES)}{rng.choice(_WORDS)}有限公司"
            if name not in names:
                break
        names.add(name)
        rows.append({"customer_code": f"C{i:05d}", "customer_name": name,
                     "salesperson": _SALES[i % len(_SALES)], "region": _REGIONS[i % len(_REGIONS)],
                     "potential": rng.choice(["高", "中", "低"]),
                     # heavy-tailed yearly volume: a few key accounts, many small ones
                     "scale": rng.paretovariate(1.16)})
    # traps: a real company named like a total row, and hostile text
    rows[1]["customer_name"] = "合计贸易有限公司"
    if n > 3:
        rows[3]["customer_name"] = "=HYPERLINK(\"http://x\",\"点我\")商行"
    if n > 5:
        rows[5]["customer_name"] = "@SUM(1+1)电子"
    return pd.DataFrame(rows)


def _order_lines(rng: random.Random, cust: pd.DataFrame, lines: int) -> pd.DataFrame:
    """Order lines 2025-01-01 … 2026-07-14, every customer at least once, big customers more often."""
    customers = len(cust)
    weights = cust["scale"].tolist()
    start = dt.date(2025, 1, 1)
    span = (dt.date(2026, 7, 15) - start).days
    codes: list[str] = cust["customer_code"].tolist()
    scales: list[float] = cust["scale"].tolist()
    recs = []
    picks = list(range(min(customers, lines))) + rng.choices(range(customers), weights=weights,
                                                            k=max(0, lines - customers))
    for i in picks:
        date = start + dt.timedelta(days=rng.randrange(span))
        code, item = codes[i], rng.choice(_ITEMS)
        qty = rng.randint(1, 200)
        price = round(rng.uniform(50, 500) * min(1 + scales[i] / 20, 3), 2)
        excl = round(qty * price, 2)
        if rng.random() < 0.03:  # return / credit note
            qty, excl = -qty, -excl
        amount = round(excl * 1.13, 2)
        cost = round(excl * rng.uniform(0.6, 0.9), 2)
        recs.append({"customer_code": code, "date": pd.Timestamp(date), "item": item[0], "item_name": item[1],
                     "quantity": qty, "amount": amount, "amount_excl_tax": excl, "cost": cost})
    lines_df = pd.DataFrame(recs).sort_values(["date", "customer_code"], kind="stable").reset_index(drop=True)
    lines_df["doc_no"] = [f"XSCK{d:%Y%m}{n:05d}" for n, d in enumerate(lines_df["date"], 1)]
    # several lines per document: merge neighbours of the same customer and day
    same = (lines_df["customer_code"] == lines_df["customer_code"].shift()) & (lines_df["date"] == lines_df["date"].shift())
    docs: list[str] = lines_df["doc_no"].tolist()
    for j in np.flatnonzero(same.to_numpy()).tolist():
        docs[j] = docs[j - 1]
    lines_df["doc_no"] = docs
    return lines_df


def generate_csv(path: Path, seed: int = 20260630, customers: int = 50_000, lines: int = 1_000_000) -> Path:
    """One large 用友 U8 style GBK CSV (for the benchmark): every line of the period in one file."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    cust = _customers(rng, customers)
    lines_df = _order_lines(rng, cust, lines)
    names = dict(zip(cust["customer_code"], cust["customer_name"]))
    sales_of = dict(zip(cust["customer_code"], cust["salesperson"]))
    return _u8_csv(path, lines_df, names, sales_of, rng)


def generate(folder: Path, seed: int = 20260630, customers: int = 300, lines: int = 6000) -> DemoTruth:
    """Write the demo exports into `folder` (created) and return the truth."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    cust = _customers(rng, customers)
    lines_df = _order_lines(rng, cust, lines)

    kingdee = lines_df[lines_df["date"] < pd.Timestamp(2026, 1, 1)]
    u8 = lines_df[(lines_df["date"] >= pd.Timestamp(2026, 1, 1)) & (lines_df["date"] < pd.Timestamp(2026, 4, 1))]
    sap = lines_df[lines_df["date"] >= pd.Timestamp(2026, 4, 1)]
    names = dict(zip(cust["customer_code"], cust["customer_name"]))
    sales_of = dict(zip(cust["customer_code"], cust["salesperson"]))
    files = [
        _kingdee(folder / "sales_kingdee_2025.xlsx", kingdee, names, sales_of, rng),
        _u8_csv(folder / "sales_u8_2026Q1.csv", u8, names, sales_of, rng),
        # BIFF .xls holds 65,536 rows: large (benchmark) sizes write the SAP part as .xlsx
        _sap_xls(folder / "sales_sap_2026Q2.xls", sap, names) if len(sap) < 65000
        else _sap_xlsx(folder / "sales_sap_2026Q2.xlsx", sap, names),
    ]
    receivables = _receivables(cust, lines_df, rng)
    extra = random.Random(seed + 1)  # attributes added later draw from their own stream
    receivables["overdue_days"] = [extra.choices([0, 15, 45, 75, 120, 200], [40, 20, 15, 10, 10, 5])[0]
                                   for _ in range(len(receivables))]
    cust["points"] = [int(extra.paretovariate(1.5) * 800) for _ in range(len(cust))]
    cust["recognition"] = [extra.choice(["高", "低"]) for _ in range(len(cust))]
    cust["pain"] = [extra.choice(["明确", "模糊"]) for _ in range(len(cust))]
    cust["deal"] = [extra.choice(["已成交", "洽谈中"]) for _ in range(len(cust))]
    files.append(_receivables_xlsx(folder / "receivables_u8.xlsx", receivables, names))
    files.append(_customers_html(folder / "customers_web.xls", cust))
    files.append(_overrides_xlsx(folder / "overrides_人工指定等级.xlsx", cust))
    truth_lines = lines_df[["customer_code", "date", "doc_no", "amount", "amount_excl_tax", "cost"]]
    return DemoTruth(truth_lines, receivables, cust.drop(columns="scale"), _BAD_ROWS, files)


def _records(df: pd.DataFrame) -> list[Any]:
    """Rows as attribute objects (typed Any: the generator's own, trusted data)."""
    return list(df.itertuples(index=False))


_BAD_ROWS = 2  # the U8 CSV carries one unreadable date and one unreadable amount, written as extra rows


def _kingdee(path: Path, df: pd.DataFrame, names: dict[str, str], sales_of: dict[str, str],
             rng: random.Random) -> Path:
    wb = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_urls": False,
                                         "constant_memory": True})
    ws = wb.add_worksheet("销售出库单序时簿")
    date_fmt = wb.add_format({"num_format": "yyyy-mm-dd"})
    money = wb.add_format({"num_format": "#,##0.00"})
    ws.write_string(0, 0, "销售出库单序时簿")
    ws.write_string(1, 0, "日期：2025-01-01 至 2025-12-31")
    ws.write_string(2, 0, "单位：元")
    head = ["单据编号", "日期", "客户编码", "客户", "物料编码", "物料名称", "实发数量", "价税合计", "金额",
            "销售员", "销售部门"]
    for c, h in enumerate(head):
        ws.write_string(4, c, h)
    r = 5
    total = 0.0
    code: Any
    for code, grp in df.sort_values(["customer_code", "date"], kind="stable").groupby("customer_code", sort=False):
        for row in _records(grp):
            shown = f" {code} " if code.endswith("7") else code  # padded codes, as some exports do
            ws.write_string(r, 0, row.doc_no)
            ws.write_datetime(r, 1, row.date.to_pydatetime(), date_fmt)
            ws.write_string(r, 2, shown)
            ws.write_string(r, 3, names[code])
            ws.write_string(r, 4, row.item)
            ws.write_string(r, 5, row.item_name)
            ws.write_number(r, 6, row.quantity)
            ws.write_number(r, 7, row.amount, money)
            ws.write_number(r, 8, row.amount_excl_tax, money)
            ws.write_string(r, 9, sales_of[code])
            ws.write_string(r, 10, "销售一部")
            r += 1
        ws.write_string(r, 2, f"{code} 小计")
        ws.write_number(r, 7, round(float(grp["amount"].sum()), 2), money)
        total += float(grp["amount"].sum())
        r += 1
    ws.write_string(r, 0, "合计")
    ws.write_number(r, 7, round(total, 2), money)
    wb.close()
    return path


def _u8_csv(path: Path, df: pd.DataFrame, names: dict[str, str], sales_of: dict[str, str],
            rng: random.Random) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["发货单列表"])
    w.writerow([])
    w.writerow(["发货单号", "发货日期", "客户编码", "客户名称", "存货编码", "数量", "本币价税合计", "本币无税金额",
                "成本", "业务员", "部门"])
    for k, row in enumerate(_records(df)):
        code = row.customer_code
        if k % 97 == 5:
            code = code.translate(str.maketrans("C0123456789", "Ｃ０１２３４５６７８９"))
        amount = f"{row.amount:,.2f}"
        if row.amount < 0 and k % 2:
            amount = f"({-row.amount:,.2f})"
        d = row.date
        date = f"{d.year}/{d.month}/{d.day}" if k % 3 else f"{d.year}年{d.month}月{d.day}日"
        w.writerow([row.doc_no, date, code, names[row.customer_code], row.item, row.quantity, amount,
                    f"{row.amount_excl_tax:,.2f}", f"{row.cost:.2f}", sales_of[row.customer_code], "销售二部"])
    first: Any = _records(df.head(1))[0]
    w.writerow(["FH-BAD-1", "2026/13/45", first.customer_code, names[first.customer_code], "M0001", 1, "100.00",
                "88.50", "50", "张伟", "销售二部"])
    w.writerow(["FH-BAD-2", "2026/2/3", first.customer_code, names[first.customer_code], "M0001", 1, "N/A",
                "", "", "张伟", "销售二部"])
    w.writerow(["合计", "", "", "", "", "", f"{df['amount'].sum():,.2f}", "", "", "", ""])
    path.write_bytes(buf.getvalue().encode("gb18030"))
    return path


def _sap_xls(path: Path, df: pd.DataFrame, names: dict[str, str]) -> Path:
    wb = xlwt.Workbook(encoding="utf-8")
    ws = wb.add_sheet("SAP导出")
    ws.write(0, 0, "销售凭证清单 VA05")
    ws.write(1, 0, "单位：万元")
    head = ["销售凭证", "凭证日期", "售达方", "名称 1", "物料", "订单数量", "净价值", "含税金额"]
    for c, h in enumerate(head):
        ws.write(3, c, h)
    for r, row in enumerate(_records(df), start=4):
        serial = (row.date.to_pydatetime() - dt.datetime(1899, 12, 30)).days
        ws.write(r, 0, row.doc_no)
        ws.write(r, 1, serial)  # a bare Excel serial, no date format
        ws.write(r, 2, row.customer_code)
        ws.write(r, 3, names[row.customer_code])
        ws.write(r, 4, row.item)
        ws.write(r, 5, row.quantity)
        ws.write(r, 6, row.amount_excl_tax / 1e4)
        ws.write(r, 7, row.amount / 1e4)
    wb.save(str(path))
    return path


def _sap_xlsx(path: Path, df: pd.DataFrame, names: dict[str, str]) -> Path:
    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_formulas": False})
    ws = wb.add_worksheet("SAP导出")
    ws.write_string(0, 0, "销售凭证清单 VA05")
    ws.write_string(1, 0, "单位：万元")
    ws.write_row(3, 0, ["销售凭证", "凭证日期", "售达方", "名称 1", "物料", "订单数量", "净价值", "含税金额"])
    for r, row in enumerate(_records(df), start=4):
        serial = (row.date.to_pydatetime() - dt.datetime(1899, 12, 30)).days
        ws.write_row(r, 0, [row.doc_no, serial, row.customer_code, names[row.customer_code], row.item,
                            row.quantity, row.amount_excl_tax / 1e4, row.amount / 1e4])
    wb.close()
    return path


PINS = [  # customer index, grade, reason, by, until (None: no expiry)
    (9, "A", "战略合作客户，年度框架协议", "张经理", dt.date(2026, 12, 31)),
    (19, "B", "新开拓重点客户", "王总", None),
    (29, "C", "信用风险，暂停赊销", "财务部", dt.date(2026, 3, 31)),  # expired by 2026-06-30
]


def _overrides_xlsx(path: Path, cust: pd.DataFrame) -> Path:
    wb = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False})
    ws = wb.add_worksheet("人工指定")
    date_fmt = wb.add_format({"num_format": "yyyy-mm-dd"})
    ws.write_row(0, 0, ["客户编码", "客户名称", "指定等级", "原因", "指定人", "有效期至"])
    r = 1
    codes: list[str] = cust["customer_code"].tolist()
    names: list[str] = cust["customer_name"].tolist()
    for i, grade, reason, by, until in PINS:
        if i >= len(codes):
            continue
        ws.write_row(r, 0, [codes[i], names[i], grade, reason, by])
        if until is not None:
            ws.write_datetime(r, 5, dt.datetime(until.year, until.month, until.day), date_fmt)
        r += 1
    ws.write_row(r, 0, ["C99999", "已注销客户", "A", "旧记录", "李经理"])
    wb.close()
    return path


def _receivables(cust: pd.DataFrame, lines: pd.DataFrame, rng: random.Random) -> pd.DataFrame:
    window = lines[(lines["date"] > pd.Timestamp(2025, 6, 30)) & (lines["date"] <= pd.Timestamp(AS_OF))]
    billed = window.groupby("customer_code")["amount"].sum()
    rows = []
    for code in cust["customer_code"]:
        if code not in billed.index and rng.random() < 0.5:
            continue  # not every customer has an open account
        b = round(float(billed.get(code, 0.0)), 2)
        opening = round(rng.uniform(0, 0.3) * max(b, 1000.0), 2)
        rate = rng.choice([0.98, 0.95, 0.9, 0.85, 0.7, 0.5])
        received = round((opening + b) * rate, 2)
        rows.append({"customer_code": code, "opening": opening, "billed": b, "received": received,
                     "closing": round(opening + b - received, 2)})
    return pd.DataFrame(rows)


def _receivables_xlsx(path: Path, rec: pd.DataFrame, names: dict[str, str]) -> Path:
    wb = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False})
    ws = wb.add_worksheet("应收账款余额表")
    money = wb.add_format({"num_format": "#,##0.00"})
    head = wb.add_format({"bold": True, "align": "center", "border": 1})
    ws.write_string(0, 0, "应收账款余额表")
    ws.write_string(1, 0, "期间：2025年7月 至 2026年6月")
    for c, h in enumerate(["客户编码", "客户名称", "期初余额"]):
        ws.merge_range(3, c, 4, c, h, head)
    ws.merge_range(3, 3, 3, 4, "本期发生", head)
    ws.write_string(4, 3, "本期应收", head)
    ws.write_string(4, 4, "本期收回", head)
    ws.merge_range(3, 5, 4, 5, "期末余额", head)
    ws.merge_range(3, 6, 4, 6, "最长逾期天数", head)
    r = 5
    for row in _records(rec):
        ws.write_string(r, 0, row.customer_code)
        ws.write_string(r, 1, names[row.customer_code])
        for c, v in enumerate((row.opening, row.billed, row.received, row.closing), start=2):
            ws.write_number(r, c, v, money)
        ws.write_number(r, 6, row.overdue_days)
        r += 1
    ws.write_string(r, 0, "合计")
    for c, col in enumerate(("opening", "billed", "received", "closing"), start=2):
        ws.write_number(r, c, round(float(rec[col].sum()), 2), money)
    wb.close()
    return path


def _customers_html(path: Path, cust: pd.DataFrame) -> Path:
    heads = ["客户编码", "客户名称", "业务员", "地区", "潜力", "累计积分", "认可度", "痛点", "成交状态"]
    rows = ["<tr>" + "".join(f"<th>{h}</th>" for h in heads) + "</tr>"]
    for row in _records(cust):
        rows.append("<tr>" + "".join(f"<td>{escape(str(v))}</td>" for v in (
            row.customer_code, row.customer_name, row.salesperson, row.region, row.potential,
            f"{row.points:,}", row.recognition, row.pain, row.deal)) + "</tr>")
    html = ("<html><head><meta charset=\"utf-8\"><title>客户档案</title></head><body>"
            "<table border=\"1\"><tr><td colspan=\"5\">客户档案列表</td></tr>" + "".join(rows) + "</table></body></html>")
    path.write_text(html, encoding="utf-8")
    return path
