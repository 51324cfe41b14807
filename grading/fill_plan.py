"""Stage 5, fill plan: what goes into which sheet of the template, by header text.

The plan holds values only; the writer (or the Excel add-in) decides how to
put them into a workbook. Columns are matched to template headers by text,
so users may reorder or drop template columns.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .changes import Comparison
from .config_model import Config, ParetoStage
from .describe import describe_rules
from .grade import grade_rank
from .plan_types import ArrayValues, TextValues, Block as Block, Column as Column, FillPlan as FillPlan, SheetPlan as SheetPlan
from .problems import Problem
from .reviews import review_columns

SHEET_MAIN = "客户分级管理表"
SHEET_SUMMARY = "分级汇总"
SHEET_PROBLEMS = "数据问题"
SHEET_RULES = "分级规则"
SHEET_CHANGES = "等级变动"


def _col(header: str, values: Sequence[object] | pd.Series | pd.Index | np.ndarray, *aliases: str) -> Column:
    listed = _values(values) if isinstance(values, (pd.Series, pd.Index, np.ndarray)) else values
    return Column(header, listed, aliases)


def build_plan(config: Config, graded: pd.DataFrame, problems: Sequence[Problem],
               generated_at: dt.datetime, comparison: Comparison | None = None,
               year_ago: str | None = None) -> FillPlan:
    from .views.credit import aging_basis

    period = config.period
    placeholders = {
        "{{期间}}": f"{period.start:%Y-%m-%d} 至 {period.as_of:%Y-%m-%d}",
        "{{截止日期}}": f"{period.as_of:%Y-%m-%d}",
        "{{期间名称}}": period.label,
        "{{生成时间}}": f"{generated_at:%Y-%m-%d %H:%M}",
        "{{客户数}}": str(len(graded)),
        "{{上期}}": ((comparison.chosen or comparison.previous) if comparison and comparison.previous
                   else "无（首次运行）"),
        "{{同比期间}}": year_ago or "无（历史中没有一年前的期间）",
        "{{账龄口径}}": aging_basis(graded),
    }
    ranked = ranked_by_sales(graded)  # sorted once for the overview's large customers and the Pareto table
    return FillPlan(
        (
            *_view_sheets(config, graded, comparison, first=True, ranked=ranked),
            SheetPlan(SHEET_MAIN, (_main_block(config, graded, grade_colours(config, graded)),)),
            SheetPlan(SHEET_SUMMARY, (*_summary_blocks(config, graded, ranked), _matrix_block(comparison),
                                      *_grid_blocks(config, graded))),
            *_view_sheets(config, graded, comparison, first=False),
            SheetPlan(SHEET_CHANGES, (_changes_block(comparison),)),
            SheetPlan(SHEET_PROBLEMS, (_problem_block(problems),)),
            SheetPlan(SHEET_RULES, (_rules_block(config),)),
        ),
        placeholders,
    )


def _values(s: pd.Series | pd.Index | np.ndarray) -> Sequence[object]:
    """A column's values for the plan: numpy numbers kept as an array (ArrayValues), Arrow text without a
    missing value as its Arrow array (TextValues), anything else as a list."""
    if isinstance(s.dtype, np.dtype) and s.dtype.kind in "fiu":
        return ArrayValues(np.asarray(s))
    if isinstance(s.dtype, pd.StringDtype) and s.dtype.storage == "pyarrow" and len(s):
        import pyarrow as pa

        texts = pa.array(s.array)
        texts = texts.combine_chunks() if isinstance(texts, pa.ChunkedArray) else texts
        if texts.null_count == 0:
            return TextValues(texts)
    values: list[object] = s.tolist()
    return values


def _dates(s: pd.Series) -> ArrayValues:
    """datetime.datetime per value (None when missing), held as datetime64[us] until read."""
    return ArrayValues(s.to_numpy(dtype="datetime64[us]"))


def grade_colours(config: Config, graded: pd.DataFrame) -> tuple[tuple[str, str], ...]:
    """Colours from config policies for the grades that occur (wildcard policies included)."""
    out = []
    for grade in grade_rank(config, graded["grade"].tolist()):
        colour = config.policy(grade).colour
        if colour:
            out.append((grade, colour))
    return tuple(out)


@dataclass(frozen=True)
class MainColumn:
    """A column of 客户分级管理表: header, the graded frame's column, template width and format."""

    header: str
    key: str
    width: float = 10
    fmt: str = "text"
    aliases: tuple[str, ...] = ()
    in_template: bool = True


