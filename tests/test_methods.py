"""Every grading method of config.yaml on small tables, with the stated
boundary and tie rules, plus hypothesis invariants against direct computation."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grading.config_model import Config
from grading.fields import METRICS
from grading.grade import grade_customers
from grading.modifiers import PinRow
from grading.config_model import Pin
from grading.problems import Problem

ABC_POLICIES = {"A": {"label": "关键客户"}, "B": {"label": "主要客户"}, "C": {"label": "普通客户"},
                "D": {"label": "小客户"}, "VIP": {"label": "VIP"}, "暂定": {"label": "新客户(暂定)"},
                "流失": {"label": "流失客户"}}


def config(*stages: dict[str, Any], grades: dict[str, Any] | None = None, **grading: Any) -> Config:
    c = Config.model_validate({
        "sources": {"sales": {"files": ["x.csv"]}, "receivables": {"files": ["r.csv"]}},
        "period": {"as_of": "2026-06-30"},
        "grading": {"stages": list(stages), **grading},
        "grades": grades or ABC_POLICIES,
    })
    assert c.reference_issues() == []
    return c


def table(n: int | None = None, **cols: list[Any]) -> pd.DataFrame:
    n = n or len(next(iter(cols.values())))
    data: dict[str, Any] = {m.key: [np.nan] * n for m in METRICS}
    data["net_sales"] = [0.0] * n
    data.update(cols)
    frame = pd.DataFrame(data, index=[f"C{i:03d}" for i in range(n)])
    frame.index.name = "customer_code"
    return frame


def grades_of(c: Config, t: pd.DataFrame, problems: list[Problem] | None = None, **kw: Any) -> pd.Series:
    g = grade_customers(c, t, problems if problems is not None else [], **kw)
    return g["grade"].reindex(t.index)


# ------------------------------------------------------------------ quantile

def test_vip_top_one_percent() -> None:
    c = config({"type": "quantile", "metric": "净销售额", "bands": [{"grade": "VIP", "top": "1%"}], "else": "A"})
    t = table(net_sales=[float(i) for i in range(250)])
    g = grade_customers(c, t, [])
    vip = g[g["grade"] == "VIP"]
    assert list(vip.index) == ["C249", "C248", "C247"]  # ceil(250 × 1%) = 3
    assert vip.loc["C249", "reason"] == "净销售额 249 排名 1/250（前 1%）→ VIP"
    assert g.loc["C000", "reason"] == "净销售额 0 排名 250/250（不在前 1%）→ A"


def test_top20_next30_rest_by_percent_and_count_with_ties() -> None:
    pct = config({"type": "quantile", "metric": "net_sales", "else": "C",
                  "bands": [{"grade": "A", "top": "20%"}, {"grade": "B", "top": "50%"}]})
    t = table(net_sales=[10, 10, 10, 9, 8, 7, 6, 5, 4, 3])
    assert grades_of(pct, t).tolist() == ["A", "A", "B", "B", "B", "C", "C", "C", "C", "C"]  # ties: code
    cnt = config({"type": "quantile", "metric": "net_sales", "by": "count", "else": "C",
                  "bands": [{"grade": "A", "top": 1}, {"grade": "B", "top": 4}]})
    assert grades_of(cnt, t).tolist() == ["A", "B", "B", "B", "C", "C", "C", "C", "C", "C"]


# ------------------------------------------------------------------ pareto

PARETO = {"type": "pareto", "metric": "净销售额", "else": "C",
          "bands": [{"grade": "A", "share": "70%"}, {"grade": "B", "share": "90%"}]}


def test_pareto_customer_crossing_the_boundary_is_inside() -> None:
    t = table(net_sales=[50, 15, 10, 10, 5, 5, 5])  # total 100
    g = grade_customers(config(PARETO), t, [])
    # C000 0→50%, C001 50→65%, C002 65→75% crosses 70% → still A; C003 75→85% → B; C004 85→90% → B
    assert g["grade"].reindex(t.index).tolist() == ["A", "A", "A", "B", "B", "C", "C"]
    assert g.loc["C002", "reason"] == "净销售额 10，累计占比 65%→75%（前 70% 内）→ A"
    assert g.loc["C005", "reason"] == "净销售额 5，累计占比 90%→95%（前 90% 之外）→ C"


def test_pareto_exact_boundary_and_no_sales() -> None:
    t = table(net_sales=[70, 30])  # C001 starts exactly at 70%: outside A
    assert grades_of(config(PARETO), t).tolist() == ["A", "B"]
    assert grades_of(config(PARETO), table(net_sales=[0.0, -5.0])).tolist() == ["C", "C"]


def _pareto_direct(sales: list[float], shares: list[float], grades: list[str], other: str) -> list[str]:
    order = sorted(range(len(sales)), key=lambda i: (-sales[i], f"C{i:03d}"))
    total = sum(max(s, 0.0) for s in sales)
    out = [other] * len(sales)
    before = 0.0
    for i in order:
        share = before / total if total > 0 else 1.0
        out[i] = next((g for g, s in zip(grades, shares) if total > 0 and share < s - 1e-12), other)
        before += max(sales[i], 0.0)
    return out


sales_lists = st.lists(st.floats(min_value=-1e5, max_value=1e8, allow_nan=False), min_size=1, max_size=50)


@settings(max_examples=60, deadline=None)
@given(sales_lists, st.randoms(use_true_random=False))
def test_pareto_matches_direct_computation_and_ignores_row_order(sales: list[float], rnd: Any) -> None:
    t = table(net_sales=sales)
    c = config(PARETO)
    got = grades_of(c, t)
    assert got.tolist() == _pareto_direct(sales, [0.7, 0.9], ["A", "B"], "C")
    order = list(t.index)
    rnd.shuffle(order)
    assert grades_of(c, t.loc[order]).to_dict() == got.to_dict()


@settings(max_examples=60, deadline=None)
@given(sales_lists, st.integers(0, 49), st.floats(min_value=0, max_value=1e8))
def test_raising_sales_never_lowers_pareto_or_quantile_grade(sales: list[float], pick: int, more: float) -> None:
    rank = {"A": 0, "B": 1, "C": 2}
    i = pick % len(sales)
    raised = list(sales)
    raised[i] += more
    for stage in (PARETO, {"type": "quantile", "metric": "net_sales", "else": "C",
                           "bands": [{"grade": "A", "top": "20%"}, {"grade": "B", "top": "50%"}]}):
        c = config(stage)
        before = grades_of(c, table(net_sales=sales)).iat[i]
        after = grades_of(c, table(net_sales=raised)).iat[i]
        assert rank[after] <= rank[before]


@settings(max_examples=40, deadline=None)
@given(sales_lists)
def test_quantile_matches_direct_rank(sales: list[float]) -> None:
    c = config({"type": "quantile", "metric": "net_sales", "else": "C",
                "bands": [{"grade": "A", "top": "20%"}, {"grade": "B", "top": "50%"}]})
    n = len(sales)
    order = sorted(range(n), key=lambda i: (-sales[i], f"C{i:03d}"))
    expected = ["C"] * n
    for r, i in enumerate(order, 1):
        expected[i] = "A" if r <= math.ceil(n * 0.2) else "B" if r <= math.ceil(n * 0.5) else "C"
    assert grades_of(c, table(net_sales=sales)).tolist() == expected


# ------------------------------------------------------------------ grid

NINE = {"type": "grid", "name": "九宫格", "axes": [
    {"name": "潜力", "column": "潜力", "map": {"高": "A", "中": "B"}, "else": "C"},
    {"name": "当前贡献", "rule": {"type": "thresholds", "metric": "净销售额", "else": 3,
                              "bands": [{"grade": 1, "min": "100万"}, {"grade": 2, "min": "20万"}]}}]}
CELLS = {f"{p}{l}": {"label": f"{p}{l}类", "visits_per_month": v}
         for p, v in (("A", "4-6"), ("B", "2-4"), ("C", "0-2")) for l in "123"}


def test_nine_grid_codes_policies_and_reasons() -> None:
    c = config(NINE, grades=CELLS)
    t = table(net_sales=[2e6, 3e5, 1e4, 5e6], **{"col:潜力": ["高", "中", "低", None]})
    g = grade_customers(c, t, [])
    assert g["grade"].reindex(t.index).tolist() == ["A1", "B2", "C3", "C1"]
    assert g.loc["C000", "visits_per_month"] == "4-6" and g.loc["C001", "grade_label"] == "B2类"
    assert g.loc["C000", "reason"] == "九宫格 A1（潜力：潜力 = 高 → A；当前贡献：净销售额 200万 ≥ 100万 → 1）"
    assert g.loc["C003", "reason"].startswith("九宫格 C1（潜力：潜力 = 空 → C；")


def test_four_axis_codes_with_wildcard_policies() -> None:
    stage = {"type": "grid", "name": "客户代码", "axes": [
        {"name": "认可度", "column": "认可度", "map": {"高": "F"}, "else": "E"},
        {"name": "痛点", "column": "痛点", "map": {"明确": "1"}, "else": "2"},
        {"name": "成交", "column": "成交状态", "map": {"已成交": "D"}, "else": "P"},
        {"name": "利润", "rule": {"type": "thresholds", "metric": "毛利率", "else": 2,
                                "bands": [{"grade": 1, "min": "25%"}]}}]}
    c = config(stage, grades={"F1D1": {"label": "重点维护"}, "F*": {"label": "认可客户"}, "*": {"label": "一般"}})
    t = table(margin=[0.3, 0.1, 0.4], **{"col:认可度": ["高", "高", "低"], "col:痛点": ["明确", "模糊", "明确"],
                                         "col:成交状态": ["已成交", "洽谈中", "已成交"]})
    g = grade_customers(c, t, [])
    assert g["grade"].reindex(t.index).tolist() == ["F1D1", "F2P2", "E1D1"]
    assert g["grade_label"].reindex(t.index).tolist() == ["重点维护", "认可客户", "一般"]


def test_grid_column_missing_from_master_is_a_clear_error() -> None:
    from grading.errors import MissingColumn

    with pytest.raises(MissingColumn) as info:
        grade_customers(config(NINE, grades=CELLS), table(net_sales=[1.0], **{"col:地区": ["华东"]}), [])
    assert str(info.value) == ("[E205] 分级规则用到客户档案中的列「潜力」，但客户档案中没有这一列。"
                               "客户档案中找到的自定义列：地区。请在客户档案中加入该列，或修改 config.yaml 中的 column。")


# ------------------------------------------------------------------ adjust / provisional / lapsed

ABC = {"type": "thresholds", "metric": "净销售额", "else": "C",
       "bands": [{"grade": "A", "min": "500万"}, {"grade": "B", "min": "100万"}]}


def test_adjustments_move_and_cap_with_explanations() -> None:
    c = config(ABC,
               {"type": "adjust", "name": "回款调整", "when": "回款率 < 80%", "down": 1},
               {"type": "adjust", "name": "逾期封顶", "when": "逾期天数 > 90", "at_most": "C"},
               {"type": "adjust", "name": "潜力上调", "when": "潜力 = 高", "up": 1})
    t = table(net_sales=[6e6, 2e6, 6e6, 5e5], collection_rate=[0.7, 0.95, np.nan, 0.9],
              overdue_days=[0, 120, 0, 0], **{"col:潜力": ["低", "低", "高", "高"]})
    g = grade_customers(c, t, [])
    assert g["grade"].reindex(t.index).tolist() == ["B", "C", "A", "B"]
    assert g.loc["C000", "reason"] == ("净销售额 600万 ≥ 500万 → A；回款调整：回款率 70% 满足“回款率 < 80%” → 降 1 级：A → B")
    assert g.loc["C001", "reason"].endswith("逾期封顶：逾期天数 120天 满足“逾期天数 > 90” → 最高为 C：B → C")
    assert g.loc["C002", "reason"].endswith("潜力上调：潜力 高 满足“潜力 = 高” → 升 1 级：保持 A")


def test_provisional_and_lapsed() -> None:
    c = config(ABC, {"type": "provisional", "tenure_below_months": 6, "grade": "暂定"},
               {"type": "lapsed", "no_order_days": 180, "grade": "流失"})
    t = table(net_sales=[6e6, 2e6, 0.0, 1e6], tenure_months=[3, 24, 30, np.nan], recency_days=[5, 10, 400, np.nan])
    g = grade_customers(c, t, [])
    assert g["grade"].reindex(t.index).tolist() == ["暂定", "B", "流失", "流失"]
    assert g.loc["C000", "reason"].endswith("新客户暂定：合作 3 个月 < 6 个月 → 暂定（按规则为 A）")
    assert g.loc["C003", "reason"].endswith("流失客户：从未下单（超过 180 天）→ 流失")


# ------------------------------------------------------------------ pins

def test_pins_win_until_expiry_and_are_marked() -> None:
    c = config(ABC, pins=[{"customer": "C000", "grade": "C", "reason": "信用风险", "by": "财务部",
                           "until": "2026-12-31"}])
    rows = [PinRow(Pin(customer="C001", grade="A", reason="战略客户", by="张经理", until=dt.date(2026, 1, 31)),
                   "overrides.xlsx", "人工指定", 3),
            PinRow(Pin(customer="C002", grade="A", reason="战略客户", by="张经理"), "overrides.xlsx", "人工指定", 4),
            PinRow(Pin(customer="C404", grade="A", reason="旧", by="李"), "overrides.xlsx", "人工指定", 5)]
    problems: list[Problem] = []
    g = grade_customers(c, table(net_sales=[6e6, 2e6, 1e4]), problems, pins=rows)
    assert g["grade"].reindex(["C000", "C001", "C002"]).tolist() == ["C", "B", "A"]
    assert g["pinned"].reindex(["C000", "C001", "C002"]).tolist() == ["人工指定", "", "人工指定"]
    assert g.loc["C000", "reason"] == ("净销售额 600万 ≥ 500万 → A；人工指定 C（财务部：信用风险，有效期至 2026-12-31；"
                                       "按规则为 A）")
    assert [(p.row, p.reason) for p in problems] == [
        (3, "客户 C001 的人工指定已过期，按规则分级"), (5, "人工指定的客户不在本期客户中，已忽略")]


# ------------------------------------------------------------------ fallback

def test_no_customer_without_grade_when_values_missing() -> None:
    c = config({"type": "pareto", "metric": "回款率", "else": "C", "bands": [{"grade": "A", "share": "50%"}]},
               fallback_grade="B")
    problems: list[Problem] = []
    g = grades_of(c, table(collection_rate=[0.9, np.nan, 0.5]), problems)
    assert g.tolist() == ["A", "B", "C"]
    assert [p.value for p in problems] == ["C001"]
