"""One rule for codes (customer, document, item) across every file format.

- A whole number becomes integer text: the xlsx number 17850.0 → "17850".
- Text that a numeric export wrote as "17850.0" is read the same way → "17850".
- Text codes keep their leading zeros ("00123" stays "00123").
- Full-width characters and padding are normalised (NFKC, strip); invisible
  characters (zero-width space, BOM, soft hyphen …) are removed.

After loading, `code_findings` lists the cases a user should look at: one code
with several names, and codes that differ only by leading zeros.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .problems import Problem

_WHOLE_TEXT = re.compile(r"^([+-]?\d+)\.0+$")

CodeFix = str
"""How a code was repaired: "" (as written), "space" (padding / full-width), "invisible", "float"."""


def _invisible(ch: str) -> bool:
    """Format characters (Cf: zero-width space/joiners, BOM, soft hyphen, bidi marks) and other controls."""
    return unicodedata.category(ch) in ("Cf", "Cc")


def header_text(value: object) -> str:
    """A header cell as text: 573415.0 → "573415", None → ""."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def normalise_code(value: object) -> tuple[str, CodeFix]:
    """The code text of one cell and how it was repaired (see module doc)."""
    if value is None or isinstance(value, bool):
        return ("" if value is None else str(value)), ""
    if isinstance(value, float):
        if math.isnan(value):
            return "", ""
        return (str(int(value)) if value.is_integer() else repr(value)), ""
    if isinstance(value, (int, np.integer)):
        return str(int(value)), ""
    raw = str(value)
    text = unicodedata.normalize("NFKC", raw)
    fix: CodeFix = ""
    if any(_invisible(ch) for ch in text):
        text = "".join(ch for ch in text if not _invisible(ch))
        fix = "invisible"
    text = text.strip()
    if not fix and text != raw and raw.strip():
        fix = "space"
    m = _WHOLE_TEXT.match(text)
    if m:
        text = m.group(1).lstrip("+")
        fix = fix or "float"
    return text, fix


FIX_REASONS = {
    "space": "编码含空格或全角字符，已规范化",
    "invisible": "编码含不可见字符（如零宽空格），已删除",
}
FLOAT_NOTE = "编码是数值导出的小数形式（如 {example}），已按整数编码 {fixed} 读取（与 xlsx 中的数字编码一致）"


SAME_CODE_NAMES = ("同一客户编码对应多个客户名称：按同一客户统计，名称取最近一行；"
                   "如实为不同客户，请在 ERP 中更正编码")
LEADING_ZEROS = ("客户编码只差前导零：按不同客户处理（文本编码保留前导零）；"
                 "如是同一客户，请在 ERP 导出中统一编码")


@dataclass(frozen=True)
class CodeUse:
    """Where a source's codes came from, for the cross-row checks."""

    source: str          # 销售明细 / 应收账款余额表 …
    frame: pd.DataFrame  # with customer_code (and customer_name, _file, _sheet, _row if present)


def _first_rows(frame: pd.DataFrame) -> dict[str, tuple[str, str, int | None]]:
    """Per code: file, sheet and row of its first line."""
    codes = frame["customer_code"].astype(str)
    first = codes.drop_duplicates()
    idx = first.index.to_numpy()
    files = frame["_file"].astype(str).to_numpy()[idx] if "_file" in frame else [""] * len(idx)
    sheets = frame["_sheet"].astype(str).to_numpy()[idx] if "_sheet" in frame else [""] * len(idx)
    rows = frame["_row"].to_numpy()[idx].tolist() if "_row" in frame else [None] * len(idx)
    return {c: (str(f), str(s), r) for c, f, s, r in zip(first.tolist(), files, sheets, rows)}


def code_findings(uses: Iterable[CodeUse], names_used_as_codes: frozenset[str] = frozenset()) -> list[Problem]:
    """Problems (提示) for: one customer code with several names in a source, and codes that
    differ only by leading zeros (`00123` vs `123`, across all sources). Both are kept as they are."""
    out: list[Problem] = []
    seen: dict[str, tuple[str, str, str, int | None]] = {}  # code → (source, file, sheet, row)
    for use in uses:
        frame = use.frame
        if "customer_code" not in frame or not len(frame):
            continue
        frame = frame.reset_index(drop=True)
        codes = frame["customer_code"].astype(str).to_numpy()
        where = _first_rows(frame)
        if "customer_name" in frame and use.source not in names_used_as_codes:
            names = frame["customer_name"].astype(str).to_numpy()
            pairs = pd.DataFrame({"code": codes, "name": names})
            pairs = pairs[(pairs["name"] != "") & (pairs["code"] != "")]
            counts = pairs.groupby(["code", "name"], sort=True).size()
            per_code = counts.groupby(level=0).size()
            for code in per_code[per_code > 1].index.tolist():
                listed = counts.loc[code].sort_values(ascending=False, kind="stable")
                shown = "、".join(f"「{n}」{c} 行" for n, c in listed.items())
                file, sheet, row = where[code]
                out.append(Problem(file, sheet, row, "客户编码", f"{code}：{shown}（{use.source}）",
                                   SAME_CODE_NAMES, "提示"))
        for code, (file, sheet, row) in where.items():
            if code and code not in seen:
                seen[code] = (use.source, file, sheet, row)
    groups: dict[str, list[str]] = {}
    for code in seen:
        groups.setdefault(code.lstrip("0") or "0", []).append(code)
    for key, members in sorted(groups.items()):
        if len(members) < 2:
            continue
        members.sort()
        shown = "、".join(f"{c}（{seen[c][0]}）" for c in members)
        source, file, sheet, row = seen[members[0]]
        out.append(Problem(file, sheet, row, "客户编码", shown, LEADING_ZEROS, "提示"))
    return out