# The one list of the main table's columns, in the default template's order (tools/make_template.py
# builds the template from it): who and which grade first, so 等级 and 客户类别 are on the first screen.
MAIN_COLUMNS: tuple[MainColumn, ...] = (
    MainColumn("序号", "#", 6, "int"),
    MainColumn("客户编码", "@code", 12),
    MainColumn("客户名称", "customer_name", 26),
    MainColumn("等级", "grade", 6, "grade", ("客户等级",)),
    MainColumn("客户类别", "grade_label", 12, "text", ("等级名称",)),
    MainColumn("变动", "change", 7, "change", ("等级变动",)),
    MainColumn("上期等级", "prev_grade", 8, "grade"),
    MainColumn("距上一等级", "next_gap", 16),
    MainColumn("业务员", "salesperson", 9, "text", ("销售员",)),
    MainColumn("部门", "department", in_template=False),
    MainColumn("地区", "region", 8, "text", ("区域",)),
    MainColumn("客户分类", "category", in_template=False),
    MainColumn("净销售额", "net_sales", 14, "money", ("销售额", "净销售额(元)")),
    MainColumn("上期净销售额", "prev_sales", 14, "money"),
    MainColumn("增长率", "growth", 8, "pct"),
    MainColumn("同比增长率", "yoy_growth", 9, "pct", ("同比",)),
    MainColumn("退货额", "returns", 11, "money"),
    MainColumn("订单数", "order_count", 8, "int"),
    MainColumn("明细行数", "line_count", in_template=False),
    MainColumn("活跃月数", "active_months", 8, "int"),
    MainColumn("平均订单金额", "avg_order_value", in_template=False),
    MainColumn("首次下单日期", "first_order_date", 12, "date"),
    MainColumn("最近下单日期", "last_order_date", 12, "date"),
    MainColumn("未下单天数", "recency_days", 9, "int"),
    MainColumn("合作月数", "tenure_months", 8, "int"),
    MainColumn("毛利", "gross_profit", 13, "money"),
    MainColumn("毛利率", "margin", 8, "pct"),
    MainColumn("期初余额", "opening", in_template=False),
    MainColumn("本期应收", "billed", 13, "money"),
    MainColumn("本期收回", "received", 13, "money"),
    MainColumn("回款率", "collection_rate", 8, "pct"),
    MainColumn("期末余额", "closing", 13, "money"),
    MainColumn("逾期金额", "@overdue", 13, "money"),
    MainColumn("信用额度", "@credit_limit", 13, "money"),
    MainColumn("综合得分", "score", 8, "score", ("得分",)),
    MainColumn("人工指定", "pinned", 9),
    MainColumn("拜访频率(次/月)", "visits_per_month", 10, "text", ("拜访频率",)),
    MainColumn("服务策略", "service", 28),
    MainColumn("折扣", "discount", 8),
    MainColumn("信用政策", "credit_terms", 14, "text", ("账期",)),
    MainColumn("分级依据", "reason", 60, "wrap"),
)
DATE_KEYS = ("first_order_date", "last_order_date")


def _main_block(config: Config, g: pd.DataFrame, colours: tuple[tuple[str, str], ...]) -> Block:
    from .views.credit import credit_limits, overdue_amount

    n = len(g)
    computed: dict[str, Sequence[object]] = {
        "#": ArrayValues(np.arange(1, n + 1, dtype=np.int64)),
        "@code": g.index.astype(str).tolist(),
        "@overdue": _values(overdue_amount(g)),
        "@credit_limit": _values(credit_limits(config, g)),
    }
    cols = []
    for spec in MAIN_COLUMNS:
        if spec.key in computed:
            values: Sequence[object] = computed[spec.key]
        elif spec.key not in g:
            values = [""] * n
        elif spec.key in DATE_KEYS:
            values = _dates(g[spec.key])
        else:
            values = _values(g[spec.key])
        cols.append(Column(spec.header, values, spec.aliases))
    # 评审 (issue 13): filled by managers, right after the columns above
    cols.extend(_col(header, values) for header, values in review_columns(g).items())
    return Block(("客户编码", "客户名称", "等级"), tuple(cols), n, colours=colours)


