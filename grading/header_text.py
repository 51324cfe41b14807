"""Header text made comparable (NFKC, no spaces, markers, unit suffix or
separators): shared by the reader (finding export columns) and the writers
(finding the template's columns)."""

from __future__ import annotations

import math
import re
import unicodedata

UNIT_IN_HEADER = re.compile(r"[（(]\s*(万元|万|元)\s*[)）]")


def header_text(value: object) -> str:
    """A header cell as text: 573415.0 → "573415", None → ""."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def norm_header(value: object) -> str:
    """Comparable header text: NFKC, no spaces, '*' markers, unit suffix or `_ . -` separators, lower
    case (so `Invoice No.`, `InvoiceNo`, `invoice_no` and `INVOICE NO` are one header)."""
    text = unicodedata.normalize("NFKC", header_text(value))
    text = UNIT_IN_HEADER.sub("", text)
    return re.sub(r"[\s*＊:：_.\-]", "", text).lower()
