"""业务员与地区: grade × 业务员 and grade × 地区 (customers and sales), and each
salesperson's visit load (Σ visits per month the grade policies require) against
the configured capacity."""

from __future__ import annotations

import pandas as pd

from ..config_model import Config
from ..fill_plan import Block, _col
from ..grade import grade_rank

SHEET_OWNERS = "业务员与地区"
UNNAMED = "（未填）"
MATRIX_ANCHOR = "分组＼等级"


def visit_load(config: Config, graded: pd.DataFrame) -> pd.DataFrame:
    """Per salesperson: customers, sales, Σ visits/month (min and max) required, capacity, status."""
    owner = graded["salesperson"].astype(str).replace("", UNNAMED)
    ranges = {g: config.policy(g).visit_range for g in set(graded["grade"].astype(str).tolist())}
    low = graded["grade"].astype(str).map(lambda g: ranges[g][0])
    high = graded["grade"].astype(str).map(lambda g: ranges[g][1])
    frame = pd.DataFrame({"owner": owner, "sales": graded["net_sales"].astype(float), "low": low, "high": high})
    g = frame.groupby("owner", sort=False)
    out = pd.DataFrame({"customers": g.size(), "sales": g["sales"].sum(), "low": g["low"].sum(),
                        "high": g["high"].sum()})
    out = out.sort_values(["high", "sales"], ascending=[False, False], kind="stable")
    capacity = config.views.visit_capacity_per_month
    out["capacity"] = capacity if capacity is not None else float("nan")
    out["status"] = [_status(lo, hi, capacity) for lo, hi in zip(out["low"], out["high"])]
    out.index.name = "owner"
    return out.reset_index()


def _status(low: float, high: float, capacity: float | None) -> str:
    if capacity is None:
        return "未设置拜访能力（views.visit_capacity_per_month）"
    if low > capacity:
        return f"超负荷：至少需 {low:g} 次/月 > 能力 {capacity:g}"
    if high > capacity:
        return f"可能超负荷：最多需 {high:g} 次/月 > 能力 {capacity:g}"
    return "正常"


def cross_table(config: Config, graded: pd.DataFrame) -> list[list[object]]:
    """Rows of the grade × 业务员 and grade × 地区 table: group, name, then per grade customers and sales."""
    grades = list(grade_rank(config, graded["grade"].astype(str).tolist()))
    grades = [g for g in grades if g in set(graded["grade"].astype(str).tolist())]
    header: list[object] = [MATRIX_ANCHOR, "名称"]
    for g in [*grades, "合计"]:
        header += [f"{g} 客户数", f"{g} 净销售额"]
    rows: list[list[object]] = [header]
    for group, column in (("业务员", "salesperson"), ("地区", "region")):
        key = graded[column].astype(str).replace("", UNNAMED)
        frame = pd.DataFrame({"key": key, "grade": graded["grade"].astype(str),
                              "sales": graded["net_sales"].astype(float)})
        grouped = frame.groupby(["key", "grade"])
        counts: dict[object, int] = dict(grouped.size().items())
        sales: dict[object, float] = dict(grouped["sales"].sum().items())
        totals = frame.groupby("key")["sales"].sum().sort_values(ascending=False, kind="stable")
        for name in totals.index.astype(str):
            row: list[object] = [group, name]
            for g in grades:
                row += [counts.get((name, g), 0), round(sales.get((name, g), 0.0), 2)]
            row += [sum(counts.get((name, g), 0) for g in grades),
                    round(sum(sales.get((name, g), 0.0) for g in grades), 2)]
            rows.append(row)
    return rows


def owner_blocks(config: Config, graded: pd.DataFrame) -> tuple[Block, ...]:
    v = visit_load(config, graded)
    load = Block(("负荷状态", "拜访能力(次/月)"), (
        _col("业务员", v["owner"]),
        _col("客户数", v["customers"]),
        _col("净销售额", v["sales"]),
        _col("拜访需求下限(次/月)", v["low"]),
        _col("拜访需求上限(次/月)", v["high"]),
        _col("拜访能力(次/月)", v["capacity"]),
        _col("负荷状态", v["status"]),
    ), len(v), optional=True)
    rows = cross_table(config, graded)
    width = len(rows[0])
    columns = tuple(_col(str(rows[0][k]) if k == 0 else f"#{k}", [r[k] for r in rows]) for k in range(width))
    cross = Block((MATRIX_ANCHOR,), columns, len(rows), positional=True, optional=True)
    return load, cross