def grade_summary(config: Config, graded: pd.DataFrame) -> pd.DataFrame:
    """Per grade (config order): customers, sales, shares; plus nothing for unused grades."""
    total_sales = float(graded["net_sales"].sum())
    pareto = [s for s in config.grading.stages if isinstance(s, ParetoStage) and s.ref == "net_sales"]
    share_base = float(graded["net_sales"].clip(lower=0).sum()) if pareto else total_sales
    total_n = len(graded)
    rows = []
    grades = graded["grade"].to_numpy(dtype=object)
    present = set(grades.tolist())
    codes = [g for g in grade_rank(config, list(present)) if g in present or "*" not in g]
    needed = graded[[c for c in ("net_sales", "gross_profit", "profit_base") if c in graded]]  # only these are summed
    for code in codes:
        policy = config.policy(code)
        sel = needed[grades == code]
        sales = float(sel["net_sales"].sum())
        rows.append({
            "grade": code, "label": policy.label, "customers": len(sel),
            "customer_share": len(sel) / total_n if total_n else 0.0,
            "sales": sales,
            "sales_share": (float(sel["net_sales"].clip(lower=0).sum()) if pareto else sales) / share_base
            if share_base else 0.0,
            "avg_sales": sales / len(sel) if len(sel) else 0.0,
            "visits": policy.visits_per_month,
            **_profit(sel, graded),
        })
    return pd.DataFrame(rows)


def _profit(sel: pd.DataFrame, graded: pd.DataFrame) -> dict[str, float]:
    """毛利, its share of all customers' 毛利, and 毛利率 (毛利 / revenue of the lines with a cost)."""
    if "gross_profit" not in graded or graded["gross_profit"].isna().all():
        return {"profit": float("nan"), "profit_share": float("nan"), "profit_margin": float("nan")}
    profit = float(sel["gross_profit"].sum())
    total = float(graded["gross_profit"].sum())
    base = float(sel["profit_base"].sum()) if "profit_base" in sel else 0.0
    return {"profit": round(profit, 2), "profit_share": profit / total if total > 0 else float("nan"),
            "profit_margin": profit / base if base > 0 else float("nan")}


def ranked_by_sales(graded: pd.DataFrame) -> pd.DataFrame:
    """net_sales of the customers, largest first, ties by customer code (a frame of the two sort keys
    only, indexed like `graded`: sorting the whole table would move every column)."""
    keys = pd.DataFrame({"net_sales": graded["net_sales"], "_code": graded.index.astype(str)}, index=graded.index)
    return keys.sort_values(["net_sales", "_code"], ascending=[False, True], kind="stable")


def pareto_table(graded: pd.DataFrame, steps: int = 10, ranked: pd.DataFrame | None = None) -> pd.DataFrame:
    """Customers ranked by net sales (ties by code) in `steps` equal slices, cumulative shares (`ranked`:
    ranked_by_sales(graded), when the caller has it)."""
    ranked = ranked if ranked is not None else ranked_by_sales(graded)
    sales = ranked["net_sales"].to_numpy(dtype=float)
    n = len(sales)
    total = sales.sum()
    rows = []
    prev = 0
    for k in range(1, steps + 1):
        upto = int(np.ceil(n * k / steps))
        seg = sales[prev:upto]
        cum = sales[:upto].sum()
        rows.append({
            "segment": f"前{100 * (k - 1) // steps}%–{100 * k // steps}%" if k > 1 else f"前{100 // steps}%",
            "customers": upto - prev, "cum_customers": upto,
            "cum_customer_share": upto / n if n else 0.0,
            "segment_sales": float(seg.sum()), "cum_sales": float(cum),
            "cum_sales_share": float(cum / total) if total else 0.0,
        })
        prev = upto
    return pd.DataFrame(rows)


def _summary_blocks(config: Config, graded: pd.DataFrame, ranked: pd.DataFrame | None = None) -> tuple[Block, ...]:
    s = grade_summary(config, graded)
    total_row = {"grade": "合计", "label": "", "customers": int(s["customers"].sum()),
                 "customer_share": 1.0 if len(graded) else 0.0, "sales": float(s["sales"].sum()),
                 "sales_share": 1.0 if s["sales"].sum() else 0.0,
                 "avg_sales": float(s["sales"].sum()) / len(graded) if len(graded) else 0.0, "visits": "",
                 **_profit(graded, graded)}
    s = pd.concat([s, pd.DataFrame([total_row])], ignore_index=True)
    profit = (_col("毛利", s["profit"]), _col("毛利占比", s["profit_share"]), _col("毛利率", s["profit_margin"])) \
        if config.views.profit else ()
    grades = Block(("等级",), (
        _col("等级", s["grade"]),
        _col("客户类别", s["label"], "等级名称"),
        _col("客户数", s["customers"]),
        _col("客户占比", s["customer_share"]),
        _col("净销售额", s["sales"], "销售额"),
        _col("销售占比", s["sales_share"]),
        _col("平均销售额", s["avg_sales"]),
        *profit,
        _col("拜访频率(次/月)", s["visits"], "拜访频率"),
    ), len(s), chart_rows=len(s) - 1, colours=grade_colours(config, graded))
    p = pareto_table(graded, ranked=ranked)
    pareto = Block(("客户分段",), (
        _col("客户分段", p["segment"]),
        _col("客户数", p["customers"]),
        _col("累计客户数", p["cum_customers"]),
        _col("累计客户占比", p["cum_customer_share"]),
        _col("分段销售额", p["segment_sales"]),
        _col("累计销售额", p["cum_sales"]),
        _col("累计销售占比", p["cum_sales_share"]),
    ), len(p), chart_rows=len(p))
    return grades, pareto


