"""Issue 11: exact boundaries, one owner of the final grade, no silent no-op
rules, per-axis grid fallback, own words for non-ranked grades, score weights,
Pareto summary, RFM, 距上一等级, and the shape of the engine."""

from __future__ import annotations

import datetime as dt
import math
import typing
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from grading.changes import compare
from grading.config_model import Config
from grading.fill_plan import grade_summary
from grading.grade import grade_customers
from grading.history import PreviousPeriod
from grading.metrics import compute_metrics
from grading.problems import Problem
from grading.rules import AssigningSpec, ModifyingSpec, Stage

from .test_methods import ABC_POLICIES, config, table

ABC = {"type": "thresholds", "metric": "净销售额", "else": "C",
       "bands": [{"grade": "A", "min": "500万"}, {"grade": "B", "min": "100万"}]}


def _sales(rows: list[tuple[str, float]]) -> pd.DataFrame:
    return pd.DataFrame({
        "customer_code": [c for c, _ in rows], "date": pd.to_datetime(["2026-03-01"] * len(rows)),
        "amount": [a for _, a in rows], "amount_excl_tax": [a for _, a in rows], "doc_no": [f"D{i}" for i in range(len(rows))],
        "customer_name": [c for c, _ in rows],
    })


# ------------------------------------------------------------------ 1. money exact at a boundary

def test_lines_summing_exactly_to_a_bound_reach_it() -> None:
    c = config({**ABC, "bands": [{"grade": "A", "min": "100万"}]})
    lines = [491750.82, 19847.43, 314955.42, 29183.83, 144262.50]
    assert sum(lines) < 1_000_000  # the float sum falls just below
    metrics = compute_metrics(c, _sales([("C1", a) for a in lines])).table
    assert metrics.loc["C1", "net_sales"] == 1_000_000.00
    g = grade_customers(c, metrics, [])
    assert g.loc["C1", "grade"] == "A"
    assert g.loc["C1", "reason"] == "净销售额 100万 ≥ 100万 → A"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=-5_000_00, max_value=90_000_000), min_size=1, max_size=12),
       st.integers(min_value=1, max_value=500_000_000))
def test_random_cent_amounts_exactly_on_a_bound(cents: list[int], bound_cents: int) -> None:
    """Lines in cents adjusted so they sum exactly to the bound: the customer is inside it, also in adjust
    and score bands (cent precision everywhere money is compared)."""
    cents = [*cents, bound_cents - sum(cents)]
    bound = f"{bound_cents / 100:.2f}"
    c = config({**ABC, "bands": [{"grade": "A", "min": bound}]},
               {"type": "adjust", "when": f"净销售额 < {bound}", "down": 1})
    metrics = compute_metrics(c, _sales([("C1", x / 100) for x in cents])).table
    g = grade_customers(c, metrics, [])
    assert g.loc["C1", "grade"] == "A", g.loc["C1", "reason"]
    s = config({"type": "score", "else": "C", "grades": [{"grade": "A", "min": 1}],
                "indicators": [{"metric": "净销售额", "weight": 1, "bands": [{"min": bound, "points": 1}]}]})
    assert grade_customers(s, metrics, []).loc["C1", "grade"] == "A"


# ------------------------------------------------------------------ 2. one owner of the final grade

POLICIES = {"A": {"label": "关键客户", "visits_per_month": "4", "credit_terms": "60天"},
            "B": {"label": "主要客户", "visits_per_month": "2", "credit_terms": "30天"},
            "C": {"label": "普通客户", "visits_per_month": "1", "credit_terms": "现款"}}


