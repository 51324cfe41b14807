"""The stage types of grading.stages, one module each (spec + implementation).

To add a grading method: write one module here (see rfm.py: a spec deriving
from AssigningSpec or ModifyingSpec, and its rule with apply / describe /
levels), add the spec to `Stage` below, and regenerate config.schema.json
(`python tools/make_schema.py`). mypy refuses a spec without a complete rule,
and the engine's dispatch is exhaustive (`assert_never`).
"""

from __future__ import annotations

from typing import Annotated, get_args

from pydantic import Field

from .adjust import AdjustStage, Condition, condition_mask
from .base import (AssigningRule, AssigningSpec, Change, Gap, ModifyContext, ModifyingRule, ModifyingSpec,
                   StageOutcome, column_values, format_value, label_of, numeric_values)
from .grid import Axis, AxisRule, GridStage
from .lapsed import LapsedStage
from .pareto import ParetoBand, ParetoStage
from .provisional import ProvisionalStage
from .quantile import QuantileBand, QuantileStage
from .rfm import RfmAxis, RfmStage
from .score import Indicator, LinearScale, PointBand, ScoreBand, ScoreStage, indicator_points
from .thresholds import ThresholdBand, ThresholdStage

AssigningStage = ThresholdStage | QuantileStage | ParetoStage | ScoreStage | GridStage | RfmStage
ModifyingStage = AdjustStage | ProvisionalStage | LapsedStage
Stage = Annotated[AssigningStage | ModifyingStage, Field(discriminator="type")]


def type_names(kinds: object) -> list[str]:
    """The `type:` names of the stage specs in a union, in order (for messages)."""
    return [t.model_fields["type"].annotation.__args__[0] for t in get_args(kinds)]


ASSIGNING_TYPES = type_names(AssigningStage)
MODIFYING_TYPES = type_names(ModifyingStage)

__all__ = [
    "AdjustStage", "AssigningRule", "AssigningSpec", "AssigningStage", "Axis", "AxisRule", "Change", "Condition",
    "Gap", "GridStage", "Indicator", "LapsedStage", "LinearScale", "ModifyContext", "ModifyingRule",
    "ModifyingSpec", "ModifyingStage", "ParetoBand", "ParetoStage", "PointBand", "ProvisionalStage",
    "QuantileBand", "QuantileStage", "RfmAxis", "RfmStage", "ScoreBand", "ScoreStage", "Stage", "StageOutcome",
    "ThresholdBand", "ThresholdStage", "ASSIGNING_TYPES", "MODIFYING_TYPES", "column_values", "condition_mask", "format_value", "indicator_points",
    "label_of", "numeric_values",
]