def _matrix_block(comparison: Comparison | None) -> Block:
    """上期 × 本期 counts, labels in the first row and column, written from the anchor cell."""
    anchor = "上期＼本期"
    if comparison is None or comparison.previous is None:
        return Block((anchor,), (_col(anchor, [anchor, "（无上期数据）"]),), 2, positional=True)
    m = comparison.matrix
    total = m.sum(axis=1)
    cols = [_col(anchor, [anchor, *m.index, "合计"])]
    for c in m.columns:
        cols.append(_col(str(c), [str(c), *m[c].tolist(), int(m[c].sum())]))
    cols.append(_col("合计", ["合计", *total.tolist(), int(total.sum())]))
    return Block((anchor,), tuple(cols), len(m) + 2, positional=True)


GRID_ANCHOR = "九宫格矩阵"


def _grid_blocks(config: Config, graded: pd.DataFrame) -> tuple[Block, ...]:
    """For a grid method: first axis × the other axes, customers and net sales (a cell per code)."""
    from .views.grid import grid_matrix

    if not config.views.grid_matrix:
        return ()
    rows = grid_matrix(config, graded)
    if rows is None:
        rows = [["（本次分级方法不是九宫格/多轴代码）"]]
    rows = [[GRID_ANCHOR], *rows]  # the anchor row stays as in the template; the sections follow
    width = max(len(r) for r in rows)
    cols = tuple(_col(GRID_ANCHOR if k == 0 else f"#{k}", [r[k] if k < len(r) else None for r in rows])
                 for k in range(width))
    return (Block((GRID_ANCHOR,), cols, len(rows), positional=True, optional=True),)


def _view_sheets(config: Config, graded: pd.DataFrame, comparison: Comparison | None,
                 first: bool, ranked: pd.DataFrame | None = None) -> tuple[SheetPlan, ...]:
    """总览 (before the main table) or 业务员与地区 and 应收与信用 (after 分级汇总), as switched on."""
    from .views.credit import SHEET_CREDIT, credit_blocks
    from .views.overview import SHEET_OVERVIEW, overview_blocks
    from .views.owners import SHEET_OWNERS, owner_blocks

    v = config.views
    if first:
        return (SheetPlan(SHEET_OVERVIEW, overview_blocks(config, graded, comparison, ranked), optional=True),) \
            if v.overview else ()
    out = []
    if v.owners:
        out.append(SheetPlan(SHEET_OWNERS, owner_blocks(config, graded), optional=True))
    if v.credit:
        out.append(SheetPlan(SHEET_CREDIT, credit_blocks(config, graded), optional=True))
    return tuple(out)


def _changes_block(comparison: Comparison | None) -> Block:
    c = comparison.changes if comparison is not None and len(comparison.changes) else None
    if c is None:
        return Block(("变动",), (), 0)
    return Block(("变动",), (
        _col("序号", list(range(1, len(c) + 1))),
        _col("客户编码", c["customer_code"]),
        _col("客户名称", c["customer_name"]),
        _col("上期等级", c["prev_grade"]),
        _col("本期等级", c["grade"]),
        _col("变动", c["change"]),
        _col("上期净销售额", c["prev_sales"]),
        _col("本期净销售额", c["sales"]),
        _col("净销售额变化", c["sales_change"]),
        _col("上期得分", c["prev_score"]),
        _col("本期得分", c["score"]),
        _col("本期分级依据", c["reason"], "分级依据"),
    ), len(c))


def _problem_block(problems: Sequence[Problem]) -> Block:
    return Block(("问题",), (
        _col("序号", list(range(1, len(problems) + 1))),
        _col("文件", [p.file for p in problems]),
        _col("工作表", [p.sheet for p in problems], "工作表/阶段"),
        _col("行号", [p.row for p in problems]),
        _col("列", [p.column for p in problems], "列名"),
        _col("值", [p.value for p in problems], "原值"),
        _col("问题", [p.reason for p in problems]),
        _col("处理", [p.action for p in problems]),
        _col("金额", [p.amount for p in problems], "涉及金额"),
    ), len(problems))


def _rules_block(config: Config) -> Block:
    rows = describe_rules(config)
    return Block(("项目",), (_col("项目", [r[0] for r in rows]), _col("内容", [r[1] for r in rows])), len(rows))