def test_held_customer_gets_the_policies_and_order_of_the_grade_kept() -> None:
    c = Config.model_validate({
        "sources": {"sales": {"files": ["x.csv"]}}, "period": {"as_of": "2026-06-30"},
        "grading": {"stages": [ABC]}, "grades": POLICIES, "history": {"downgrade_after": 2}})
    t = table(net_sales=[10_000.0, 2_000_000.0], customer_name=["x", "y"])  # C000 falls from A to C, C001 is B
    prev = PreviousPeriod("2025H2", dt.date(2025, 12, 31), pd.DataFrame(
        {"customer_name": ["x", "y"], "grade": ["A", "B"], "rule_grade": ["A", "B"], "score": [np.nan] * 2,
         "net_sales": [6e6, 2e6], "below_streak": [0, 0]}, index=pd.Index(["C000", "C001"], name="customer_code")))
    g = grade_customers(c, t, [], previous=prev)
    held = g.loc["C000"]
    assert (held["grade"], held["rule_grade"], held["below_streak"]) == ("A", "C", 1)
    assert (held["grade_label"], held["visits_per_month"], held["credit_terms"]) == ("关键客户", "4", "60天")
    assert list(g.index) == ["C000", "C001"]  # sorted by the final grade A before B
    assert held["reason"].endswith("等级稳定：规则结果 C 低于上期 A（连续 1/2 期），暂保持 A")
    assert held["next_gap"] == ""  # the rule's distance does not apply to a held grade
    out, comp = compare(c, g, prev)
    assert out.loc["C000", "change"] == "不变"
    summary = grade_summary(c, g).set_index("grade")
    assert summary.loc["A", "customers"] == 1 and summary.loc["C", "customers"] == 0


# ------------------------------------------------------------------ 3. no silent no-op rules

def test_rule_on_a_metric_no_source_provides_is_a_config_error() -> None:
    c = Config.model_validate({
        "sources": {"sales": {"files": ["x.csv"]}}, "period": {"as_of": "2026-06-30"},
        "grading": {"stages": [ABC, {"type": "adjust", "when": "逾期天数 > 90", "at_most": "B"}]},
        "grades": ABC_POLICIES})
    [(path, msg)] = c.reference_issues()
    assert path == ("grading", "stages", 1)
    assert msg.startswith("规则用到指标「逾期天数」，它来自应收账款余额表，但 sources 中没有配置 receivables。")
    assert "逾期天数、最长逾期天数" in msg


def test_receivables_without_the_column_is_refused_naming_the_aliases() -> None:
    from grading.rules.provides import missing_inputs

    c = config(ABC, {"type": "adjust", "when": "逾期天数 > 90", "at_most": "B"})
    [msg] = missing_inputs(["net_sales", "overdue_days"], {"receivables": {"customer_code", "closing"}},
                           c.sources)
    assert "规则用到指标「逾期天数」，但应收账款余额表中没有可用的列（认得的列名：逾期天数、最长逾期天数" in msg
    assert "sources.receivables.columns.overdue_days" in msg
    assert missing_inputs(["overdue_days"], {"receivables": {"customer_code", "overdue_days"}}, c.sources) == []


def test_customer_missing_the_value_is_listed_and_the_rule_said_skipped() -> None:
    c = config(ABC, {"type": "adjust", "name": "逾期封顶", "when": "逾期天数 > 90", "at_most": "B"})
    problems: list[Problem] = []
    g = grade_customers(c, table(net_sales=[6e6, 6e6], overdue_days=[120, np.nan]), problems)
    assert g.loc["C000", "grade"] == "B"
    assert g.loc["C001", "grade"] == "A"
    assert g.loc["C001", "reason"].endswith("逾期封顶：逾期天数 为空，未判断“逾期天数 > 90”，本条规则跳过")
    [p] = problems
    assert (p.sheet, p.column, p.value) == ("逾期封顶", "逾期天数", "C001")


# ------------------------------------------------------------------ 4. grid axes fall back one at a time

def test_grid_axis_falls_back_alone() -> None:
    stage = {"type": "grid", "name": "客户代码", "axes": [
        {"name": "认可度", "column": "认可度", "map": {"高": "F"}, "else": "E"},
        {"name": "利润", "rule": {"type": "thresholds", "metric": "毛利率", "else": "2",
                                 "bands": [{"grade": "1", "min": "25%"}]}}]}
    c = config(stage, grades={"F1": {"label": "a"}, "F*": {"label": "认可"}, "*": {"label": "其他"}},
               fallback_grade="E2")
    problems: list[Problem] = []
    g = grade_customers(c, table(margin=[0.3, np.nan], **{"col:认可度": ["高", "高"]}), problems)
    assert g.loc["C000", "grade"] == "F1"
    assert g.loc["C001", "grade"] == "F?"
    assert g.loc["C001", "grade_label"] == "认可"
    assert "利润：毛利率 为空，该轴按兜底级别 → ?" in g.loc["C001", "reason"]
    assert any(p.column == "利润" and p.value == "C001" and "轴「利润」无法判断" in p.reason for p in problems)


