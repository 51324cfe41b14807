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
from typing import Any

import numpy as np
import pandas as pd

from .header_text import header_text as header_text  # shared with the writers

from .problems import Problem

_WHOLE_TEXT = re.compile(r"^([+-]?\d+)\.0+$")

CodeFix = str
"""How a code was repaired: "" (as written), "space" (padding / full-width), "invisible", "float"."""


def _invisible(ch: str) -> bool:
    """Format characters (Cf: zero-width space/joiners, BOM, soft hyphen, bidi marks) and other controls."""
    return unicodedata.category(ch) in ("Cf", "Cc")


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
    if raw.isascii() and raw.isalnum():  # the common case: nothing to normalise
        return raw, ""
    text = unicodedata.normalize("NFKC", raw)
    fix: CodeFix = ""
    if not text.isprintable() and any(_invisible(ch) for ch in text):  # printable: no Cc/Cf character
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


_BLOCK = 1024


def _plain(text: str) -> bool:
    """A code normalise_code leaves as it is, unrepaired (and so is every string made of such codes):
    ASCII (NFKC changes nothing), printable (no control character), no space (nothing to strip: the
    only printable ASCII white space), no "." (not "17850.0"). "XSCK-2025-001" and "" are plain."""
    return text.isascii() and (text.isalnum() or (text.isprintable() and " " not in text and "." not in text))


_PLAIN_BYTE = np.zeros(256, dtype=bool)  # the bytes of plain codes: printable ASCII other than space and "."
_PLAIN_BYTE[0x21:0x7F] = True
_PLAIN_BYTE[ord(".")] = False


def plain_in_arrow(texts: Any) -> np.ndarray:
    """_plain of every string of an Arrow string array without nulls, read from its bytes: a string is plain
    exactly when each of its bytes is printable ASCII other than space and "." (UTF-8 writes every other
    character in bytes ≥ 0x80), so one pass over the data buffer, no Python string."""
    import pyarrow as pa

    n = len(texts)
    plain = np.ones(n, dtype=bool)
    if not n:
        return plain
    width = np.int64 if pa.types.is_large_string(texts.type) else np.int32
    _, offsets_buffer, data_buffer = texts.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=width)[texts.offset: texts.offset + n + 1].astype(np.int64)
    if data_buffer is None or offsets[-1] == offsets[0]:
        return plain  # every string empty
    data = np.frombuffer(data_buffer, dtype=np.uint8)[offsets[0]: offsets[-1]]
    filled = np.flatnonzero(np.diff(offsets))  # the non-empty strings (an empty one is plain)
    # per string, any byte outside the plain set (one flag per byte, one per string: memory as the text's size)
    plain[filled] = ~np.logical_or.reduceat(~_PLAIN_BYTE[data], offsets[filled] - offsets[0])
    return plain


