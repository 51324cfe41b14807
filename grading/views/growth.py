"""Growth for every customer from the stored history: 上期净销售额, 增长率 and,
where the history has the period a year earlier, 同比."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..history import PreviousPeriod


def growth_rate(current: pd.Series, before: pd.Series) -> pd.Series:
    """(current − before) / before where before > 0; NaN otherwise (no base to compare with)."""
    base = before.where(before > 0)
    return (current - base) / base


def add_growth(graded: pd.DataFrame, previous: PreviousPeriod | None,
               year_ago: PreviousPeriod | None) -> pd.DataFrame:
    """Columns prev_sales, growth, yoy_sales, yoy_growth (NaN where the history has no number)."""
    out = graded.copy()
    for prefix, period in (("prev", previous), ("yoy", year_ago)):
        if period is None:
            before = pd.Series(np.nan, index=out.index, dtype=float)
        else:
            stored = period.table["net_sales"].astype(float)
            stored.index = stored.index.astype(str)
            before = stored.reindex(out.index.astype(str)).set_axis(out.index)
        out[f"{prefix}_sales"] = before
        out["growth" if prefix == "prev" else "yoy_growth"] = growth_rate(out["net_sales"].astype(float), before)
    return out
