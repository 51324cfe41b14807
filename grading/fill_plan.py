"""Stage 5, fill plan: what goes into which sheet of the template, by header text.

The plan holds values only; the writer (or the Excel add-in) decides how to
put them into a workbook. Columns are matched to template headers by text,
so users may reorder or drop template columns.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .changes import Comparison
from .config_model import Config, ParetoStage
from .describe import describe_rules
from .grade import grade_rank
from .plan_types import Block as Block, Column as Column, FillPlan as FillPlan, SheetPlan as SheetPlan
from .problems import Problem
from .reviews import review_columns

SHEET_MAIN = "客户分级管理表"
SHEET_SUMMARY = "分级汇总"
SHEET_PROBLEMS = "数据问题"
SHEET_RULES = "分级规则"
SHEET_CHANGES = "等级变动"


def _col(header: str, values: Sequence[object] | pd.Series | pd.Index | np.ndarray, *aliases: str) -> Column:
    listed: Sequence[object] = values.tolist() if isinstance(values, (pd.Series, pd.Index, np.ndarray)) else values
    return Column(header, listed, aliases)


def build_plan(config: Config, graded: pd.DataFrame, problems: Sequence[Problem],
               generated_at: dt.datetime, comparison: Comparison | None = None) -> FillPlan:
    period = config.period
    placeholders = {
        "{{期间}}": f"{period.start:%Y-%m-%d} 至 {period.as_of:%Y-%m-%d}",
        "{{截止日期}}": f"{period.as_of:%Y-%m-%d}",
        "{{期间名称}}": period.label,
        "{{生成时间}}": f"{generated_at:%Y-%m-%d %H:%M}",
        "{{客户数}}": str(len(graded)),
        "{{上期}}": ((comparison.chosen or comparison.previous) if comparison and comparison.previous
                   else "无（首次运行）"),
    }
    return FillPlan(
        (
            SheetPlan(SHEET_MAIN, (_main_block(graded, grade_colours(config, graded)),)),
            SheetPlan(SHEET_SUMMARY, (*_summary_blocks(config, graded), _matrix_block(comparison))),
            SheetPlan(SHEET_CHANGES, (_changes_block(comparison),)),
            SheetPlan(SHEET_PROBLEMS, (_problem_block(problems),)),
            SheetPlan(SHEET_RULES, (_rules_block(config),)),
        ),
        placeholders,
    )


def _dates(s: pd.Series) -> list[object]:
    return [None if pd.isna(v) else v.to_pydatetime() for v in s]


def grade_colours(config: Config, graded: pd.DataFrame) -> tuple[tuple[str, str], ...]:
    """Colours from config policies for the grades that occur (wildcard policies included)."""
    out = []
    for grade in grade_rank(config, graded["grade"].tolist()):
        colour = config.policy(grade).colour
        if colour:
            out.append((grade, colour))
    return tuple(out)


def _main_block(g: pd.DataFrame, colours: tuple[tuple[str, str], ...]) -> Block:
    n = len(g)
    cols = (
        _col("序号", list(range(1, n + 1))),
        _col("客户编码", g.index.astype(str)),
        _col("客户名称", g["customer_name"]),
        _col("业务员", g["salesperson"], "销售员"),
        _col("部门", g["department"]),
        _col("地区", g["region"], "区域"),
        _col("客户分类", g["category"]),
        _col("净销售额", g["net_sales"], "销售额", "净销售额(元)"),
        _col("退货额", g["returns"]),
        _col("订单数", g["order_count"]),
        _col("明细行数", g["line_count"]),
        _col("活跃月数", g["active_months"]),
        _col("平均订单金额", g["avg_order_value"]),
        _col("首次下单日期", _dates(g["first_order_date"])),
        _col("最近下单日期", _dates(g["last_order_date"])),
        _col("未下单天数", g["recency_days"]),
        _col("合作月数", g["tenure_months"]),
        _col("毛利", g["gross_profit"]),
        _col("毛利率", g["margin"]),
        _col("期初余额", g["opening"]),
        _col("本期应收", g["billed"]),
        _col("本期收回", g["received"]),
        _col("期末余额", g["closing"]),
        _col("回款率", g["collection_rate"]),
        _col("综合得分", g["score"], "得分"),
        _col("等级", g["grade"], "客户等级"),
        _col("人工指定", g["pinned"]),
        _col("上期等级", g["prev_grade"]),
        _col("变动", g["change"], "等级变动"),
        _col("客户类别", g["grade_label"], "等级名称"),
        _col("拜访频率(次/月)", g["visits_per_month"], "拜访频率"),
        _col("服务策略", g["service"]),
        _col("折扣", g["discount"]),
        _col("信用政策", g["credit_terms"], "账期"),
        _col("分级依据", g["reason"]),
        _col("距上一等级", g["next_gap"]),
        *(_col(header, values) for header, values in review_columns(g).items()),  # 评审, filled by managers
    )
    return Block(("客户编码", "客户名称", "等级"), cols, n, colours=colours)


def grade_summary(config: Config, graded: pd.DataFrame) -> pd.DataFrame:
    """Per grade (config order): customers, sales, shares; plus nothing for unused grades."""
    total_sales = float(graded["net_sales"].sum())
    pareto = [s for s in config.grading.stages if isinstance(s, ParetoStage) and s.ref == "net_sales"]
    share_base = float(graded["net_sales"].clip(lower=0).sum()) if pareto else total_sales
    total_n = len(graded)
    rows = []
    present = set(graded["grade"])
    codes = [g for g in grade_rank(config, list(present)) if g in present or "*" not in g]
    for code in codes:
        policy = config.policy(code)
        sel = graded[graded["grade"] == code]
        sales = float(sel["net_sales"].sum())
        rows.append({
            "grade": code, "label": policy.label, "customers": len(sel),
            "customer_share": len(sel) / total_n if total_n else 0.0,
            "sales": sales,
            "sales_share": (float(sel["net_sales"].clip(lower=0).sum()) if pareto else sales) / share_base
            if share_base else 0.0,
            "avg_sales": sales / len(sel) if len(sel) else 0.0,
            "visits": policy.visits_per_month,
        })
    return pd.DataFrame(rows)


def pareto_table(graded: pd.DataFrame, steps: int = 10) -> pd.DataFrame:
    """Customers ranked by net sales (ties by code) in `steps` equal slices, cumulative shares."""
    ranked = graded.assign(_code=graded.index.astype(str)).sort_values(
        ["net_sales", "_code"], ascending=[False, True], kind="stable")
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


def _summary_blocks(config: Config, graded: pd.DataFrame) -> tuple[Block, ...]:
    s = grade_summary(config, graded)
    total_row = {"grade": "合计", "label": "", "customers": int(s["customers"].sum()),
                 "customer_share": 1.0 if len(graded) else 0.0, "sales": float(s["sales"].sum()),
                 "sales_share": 1.0 if s["sales"].sum() else 0.0,
                 "avg_sales": float(s["sales"].sum()) / len(graded) if len(graded) else 0.0, "visits": ""}
    s = pd.concat([s, pd.DataFrame([total_row])], ignore_index=True)
    grades = Block(("等级",), (
        _col("等级", s["grade"]),
        _col("客户类别", s["label"], "等级名称"),
        _col("客户数", s["customers"]),
        _col("客户占比", s["customer_share"]),
        _col("净销售额", s["sales"], "销售额"),
        _col("销售占比", s["sales_share"]),
        _col("平均销售额", s["avg_sales"]),
        _col("拜访频率(次/月)", s["visits"], "拜访频率"),
    ), len(s), chart_rows=len(s) - 1, colours=grade_colours(config, graded))
    p = pareto_table(graded)
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


