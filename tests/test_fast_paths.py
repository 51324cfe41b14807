"""Fast paths of the hot loop (issue #15) against the reference they replace: same results by construction,
checked here on generated values."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from pandas.api.types import union_categoricals

from grading.load import concat_frames

_LABELS = st.sampled_from(["", "A", "a", "00123", "123", "客户甲", "客户乙", " x", "17850", "Ｂ"])


def _part(values: list[str | None]) -> pd.Series:
    cat = pd.Categorical(values, categories=pd.Index(list(dict.fromkeys(v for v in values if v is not None)),
                                                     dtype=object))
    return pd.Series(cat)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.one_of(st.none(), _LABELS), max_size=8), min_size=2, max_size=4))
def test_concat_frames_categoricals_match_union_categoricals(parts_values: list[list[str | None]]) -> None:
    parts = [_part(v) for v in parts_values]
    got = concat_frames([pd.DataFrame({"c": p}) for p in parts])["c"]
    want = union_categoricals([p.astype(pd.CategoricalDtype(p.cat.categories.astype(object))) for p in parts],
                              ignore_order=True)
    assert isinstance(got.dtype, pd.CategoricalDtype)
    assert got.cat.categories.dtype == object
    assert got.cat.categories.tolist() == want.categories.tolist()
    assert got.cat.codes.tolist() == want.codes.tolist()
    assert got.cat.codes.dtype == want.codes.dtype
    assert got.astype(object).where(got.notna(), None).tolist() == \
        [v for values in parts_values for v in values]


def test_concat_frames_mixed_columns_kept() -> None:
    a = pd.DataFrame({"c": _part(["x", "y"]), "n": [1.0, 2.0]})
    b = pd.DataFrame({"c": _part(["y", None, "z"])})
    out = concat_frames([a, b])
    assert out["c"].cat.categories.tolist() == ["x", "y", "z"]
    assert out["c"].astype(object).where(out["c"].notna(), None).tolist() == ["x", "y", "y", None, "z"]
    assert np.isnan(out["n"].to_numpy(dtype=float)[2:]).all()
