"""Vectorised metrics kernels (issue #15) against the pandas code they replace, on generated sales lines:
the reference implementations live here, not in the product."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grading.metrics import _codes_of, _distinct_per, _sales_metrics, _written

def _column(values: list[object]) -> np.ndarray:
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    return arr


_NAMES = st.one_of(st.none(), st.sampled_from(["", "张伟", "李娜", "王芳", "a", "B"]))
_DAYS = st.integers(0, 40)


def _reference_codes_of(column: pd.Series) -> tuple[np.ndarray, pd.Index]:
    cat = column if isinstance(column.dtype, pd.CategoricalDtype) else column.astype("category")
    return cat.cat.codes.to_numpy(dtype=np.int64), pd.Index(cat.cat.categories.astype(object))


def _reference_distinct_per(cid: np.ndarray, other: np.ndarray, k: int) -> np.ndarray:
    if not len(cid):
        return np.zeros(k, dtype=np.int64)
    pairs = np.unique(cid.astype(np.int64) * (int(other.max()) + 1) + other.astype(np.int64))
    return np.bincount(pairs // (int(other.max()) + 1), minlength=k)


def _reference_latest(sales: pd.DataFrame, attr: str, upto: np.ndarray, k: int) -> np.ndarray:
    """Each customer's latest line (stable date order) whose attribute is not empty (the replaced loop, with
    its fix: a missing value, code -1, names nothing; it used to index the last label)."""
    cid = sales["customer_code"].cat.codes.to_numpy(dtype=np.int64)
    order = np.argsort(sales["date"].to_numpy(dtype="datetime64[s]"), kind="stable")
    codes, names = _reference_codes_of(sales[attr])
    if not len(names):  # no name at all (the replaced loop failed here; the column never exists so)
        return np.full(k, "", dtype=object)
    sel = order[upto[order] & (codes[order] >= 0) & (names.to_numpy()[codes[order]] != "")]
    latest = pd.Series(codes[sel]).groupby(cid[sel]).last()
    values = np.full(k, "", dtype=object)
    values[latest.index.to_numpy()] = names.to_numpy()[latest.to_numpy()]
    return values


@st.composite
def _sales(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(1, 40))
    codes = draw(st.lists(st.sampled_from(["C1", "C2", "C3", "C4"]), min_size=n, max_size=n))
    days = draw(st.lists(_DAYS, min_size=n, max_size=n))
    amounts = draw(st.lists(st.sampled_from([-5.0, 0.0, 1.25, 30.0, 1e6]), min_size=n, max_size=n))
    names = draw(st.lists(_NAMES, min_size=n, max_size=n))
    docs = draw(st.lists(st.sampled_from(["", "D1", "D2", "D3"]), min_size=n, max_size=n))
    frame = pd.DataFrame({
        "customer_code": pd.Categorical(codes, categories=pd.Index(list(dict.fromkeys(codes)), dtype=object)),
        "date": (np.datetime64("2026-01-01", "s") + np.array(days, dtype="timedelta64[D]")).astype("datetime64[s]"),
        "amount": np.array(amounts, dtype=float),
        "doc_no": pd.Categorical(docs, categories=pd.Index(list(dict.fromkeys(docs)), dtype=object)),
    })
    if draw(st.booleans()):  # a text column as concat_frames leaves it (a file without the column: None)
        frame["salesperson"] = pd.Series(names, dtype=object)
    else:
        filled = ["" if v is None else v for v in names]
        frame["salesperson"] = pd.Categorical(filled, categories=pd.Index(list(dict.fromkeys(filled)), dtype=object))
    return frame


@settings(max_examples=300, deadline=None)
@given(st.lists(_NAMES, max_size=30))
def test_codes_of_text_column_matches_astype_category(values: list[str | None]) -> None:
    column = pd.Series(values, dtype=object)
    got_codes, got_labels = _codes_of(column)
    want_codes, want_labels = _reference_codes_of(column)
    assert got_codes.tolist() == want_codes.tolist()
    assert got_labels.tolist() == want_labels.tolist() and got_labels.dtype == want_labels.dtype == object


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 50)), max_size=60))
def test_distinct_per_matches_sorting_unique(pairs: list[tuple[int, int]]) -> None:
    cid = np.array([p[0] for p in pairs], dtype=np.int64)
    other = np.array([p[1] for p in pairs], dtype=np.int64)
    assert _distinct_per(cid, other, 7).tolist() == _reference_distinct_per(cid, other, 7).tolist()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.sampled_from(["", "D1", "x"])), max_size=20))
def test_written_matches_ne_empty(values: list[str | None]) -> None:
    cats = pd.Index(list(dict.fromkeys(v for v in values if v is not None)), dtype=object)
    column = pd.Series(pd.Categorical(values, categories=cats))
    assert _written(column).tolist() == column.ne("").to_numpy(dtype=bool).tolist()


@settings(max_examples=300, deadline=None)
@given(_sales(), st.integers(0, 40), st.integers(0, 40))
def test_sales_metrics_dates_and_latest_names_match_groupby(sales: pd.DataFrame, a: int, b: int) -> None:
    start = np.datetime64("2026-01-01", "s") + np.timedelta64(min(a, b), "D")
    as_of = np.datetime64("2026-01-01", "s") + np.timedelta64(max(a, b), "D")
    table, *_ = _sales_metrics(sales, "amount", start, as_of)
    dates = sales["date"].to_numpy(dtype="datetime64[s]")
    amount = sales["amount"].to_numpy(dtype=float)
    cid = sales["customer_code"].cat.codes.to_numpy(dtype=np.int64)
    labels = sales["customer_code"].cat.categories
    k = len(labels)
    upto = dates <= as_of
    first = pd.Series(dates[upto]).groupby(cid[upto]).min()
    hist = upto & (amount > 0)
    last = pd.Series(dates[hist]).groupby(cid[hist]).max()
    has = np.zeros(k, bool)
    has[first.index.to_numpy()] = True
    assert table.index.tolist() == labels[has].tolist()
    want_first = first.reindex(range(k)).to_numpy(dtype="datetime64[s]")[has]
    want_last = last.reindex(range(k)).to_numpy(dtype="datetime64[s]")[has]
    np.testing.assert_array_equal(table["first_order_date"].to_numpy(dtype="datetime64[s]"), want_first)
    np.testing.assert_array_equal(table["last_order_date"].to_numpy(dtype="datetime64[s]"), want_last)
    assert table["salesperson"].tolist() == _reference_latest(sales, "salesperson", upto, k)[has].tolist()
    pos = upto & (dates >= start) & (amount > 0)
    doc = sales["doc_no"].cat.codes.to_numpy(dtype=np.int64)
    if sales["doc_no"].ne("").to_numpy(dtype=bool)[pos].any():
        want_orders = _reference_distinct_per(cid[pos], doc[pos], k)
    else:
        day = dates.astype("datetime64[D]").astype(np.int64)
        want_orders = _reference_distinct_per(cid[pos], day[pos] - day[pos].min() if pos.any() else day[pos], k)
    assert table["order_count"].tolist() == want_orders[has].tolist()


# fill plan: dates converted in one pass, ranking on the two sort keys only

from grading.fill_plan import _dates, _values, ranked_by_sales  # noqa: E402
from grading.plan_types import ArrayValues, TextValues  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(-10**9, 10**9)), max_size=20))
def test_plan_dates_match_per_value_conversion(seconds: list[int | None]) -> None:
    values = np.array([np.datetime64("NaT") if s is None else np.datetime64(1_700_000_000 + s, "s")
                       for s in seconds], dtype="datetime64[s]")
    column = pd.Series(values)
    want = [None if pd.isna(v) else v.to_pydatetime() for v in column]
    got = _dates(column)
    assert list(got) == want and [type(v) for v in got] == [type(v) for v in want]


@pytest.mark.parametrize("series", [
    pd.Series([1.5, float("nan"), -0.0]), pd.Series([1.5, 2.25], dtype=np.float32), pd.Series([3, -4], dtype=np.int8),
    pd.Series([2**64 - 1, 0], dtype=np.uint64), pd.Series([], dtype=float), pd.Series([True, False]),
    pd.Series([1, None], dtype="Int64"), pd.Series(["a", None]), pd.Index([7, 8]),
    pd.Series(["甲", "", "a&b<c>", "𠀀"], dtype="str"), pd.Index(["x", "y"], dtype="str"), pd.Series([], dtype="str"),
    pd.Series(["a", None], dtype="str"), pd.Series(["a", "b"], dtype=object),
    pd.Series(["a", "b"], dtype="str").iloc[1:], pd.concat([pd.Series(["a"], dtype="str")] * 3)])
def test_plan_values_read_as_the_columns_python_values(series: pd.Series | pd.Index) -> None:
    got = _values(series)
    want = series.tolist()
    assert [repr(v) for v in got] == [repr(v) for v in want] and [type(v) for v in got] == [type(v) for v in want]
    assert isinstance(got, ArrayValues) == (series.dtype.kind in "fiu" and isinstance(series.dtype, np.dtype))
    arrow_text = isinstance(series.dtype, pd.StringDtype) and series.dtype.storage == "pyarrow"
    assert isinstance(got, TextValues) == (arrow_text and len(series) > 0 and not series.isna().any())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["C1", "C2", "C10", "A", "b"]),
                          st.sampled_from([0.0, -1.5, 3.0, 3.0, 1e6, float("nan")])), max_size=12, unique_by=lambda t: t[0]))
def test_ranked_by_sales_matches_sorting_the_table(rows: list[tuple[str, float]]) -> None:
    graded = pd.DataFrame({"net_sales": [r[1] for r in rows], "grade": ["A"] * len(rows)},
                          index=pd.Index([r[0] for r in rows], dtype=object))
    want = graded.assign(_code=graded.index.astype(str)).sort_values(
        ["net_sales", "_code"], ascending=[False, True], kind="stable")
    got = ranked_by_sales(graded)
    assert got.index.tolist() == want.index.tolist()
    np.testing.assert_array_equal(got["net_sales"].to_numpy(), want["net_sales"].to_numpy())


# history: the per-customer metrics JSON built column-wise, against one json.dumps per row

import json  # noqa: E402

from grading.history import _clean, _metrics_json, column_values  # noqa: E402

_ANY_TEXT = st.one_of(st.none(), st.text(alphabet='a, "%\\\u4e2d', max_size=4))


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 6).flatmap(lambda n: st.tuples(
    st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=n, max_size=n),
    st.lists(st.integers(-2**62, 2**62), min_size=n, max_size=n),
    st.lists(st.booleans(), min_size=n, max_size=n),
    st.lists(_ANY_TEXT, min_size=n, max_size=n),
    st.lists(st.one_of(st.none(), st.floats(allow_nan=True), st.text(max_size=2), st.integers()), min_size=n,
             max_size=n))))
def test_metrics_json_matches_one_dumps_per_row(columns: tuple[list[float], list[int], list[bool], list[str | None],
                                                                list[object]]) -> None:
    floats, ints, bools, texts, mixed = columns
    graded = pd.DataFrame({"net_sales": pd.Series(floats, dtype=float), "order_count": pd.Series(ints, dtype=np.int64),
                           "flag": pd.Series(bools, dtype=bool), "name%s": pd.Series(texts, dtype="str"),
                           "mixed": pd.Series(mixed, dtype=object)})
    names = list(graded.columns)
    values = [[_clean(v) for v in graded[c].tolist()] for c in names]
    want = [json.dumps(dict(zip(names, row)), ensure_ascii=False) for row in zip(*values)]
    assert _metrics_json(graded, names) == want
    assert _metrics_json(graded, []) == ["{}"] * len(graded)
    for c in names:
        got = column_values(graded[c])
        assert all((a is None and b is None) or (a == b and type(a) is type(b)) or (a != a and b != b)
                   for a, b in zip(got, [_clean(v) for v in graded[c].tolist()]))


# rules: the score stage's per-customer texts built column-wise, against the per-row loop it replaced

from grading.config import Config  # noqa: E402
from grading.fields import METRICS  # noqa: E402
from grading.rules.base import distinct_texts, format_value, label_of, numeric_values  # noqa: E402
from grading.rules.score import SCORE, ScoreStage, indicator_points  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.just(0.0), st.just(-0.0)),
                max_size=30))
def test_distinct_texts_match_formatting_each_value(values: list[float]) -> None:
    array = np.array(values, dtype=float)
    assert distinct_texts(array, lambda v: format_value("net_sales", v)).tolist() == \
        [format_value("net_sales", v) for v in array.tolist()]
    assert distinct_texts(array, lambda v: f"{v:g}").tolist() == [f"{v:g}" for v in array.tolist()]


def _reference_score_texts(stage: ScoreStage, table: pd.DataFrame) -> tuple[list[str], list[str]]:
    n = len(table)
    total = np.zeros(n)
    parts: list[list[str]] = [[] for _ in range(n)]
    missing: list[list[str]] = [[] for _ in range(n)]
    for ind in stage.indicators:
        label = label_of(ind.ref)
        values = numeric_values(table, ind.ref)
        pts = indicator_points(ind, values)
        shown = [format_value(ind.ref, v) for v in values.tolist()]
        total += pts * ind.weight
        for j in np.flatnonzero(np.isnan(values)).tolist():
            missing[j].append(label)
        weight = "" if ind.weight == 1 else f"×{ind.weight:g}"
        for i, (v, p) in enumerate(zip(shown, pts.tolist())):
            parts[i].append(f"{label} {v} 得 {p:.4g} 分{weight}")
    total = np.round(total, 6)
    grades = np.full(n, stage.else_grade, dtype=object)
    band_min = np.full(n, np.nan)
    decided = np.zeros(n, bool)
    for band in stage.grades:
        hit = ~decided & (total >= band.min)
        grades[hit] = band.grade
        band_min[hit] = band.min
        decided |= hit
    lowest = stage.grades[-1].min
    reasons = []
    for i in range(n):
        detail = "，".join(parts[i])
        if decided[i]:
            reasons.append(f"{stage.name} {total[i]:.4g} 分（{detail}）≥ {band_min[i]:g} → {grades[i]}")
        else:
            reasons.append(f"{stage.name} {total[i]:.4g} 分（{detail}）< {lowest:g} → {grades[i]}")
    return reasons, ["、".join(m) for m in missing]


_MONEY = st.one_of(st.just(float("nan")), st.floats(-1e9, 1e9, allow_nan=False), st.sampled_from([0.0, 1e6, 5e6]))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(_MONEY, st.one_of(st.just(float("nan")), st.floats(0, 1.5))), max_size=25),
       st.sampled_from([0.25, 0.5, 0.75]))
def test_score_texts_match_the_per_row_loop(rows: list[tuple[float, float]], weight: float) -> None:
    stage_spec = {"type": "score", "name": "综合评分", "else": "C",
                  "grades": [{"grade": "A", "min": 7}, {"grade": "B", "min": 3}],
                  "indicators": [
                      {"metric": "净销售额", "weight": weight,
                       "bands": [{"min": "500万", "points": 9}, {"min": "100万", "points": 6}, {"min": 0, "points": 1}]},
                      {"metric": "回款率", "weight": 1 - weight, "linear": {"low": "50%", "high": "100%", "points_high": 9},
                       "missing_points": 4}]}
    config = Config.model_validate({"sources": {"sales": {"files": ["x.csv"]}}, "period": {"as_of": "2026-06-30"},
                                    "grading": {"stages": [stage_spec]},
                                    "grades": {"A": {"label": "a"}, "B": {"label": "b"}, "C": {"label": "c"}}})
    stage = config.grading.stages[0]
    assert isinstance(stage, ScoreStage)
    data = {m.key: [np.nan] * len(rows) for m in METRICS}
    data["net_sales"] = [r[0] for r in rows]
    data["collection_rate"] = [r[1] for r in rows]
    table = pd.DataFrame(data, index=[f"C{i:03d}" for i in range(len(rows))])
    out = SCORE.apply(stage, table)
    reasons, missing = _reference_score_texts(stage, table)
    assert out.reason.tolist() == reasons
    assert out.missing.tolist() == missing


# credit view: aging buckets filled as arrays, against the .loc assignments they replace

from grading.fields import AGING_BUCKETS  # noqa: E402
from grading.views.credit import BUCKETS, aging  # noqa: E402


def _reference_aging(graded: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(np.nan, index=graded.index, columns=BUCKETS, dtype=float)
    present = [c for c in BUCKETS if c in graded]
    by_columns = graded[present].notna().any(axis=1) if present else pd.Series(False, index=graded.index)
    for c in BUCKETS:
        if c in graded:
            out.loc[by_columns, c] = graded.loc[by_columns, c].astype(float).fillna(0.0)
        else:
            out.loc[by_columns, c] = 0.0
    days_column = "aging_days" if "aging_days" in graded and graded["aging_days"].notna().any() else "overdue_days"
    if days_column in graded and "closing" in graded:
        days = pd.to_numeric(graded[days_column], errors="coerce")
        closing = pd.to_numeric(graded["closing"], errors="coerce")
        derive = ~by_columns & days.notna() & closing.notna()
        lower = -np.inf
        for field, _, upper in AGING_BUCKETS:
            inside = derive & (days > lower) & (days <= upper)
            out.loc[derive, field] = np.where(inside[derive], closing[derive], 0.0)
            lower = upper
    return out


_MAYBE = st.one_of(st.just(float("nan")), st.floats(-1e6, 1e6), st.sampled_from([0.0, 30.0, 31.0, 90.0, 181.0]))


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 8).flatmap(lambda n: st.tuples(
    st.lists(_MAYBE, min_size=n, max_size=n), st.lists(_MAYBE, min_size=n, max_size=n),
    st.lists(_MAYBE, min_size=n, max_size=n))), st.sampled_from(["none", "one", "days"]))
def test_aging_matches_loc_assignments(columns: tuple[list[float], list[float], list[float]], shape: str) -> None:
    closing, days, bucket = columns
    graded = pd.DataFrame({"closing": closing, "overdue_days": days}, index=[f"C{i}" for i in range(len(closing))])
    if shape == "one":
        graded[BUCKETS[1]] = bucket
    elif shape == "days":
        graded["aging_days"] = bucket
    pd.testing.assert_frame_equal(aging(graded), _reference_aging(graded), check_exact=True)


from grading.metrics import _line_rank  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(-2 * 10**11, 2 * 10**11), st.integers(0, 5)), min_size=1, max_size=30),
       st.integers(-10**11, 10**11))
def test_line_rank_orders_lines_as_a_stable_sort(seconds: list[int | None], cut: int) -> None:
    dates = np.array([np.datetime64("NaT") if s is None else np.datetime64(s, "s") for s in seconds],
                     dtype="datetime64[s]")
    upto = dates <= np.datetime64(cut, "s")
    key, row_of = _line_rank(dates, upto)
    lines = np.flatnonzero(upto)
    by_key = lines[np.argsort(key[lines], kind="stable")]
    by_sort = [i for i in np.argsort(dates, kind="stable").tolist() if upto[i]]
    assert by_key.tolist() == by_sort
    assert row_of(key[lines]).tolist() == lines.tolist()


from grading.metrics import _aligned  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["C1", "C2", "C3", "C4"]), unique=True, max_size=4),
       st.lists(st.sampled_from(["C1", "C2", "C3", "C5", "C6"]), unique=True, max_size=5),
       st.sampled_from(["float", "object", "int", "str"]))
def test_aligned_matches_reindex(own: list[str], target: list[str], kind: str) -> None:
    n = len(own)
    data: dict[str, pd.Series] = {
        "float": pd.Series(np.arange(n, dtype=float), dtype=float),
        "object": pd.Series(["a", None, 1.5, "b"][:n], dtype=object),
        "int": pd.Series(np.arange(n), dtype=np.int64),
        "str": pd.Series(["x", "y", "z", "w"][:n], dtype="str"),
    }
    column = data[kind].set_axis(pd.Index(own, dtype=object))
    index = pd.Index(target, dtype=object)
    pd.testing.assert_series_equal(_aligned(column, index, column.index.get_indexer(index)), column.reindex(index),
                                   check_exact=True)


from grading.metrics import _last_named, _master_first  # noqa: E402

_LABEL = st.sampled_from(["C1", "C2", "C3", "C4"])
_VALUE = st.one_of(st.none(), st.sampled_from(["", "甲", "乙", "丙"]))


def _text_column(values: list[str | None], categorical: bool, extra: list[str]) -> pd.Series:
    """`values` as an object column or as a categorical (categories in first-seen order, plus unused ones)."""
    if not categorical:
        return pd.Series(values, dtype=object)
    cats = list(dict.fromkeys([*(v for v in values if v is not None), *extra]))
    return pd.Series(pd.Categorical(values, categories=pd.Index(cats, dtype=object)))


def _same(got: np.ndarray, want: np.ndarray) -> None:
    assert [None if pd.isna(v) else v for v in got.tolist()] == [None if pd.isna(v) else v for v in want.tolist()]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), _LABEL), _VALUE), max_size=25),
       st.lists(st.sampled_from(["C1", "C2", "C3", "C4", "C5"]), unique=True, max_size=5), st.booleans(), st.booleans())
def test_last_named_matches_groupby_last(lines: list[tuple[str | None, str | None]], target: list[str],
                                         cat_codes: bool, cat_names: bool) -> None:
    codes = _text_column([c for c, _ in lines], cat_codes, ["C9"])
    names = _text_column([n for _, n in lines], cat_names, ["丁"])
    index = pd.Index(target, dtype=object)
    rec = pd.DataFrame({"customer_code": codes, "customer_name": names})
    want = rec.loc[rec["customer_name"].ne("")].groupby("customer_code")["customer_name"].last() \
        .reindex(index).to_numpy(dtype=object)
    _same(_last_named(codes, names, index), want)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_LABEL, _VALUE), max_size=4, unique_by=lambda t: t[0]),
       st.lists(st.tuples(st.sampled_from(["C1", "C2", "C3", "C5"]), _VALUE), unique_by=lambda t: t[0], max_size=4),
       st.booleans(), st.booleans())
def test_master_first_matches_reindex_combine_first(master: list[tuple[str, str | None]],
                                                     table: list[tuple[str, str | None]], categorical: bool,
                                                     with_current: bool) -> None:
    column = _text_column([v for _, v in master], categorical, ["丁"]).set_axis(pd.Index([c for c, _ in master], dtype=object))
    index = pd.Index([c for c, _ in table], dtype=object)
    current = pd.Series([v for _, v in table], index=index, dtype=object) if with_current else None
    known = column.replace("", np.nan).reindex(index)
    want = known.combine_first(current) if current is not None else known
    got = _master_first(column, column.index.get_indexer(index), index, current)
    assert got.index.equals(index)
    _same(got.fillna("").astype(str).to_numpy(), want.astype(object).fillna("").astype(str).to_numpy())
    _same(got.to_numpy(dtype=object), want.to_numpy(dtype=object))
