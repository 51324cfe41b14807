"""The columns of the pipeline's tables, declared once: name, dtype, meaning.

* LINE_COLUMNS — normalised export lines (one frame per source, index 0..n);
* METRIC_COLUMNS — the per-customer metrics table (index customer_code);
* GRADED_COLUMNS — what grading adds to the metrics table.

Money is in yuan at cent precision (sums are taken in integer cents).
Master-data columns used by rules are carried as `col:<header>` (text).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd

DType = Literal["text", "float", "int", "datetime", "bool"]


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    dtype: DType
    meaning: str


def _specs(*rows: tuple[str, DType, str]) -> tuple[ColumnSpec, ...]:
    return tuple(ColumnSpec(*r) for r in rows)


LINE_COLUMNS: dict[str, tuple[ColumnSpec, ...]] = {
    "sales": _specs(
        ("customer_code", "text", "客户编码（去空格、全角转半角）"), ("customer_name", "text", "客户名称"),
        ("doc_no", "text", "单据编号"), ("date", "datetime", "单据日期"),
        ("amount", "float", "价税合计，元（退货为负）"), ("amount_excl_tax", "float", "无税金额，元"),
        ("cost", "float", "成本，元（可缺）"), ("item", "text", "物料编码"), ("quantity", "float", "数量"),
        ("salesperson", "text", "业务员"), ("department", "text", "部门"),
    ),
    "receivables": _specs(
        ("customer_code", "text", "客户编码"), ("customer_name", "text", "客户名称"),
        ("opening", "float", "期初余额，元"), ("billed", "float", "本期应收，元"), ("received", "float", "本期收回，元"),
        ("closing", "float", "期末余额，元"), ("overdue_days", "float", "逾期天数"),
    ),
}

METRIC_COLUMNS: tuple[ColumnSpec, ...] = _specs(
    ("net_sales", "float", "净销售额，元，分精度（退货已冲减）"), ("gross_sales", "float", "销售额（不含退货），元"),
    ("returns", "float", "退货额，元（正数）"), ("line_count", "int", "期间内明细行数"),
    ("order_count", "int", "订单数：金额为正的不同单据"), ("active_months", "int", "有正金额单据的月数"),
    ("avg_order_value", "float", "平均订单金额，元"), ("first_order_date", "datetime", "首次下单日期（含期间前）"),
    ("last_order_date", "datetime", "最近下单日期"), ("recency_days", "float", "未下单天数（截至 as_of）"),
    ("tenure_months", "float", "合作月数"), ("gross_profit", "float", "毛利，元（无成本为空）"),
    ("margin", "float", "毛利率"), ("opening", "float", "期初余额，元"), ("billed", "float", "本期应收，元"),
    ("received", "float", "本期收回，元"), ("closing", "float", "期末余额，元"),
    ("collection_rate", "float", "回款率"), ("overdue_days", "float", "逾期天数（最大）"),
    ("customer_name", "text", "客户名称"), ("salesperson", "text", "业务员"), ("department", "text", "部门"),
    ("region", "text", "地区"), ("category", "text", "客户分类"),
    ("profit_base", "float", "有成本的明细的收入，元：毛利率的分母（无成本为空）"),
)

# Present only when the receivables export has them (summed per customer): 逾期金额 and the aging buckets.
OPTIONAL_METRIC_COLUMNS: tuple[ColumnSpec, ...] = _specs(
    ("overdue_amount", "float", "逾期金额，元"), ("aging_days", "float", "账龄天数（最大）"),
    ("aging_0_30", "float", "账龄 0-30 天，元"),
    ("aging_31_60", "float", "账龄 31-60 天，元"), ("aging_61_90", "float", "账龄 61-90 天，元"),
    ("aging_91_180", "float", "账龄 91-180 天，元"), ("aging_over_180", "float", "账龄 180 天以上，元"),
)

GRADED_COLUMNS: tuple[ColumnSpec, ...] = _specs(
    ("score", "float", "综合得分（评分类规则，否则为空）"),
    ("rule_grade", "text", "按规则（含人工指定）得到的等级，稳定规则之前"),
    ("grade", "text", "最终等级：阶段 → 人工指定 → 等级稳定"),
    ("below_streak", "int", "连续低于上期等级的期数（等级稳定规则）"),
    ("pinned", "text", "人工指定 或 空"),
    ("grade_label", "text", "客户类别（按最终等级）"), ("visits_per_month", "text", "拜访频率"),
    ("service", "text", "服务策略"), ("discount", "text", "折扣"), ("credit_terms", "text", "信用政策"),
    ("next_gap", "text", "距上一等级，如 差 23.5万 → A；最高等级或无单一界限时为空"),
    ("next_gap_ratio", "float", "差距 / 界值（不适用为空）"),
    ("reason", "text", "分级依据"),
    ("prev_grade", "text", "上期等级（无上期为空）"), ("change", "text", "变动：升级、降级、不变、新增、转为暂定 …"),
    ("adjusted_down", "text", "把等级调低的调整规则，如 回款调整（回款率 < 80%）：A → B；未调低为空"),
)

# Added after grading from the stored history (views.growth).
GROWTH_COLUMNS: tuple[ColumnSpec, ...] = _specs(
    ("prev_sales", "float", "上期净销售额，元（历史中没有为空）"), ("growth", "float", "增长率（上期 ≤ 0 为空）"),
    ("yoy_sales", "float", "一年前同期净销售额，元"), ("yoy_growth", "float", "同比增长率"),
)

_KINDS = {"text": "object", "float": "float64", "int": "int64", "datetime": "datetime64", "bool": "bool"}


def mismatches(frame: pd.DataFrame, specs: tuple[ColumnSpec, ...]) -> list[str]:
    """Declared columns that are absent or of another dtype (for tests and checks)."""
    out = []
    for spec in specs:
        if spec.name not in frame:
            out.append(f"{spec.name}: 缺少")
            continue
        kind = str(frame[spec.name].dtype)
        want = _KINDS[spec.dtype]
        ok = (kind.startswith(want) or (spec.dtype == "text" and kind in ("string", "str", "category"))
              or (spec.dtype == "float" and kind.startswith("int")))  # whole numbers where none is missing
        if not ok:
            out.append(f"{spec.name}: {kind} ≠ {want}")
    return out