# ------------------------------------------------------------------ 5. non-ranked grades are not upgrades

def test_changes_into_and_out_of_provisional_and_lapsed_have_own_words() -> None:
    c = config(ABC, {"type": "provisional", "tenure_below_months": 6, "grade": "暂定"},
               {"type": "lapsed", "no_order_days": 365, "grade": "流失"})
    t = table(net_sales=[1e4, 6e6, 1e4, 6e6, 2e6], tenure_months=[3, 24, 24, 24, 24],
              recency_days=[5, 5, 400, 5, 5], customer_name=list("abcde"))
    g = grade_customers(c, t, [])
    prev = PreviousPeriod("P0", dt.date(2025, 12, 31), pd.DataFrame(
        {"customer_name": list("abcde"), "grade": ["C", "暂定", "C", "流失", "A"], "rule_grade": ["C"] * 5,
         "score": [np.nan] * 5, "net_sales": [0.0] * 5, "below_streak": [0] * 5},
        index=pd.Index([f"C00{i}" for i in range(5)], name="customer_code")))
    out, _ = compare(c, g, prev)
    assert out["change"].reindex(t.index).tolist() == ["转为暂定", "暂定转正", "转为流失", "恢复", "降级"]


# ------------------------------------------------------------------ 7. score weights

def _score(*weights: Any, **ind: Any) -> dict[str, Any]:
    return {"type": "score", "else": "C", "grades": [{"grade": "A", "min": 2}],
            "indicators": [{"metric": "净销售额", "weight": w, "bands": [{"min": 0, "points": 3}]} for w in weights]}


@pytest.mark.parametrize("weights, shown", [((0.4, 0.4), "80%（40% + 40%）"), ((0.6, 0.5), "110%（60% + 50%）")])
def test_weights_must_sum_to_100_percent(weights: tuple[float, ...], shown: str) -> None:
    with pytest.raises(ValidationError) as info:
        config(_score(*weights))
    assert f"各指标权重之和应为 100%，发现 {shown}" in str(info.value)


def test_percent_weights_and_a_text_column_scored_by_map() -> None:
    stage = {"type": "score", "else": "C", "grades": [{"grade": "A", "min": 2.5}, {"grade": "B", "min": 1.5}],
             "indicators": [{"metric": "净销售额", "weight": "40%", "bands": [{"min": "100万", "points": 3}]},
                            {"column": "潜力", "weight": "60%", "map": {"高": 3, "中": 2, "低": 1}}]}
    g = grade_customers(config(stage), table(net_sales=[2e6, 2e6, 0.0], **{"col:潜力": ["高", "低", "中"]}), [])
    assert g["score"].reindex(["C000", "C001", "C002"]).tolist() == [3.0, 1.8, 1.2]
    assert g["grade"].reindex(["C000", "C001", "C002"]).tolist() == ["A", "B", "C"]
    assert "潜力 低 得 1 分×0.6" in g.loc["C001", "reason"]


# ------------------------------------------------------------------ 8. Pareto summary agrees with the rule

def test_pareto_summary_shares_use_the_rules_total() -> None:
    c = config({"type": "pareto", "metric": "净销售额", "else": "C",
                "bands": [{"grade": "A", "share": "70%"}, {"grade": "B", "share": "90%"}]})
    g = grade_customers(c, table(net_sales=[700.0, 200.0, 100.0, -100.0]), [])
    s = grade_summary(c, g).set_index("grade")
    assert s.loc["A", "sales_share"] == pytest.approx(0.7)  # 700 / 1000 positive, as the rule counts
    assert g.loc["C000", "reason"].startswith("净销售额 700，累计占比 0%→70%")


# ------------------------------------------------------------------ 11. RFM

RFM_GRADES = {name: {"label": name, "service": f"{name}策略"} for name in (
    "重要价值客户", "重要发展客户", "重要保持客户", "重要挽留客户",
    "一般价值客户", "一般发展客户", "一般保持客户", "一般挽留客户")}


