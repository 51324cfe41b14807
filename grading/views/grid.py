"""A grid method's result as a grid: first axis (rows) × the other axes (columns),
customers and net sales per cell, from the final grade codes."""

from __future__ import annotations

import itertools

import pandas as pd

from ..config_model import ASSIGNING, Config, GridStage

OTHER = "其他"


def grid_matrix(config: Config, graded: pd.DataFrame) -> list[list[object]] | None:
    """Two sections, customers then net sales, each: a header (the last axis's levels), one row per
    combination of the other axes' levels, 其他 for codes outside the grid (e.g. 暂定 or pins), 合计.
    None when the deciding assigning stage is not a grid."""
    deciding = [s for s in config.grading.stages if isinstance(s, ASSIGNING)][-1]
    if not isinstance(deciding, GridStage):
        return None
    # rows: the levels of every axis but the last (joined like the codes); columns: the last axis, so the
    # table stays narrow (it sits under the Pareto table, left of the migration matrix)
    row_axes, last = deciding.axes[:-1], deciding.axes[-1]
    row_levels = [deciding.separator.join(p) for p in itertools.product(*(a.levels for a in row_axes))]
    col_levels = last.levels
    cell = {deciding.separator.join((r, c)): (r, c) for r in row_levels for c in col_levels}
    counts: dict[tuple[str, str], int] = {}
    sales: dict[tuple[str, str], float] = {}
    other_n, other_sales = 0, 0.0
    for code, amount in zip(graded["grade"].astype(str), graded["net_sales"].astype(float)):
        if code in cell:
            counts[cell[code]] = counts.get(cell[code], 0) + 1
            sales[cell[code]] = sales.get(cell[code], 0.0) + amount
        else:
            other_n += 1
            other_sales += amount
    names = "×".join(a.name for a in row_axes)
    rows: list[list[object]] = []
    for what, table, total_other in (("客户数", counts, other_n), ("净销售额", sales, round(other_sales, 2))):
        rows.append([f"{what}：{names}＼{last.name}", *col_levels, "合计"])
        for r in row_levels:
            values = [round(table.get((r, c), 0), 2) for c in col_levels]
            rows.append([f"{names} {r}", *values, round(sum(values), 2)])
        if other_n:
            rows.append([f"{OTHER}（不在网格中的等级）", *([None] * len(col_levels)), total_other])
        column_totals = [round(sum(table.get((r, c), 0) for r in row_levels), 2) for c in col_levels]
        rows.append(["合计", *column_totals, round(sum(column_totals) + total_other, 2)])
    return rows
