"""Stage 4, grade: apply the configured stages in order to the customer table.

Assigning stages (thresholds, quantile, pareto, score, grid) set the grade;
modifying stages (adjust, provisional, lapsed) move it; pins (config and the
overrides workbook) win last until they expire. 分级依据 names every stage
that decided or moved the grade with its numbers. A customer never ends
without a grade: where an assigning stage cannot decide (a value is empty)
the fallback grade applies and the customer is listed as a data problem.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .config_model import ASSIGNING, AdjustStage, Config, LapsedStage, ProvisionalStage
from .modifiers import PinRow, apply_adjust, apply_lapsed, apply_pins, apply_provisional
from .problems import Problem
from .rules import ASSIGNERS


def grade_customers(config: Config, table: pd.DataFrame, problems: list[Problem],
                    pins: Sequence[PinRow] = ()) -> pd.DataFrame:
    """Return `table` plus score, grade, pinned flag, policy columns and reason."""
    out = table.copy()
    index = out.index
    grade = pd.Series(np.full(len(out), config.fallback, dtype=object), index=index, dtype=object)
    reason = [""] * len(out)
    score = pd.Series(np.nan, index=index)
    position = {code: i for i, code in enumerate(index)}
    moves = [""] * len(out)  # adjust stages that moved the grade down: "回款调整（回款率 < 80%）：A → B"

    def append(notes: dict[str, str]) -> None:
        for code, note in notes.items():
            i = position[code]
            reason[i] = f"{reason[i]}；{note}" if reason[i] else note

    for k, stage in enumerate(config.grading.stages):
        if isinstance(stage, ASSIGNING):
            outcome = ASSIGNERS[type(stage)](stage, out)
            decided = outcome.grade.notna().to_numpy()
            grade = outcome.grade.where(decided, config.fallback).astype(object)
            reason = outcome.reason.tolist()
            if outcome.score is not None:
                score = outcome.score
            for i in np.flatnonzero(~decided).tolist():
                reason[i] += f"，按兜底等级 → {config.fallback}"
            for code, labels in outcome.missing[outcome.missing != ""].items():
                ok = decided[position[code]]
                action = "将该指标按空值计分" if ok else f"按兜底等级 {config.fallback} 处理"
                problems.append(Problem("", stage.name, None, labels, str(code), f"缺少指标 {labels}，{action}",
                                        "提示"))
        elif isinstance(stage, AdjustStage):
            change = apply_adjust(stage, grade, out, config.ladder(k))
            ladder = {g: r for r, g in enumerate(config.ladder(k))}
            for i in np.flatnonzero((change.grade != grade).to_numpy()).tolist():
                before, after = str(grade.iat[i]), str(change.grade.iat[i])
                if ladder.get(after, -1) > ladder.get(before, -1):
                    note = f"{stage.name}（{stage.when.text}）：{before} → {after}"
                    moves[i] = f"{moves[i]}；{note}" if moves[i] else note
            grade = change.grade
            append(change.notes)
        elif isinstance(stage, ProvisionalStage):
            change = apply_provisional(stage, grade, out)
            grade = change.grade
            append(change.notes)
        elif isinstance(stage, LapsedStage):
            change = apply_lapsed(stage, grade, out)
            grade = change.grade
            append(change.notes)
    config_pins = [PinRow(p, config.source_file, "grading.pins", None) for p in config.grading.pins]
    change, pinned = apply_pins([*config_pins, *pins], grade, config.period.as_of, config, problems)
    grade = change.grade
    append(change.notes)

    out["score"] = score
    out["grade"] = grade.astype(str)
    out["pinned"] = ["人工指定" if code in pinned else "" for code in index]
    out["adjusted_down"] = moves
    until = {p.pin.customer: p.pin.until for p in [*config_pins, *pins]
             if p.pin.customer in pinned and (p.pin.until is None or p.pin.until >= config.period.as_of)}
    out["pin_until"] = [until.get(code) for code in index]
    policies = {g: config.policy(g) for g in set(out["grade"])}
    out["grade_label"] = out["grade"].map(lambda g: policies[g].label)
    out["visits_per_month"] = out["grade"].map(lambda g: policies[g].visits_per_month)
    out["service"] = out["grade"].map(lambda g: policies[g].service)
    out["discount"] = out["grade"].map(lambda g: policies[g].discount)
    out["credit_terms"] = out["grade"].map(lambda g: policies[g].credit_terms)
    out["reason"] = reason
    return order_customers(out, config)


def grade_rank(config: Config, grades: Sequence[str]) -> dict[str, int]:
    """Order of grades for sorting and summaries: as listed under grades, then the rest by name."""
    order = config.ordered_grades
    extra = sorted(set(grades) - set(order))
    return {g: i for i, g in enumerate([*order, *extra])}


def order_customers(graded: pd.DataFrame, config: Config) -> pd.DataFrame:
    """Stated order: best grade first, then net sales descending, then customer code."""
    rank = grade_rank(config, graded["grade"].tolist())
    frame = graded.assign(_rank=graded["grade"].map(rank).to_numpy(), _code=graded.index.to_numpy())
    frame = frame.sort_values(["_rank", "net_sales", "_code"], ascending=[True, False, True], kind="stable")
    return frame.drop(columns=["_rank", "_code"])
