"""Config of the views of issue 14 (总览, 业务员与地区, 应收与信用, growth, profit, grids):
which views are on, the watch-list thresholds, visit capacity, credit-limit rules,
and visit frequencies as numeric ranges."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from .units import parse_amount

Amount = Annotated[float, BeforeValidator(parse_amount), WithJsonSchema({
    "anyOf": [{"type": "number"},
              {"type": "string", "pattern": r"^\s*[-+]?[\d,]+(\.\d+)?\s*(元|万元|万|亿元|亿|%)?\s*$"}],
    "description": "数字，或带单位：500万、1.2亿、3000元、80%",
})]

_RANGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:(?:-|–|—|~|～|至|到)\s*(\d+(?:\.\d+)?))?\s*(?:次/月|次)?\s*$")


def visit_range(text: str) -> tuple[float, float] | None:
    """`4-6` → (4, 6), `2` → (2, 2), `` → (0, 0); None when the text holds no number range."""
    if not text.strip():
        return (0.0, 0.0)
    m = _RANGE.match(text)
    if not m:
        return None
    low = float(m.group(1))
    high = float(m.group(2)) if m.group(2) else low
    return (low, high) if low <= high else None


def check_visits(value: object) -> object:
    text = value if isinstance(value, str) else (f"{value:g}" if isinstance(value, (int, float))
                                                  and not isinstance(value, bool) else value)
    if isinstance(text, str) and visit_range(text) is None:
        raise ValueError(f"拜访频率应写成次数或范围，如 2、4-6（次/月），发现 {text!r}")
    return text


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class CreditLimitRule(_Model):
    """信用额度 = 月均净销售额 × months_of_sales，最高 cap（可选）。"""

    months_of_sales: float = Field(gt=0)
    cap: Amount | None = None


class WatchConfig(_Model):
    """总览的关注清单：哪些客户需要看一眼。"""

    large_top: Amount = Field(default=0.2, gt=0, le=1)  # 大客户：净销售额排名前 20%
    near_boundary: Amount = Field(default=0.1, gt=0, le=1)  # 距上一等级的差距 ≤ 分界值的 10%
    quiet_days: int = Field(default=60, ge=1)  # 大客户未下单天数超过此值
    pin_expiry_days: int = Field(default=30, ge=1)  # 人工指定在此天数内到期
    movers: int = Field(default=10, ge=1, le=1000)  # 最大变动：列出净销售额变化最大的前 N 个


class ViewsConfig(_Model):
    """输出中的附加视图，可逐个关闭（关闭后模板中对应的表保持空白）。"""

    overview: bool = True  # 总览
    owners: bool = True  # 业务员与地区
    credit: bool = True  # 应收与信用
    growth: bool = True  # 上期净销售额、增长率、同比
    profit: bool = True  # 分级汇总中的毛利、毛利率
    grid_matrix: bool = True  # 九宫格方法：分级汇总中的 n × m 矩阵
    visit_capacity_per_month: float | None = Field(default=None, gt=0)  # 每位业务员每月可拜访次数
    watch: WatchConfig = WatchConfig()
