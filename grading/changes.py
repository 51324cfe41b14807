"""Compare this period's grades with the last stored period: 上期等级 and 变动
per customer, the list of changes (incl. customers that left), the migration
matrix. (The stability rule is part of deciding the final grade: grading/rules/engine.py.)

Only ranked grades (those an assigning stage gives, in config order) move up
or down; changes into or out of grades outside that ladder (暂定, 流失, the
fallback of a modifying stage) get their own words: 转为暂定, 暂定转正, 转为流失,
恢复, declared by the stage types themselves (change_words)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .config_model import AssigningSpec, Config
from .rules.base import ModifyingSpec
from .grade import grade_rank
from .history import PreviousPeriod

UP, DOWN, SAME, NEW, GONE = "升级", "降级", "不变", "新增", "流失"


def unranked_grades(config: Config) -> dict[str, tuple[str, str]]:
    """Grades set by modifying stages outside the ranked ladder → (word into it, word out of it)."""
    ladder = {g for s in config.grading.stages if isinstance(s, AssigningSpec) for g in s.levels}
    out: dict[str, tuple[str, str]] = {}
    for stage in config.grading.stages:
        words = stage.change_words() if isinstance(stage, ModifyingSpec) else None
        if words is not None and words[0] not in ladder:
            out.setdefault(words[0], (words[1], words[2]))
    return out


def change_word(now: str, before: str, rank: dict[str, int], unranked: dict[str, tuple[str, str]]) -> str:
    """升级 / 降级 / 不变 / 新增 between ranked grades; own words into or out of 暂定, 流失 and the like."""
    if not before:
        return NEW
    if now == before:
        return SAME
    if now in unranked:
        return unranked[now][0]
    if before in unranked:
        return unranked[before][1]
    return UP if rank[now] < rank[before] else DOWN


@dataclass(frozen=True)
class Comparison:
    """Changes against the previous period (empty frames when there is none)."""

    previous: str | None
    changes: pd.DataFrame  # every customer whose grade changed, new or gone
    matrix: pd.DataFrame   # rows: last period's grade (+ 新增); columns: this period's grade (+ 流失)
    chosen: str = ""       # which stored period was used and why


def compare(config: Config, graded: pd.DataFrame, prev: PreviousPeriod | None) -> tuple[pd.DataFrame, Comparison]:
    """Add prev_grade and change columns; build the change list and the migration matrix."""
    out = graded.copy()
    if prev is None:
        out["prev_grade"] = ""
        out["change"] = ""
        return out, Comparison(None, pd.DataFrame(), pd.DataFrame())
    last = prev.table
    grades = out["grade"].to_numpy(dtype=object)  # not iterated cell by cell: an Arrow text column's cells are slow
    before = pd.unique(last["grade"].to_numpy(dtype=object))
    rank = grade_rank(config, [*pd.unique(grades), *before])
    prev_grade = last["grade"].reindex(out.index)
    out["prev_grade"] = prev_grade.fillna("").astype(str)

    unranked = unranked_grades(config)
    # one word per distinct (grade, previous grade) pair, not per customer
    pairs_of = list(zip(grades.tolist(), out["prev_grade"].to_numpy(dtype=object).tolist()))
    pair_codes, pairs = pd.factorize(pd.Series(pairs_of, dtype=object), use_na_sentinel=False)
    words = [change_word(g, p, rank, unranked) for g, p in pairs.tolist()]
    out["change"] = [words[i] for i in pair_codes.tolist()]

    moved = out[out["change"] != SAME]
    changes = pd.DataFrame({
        "customer_code": moved.index.astype(str),
        "customer_name": moved["customer_name"].to_numpy(),
        "prev_grade": moved["prev_grade"].to_numpy(),
        "grade": moved["grade"].to_numpy(),
        "change": moved["change"].to_numpy(),
        "prev_sales": last["net_sales"].reindex(moved.index).to_numpy(dtype=float),
        "sales": moved["net_sales"].to_numpy(dtype=float),
        "prev_score": last["score"].reindex(moved.index).to_numpy(dtype=float),
        "score": moved["score"].to_numpy(dtype=float),
        "reason": moved["reason"].to_numpy(),
    })
    gone_codes = last.index.difference(out.index)
    gone = pd.DataFrame({
        "customer_code": gone_codes.astype(str),
        "customer_name": last["customer_name"].reindex(gone_codes).to_numpy(),
        "prev_grade": last["grade"].reindex(gone_codes).to_numpy(),
        "grade": "", "change": GONE,
        "prev_sales": last["net_sales"].reindex(gone_codes).to_numpy(dtype=float),
        "sales": np.nan,
        "prev_score": last["score"].reindex(gone_codes).to_numpy(dtype=float),
        "score": np.nan, "reason": f"本期（{config.period.label}）没有该客户的数据",
    })
    changes = pd.concat([changes, gone], ignore_index=True) if len(gone) else changes
    changes["sales_change"] = changes["sales"].fillna(0) - changes["prev_sales"].fillna(0)
    order = {DOWN: 0, UP: 1, NEW: 2, GONE: 3}
    changes = changes.assign(_o=changes["change"].map(order).fillna(1.5)).sort_values(
        ["_o", "customer_code"], kind="stable").drop(columns="_o").reset_index(drop=True)

    rows = sorted(set(before), key=lambda g: rank[g]) + [NEW]
    cols = sorted(set(pd.unique(grades)), key=lambda g: rank[g]) + [GONE]
    counts: Counter[tuple[str, str]] = Counter()
    for (now, before), n in zip(pairs.tolist(), np.bincount(pair_codes, minlength=len(pairs)).tolist()):
        counts[(before or NEW, str(now))] += n
    counts.update((str(g), GONE) for g in last["grade"].reindex(gone_codes))
    matrix = pd.DataFrame([[counts[(r, c)] for c in cols] for r in rows], index=rows, columns=cols, dtype=np.int64)
    return out, Comparison(prev.period, changes, matrix, prev.description)
