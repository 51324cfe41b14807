"""Formula-safe text, shared by every writer (xlsx, CSV, the add-in): export
strings never become formulas."""

from __future__ import annotations

import math

FORMULA_STARTS = ("=", "+", "-", "@")


def csv_safe(value: object) -> object:
    """A value for a CSV cell: text that Excel would run as a formula gets a leading ', NaN is empty."""
    if isinstance(value, str) and value[:1] in FORMULA_STARTS:
        return "'" + value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value


def xml_escape(text: str) -> str:
    """Text as XML character data: & < > written as entities (xml.sax.saxutils.escape without importing
    it, which brings urllib, http and ssl along: 10 ms of every run's start)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
