"""Stage type `lapsed`: customers with no order for more than N days (or none
at all) get a configured grade (流失)."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from .base import Change, ModifyContext, ModifyingRule, ModifyingSpec, Path
from .spec import Grade


class LapsedStage(ModifyingSpec):
    """Customers with no order for more than N days get a configured grade."""

    type: Literal["lapsed"]
    name: str = "流失客户"
    no_order_days: int = Field(ge=1)
    grade: Grade

    @property
    def rule(self) -> LapsedRule:
        return LAPSED


class LapsedRule(ModifyingRule[LapsedStage]):
    def apply(self, stage: LapsedStage, grades: pd.Series, table: pd.DataFrame, context: ModifyContext) -> Change:
        recency = table["recency_days"].astype(float).to_numpy()
        with np.errstate(invalid="ignore"):
            mask = np.isnan(recency) | (recency > stage.no_order_days)
        new = grades.copy()
        notes: dict[str, str] = {}
        for i in np.flatnonzero(mask).tolist():
            code = grades.index[i]
            since = "从未下单" if np.isnan(recency[i]) else f"{recency[i]:g} 天未下单"
            notes[code] = f"{stage.name}：{since}（超过 {stage.no_order_days} 天）→ {stage.grade}"
            new.iat[i] = stage.grade
        return Change(new, notes)

    def describe(self, stage: LapsedStage) -> list[tuple[str, str]]:
        return [("流失", f"超过 {stage.no_order_days} 天未下单 → {stage.grade}")]

    def change_words(self, stage: LapsedStage) -> tuple[str, str, str]:
        return stage.grade, f"转为{stage.grade}", "恢复"

    def named_grades(self, stage: LapsedStage) -> list[tuple[Path, str]]:
        return [(("grade",), stage.grade)]

    def inputs(self, stage: LapsedStage) -> list[str]:
        return ["recency_days"]


LAPSED = LapsedRule()
