"""The amount of a sales line when the export has no amount column: quantity × unit price
(optionally × (1 − discount rate), or − discount amount).

The formulas are data (FORMULAS); `plan_amount` decides per sheet whether the amount
comes from a column or a formula, `derive_amount` computes it (rounded to cents).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .problems import Problem

FROM_COLUMN = "金额列"
FORMULAS: dict[str, tuple[str, ...]] = {
    "数量×单价": ("quantity", "unit_price"),
    "数量×单价×(1-折扣率)": ("quantity", "unit_price", "discount_rate"),
    "数量×单价-折扣额": ("quantity", "unit_price", "discount_amount"),
}
AUTO_FORMULA = "数量×单价"
UNDERIVABLE = "无法计算金额：数量或单价为空或不是数字"


@dataclass(frozen=True)
class AmountPlan:
    """Where the amount of one sheet comes from: `formula` None means the mapped column."""

    target: str                  # amount or amount_excl_tax (the config's amount basis)
    formula: str | None
    declared: bool               # the formula was written in config (amount_from)


def plan_amount(target: str, amount_from: str | None, columns: Mapping[str, int]) -> AmountPlan | None:
    """The amount plan for the mapped columns, or None when no plan works (the column is missing
    and the formula's columns are too)."""
    if amount_from == FROM_COLUMN:
        return AmountPlan(target, None, False) if target in columns else None
    if amount_from is not None:
        return AmountPlan(target, amount_from, True)  # its missing columns are reported by the caller
    if target in columns:
        return AmountPlan(target, None, False)
    if all(k in columns for k in FORMULAS[AUTO_FORMULA]):
        return AmountPlan(target, AUTO_FORMULA, False)
    return None


def formula_missing(plan: AmountPlan | None, columns: Mapping[str, int]) -> list[str]:
    """Fields a declared formula needs that the header lacks."""
    if plan is None or plan.formula is None:
        return []
    return [k for k in FORMULAS[plan.formula] if k not in columns]


def derivation_hint(columns: Mapping[str, int], headers: Sequence[str], labels: Mapping[str, str]) -> str:
    """What would let the amount be derived from the headers found (for the missing-column message)."""
    have = [k for k in ("quantity", "unit_price") if k in columns]
    lack = [k for k in ("quantity", "unit_price") if k not in columns]
    found = "、".join(f"{labels[k]}「{headers[columns[k]]}」" for k in have)
    need = "、".join(f"{labels[k]}列（columns.{k}）" for k in lack)
    if have:
        return (f"也可以按 数量 × 单价 计算金额：已找到{found}，还缺{need}；"
                f"如导出中有这一列，请在 config.yaml 的 sources.sales.columns 中写上列名。")
    return ("也可以按 数量 × 单价 计算金额：需要数量列（如 数量、实发数量、Quantity、Qty）和单价列"
            "（如 单价、含税单价、Unit Price、Price），表头中都没有找到。")


_PERCENT = re.compile(r"^\s*([-+]?\d+(?:\.\d+)?)\s*%\s*$")


def _rate(text: str) -> tuple[float, bool]:
    """One distinct cell → (fraction or plain number, written with %)."""
    t = unicodedata.normalize("NFKC", text).strip()
    m = _PERCENT.match(t)
    if m:
        return float(m.group(1)) / 100, True
    try:
        return float(t.replace(",", "")), False
    except ValueError:
        return float("nan"), False


def _rates(values: pd.Series) -> tuple[np.ndarray, bool]:
    """Discount rates as fractions; "10%" → 0.1; a column with any plain value above 1 is in percent."""
    codes, uniques = pd.factorize(values.astype(object).to_numpy(), use_na_sentinel=True)
    parsed = [_rate(str(u)) for u in uniques] + [(float("nan"), False)]
    table = np.array([p[0] for p in parsed], dtype=float)
    marked = np.array([p[1] for p in parsed], dtype=bool)
    out, percent = table[codes], marked[codes]
    plain = ~percent & ~np.isnan(out)
    scaled = bool(plain.any() and (out[plain] > 1).any())
    if scaled:
        out[plain] = out[plain] / 100
    return out, scaled


def derive_amount(frame: pd.DataFrame, plan: AmountPlan, headers: Mapping[str, str],
                  problems: list[Problem], file: str, sheet: str) -> None:
    """Compute plan.target in place (cents), mark lines that cannot be computed, and say once how."""
    assert plan.formula is not None
    keep = frame["_keep"].to_numpy(dtype=bool)
    qty = frame["quantity"].to_numpy(dtype=float)
    price = frame["unit_price"].to_numpy(dtype=float)
    amount = qty * price
    parts = f"「{headers['quantity']}」×「{headers['unit_price']}」"
    extra = ""
    if "discount_rate" in FORMULAS[plan.formula]:
        rate, scaled = _rates(frame["discount_rate"])
        amount = amount * (1 - np.where(np.isnan(rate), 0.0, rate))
        parts += f"×(1-「{headers['discount_rate']}」)"
        extra = "；折扣率按百分数读取（10 = 10%）" if scaled else ""
    if "discount_amount" in FORMULAS[plan.formula]:
        discount = frame["discount_amount"].to_numpy(dtype=float)
        amount = amount - np.where(np.isnan(discount), 0.0, discount)
        parts += f"-「{headers['discount_amount']}」"
    amount = np.round(amount, 2)
    underivable = keep & np.isnan(amount)
    shown = np.empty(len(frame), dtype=object)
    for i in np.flatnonzero(underivable).tolist():
        shown[i] = " × ".join("空" if np.isnan(x) else f"{x:g}" for x in (qty[i], price[i]))
    target = plan.target
    replaced = f"（未使用金额列「{headers[target]}」）" if target in headers else ""
    why = f"config.yaml 中 amount_from: {plan.formula}" if plan.declared else "没有金额列"
    if target == "amount_excl_tax":
        extra += f"；金额口径为不含税，请确认「{headers['unit_price']}」是不含税单价"
    problems.append(Problem(file, sheet, None, headers.get(target, ""), "",
                            f"{why}，金额按 {parts} 计算（保留两位小数）{replaced}，"
                            f"共 {int((keep & ~underivable).sum())} 行{extra}", "提示"))
    frame[target] = amount
    for helper in (f"_{target}_bad", f"_{target}_empty"):
        if helper in frame:
            frame[helper] = False
    frame[f"_{target}_underivable"] = underivable
    frame[f"_{target}_raw"] = shown


def unit_price_mapped_as_amount(amount_header: str, unit_price_names: set[str]) -> bool:
    """The column mapped as the amount is a unit-price column (summing it would grade on prices)."""
    return amount_header in unit_price_names