def test_rfm_eight_segments_with_policies_and_explanations() -> None:
    c = config({"type": "rfm", "recency": {"metric": "未下单天数", "split": "median"},
                "frequency": {"metric": "订单数", "split": 5}, "monetary": {"metric": "净销售额", "split": "mean"},
                "scores": True}, grades=RFM_GRADES)
    recency = [10, 10, 200, 200, 10, 10, 200, 200]
    orders = [8, 2, 8, 2, 8, 2, 8, 2]
    sales = [9e5, 9e5, 9e5, 9e5, 1e5, 1e5, 1e5, 1e5]
    g = grade_customers(c, table(recency_days=recency, order_count=orders, net_sales=sales), [])
    got = g["grade"].reindex([f"C00{i}" for i in range(8)]).tolist()
    assert got == list(RFM_GRADES)
    assert g.loc["C000", "service"] == "重要价值客户策略"
    assert g.loc["C003", "reason"] == (
        "RFM分群 重要挽留客户（R 未下单天数 200天 > 中位数 105天 → 低；F 订单数 2 < 界值 5 → 低；"
        "M 净销售额 90万 ≥ 均值 50万 → 高；RFM 分 R2 F2 M4）")
    assert list(g.index[:2]) == ["C000", "C001"]  # ordered as the segments are listed under grades


def test_rfm_missing_value_falls_back_and_is_listed() -> None:
    c = config({"type": "rfm"}, grades=RFM_GRADES)
    problems: list[Problem] = []
    g = grade_customers(c, table(recency_days=[5, np.nan], order_count=[3, 0], net_sales=[10.0, 0.0]), problems)
    assert g.loc["C001", "grade"] == "一般挽留客户" and "按兜底等级" in g.loc["C001", "reason"]
    assert any(p.value == "C001" and "未下单天数" in p.reason for p in problems)


# ------------------------------------------------------------------ 距上一等级 (issue 14 item 2)

def _moved_up(c: Config, t: pd.DataFrame, code: str, col: str, gap: float) -> tuple[str, str]:
    before = grade_customers(c, t, []).loc[code, "grade"]
    t2 = t.copy()
    t2.loc[code, col] = round(t2.loc[code, col] + gap, 2)
    return before, grade_customers(c, t2, []).loc[code, "grade"]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=9_000_000_00), min_size=2, max_size=15))
def test_threshold_gap(cents: list[int]) -> None:
    c = config(ABC)
    t = table(net_sales=[x / 100 for x in cents])
    g = grade_customers(c, t, [])
    for code, row in g.iterrows():
        v = row["net_sales"]
        expect = 5e6 - v if row["grade"] == "B" else 1e6 - v if row["grade"] == "C" else None
        if expect is None:
            assert row["next_gap"] == "" and math.isnan(row["next_gap_ratio"])
            continue
        target = "A" if row["grade"] == "B" else "B"
        gap = row["next_gap_ratio"] * (5e6 if target == "A" else 1e6)
        assert gap == pytest.approx(expect, abs=1e-6)
        assert row["next_gap"].endswith(f"→ {target}") and row["next_gap"].startswith("差 ")
        before, after = _moved_up(c, t, str(code), "net_sales", round(expect, 2))
        assert (before, after) == (row["grade"], target)


def test_threshold_gap_text() -> None:
    g = grade_customers(config(ABC), table(net_sales=[4_765_000.0, 200_000.0]), [])
    assert g.loc["C000", "next_gap"] == "差 23.5万 → A"
    assert g.loc["C000", "next_gap_ratio"] == pytest.approx(235_000 / 5e6)
    assert g.loc["C001", "next_gap"] == "差 80万 → B"
    odd = grade_customers(config(ABC), table(net_sales=[987_654.33]), [])
    assert odd.loc["C000", "next_gap"] == "差 1.24万 → B"  # 12,345.67 rounded up: 1.23万 would not reach B


def _brute_minimum(c: Config, t: pd.DataFrame, code: str, target: str) -> float:
    """Smallest cent amount that moves `code` to `target`, searched cent by cent from above."""
    lo, hi = 0, int(round(float(t["net_sales"].clip(lower=0).sum()) * 100)) * 2 + 100
    while lo < hi:  # grade is monotone in the customer's own value
        mid = (lo + hi) // 2
        t2 = t.copy()
        t2.loc[code, "net_sales"] = round(t.loc[code, "net_sales"] + mid / 100, 2)  # a cent amount
        if grade_customers(c, t2, []).loc[code, "grade"] in ("A", target):  # reached target (or beyond)
            hi = mid
        else:
            lo = mid + 1
    return lo / 100


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=1_000_00), min_size=3, max_size=9),
       st.sampled_from(["quantile", "pareto"]))
