"""Grade the customer table: one step decides the final grade, everything
else is derived from it.

    stages (in order) → pins → stability (history.downgrade_after) = final grade
    → policies, 距上一等级, sort order (summaries and changes follow from these)

Assigning stages set the grade; modifying stages move it; pins win over
rules until they expire; the stability rule keeps last period's grade for a
downgrade until it has lasted N periods. A customer never ends without a
grade: where an assigning stage cannot decide, the fallback grade applies and
the customer is listed as a data problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, assert_never

import numpy as np
import pandas as pd

from ..problems import Problem
from .base import AssigningSpec, Gap, ModifyContext, ModifyingSpec, distinct_texts
from .pins import PinRow, apply_pins

if TYPE_CHECKING:
    from ..config_model import Config
    from ..history import PreviousPeriod


def grade_customers(config: Config, table: pd.DataFrame, problems: list[Problem],
                    pins: Sequence[PinRow] = (), previous: PreviousPeriod | None = None) -> pd.DataFrame:
    """Return `table` plus score, rule_grade, grade, pinned, below_streak, policy columns, next_gap and
    reason, sorted best grade first."""
    out = table.copy()
    index = out.index
    grade = pd.Series(np.full(len(out), config.fallback, dtype=object), index=index, dtype=object)
    reason = [""] * len(out)
    score = pd.Series(np.nan, index=index)
    position = {code: i for i, code in enumerate(index)}
    gap: Gap | None = None
    gap_grade = grade
    moves = [""] * len(out)  # adjust stages that moved the grade down: "回款调整（回款率 < 80%）：A → B"

    def append(notes: dict[str, str]) -> None:
        for code, note in notes.items():
            i = position[code]
            reason[i] = f"{reason[i]}；{note}" if reason[i] else note

    for k, stage in enumerate(config.grading.stages):
        if isinstance(stage, AssigningSpec):
            outcome = stage.assign(out)
            decided = outcome.grade.notna().to_numpy()
            grade = outcome.grade.where(decided, config.fallback).astype(object)
            reason = outcome.reason.tolist()
            if outcome.score is not None:
                score = outcome.score
            problems.extend(outcome.notes)
            for i in np.flatnonzero(~decided).tolist():
                reason[i] += f"，按兜底等级 → {config.fallback}"
            for code, labels in outcome.missing[outcome.missing != ""].items():
                ok = decided[position[code]]
                action = "将该指标按空值计分" if ok else f"按兜底等级 {config.fallback} 处理"
                problems.append(Problem("", stage.name, None, labels, str(code), f"缺少指标 {labels}，{action}",
                                        "提示"))
            gap = stage.gap(out, outcome)
            gap_grade = outcome.grade
        elif isinstance(stage, ModifyingSpec):
            change = stage.modify(grade, out, ModifyContext(config.ladder(k), k))
            when = getattr(stage, "when", None)
            if when is not None:  # an adjust stage: remember who it moved down, and by which rule
                ladder = {g: r for r, g in enumerate(config.ladder(k))}
                for i in np.flatnonzero((change.grade != grade).to_numpy()).tolist():
                    before, after = str(grade.iat[i]), str(change.grade.iat[i])
                    if ladder.get(after, -1) > ladder.get(before, -1):
                        note = f"{stage.name}（{when.text}）：{before} → {after}"
                        moves[i] = f"{moves[i]}；{note}" if moves[i] else note
            grade = change.grade
            problems.extend(change.problems)
            append(change.notes)
        else:
            assert_never(stage)
    config_pins = [PinRow(p, config.source_file, "grading.pins", None) for p in config.grading.pins]
    change, pinned = apply_pins([*config_pins, *pins], grade, config.period.as_of, config, problems)
    out["pin_rule_grade"] = grade.astype(str)  # the rules' grade a pin overrides (pin audit in the history)
    grade = change.grade
    append(change.notes)
    rule_grade = grade.astype(str)
    pinned_flags = np.array([code in pinned for code in index], dtype=bool)
    final, streaks = hold_downgrades(config, rule_grade, pinned_flags, previous, reason)

    out["score"] = score
    out["rule_grade"] = rule_grade
    out["grade"] = final
    out["below_streak"] = np.asarray(streaks, dtype=np.int64)
    out["pinned"] = np.where(pinned_flags, "人工指定", "")
    out["adjusted_down"] = moves
    return order_customers(derive(config, out, reason, gap, gap_grade), config)


def derive(config: Config, out: pd.DataFrame, reason: list[str], gap: Gap | None,
           gap_grade: pd.Series) -> pd.DataFrame:
    """Everything that follows from the final grade: policy columns, 距上一等级, 分级依据."""
    policies = {g: config.policy(g) for g in set(out["grade"].tolist())}
    for column, attr in (("grade_label", "label"), ("visits_per_month", "visits_per_month"), ("service", "service"),
                         ("discount", "discount"), ("credit_terms", "credit_terms")):
        # mapped by a dict: looked up once per distinct grade (a function is called once per row)
        out[column] = out["grade"].map({g: getattr(p, attr) for g, p in policies.items()})
    texts: list[str] = [""] * len(out)
    ratios = np.full(len(out), np.nan)
    if gap is not None:
        same = (out["grade"].to_numpy(dtype=object) == gap_grade.to_numpy(dtype=object))
        g, b = np.asarray(gap.gap, dtype=float), np.asarray(gap.boundary, dtype=float)
        targets = np.empty(len(out), dtype=object)
        targets[:] = list(gap.target)
        with np.errstate(invalid="ignore"):
            hit = np.flatnonzero(same & targets.astype(bool) & (g > 0))
        shown = distinct_texts(g[hit], gap.shown)  # each distinct gap formatted once
        for i, s, target in zip(hit.tolist(), shown.tolist(), targets[hit].tolist()):
            texts[i] = f"差 {s} → {target}"
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):  # a gap far beyond a tiny boundary: inf, never "near"
            ratios[hit] = np.where(b[hit] != 0, g[hit] / b[hit], np.nan)
    # long texts stay Python objects: the writer and the history read them as such (an Arrow text column
    # would be made here and taken apart again there)
    out["next_gap"] = pd.Series(texts, index=out.index, dtype=object)
    out["next_gap_ratio"] = ratios
    out["reason"] = pd.Series(reason, index=out.index, dtype=object)
    out["prev_grade"] = ""  # filled by changes.compare when a previous period exists
    out["change"] = ""
    return out


def grade_rank(config: Config, grades: Sequence[str]) -> dict[str, int]:
    """Order of grades for sorting and summaries: as listed under grades, then the rest by name."""
    order = config.ordered_grades
    extra = sorted(set(grades) - set(order))
    return {g: i for i, g in enumerate([*order, *extra])}


def hold_downgrades(config: Config, grades: pd.Series, pinned: np.ndarray, prev: PreviousPeriod | None,
                    reasons: list[str]) -> tuple[list[str], list[int]]:
    """Stability: keep last period's grade for a downgrade until it has lasted `downgrade_after`
    consecutive periods (upgrades at once, pins never held). Appends the explanation to `reasons`."""
    final = grades.astype(str).tolist()
    streaks = [0] * len(final)
    n = config.history.downgrade_after
    if prev is None or n is None:
        return final, streaks
    rank = grade_rank(config, [*final, *prev.table["grade"].astype(str)])
    last_grade: dict[str, str] = dict(zip(prev.table.index, prev.table["grade"].astype(str)))
    last_streak: dict[str, int] = dict(zip(prev.table.index, prev.table["below_streak"].fillna(0).astype(int)))
    for i, code in enumerate(grades.index):
        if code not in last_grade or pinned[i]:
            continue
        last = last_grade[code]
        if rank.get(final[i], 0) <= rank.get(last, 0):
            continue
        streak = last_streak[code] + 1
        if streak >= n:
            reasons[i] += f"；等级稳定：连续 {streak} 期低于 {last}，降级生效 → {final[i]}"
        else:
            reasons[i] += f"；等级稳定：规则结果 {final[i]} 低于上期 {last}（连续 {streak}/{n} 期），暂保持 {last}"
            final[i] = last
            streaks[i] = streak
    return final, streaks


def order_customers(graded: pd.DataFrame, config: Config) -> pd.DataFrame:
    """Stated order: best grade first, then net sales descending, then customer code."""
    rank = grade_rank(config, graded["grade"].tolist())
    keys = pd.DataFrame({"_rank": graded["grade"].map(rank).to_numpy(), "net_sales": graded["net_sales"].to_numpy(),
                         "_code": graded.index.to_numpy()})  # the sort keys only, positions as index
    order = keys.sort_values(["_rank", "net_sales", "_code"], ascending=[True, False, True], kind="stable")
    return graded.iloc[order.index.to_numpy()]
