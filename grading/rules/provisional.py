"""Stage type `provisional`: customers with a tenure below N months get a
provisional grade (暂定) until they qualify."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from .base import Change, ModifyContext, ModifyingRule, ModifyingSpec, Path
from .spec import Grade


class ProvisionalStage(ModifyingSpec):
    """New customers (tenure below N months) get a provisional grade until they qualify."""

    type: Literal["provisional"]
    name: str = "新客户暂定"
    tenure_below_months: int = Field(ge=1)
    grade: Grade

    @property
    def rule(self) -> ProvisionalRule:
        return PROVISIONAL


class ProvisionalRule(ModifyingRule[ProvisionalStage]):
    def apply(self, stage: ProvisionalStage, grades: pd.Series, table: pd.DataFrame,
              context: ModifyContext) -> Change:
        tenure = table["tenure_months"].astype(float).to_numpy()
        with np.errstate(invalid="ignore"):
            mask = tenure < stage.tenure_below_months
        new = grades.copy()
        notes: dict[str, str] = {}
        for i in np.flatnonzero(mask).tolist():
            code = grades.index[i]
            notes[code] = (f"{stage.name}：合作 {tenure[i]:g} 个月 < {stage.tenure_below_months} 个月"
                           f" → {stage.grade}（按规则为 {grades.iat[i]}）")
            new.iat[i] = stage.grade
        return Change(new, notes)

    def describe(self, stage: ProvisionalStage) -> list[tuple[str, str]]:
        return [("暂定", f"合作不满 {stage.tenure_below_months} 个月 → {stage.grade}")]

    def change_words(self, stage: ProvisionalStage) -> tuple[str, str, str]:
        return stage.grade, f"转为{stage.grade}", f"{stage.grade}转正"

    def named_grades(self, stage: ProvisionalStage) -> list[tuple[Path, str]]:
        return [(("grade",), stage.grade)]

    def inputs(self, stage: ProvisionalStage) -> list[str]:
        return ["tenure_months"]


PROVISIONAL = ProvisionalRule()