def normalise_codes(uniques: np.ndarray, plain: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """normalise_code of every value of `uniques` (distinct values, as pandas.factorize gives them):
    (texts, fixes) as object arrays, fixes None when every value is a plain code (all as written). Fast path
    for the common case, plain text codes (_plain: one string test over a block of them, else one per value;
    or `plain`, the _plain of each value when all are text, known already: plain_in_arrow): such a code is
    its own text, unrepaired, exactly as normalise_code says.
    Every other value goes through normalise_code. When every text equals its value (all are text codes as
    written), `uniques` itself is returned as the texts."""
    n = len(uniques)
    if plain is None:
        strs = uniques.tolist()
        plain = np.zeros(n, dtype=bool)  # any value not text: each goes through normalise_code
        if n and set(map(type, strs)) == {str}:
            for a in range(0, n, _BLOCK):  # a block of plain codes passes as one string ("" passes as well)
                joined = "".join(strs[a: a + _BLOCK])
                plain[a: a + _BLOCK] = True if _plain(joined) else [_plain(u) for u in strs[a: a + _BLOCK]]
    if plain.all():
        return uniques, None
    fixes = np.empty(n, dtype=object)
    texts = np.empty(n, dtype=object)
    texts[plain] = uniques[plain]
    fixes[plain] = ""
    as_written = True
    for i in np.flatnonzero(~plain).tolist():
        u = uniques[i]
        texts[i], fixes[i] = normalise_code(u)
        as_written = as_written and type(u) is str and texts[i] == u
    return (uniques if as_written else texts), fixes


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


def label_ids(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer ids per row (-1 for missing) and the text of each id."""
    cat = column if isinstance(column.dtype, pd.CategoricalDtype) else column.astype(str).astype("category")
    categories = cat.cat.categories
    if pd.api.types.infer_dtype(categories, skipna=False) != "string":  # all text already: no conversion
        categories = categories.astype(str)
    return cat.cat.codes.to_numpy(dtype=np.int64), np.asarray(categories, dtype=object)


def first_rows(ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ids (0..k-1) that occur and the position of each one's first row (O(n), no sort)."""
    first = np.full(k, -1, dtype=np.int64)
    positions = np.arange(len(ids), dtype=np.int64)
    ok = ids >= 0
    first[ids[ok][::-1]] = positions[ok][::-1]  # the last write per id is its first row
    used = np.flatnonzero(first >= 0)
    return used, first[used]


def values_at(column: pd.Series, rows: np.ndarray) -> list[object]:
    """column[rows] (positions) without materialising a whole categorical column as text."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy()[rows]
        categories = np.asarray([*column.cat.categories.tolist(), None], dtype=object)
        return list(categories[codes])  # code -1 → the trailing None
    return list(column.to_numpy()[rows])


def location_columns(frame: pd.DataFrame, rows: np.ndarray) -> tuple[list[str], list[str], list[int | None]]:
    """The file, sheet and row number of the lines at `rows` (positions), as columns."""
    files = values_at(frame["_file"], rows) if "_file" in frame else [""] * len(rows)
    sheets = values_at(frame["_sheet"], rows) if "_sheet" in frame else [""] * len(rows)
    numbers = values_at(frame["_row"], rows) if "_row" in frame else [None] * len(rows)
    return [str(f) for f in files], [str(s) for s in sheets], [None if r is None else int(str(r)) for r in numbers]


def _locations(frame: pd.DataFrame, rows: np.ndarray) -> list[tuple[str, str, int | None]]:
    return list(zip(*location_columns(frame, rows)))


def code_findings(uses: Iterable[CodeUse], names_used_as_codes: frozenset[str] = frozenset()) -> list[Problem]:
    """Problems (提示) for: one customer code with several names in a source, and codes that
    differ only by leading zeros (`00123` vs `123`, across all sources). Both are kept as they are.
    Works on integer ids (no string group-bys), once per distinct code; a finding's location (the
    code's first row) is looked up only for the codes a finding names."""
    out: list[Problem] = []
    firsts: list[tuple[CodeUse, dict[str, int]]] = []  # per source: code → position of its first row
    for use in uses:
        frame = use.frame
        if "customer_code" not in frame or not len(frame):
            continue
        cid, clabels = label_ids(frame["customer_code"])
        used, first = first_rows(cid, len(clabels))
        first_of = dict(zip(clabels[used].tolist(), first.tolist()))
        firsts.append((use, first_of))
        if "customer_name" in frame and use.source not in names_used_as_codes:
            out += _name_clashes(use, cid, clabels, first_of)
    return out + _leading_zeros(firsts)


def _location(frame: pd.DataFrame, position: int) -> tuple[str, str, int | None]:
    return _locations(frame, np.array([position], dtype=np.int64))[0]


def _name_clashes(use: CodeUse, cid: np.ndarray, clabels: np.ndarray, first_of: dict[str, int]) -> list[Problem]:
    """One code with several names within one source: a 提示 per code, names by count."""
    frame = use.frame
    nid, nlabels = label_ids(frame["customer_name"])
    ok_c = np.append(clabels != "", False)  # id -1 → False
    ok_n = np.append(nlabels != "", False)
    valid = ok_c[cid] & ok_n[nid]
    width = max(len(nlabels), 1)
    ids, pairs = pd.factorize(cid[valid] * width + nid[valid])  # distinct (code, name); order irrelevant:
    counts = np.bincount(ids, minlength=len(pairs))  # the clash table is sorted by code, count, name below
    pc, pn = pairs // width, pairs % width
    per_code = np.bincount(pc, minlength=len(clabels))
    clash = np.flatnonzero(per_code > 1)
    out: list[Problem] = []
    if not len(clash):
        return out
    sel = np.isin(pc, clash)
    table = pd.DataFrame({"code": clabels[pc[sel]], "name": nlabels[pn[sel]], "n": counts[sel]})
    table = table.sort_values(["code", "n", "name"], ascending=[True, False, True], kind="stable")
    for code, group in table.groupby("code", sort=True):
        shown = "、".join(f"「{n}」{c} 行" for n, c in zip(group["name"], group["n"]))
        file, sheet, row = _location(frame, first_of[str(code)])
        out.append(Problem(file, sheet, row, "客户编码", f"{code}：{shown}（{use.source}）",
                           SAME_CODE_NAMES, "提示"))
    return out


def _unpadded(code: str) -> str:
    """A code without its leading zeros ("0" for zeros only)."""
    return code.lstrip("0") or "0"


def _leading_zeros(firsts: list[tuple[CodeUse, dict[str, int]]]) -> list[Problem]:
    """Codes of all sources that differ only by leading zeros: a 提示 per group, at the first row (in
    source order) of its smallest member. Two such codes differ, so one of them starts with "0"."""
    zero_keys = {_unpadded(code) for _, first_of in firsts for code in first_of if code.startswith("0")}
    groups: dict[str, set[str]] = {}
    for _, first_of in firsts:
        for code in first_of:
            if code and _unpadded(code) in zero_keys:
                groups.setdefault(_unpadded(code), set()).add(code)
    out: list[Problem] = []
    for key in sorted(k for k, members in groups.items() if len(members) > 1):
        members = sorted(groups[key])
        homes = [next((use, first_of) for use, first_of in firsts if c in first_of) for c in members]
        shown = "、".join(f"{c}（{use.source}）" for c, (use, _) in zip(members, homes))
        use, first_of = homes[0]  # the smallest member's first source
        file, sheet, row = _location(use.frame, first_of[members[0]])
        out.append(Problem(file, sheet, row, "客户编码", shown, LEADING_ZEROS, "提示"))
    return out
