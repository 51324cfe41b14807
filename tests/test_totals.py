"""Per-customer metrics on the generated exports equal totals computed
independently from the generator's ground truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from grading.pipeline import grade_data

from .conftest import FIXED_TIME


@pytest.fixture(scope="module")
def graded(demo, tmp_path_factory):  # type: ignore[no-untyped-def]
    import yaml

    from grading.config import load_config

    from .conftest import base_config, copy_template

    folder, _ = demo
    copy_template(folder)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(base_config(), allow_unicode=True), encoding="utf-8")
    return grade_data(load_config(path), generated_at=FIXED_TIME)


def _window(truth):  # type: ignore[no-untyped-def]
    lines = truth.lines
    return lines[(lines["date"] > pd.Timestamp(2025, 6, 30)) & (lines["date"] <= pd.Timestamp(2026, 6, 30))]


def test_net_sales_per_customer_match_truth(demo, graded) -> None:  # type: ignore[no-untyped-def]
    _, truth = demo
    expected = _window(truth).groupby("customer_code")["amount"].sum()
    got = graded.graded["net_sales"]
    expected = expected.reindex(got.index, fill_value=0.0)
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=1e-9, atol=1e-6)
    assert got.sum() == pytest.approx(_window(truth)["amount"].sum(), rel=1e-12)


def test_every_customer_is_graded_once(demo, graded) -> None:  # type: ignore[no-untyped-def]
    _, truth = demo
    g = graded.graded
    assert g.index.is_unique
    assert set(g.index) == set(truth.customers["customer_code"])
    assert g["grade"].isin(["A", "B", "C", "暂定"]).all()


def test_orders_lines_returns_and_months(demo, graded) -> None:  # type: ignore[no-untyped-def]
    _, truth = demo
    win = _window(truth)
    g = graded.graded
    pos = win[win["amount"] > 0]
    orders = pos.groupby("customer_code")["doc_no"].nunique().reindex(g.index, fill_value=0)
    assert (g["order_count"] == orders).all()
    lines = win.groupby("customer_code").size().reindex(g.index, fill_value=0)
    assert (g["line_count"] == lines).all()
    returns = (-win.loc[win["amount"] < 0, "amount"]).groupby(win["customer_code"]).sum()
    np.testing.assert_allclose(g["returns"], returns.reindex(g.index, fill_value=0.0), atol=1e-6)
    months = pos.assign(m=pos["date"].dt.to_period("M")).groupby("customer_code")["m"].nunique()
    assert (g["active_months"] == months.reindex(g.index, fill_value=0)).all()
    first = truth.lines[truth.lines["date"] <= pd.Timestamp(2026, 6, 30)].groupby("customer_code")["date"].min()
    assert (g["first_order_date"] == first.reindex(g.index)).all()


def test_gross_profit_uses_cost(demo, graded) -> None:  # type: ignore[no-untyped-def]
    _, truth = demo
    g = graded.graded
    win = _window(truth)
    u8 = win[(win["date"] >= pd.Timestamp(2026, 1, 1)) & (win["date"] < pd.Timestamp(2026, 4, 1))]
    # only the U8 export carries cost
    expected = (u8["amount_excl_tax"] - u8["cost"]).groupby(u8["customer_code"]).sum()
    got = g["gross_profit"].dropna()
    np.testing.assert_allclose(got, expected.reindex(got.index), rtol=1e-9, atol=1e-6)


def test_receivables_and_collection_rate(demo, graded) -> None:  # type: ignore[no-untyped-def]
    _, truth = demo
    rec = truth.receivables.set_index("customer_code")
    g = graded.graded.loc[rec.index]
    np.testing.assert_allclose(g["received"], rec["received"], atol=1e-6)
    denominator = rec["opening"] + rec["billed"]
    rate = (rec["received"] / denominator).where(denominator > 0)  # undefined when nothing is owed
    np.testing.assert_allclose(g["collection_rate"], rate, rtol=1e-9)
    no_rec = graded.graded.index.difference(rec.index)
    assert graded.graded.loc[no_rec, "collection_rate"].isna().all()


def test_problems_list_bad_rows_and_totals(demo, graded) -> None:  # type: ignore[no-untyped-def]
    _, truth = demo
    skipped = [p for p in graded.problems if p.action == "已跳过"]
    assert len(skipped) == truth.bad_rows
    assert {p.reason for p in skipped} == {"日期无法识别（支持 2026-05-03、2026/5/3、2026年5月3日、Excel 日期）",
                                           "金额不是有效数字"}
    bad_date = next(p for p in skipped if p.column == "发货日期")
    assert (bad_date.file, bad_date.value) == ("sales_u8_2026Q1.csv", "2026/13/45")
    totals = [p for p in graded.problems if p.reason.startswith("合计/小计行")]
    # one 小计 per customer with 2025 lines + 合计 in Kingdee, 合计 in U8 CSV and in receivables
    assert len(totals) >= 3
    assert all(p.row is not None for p in totals)
    names = set(graded.graded["customer_name"])
    assert "合计贸易有限公司" in names  # a real customer named like a total row is kept
