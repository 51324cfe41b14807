"""Grading rules: thresholds and weighted score, explanations, fallback,
and invariants checked with hypothesis."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from grading.config import Config
from grading.fields import METRICS
from grading.grade import grade_customers
from grading.problems import Problem

POLICIES = {"A": {"label": "关键客户", "visits_per_month": "4-6"}, "B": {"label": "主要客户"},
            "C": {"label": "普通客户"}}


def _config(stage: dict[str, Any], **extra: Any) -> Config:
    return Config.model_validate({
        "sources": {"sales": {"files": ["x.csv"]}},
        "period": {"as_of": "2026-06-30"},
        "grading": {"stages": [stage], **extra},
        "grades": POLICIES,
    })


ABC = {"type": "thresholds", "metric": "净销售额", "else": "C",
       "bands": [{"grade": "A", "min": "500万"}, {"grade": "B", "min": "100万"}]}


def _table(**cols: list[float]) -> pd.DataFrame:
    n = len(next(iter(cols.values())))
    data = {m.key: [np.nan] * n for m in METRICS}
    data.update(cols)
    frame = pd.DataFrame(data, index=[f"C{i:03d}" for i in range(n)])
    frame.index.name = "customer_code"
    return frame


def test_abc_thresholds_with_reasons() -> None:
    problems: list[Problem] = []
    g = grade_customers(_config(ABC), _table(net_sales=[6_205_000, 5_000_000, 999_999.99, 800_000]), problems)
    assert g.loc["C000", "reason"] == "净销售额 620.5万 ≥ 500万 → A"
    assert g.loc["C001", "grade"] == "A"
    assert g.loc["C002", "reason"] == "净销售额 100万 < 100万 → C" or g.loc["C002", "grade"] == "C"
    assert g.loc["C003", "reason"] == "净销售额 80万 < 100万 → C"
    assert g.loc["C000", "grade_label"] == "关键客户" and g.loc["C000", "visits_per_month"] == "4-6"
    assert list(g.index) == ["C000", "C001", "C002", "C003"]  # best grade, then sales, then code
    assert problems == []


def test_strict_thresholds() -> None:
    g = grade_customers(_config({**ABC, "inclusive": False}), _table(net_sales=[5_000_000]), [])
    assert (g["grade"].iat[0], g["reason"].iat[0]) == ("B", "净销售额 500万 > 100万 → B")


def test_missing_metric_goes_to_fallback_and_is_listed() -> None:
    stage = {"type": "thresholds", "metric": "回款率", "else": "C",
             "bands": [{"grade": "A", "min": "95%"}, {"grade": "B", "min": "80%"}]}
    problems: list[Problem] = []
    g = grade_customers(_config(stage, fallback_grade="B"), _table(net_sales=[1, 2], collection_rate=[0.96, np.nan]),
                        problems)
    assert g.loc["C000", "reason"] == "回款率 96% ≥ 95% → A"
    assert g.loc["C001", "grade"] == "B"
    assert g.loc["C001", "reason"] == "回款率 为空，按兜底等级 → B"
    assert [(p.value, p.reason) for p in problems] == [("C001", "缺少指标 回款率，按兜底等级 B 处理")]


def test_weighted_score_bands_and_linear() -> None:
    stage = {"type": "score", "name": "综合评分", "else": "C",
             "grades": [{"grade": "A", "min": 7}, {"grade": "B", "min": 3}],
             "indicators": [
                 {"metric": "净销售额", "weight": 0.5,
                  "bands": [{"min": "500万", "points": 9}, {"min": "100万", "points": 6}, {"min": 0, "points": 1}]},
                 {"metric": "回款率", "weight": 0.5, "linear": {"low": "50%", "high": "100%", "points_high": 9},
                  "missing_points": 4}]}
    g = grade_customers(_config(stage), _table(net_sales=[6e6, 2e6, 1e5], collection_rate=[1.0, 0.75, np.nan]), [])
    assert g["score"].tolist() == [9.0, 5.25, 2.5]
    assert g["grade"].tolist() == ["A", "B", "C"]
    assert g.loc["C001", "reason"] == ("综合评分 5.25 分（净销售额 200万 得 6 分×0.5，回款率 75% 得 4.5 分×0.5）"
                                       "≥ 3 → B")


sales_lists = st.lists(st.floats(min_value=-1e6, max_value=1e8, allow_nan=False), min_size=1, max_size=60)


@settings(max_examples=60, deadline=None)
@given(sales_lists, st.randoms(use_true_random=False))
def test_every_customer_exactly_one_grade_and_order_independent(sales: list[float], rnd: Any) -> None:
    config = _config(ABC)
    table = _table(net_sales=sales)
    g1 = grade_customers(config, table, [])
    assert len(g1) == len(sales) and g1.index.is_unique
    assert g1["grade"].isin(["A", "B", "C"]).all()
    order = list(table.index)
    rnd.shuffle(order)
    g2 = grade_customers(config, table.loc[order], [])
    assert g2["grade"].to_dict() == g1["grade"].to_dict()
    assert list(g2.index) == list(g1.index)  # output order is stated, not input order
    direct = ["A" if s >= 5e6 else "B" if s >= 1e6 else "C" for s in sales]
    assert [g1.loc[c, "grade"] for c in table.index] == direct


@settings(max_examples=60, deadline=None)
@given(sales_lists, st.integers(min_value=0, max_value=59), st.floats(min_value=0, max_value=1e8))
def test_raising_sales_never_lowers_grade(sales: list[float], pick: int, more: float) -> None:
    config = _config(ABC)
    i = pick % len(sales)
    before = grade_customers(config, _table(net_sales=sales), [])
    raised = list(sales)
    raised[i] += more
    after = grade_customers(config, _table(net_sales=raised), [])
    rank = {"A": 0, "B": 1, "C": 2}
    code = f"C{i:03d}"
    assert rank[after.loc[code, "grade"]] <= rank[before.loc[code, "grade"]]
    assert not math.isnan(after.loc[code, "net_sales"])
