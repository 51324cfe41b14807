"""Stage 4, grade: apply the configured stages in order to the metrics table.

Each grading stage replaces the current grade; the explanation (分级依据)
names the deciding stage with its numbers. A customer never ends without a
grade: where a stage cannot decide (a metric is empty) the fallback grade
applies and the customer is listed as a data problem.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .config import Config
from .problems import Problem
from .rules import APPLIERS


def grade_customers(config: Config, table: pd.DataFrame, problems: list[Problem]) -> pd.DataFrame:
    """Return `table` plus score, grade, label, policy columns and reason."""
    out = table.copy()
    grade = pd.Series(np.full(len(out), None, dtype=object), index=out.index)
    reason = pd.Series([""] * len(out), index=out.index, dtype=object)
    score = pd.Series(np.nan, index=out.index)
    for stage in config.grading.stages:
        outcome = APPLIERS[type(stage)](stage, out)
        grade = outcome.grade
        reason = outcome.reason
        if outcome.score is not None:
            score = outcome.score
        for code, labels in outcome.missing[outcome.missing != ""].items():
            decided = bool(outcome.grade.notna().at[code])
            action = "将该指标按空值计分" if decided else f"按兜底等级 {config.fallback} 处理"
            problems.append(Problem("", stage.name, None, labels, str(code),
                                    f"缺少指标 {labels}，{action}", "提示"))
    undecided = grade.isna()
    if undecided.any():
        grade[undecided] = config.fallback
        reason[undecided] = reason[undecided] + f"，按兜底等级 → {config.fallback}"
    out["score"] = score
    out["grade"] = grade.astype(str)
    policies = config.grades
    out["grade_label"] = out["grade"].map(lambda g: policies[g].label)
    out["visits_per_month"] = out["grade"].map(lambda g: policies[g].visits_per_month)
    out["service"] = out["grade"].map(lambda g: policies[g].service)
    out["discount"] = out["grade"].map(lambda g: policies[g].discount)
    out["credit_terms"] = out["grade"].map(lambda g: policies[g].credit_terms)
    out["reason"] = reason
    return order_customers(out, config)


def order_customers(graded: pd.DataFrame, config: Config) -> pd.DataFrame:
    """Stated order: best grade first, then net sales descending, then customer code."""
    rank = {g: i for i, g in enumerate(config.grades)}
    key = graded["grade"].map(rank).fillna(len(rank))
    frame = graded.assign(_rank=key.to_numpy(), _code=graded.index.to_numpy())
    frame = frame.sort_values(["_rank", "net_sales", "_code"], ascending=[True, False, True], kind="stable")
    return frame.drop(columns=["_rank", "_code"])
