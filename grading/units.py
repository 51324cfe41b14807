"""Money amounts as users write them in config ("500万", "1.2亿", "3000元")
and as they are shown back ("620.5万")."""

from __future__ import annotations

import math
import re

_UNITS = {"": 1.0, "元": 1.0, "万": 1e4, "万元": 1e4, "亿": 1e8, "亿元": 1e8, "%": 0.01}
_AMOUNT = re.compile(r"^\s*([-+]?\d+(?:\.\d+)?)\s*(元|万元|万|亿元|亿|%)?\s*$")


def parse_amount(value: object) -> float:
    """Turn 500, "500万", "1.5亿", "80%" into a float; raise ValueError (Chinese) otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"应为数字或带单位的金额（如 500万），发现 {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        m = _AMOUNT.match(value.replace(",", "").replace("，", ""))
        if m:
            return float(m.group(1)) * _UNITS[m.group(2) or ""]
    raise ValueError(f"应为数字或带单位的金额（如 500万、1.2亿、3000元、80%），发现 {value!r}")


def format_amount(value: float) -> str:
    """620.5万 for large amounts, 3,000 for small ones: the style of 分级依据."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "空"
    if abs(value) >= 1e8:
        return f"{_trim(value / 1e8)}亿"
    if abs(value) >= 1e4:
        return f"{_trim(value / 1e4)}万"
    return _trim(value)


def format_ratio(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "空"
    return f"{_trim(value * 100)}%"


def _trim(x: float) -> str:
    text = f"{x:,.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
