"""Header text made comparable (NFKC, no spaces or markers, no unit suffix):
shared by the reader (finding export columns) and the writers (finding the
template's columns)."""

from __future__ import annotations

import re
import unicodedata

UNIT_IN_HEADER = re.compile(r"[（(]\s*(万元|万|元)\s*[)）]")


def norm_header(value: object) -> str:
    """Comparable header text: NFKC, no spaces, no '*' markers or unit suffix, lower case."""
    text = unicodedata.normalize("NFKC", str(value)).strip()
    text = UNIT_IN_HEADER.sub("", text)
    return re.sub(r"[\s*＊:：]", "", text).lower()