def test_rank_and_pareto_gaps_match_a_brute_force_search(cents: list[int], kind: str) -> None:
    if kind == "quantile":
        stage = {"type": "quantile", "metric": "净销售额", "else": "C",
                 "bands": [{"grade": "A", "top": "20%"}, {"grade": "B", "top": "50%"}]}
    else:
        stage = {"type": "pareto", "metric": "净销售额", "else": "C",
                 "bands": [{"grade": "A", "share": "60%"}, {"grade": "B", "share": "85%"}]}
    c = config(stage)
    t = table(net_sales=[x / 100 for x in cents])
    g = grade_customers(c, t, [])
    if float(t["net_sales"].sum()) <= 0:
        return
    for code, row in g.iterrows():
        if row["grade"] == "A":
            assert row["next_gap"] == ""
            continue
        target = "A" if row["grade"] == "B" else "B"
        want = _brute_minimum(c, t, str(code), target)
        assert row["next_gap"].endswith(f"→ {target}")
        stage_ = c.grading.stages[0]
        assert isinstance(stage_, AssigningSpec)
        gap = stage_.gap(t, stage_.assign(t))
        assert gap is not None
        got = float(gap.gap[list(t.index).index(code)])
        assert got == pytest.approx(want, abs=0.005), (code, row["next_gap"], want)


def test_score_gap_in_points() -> None:
    stage = {"type": "score", "else": "C", "grades": [{"grade": "A", "min": 7}, {"grade": "B", "min": 3}],
             "indicators": [{"metric": "净销售额", "weight": 1,
                             "linear": {"low": 0, "high": "100万", "points_low": 0, "points_high": 10}}]}
    g = grade_customers(config(stage), table(net_sales=[620_000.0, 100_000.0]), [])
    assert g.loc["C000", "next_gap"] == "差 0.8 分 → A"
    assert g.loc["C000", "next_gap_ratio"] == pytest.approx(0.8 / 7)
    assert g.loc["C001", "next_gap"] == "差 2 分 → B"


# ------------------------------------------------------------------ engine shape

def test_every_stage_type_is_assigning_or_modifying_with_a_complete_rule() -> None:
    union = typing.get_args(typing.get_args(Stage)[0])
    assert {t.model_fields["type"].annotation.__args__[0] for t in union} == {  # type: ignore[union-attr]
        "thresholds", "quantile", "pareto", "score", "grid", "rfm", "adjust", "provisional", "lapsed"}
    for spec in union:
        assert issubclass(spec, (AssigningSpec, ModifyingSpec))
        assert not getattr(spec, "__abstractmethods__", None), spec


def test_a_modifying_stage_without_a_rule_cannot_exist() -> None:
    class Silent(ModifyingSpec):  # a new stage type that forgot its implementation
        pass

    with pytest.raises(TypeError):
        Silent(name="x")


def test_graded_table_has_the_declared_columns() -> None:
    from grading.columns import GRADED_COLUMNS, METRIC_COLUMNS, mismatches

    c = config(ABC)
    metrics = compute_metrics(c, _sales([("C1", 10.0), ("C2", 2e6)])).table
    assert mismatches(metrics, METRIC_COLUMNS) == []
    assert mismatches(grade_customers(c, metrics, []), GRADED_COLUMNS) == []


@pytest.mark.parametrize("sales", [[], [0.0], [6e6, 2e6, 0.0, 7e6]])
def test_policy_columns_are_each_rows_grade_policy_with_the_dtype_a_per_row_map_gives(sales: list[float]) -> None:
    grades = {**ABC_POLICIES, "A": {"label": "关键客户", "visits_per_month": "4-6", "service": "专人对接",
                                    "discount": "9.5折", "credit_terms": "月结60天"}}
    c = config(ABC, grades=grades)
    graded = grade_customers(c, table(len(sales), net_sales=sales), [])
    for column, attr in (("grade_label", "label"), ("visits_per_month", "visits_per_month"), ("service", "service"),
                         ("discount", "discount"), ("credit_terms", "credit_terms")):
        want = graded["grade"].map(lambda g: getattr(c.policy(g), attr))
        assert graded[column].dtype == want.dtype, column
        assert graded[column].tolist() == want.tolist(), column
