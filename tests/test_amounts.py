"""The amount parser: the forms ERP exports use are read on purpose, every other form is reported."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grading.amounts import MAX_AMOUNT, ZERO_DASHES, parse_amount, parse_amounts


@pytest.mark.parametrize(("text", "value", "repaired"), [
    ("1234.50", 1234.5, False), ("-1234.5", -1234.5, False), ("1,234.50", 1234.5, False),
    ("12,345,678.9", 12345678.9, False), ("(1,234.00)", -1234.0, True), ("1,234-", -1234.0, True),
    ("¥1,234", 1234.0, True), ("￥1,234.5", 1234.5, True), ("1,234元", 1234.0, True), ("—", 0.0, True),
    ("-", 0.0, True), ("１，２３４．５", 1234.5, True), ("（１２）", -12.0, True), (" 7 ", 7.0, False),
])
def test_forms_read_on_purpose(text: str, value: float, repaired: bool) -> None:
    assert parse_amount(text) == (value, False, repaired)
    nums, bad, fixed = parse_amounts(np.array([text, "1"], dtype=object))
    assert (nums[0], bad[0], fixed[0]) == (value, False, repaired)


@pytest.mark.parametrize("text", ["inf", "-inf", "nan", "NaN", "Infinity", "1e308", "1e3", "1E+03", "1,2345",
                                  "12,34,567", "1_000", "12abc", "(-5)", "--5", "1.2.3", "0x10", ",123", "1,234,",
                                  "1 234", "١٢", "2e15", "1" + "0" * 16])
def test_other_forms_are_reported(text: str) -> None:
    value, bad, _ = parse_amount(text)
    assert bad and math.isnan(value)
    nums, bads, _ = parse_amounts(np.array([text] * 20 + ["1,234.00"] * 2, dtype=object))  # bulk path too
    assert bads[:20].all() and np.isnan(nums[:20]).all()


@pytest.mark.parametrize("value", [math.inf, -math.inf, 1e308, MAX_AMOUNT * 10, True])
def test_numeric_cells_out_of_range_are_reported(value: object) -> None:
    assert parse_amount(value)[1]
    assert parse_amounts(np.array([value, 1.0], dtype=object))[1].tolist() == [True, False]


def _grouped(n: int) -> str:
    return f"{n:,}"


@settings(max_examples=300, deadline=None)
@given(cents=st.integers(min_value=-10**14, max_value=10**14), style=st.sampled_from(
    ["plain", "grouped", "paren", "trailing", "yuan", "fullwidth"]))
def test_written_amounts_read_back_exactly(cents: int, style: str) -> None:
    """Any amount written in an accepted form reads back to the same cents; negatives only where the form
    allows them."""
    a = abs(cents)
    text = f"{a // 100:,}.{a % 100:02d}" if style != "plain" else f"{a // 100}.{a % 100:02d}"
    sign = -1 if cents < 0 else 1
    if style == "plain" or style == "grouped":
        text = ("-" if cents < 0 else "") + text
    elif style in ("paren", "trailing"):
        text = (f"({text})" if style == "paren" else f"{text}-") if cents < 0 else text
    elif style == "yuan":
        text = ("-" if cents < 0 else "") + "¥" + text
    else:
        text = ("-" if cents < 0 else "") + text.translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789,."})
    value, bad, _ = parse_amount(text)
    assert not bad and round(value * 100) == sign * a
    nums, bads, _ = parse_amounts(np.array([text] * 12, dtype=object))
    assert not bads.any() and round(nums[0] * 100) == sign * a


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("0123456789,.-+()¥元eE_ infa—１，")), max_size=12))
def test_bulk_and_single_agree_and_never_guess(text: str) -> None:
    """The fast bulk path gives what the one-by-one parser gives; a result is either a finite amount within
    the bound, or reported as unreadable, or empty for a blank cell."""
    single = parse_amount(text)
    nums, bad, fixed = parse_amounts(np.array([text] * 12, dtype=object))
    assert bool(bad[0]) == single[1]
    assert (math.isnan(nums[0]) and math.isnan(single[0])) or nums[0] == single[0]
    if not single[1] and not math.isnan(single[0]):
        assert math.isfinite(single[0]) and abs(single[0]) <= MAX_AMOUNT
        digits = [c for c in text if c.isdigit()]
        assert digits or text.strip() in ZERO_DASHES  # a number comes from digits, or is a zero dash
    if math.isnan(single[0]) and not single[1]:
        assert not text.strip()
