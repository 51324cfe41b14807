"""Build the default template templates/客户分级管理表.xlsx with XlsxWriter.

The checked-in template is the product; this script documents how it was
made and rebuilds it:  python tools/make_template.py
Each table is: a header row (matched by text when filling) and one sample row
below it whose cell formats are copied to every data row.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import xlsxwriter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grading.fill_plan import MAIN_COLUMNS as FILL_COLUMNS  # noqa: E402
OUT = ROOT / "templates" / "客户分级管理表.xlsx"

GRADE_COLOURS = {"A": "#C6EFCE", "B": "#DDEBF7", "C": "#FFF2CC", "D": "#FCE4D6"}

# the main table's columns are defined once, in grading/fill_plan.py (MAIN_COLUMNS)
MAIN_COLUMNS = [(c.header, int(c.width), c.fmt) for c in FILL_COLUMNS if c.in_template]
MAIN_FROZEN = 1 + next(i for i, (h, _, _) in enumerate(MAIN_COLUMNS) if h == "客户类别")

A4 = 9


def printable(ws: Any, header_row: int = 3, freeze_cols: int = 0) -> None:
    """Landscape A4, fit to one page wide, title and header rows repeated on every page, panes frozen below."""
    ws.set_landscape()
    ws.set_paper(A4)
    ws.fit_to_pages(1, 0)
    ws.repeat_rows(0, header_row)
    ws.freeze_panes(header_row + 1, freeze_cols)


def matrix(ws: Any, f: dict[str, Any], row: int, col: int, anchor: str, width: int = 8) -> None:
    """A positional matrix (plain cells, not a table): the anchor cell, header-styled cells to its right,
    sample cells below."""
    ws.write_string(row, col, anchor, f["head"])
    ws.write_blank(row + 1, col, None, f["head"])
    for k in range(1, width):
        ws.write_blank(row, col + k, None, f["head"])
        ws.write_blank(row + 1, col + k, None, f["int"])


def add_table_block(ws: Any, name: str, row: int, col: int, columns: list[tuple[str, int, str]],
                    f: dict[str, Any], widths: bool = True) -> tuple[int, int, int, int]:
    """A table of the template as an Excel Table (ListObject): the header row (matched by text when
    filling) and one sample row whose formats are copied to every data row. Charts plot its columns,
    so resizing the table (the file writer, or Table.resize in Excel) moves the charts with the data."""
    last = col + len(columns) - 1
    if widths:
        for k, (_, width, _) in enumerate(columns):
            ws.set_column(col + k, col + k, width)
    ws.add_table(row, col, row + 1, last, {
        "name": name, "style": None, "autofilter": True,
        "columns": [{"header": head, "header_format": f["head"], "format": f[fmt]} for head, _, fmt in columns],
    })
    for k, (_, _, fmt) in enumerate(columns):  # the sample row's cell formats
        ws.write_blank(row + 1, col + k, None, f[fmt])
    return row, col, row + 1, last


def build(path: Path = OUT) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    wb = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_urls": False})
    wb.set_properties({"title": "客户分级管理表", "subject": "客户分级", "comments": "由 tools/make_template.py 生成"})
    base = {"font_name": "微软雅黑", "font_size": 10, "valign": "vcenter"}
    cell = {**base, "border": 1, "border_color": "#BFBFBF"}
    f = {
        "title": wb.add_format({**base, "bold": True, "font_size": 16, "font_color": "#1F3864"}),
        "sub": wb.add_format({**base, "font_color": "#595959"}),
        "head": wb.add_format({**cell, "bold": True, "bg_color": "#1F3864", "font_color": "#FFFFFF",
                               "align": "center", "text_wrap": True}),
        "text": wb.add_format(cell),
        "wrap": wb.add_format({**cell, "text_wrap": False}),
        "int": wb.add_format({**cell, "num_format": "#,##0"}),
        "money": wb.add_format({**cell, "num_format": "#,##0.00;[Red]-#,##0.00"}),
        "pct": wb.add_format({**cell, "num_format": "0.0%"}),
        "score": wb.add_format({**cell, "num_format": "0.00"}),
        "date": wb.add_format({**cell, "num_format": "yyyy-mm-dd"}),
        "grade": wb.add_format({**cell, "bold": True, "align": "center"}),
        "change": wb.add_format({**cell, "align": "center"}),
        "note": wb.add_format({**base, "font_color": "#7F7F7F", "italic": True}),
    }

    # ---- 总览: the first sheet, active on open; tables side by side (each grows downwards)
    ov = wb.add_worksheet("总览")
    ov.hide_gridlines(2)
    ov.write_string(0, 0, "客户分级总览", f["title"])
    ov.write_string(1, 0, "统计期间：{{期间}}　　截止日期：{{截止日期}}　　客户数：{{客户数}}　　上期：{{上期}}"
                          "　　同比期间：{{同比期间}}", f["sub"])
    ov.set_row(0, 28)
    ov.write_string(2, 0, "各等级客户与销售", f["sub"])
    add_table_block(ov, "总览等级表", 3, 0, [("等级", 7, "grade"), ("客户类别", 12, "text"), ("客户数", 8, "int"),
                                        ("客户占比", 9, "pct"), ("净销售额", 15, "money"), ("销售占比", 9, "pct")], f)
    ov.set_column(6, 6, 2)
    ov.write_string(2, 7, "本期等级变动（与上期比较）", f["sub"])
    add_table_block(ov, "总览变动表", 3, 7, [("变动类型", 14, "text"), ("客户数", 8, "int")], f)
    ov.write_string(10, 7, "变动最大的客户（按净销售额变化）", f["sub"])
    add_table_block(ov, "总览最大变动表", 11, 7, [("客户编码", 14, "text"), ("客户名称", 22, "text"),
                                            ("上期等级", 8, "grade"), ("本期等级", 8, "grade"),
                                            ("净销售额变化", 14, "money"), ("说明", 36, "text")], f)
    ov.set_column(13, 13, 2)
    ov.write_string(2, 14, "关注清单（每行写明客户和原因）", f["sub"])
    add_table_block(ov, "关注清单表", 3, 14, [("序号", 5, "int"), ("关注类型", 14, "text"), ("客户编码", 11, "text"),
                                         ("客户名称", 22, "text"), ("等级", 6, "grade"), ("净销售额", 14, "money"),
                                         ("原因", 60, "text")], f)
    for word, colour in (("升级", "#006100"), ("降级", "#9C0006"), ("新增", "#1F3864"), ("流失", "#7F7F7F")):
        ov.conditional_format(4, 7, 9, 7, {"type": "cell", "criteria": "==", "value": f'"{word}"',
                                           "format": wb.add_format({"font_color": colour, "bold": True})})
    printable(ov)

    # ---- 客户分级管理表
    ws = wb.add_worksheet("客户分级管理表")
    ws.hide_gridlines(2)
    ws.write_string(0, 0, "客户分级管理表", f["title"])
    ws.write_string(1, 0, "统计期间：{{期间}}　　客户数：{{客户数}}　　生成时间：{{生成时间}}", f["sub"])
    ws.set_row(0, 28)
    ws.set_row(3, 30)
    review = add_review_columns(wb, ws, len(MAIN_COLUMNS), base, cell, f)
    add_table_block(ws, "客户分级表", 3, 0, MAIN_COLUMNS + review, f)
    grade_col = next(i for i, (h, _, _) in enumerate(MAIN_COLUMNS) if h == "等级")
    for grade, colour in GRADE_COLOURS.items():
        fill = wb.add_format({"bg_color": colour})
        ws.conditional_format(4, grade_col, 1_048_575, grade_col,
                              {"type": "cell", "criteria": "==", "value": f'"{grade}"', "format": fill})
    change_col = next(i for i, (h, _, _) in enumerate(MAIN_COLUMNS) if h == "变动")
    for word, colour in (("升级", "#006100"), ("降级", "#9C0006"), ("新增", "#1F3864")):
        ws.conditional_format(4, change_col, 1_048_575, change_col, {
            "type": "cell", "criteria": "==", "value": f'"{word}"',
            "format": wb.add_format({"font_color": colour, "bold": True})})
    sales_col = next(i for i, (h, _, _) in enumerate(MAIN_COLUMNS) if h == "净销售额")
    ws.conditional_format(4, sales_col, 1_048_575, sales_col,
                          {"type": "data_bar", "bar_color": "#9DC3E6", "bar_solid": True})
    printable(ws, freeze_cols=MAIN_FROZEN)

    # ---- 分级汇总
    ss = wb.add_worksheet("分级汇总")
    ss.hide_gridlines(2)
    ss.write_string(0, 0, "客户分级汇总", f["title"])
    ss.write_string(1, 0, "统计期间：{{期间}}", f["sub"])
    ss.set_row(0, 28)
    summary = [("等级", 8, "grade"), ("客户类别", 12, "text"), ("客户数", 9, "int"), ("客户占比", 10, "pct"),
               ("净销售额", 16, "money"), ("销售占比", 10, "pct"), ("平均销售额", 14, "money"),
               ("毛利", 14, "money"), ("毛利占比", 10, "pct"), ("毛利率", 9, "pct"),
               ("拜访频率(次/月)", 12, "text")]
    # the table holds one row per grade (what the charts plot); the 合计 row is written just below it
    add_table_block(ss, "等级汇总表", 3, 0, summary, f)
    col_of = {h: i for i, (h, _, _) in enumerate(summary)}
    ss.set_column(len(summary), len(summary), 3)
    px = len(summary) + 1  # Pareto's first column
    pareto = [("客户分段", 12, "text"), ("客户数", 9, "int"), ("累计客户数", 10, "int"),
              ("累计客户占比", 11, "pct"), ("分段销售额", 15, "money"), ("累计销售额", 15, "money"),
              ("累计销售占比", 11, "pct")]
    add_table_block(ss, "帕累托表", 3, px, pareto, f)
    ss.write_string(2, 0, "按等级", f["sub"])
    ss.write_string(2, px, "帕累托累计分布（客户按净销售额从高到低）", f["sub"])
    for grade, colour in GRADE_COLOURS.items():
        fill = wb.add_format({"bg_color": colour})
        ss.conditional_format(4, 0, 200, 0, {"type": "cell", "criteria": "==", "value": f'"{grade}"', "format": fill})
    # grid methods: the other axes (rows) × the last axis (columns), customers and net sales, under Pareto
    ss.write_string(15, px, "九宫格矩阵（仅九宫格/多轴代码方法；列：最后一个轴）", f["sub"])
    matrix(ss, f, 16, px, "九宫格矩阵", 7)

    def pyramid(name: str, share_col: int, colour: str, width: int) -> Any:
        chart = wb.add_chart({"type": "column"})
        chart.add_series({"name": "客户占比", "categories": ["分级汇总", 4, 0, 4, 0],
                          "values": ["分级汇总", 4, col_of["客户占比"], 4, col_of["客户占比"]],
                          "fill": {"color": "#9DC3E6"}, "data_labels": {"value": True, "num_format": "0%"}})
        chart.add_series({"name": name, "categories": ["分级汇总", 4, 0, 4, 0],
                          "values": ["分级汇总", 4, share_col, 4, share_col], "fill": {"color": colour},
                          "data_labels": {"value": True, "num_format": "0%"}})
        chart.set_title({"name": f"各等级客户占比与{name}", "name_font": {"size": 12}})
        chart.set_y_axis({"num_format": "0%", "max": 1,
                          "major_gridlines": {"visible": True, "line": {"color": "#E7E6E6"}}})
        chart.set_legend({"position": "bottom"})
        chart.set_size({"width": width, "height": 300})
        return chart

    # side by side under the grade table (the writer moves them further down when the table grows)
    ss.insert_chart(16, 0, pyramid("销售占比", col_of["销售占比"], "#1F3864", 480))
    ss.insert_chart(16, col_of["平均销售额"], pyramid("毛利占比", col_of["毛利占比"], "#548235", 440))

    line = wb.add_chart({"type": "line"})
    line.add_series({"name": "累计销售占比", "categories": ["分级汇总", 4, px, 4, px],
                     "values": ["分级汇总", 4, px + 6, 4, px + 6], "marker": {"type": "circle"},
                     "line": {"color": "#C00000"}})
    line.add_series({"name": "累计客户占比", "categories": ["分级汇总", 4, px, 4, px],
                     "values": ["分级汇总", 4, px + 3, 4, px + 3], "line": {"color": "#7F7F7F", "dash_type": "dash"}})
    line.set_title({"name": "帕累托曲线", "name_font": {"size": 12}})
    line.set_y_axis({"num_format": "0%", "max": 1})
    line.set_legend({"position": "bottom"})
    line.set_size({"width": 620, "height": 320})
    ss.insert_chart(19, px, line)

    # migration matrix: written from the anchor cell on (labels in its row and column)
    mx = px + len(pareto) + 1
    ss.write_string(2, mx, "等级迁移矩阵（行：上期 {{上期}}，列：本期）", f["sub"])
    matrix(ss, f, 3, mx, "上期＼本期")
    ss.set_column(mx - 1, mx - 1, 3)
    ss.set_column(mx, mx + 7, 9)
    printable(ss)

    # ---- 业务员与地区
    os_ = wb.add_worksheet("业务员与地区")
    os_.hide_gridlines(2)
    os_.write_string(0, 0, "业务员与地区", f["title"])
    os_.write_string(1, 0, "统计期间：{{期间}}　　拜访需求 = 各客户所在等级的拜访频率（次/月）之和", f["sub"])
    os_.set_row(0, 28)
    os_.write_string(2, 0, "业务员拜访负荷", f["sub"])
    add_table_block(os_, "拜访负荷表", 3, 0, [("业务员", 10, "text"), ("客户数", 8, "int"), ("净销售额", 15, "money"),
                                         ("拜访需求下限(次/月)", 11, "score"), ("拜访需求上限(次/月)", 11, "score"),
                                         ("拜访能力(次/月)", 10, "score"), ("负荷状态", 34, "text")], f)
    os_.conditional_format(4, 6, 1_048_575, 6, {"type": "text", "criteria": "begins with", "value": "超负荷",
                                                "format": wb.add_format({"font_color": "#9C0006", "bold": True})})
    os_.conditional_format(4, 6, 1_048_575, 6, {"type": "text", "criteria": "begins with", "value": "可能超负荷",
                                                "format": wb.add_format({"font_color": "#9C5700"})})
    os_.set_column(7, 7, 3)
    os_.write_string(2, 8, "等级 × 业务员、等级 × 地区（客户数、净销售额）", f["sub"])
    matrix(os_, f, 3, 8, "分组＼等级", 10)
    os_.set_column(8, 8, 10)
    os_.set_column(9, 9, 12)
    os_.set_column(10, 40, 11)
    printable(os_)

    # ---- 应收与信用
    cr = wb.add_worksheet("应收与信用")
    cr.hide_gridlines(2)
    cr.write_string(0, 0, "应收与信用", f["title"])
    cr.write_string(1, 0, "截止日期：{{截止日期}}　　{{账龄口径}}　　上期：{{上期}}", f["sub"])
    cr.set_row(0, 28)
    aging = [("0-30天", 12, "money"), ("31-60天", 12, "money"), ("61-90天", 12, "money"),
             ("91-180天", 12, "money"), ("180天以上", 12, "money")]
    cr.write_string(2, 0, "按等级：信用政策、余额、逾期与账龄", f["sub"])
    add_table_block(cr, "信用按等级表", 3, 0, [("等级", 7, "grade"), ("信用政策", 12, "text"), ("客户数", 8, "int"),
                                          ("期末余额", 14, "money"), ("逾期金额", 14, "money"), ("逾期占比", 9, "pct"),
                                          ("回款率", 8, "pct"), *aging], f)
    cr.set_column(12, 12, 3)
    cr.write_string(2, 13, "本期信用政策变更（交财务执行）", f["sub"])
    add_table_block(cr, "信用政策变更表", 3, 13, [("客户编码", 11, "text"), ("客户名称", 22, "text"),
                                            ("上期等级", 8, "grade"), ("本期等级", 8, "grade"),
                                            ("原信用政策", 12, "text"), ("新信用政策", 12, "text"),
                                            ("原因", 50, "text")], f)
    cr.set_column(20, 20, 3)
    cr.write_string(2, 21, "每个客户：信用额度与当前余额", f["sub"])
    add_table_block(cr, "信用额度表", 3, 21, [("客户编码", 11, "text"), ("客户名称", 22, "text"), ("等级", 6, "grade"),
                                         ("信用政策", 12, "text"), ("月均净销售额", 14, "money"),
                                         ("信用额度", 14, "money"), ("期末余额", 14, "money"),
                                         ("额度占用率", 10, "pct"), ("超出额度", 13, "money"),
                                         ("逾期金额", 13, "money"), *aging], f)
    cr.conditional_format(4, 29, 1_048_575, 29, {"type": "cell", "criteria": ">", "value": 0,
                                                 "format": wb.add_format({"font_color": "#9C0006", "bold": True})})
    printable(cr)

    # ---- 等级变动
    cs = wb.add_worksheet("等级变动")
    cs.write_string(0, 0, "等级变动（与上期比较）", f["title"])
    cs.write_string(1, 0, "本期：{{期间}}　　上期：{{上期}}", f["sub"])
    changes = [("序号", 6, "int"), ("客户编码", 12, "text"), ("客户名称", 26, "text"), ("上期等级", 8, "grade"),
               ("本期等级", 8, "grade"), ("变动", 7, "change"), ("上期净销售额", 14, "money"),
               ("本期净销售额", 14, "money"), ("净销售额变化", 14, "money"), ("上期得分", 8, "score"),
               ("本期得分", 8, "score"), ("本期分级依据", 70, "wrap")]
    add_table_block(cs, "等级变动表", 3, 0, changes, f)
    for word, colour in (("升级", "#006100"), ("降级", "#9C0006"), ("新增", "#1F3864"), ("流失", "#7F7F7F")):
        cs.conditional_format(4, 5, 1_048_575, 5, {"type": "cell", "criteria": "==", "value": f'"{word}"',
                                                    "format": wb.add_format({"font_color": colour, "bold": True})})
    printable(cs, freeze_cols=3)

    # ---- 数据问题
    ps = wb.add_worksheet("数据问题")
    ps.write_string(0, 0, "数据问题清单", f["title"])
    ps.write_string(1, 0, "以下行在读取时被跳过或修正；请在 ERP 中核对。统计期间：{{期间}}", f["sub"])
    problems = [("序号", 6, "int"), ("文件", 28, "text"), ("工作表", 14, "text"), ("行号", 7, "int"),
                ("列", 12, "text"), ("值", 18, "text"), ("问题", 50, "text"), ("处理", 8, "text"),
                ("金额", 14, "money")]
    add_table_block(ps, "数据问题表", 3, 0, problems, f)
    printable(ps)

    # ---- 分级规则
    rs = wb.add_worksheet("分级规则")
    rs.write_string(0, 0, "本次使用的分级规则", f["title"])
    rs.write_string(1, 0, "来自 config.yaml 的快照，生成时间：{{生成时间}}", f["sub"])
    add_table_block(rs, "分级规则表", 3, 0, [("项目", 30, "text"), ("内容", 110, "wrap")], f)
    printable(rs)

    ov.activate()
    wb.close()
    return path


REVIEW_COLUMNS = [
    # 评审 (issue 13): filled by managers in the review meeting; a later run with this workbook as the
    # `reviews` source turns rows with 状态 = 通过 into pins
    ("建议等级", 8, "grade"), ("理由", 30, "text"), ("审批人", 9, "text"), ("审批日期", 11, "date"),
    ("有效至", 11, "date"), ("状态", 7, "status"),
]


def add_review_columns(wb: xlsxwriter.Workbook, ws: Any, first: int, base: dict[str, object],
                       cell: dict[str, object], f: dict[str, Any]) -> list[tuple[str, int, str]]:
    """The 评审 columns, part of the main table right after its columns: their sample-row formats
    (light fill: cells for the meeting), a note above them and a drop-down 待审/通过/驳回 on 状态.
    Returns the column specs to append to the main table."""
    fill = {**cell, "bg_color": "#FFF2CC"}
    f.update({
        "review_grade": wb.add_format({**fill, "bold": True, "align": "center"}),
        "review_text": wb.add_format(fill),
        "review_date": wb.add_format({**fill, "num_format": "yyyy-mm-dd"}),
        "review_status": wb.add_format({**fill, "align": "center"}),
    })
    ws.write_string(2, first, "评审（会上填写；状态选“通过”的行在下次运行时生效）",
                    wb.add_format({**base, "font_color": "#C65911", "bold": True}))
    status = first + len(REVIEW_COLUMNS) - 1
    ws.data_validation(4, status, 1_048_575, status, {
        "validate": "list", "source": ["待审", "通过", "驳回"],
        "error_title": "评审状态", "error_message": "请选择 待审、通过 或 驳回"})
    return [(header, width, f"review_{fmt}") for header, width, fmt in REVIEW_COLUMNS]


if __name__ == "__main__":
    print(build(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT))
