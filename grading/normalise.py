"""Stage 2, normalise: raw rows + layout → a typed DataFrame of canonical fields.

Every row that is dropped (unusable date/amount/code, 合计/小计 rows) or
repaired (padded or full-width codes, "(1,234.00)" negatives, "¥" signs) is
recorded as a Problem with file, sheet, row number, column and value.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .fields import InputField
from .header import Layout
from .problems import Action, Problem
from .read import RawSheet

_TOTAL_EXACT = re.compile(r"^\s*(本页|本期|总|全部)?\s*(合\s*计|小\s*计|总\s*计|累\s*计)\s*([:：].*)?$")
_TOTAL_SUFFIX = re.compile(r"^.{1,40}?\s*(小计|合计)\s*[:：]?\s*$")
_NUM_STRIP = re.compile(r"[,\s¥￥$元]")
_DATE_SEP = re.compile(r"[年月/.]")
_EXCEL_EPOCH = np.datetime64("1899-12-30")


def normalise(sheet: RawSheet, layout: Layout, fields: Sequence[InputField],
              problems: list[Problem], keep_extra: bool = False) -> pd.DataFrame:
    """Typed frame with one column per mapped field plus _file, _sheet, _row;
    with `keep_extra`, every other headed column too, as `col:<header>` (raw values)."""
    data = sheet.rows[layout.data_start:]
    kinds = {f.key: f.kind for f in fields}
    file, name = sheet.file.name, sheet.sheet
    first = sheet.first_row + layout.data_start
    row_numbers = np.arange(first, first + len(data), dtype=np.int64)

    raw: dict[str, list[object]] = {}
    for key, col in layout.columns.items():
        raw[key] = [r[col] if col < len(r) else None for r in data]
    first_cells = [_first_text(r) for r in data]

    frame = pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in raw.items()})
    blank = frame.map(_is_blank).all(axis=1).to_numpy() if len(frame.columns) else np.ones(len(data), bool)

    def report(mask: np.ndarray, column: str, values: Sequence[object], reason: str, action: Action) -> None:
        for i in np.flatnonzero(mask).tolist():
            problems.append(Problem(file, name, int(row_numbers[i]), column, _show(values[i]), reason, action))

    header_of = {k: layout.headers[c] for k, c in layout.columns.items()}
    keep = ~blank

    # 合计 / 小计 rows: recognised by their label, never by substring of a real name.
    codes_raw = raw.get("customer_code", [None] * len(data))
    total = np.zeros(len(data), bool)
    for i in np.flatnonzero(keep):
        labels = [first_cells[i], _text(codes_raw[i])]
        if "customer_name" in raw:
            labels.append(_text(raw["customer_name"][i]))
        if any(_TOTAL_EXACT.match(t) for t in labels if t) or (
            _TOTAL_SUFFIX.match(labels[1]) and not _looks_like_code(labels[1])
        ):
            total[i] = True
    report(total, "", first_cells_or(first_cells, codes_raw), "合计/小计行，不计入客户数据", "提示")
    keep &= ~total

    out = pd.DataFrame(index=range(len(data)))
    for key, values in raw.items():
        kind = kinds[key]
        column = header_of[key]
        if kind == "code":
            text, repaired = _codes(values)
            report(keep & repaired, column, values, "编码含空格或全角字符，已规范化", "已修正")
            out[key] = text
        elif kind == "text":
            out[key] = [_text(v) for v in values]
        elif kind == "number":
            nums, bad, repaired = _numbers(values)
            nums = nums * layout.multipliers.get(key, 1.0)
            report(keep & repaired, column, values, "金额写法特殊（括号负数/货币符号），已按数值读取", "已修正")
            if key in ("amount", "amount_excl_tax", "opening", "billed", "received", "closing"):
                empty = keep & np.isnan(nums) & ~bad
                out[key] = nums
                out[f"_{key}_bad"] = bad
                out[f"_{key}_empty"] = empty
                out[f"_{key}_raw"] = _raw_where(values, bad)
            else:
                report(keep & bad, column, values, "不是有效数字，按空值处理", "已修正")
                out[key] = nums
        elif kind == "date":
            dates, bad = _dates(values)
            out[key] = dates
            out[f"_{key}_bad"] = bad
            out[f"_{key}_empty"] = np.array([_is_blank(v) for v in values], dtype=bool)
            out[f"_{key}_raw"] = _raw_where(values, bad)
    if keep_extra:
        mapped = set(layout.columns.values())
        for col, header in enumerate(layout.headers):
            if col not in mapped and header and f"col:{header}" not in out:
                cells = [_cell_value(r[col]) if col < len(r) else None for r in data]
                out[f"col:{header}"] = pd.Series(cells, dtype=object)
    out["_file"] = file
    out["_sheet"] = name
    out["_row"] = row_numbers
    out["_keep"] = keep
    return out


def drop_invalid(frame: pd.DataFrame, layout: Layout, required: Sequence[str],
                 problems: list[Problem], optional_dates: Sequence[str] = ()) -> pd.DataFrame:
    """Drop rows whose required fields are unusable (or whose optional dates are written but
    unreadable), each listed with its reason."""
    keep = frame["_keep"].to_numpy().copy()
    header_of = {k: layout.headers[c] for k, c in layout.columns.items()}
    checks: list[tuple[np.ndarray, str, str]] = []
    if "customer_code" in required and "customer_code" in frame:
        checks.append((frame["customer_code"].eq("").to_numpy(), "customer_code", "客户编码为空"))
    for key in required:
        if f"_{key}_bad" in frame:
            label = "日期无法识别（支持 2026-05-03、2026/5/3、2026年5月3日、Excel 日期）" if key == "date" \
                else "金额不是有效数字"
            checks.append((frame[f"_{key}_bad"].to_numpy(), key, label))
        if f"_{key}_empty" in frame and key != "date":
            checks.append((frame[f"_{key}_empty"].to_numpy(), key, "金额为空"))
    for key in optional_dates:
        if f"_{key}_bad" in frame:
            written_bad = frame[f"_{key}_bad"].to_numpy() & ~frame[f"_{key}_empty"].to_numpy()
            checks.append((written_bad, key, "日期无法识别（支持 2026-05-03、2026/5/3、2026年5月3日、Excel 日期）"))
    for mask, key, reason in checks:
        hit = keep & mask
        if hit.any():
            col = header_of.get(key, key)
            source = frame[f"_{key}_raw"].to_numpy() if f"_{key}_raw" in frame else None
            files, sheets, rows = (frame[c].tolist() for c in ("_file", "_sheet", "_row"))
            for i in np.flatnonzero(hit).tolist():
                value = "" if source is None else str(source[i])
                problems.append(Problem(str(files[i]), str(sheets[i]), int(rows[i]), col, value, reason, "已跳过"))
            keep &= ~mask
    helper = [c for c in frame.columns if c.startswith("_") and c not in ("_file", "_sheet", "_row")]
    return frame.loc[keep].drop(columns=helper).reset_index(drop=True)


def _raw_where(values: list[object], mask: np.ndarray) -> list[str]:
    return [_show(v) if m else "" for v, m in zip(values, mask)]


def first_cells_or(first: list[str], codes: list[object]) -> list[object]:
    return [f or _text(c) for f, c in zip(first, codes)]


def _first_text(row: list[object]) -> str:
    for v in row:
        if v not in ("", None):
            return _text(v)
    return ""


def _cell_value(v: object) -> object:
    if isinstance(v, str):
        return v.strip()
    return v


def _is_blank(v: object) -> bool:
    return v is None or (isinstance(v, str) and not v.strip()) or (isinstance(v, float) and np.isnan(v))


def _text(v: object) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def _looks_like_code(text: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9._-]+", text))


def _show(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _codes(values: list[object]) -> tuple[list[str], np.ndarray]:
    out: list[str] = []
    repaired = np.zeros(len(values), bool)
    for i, v in enumerate(values):
        if v is None:
            out.append("")
            continue
        if isinstance(v, float):
            out.append(str(int(v)) if v.is_integer() else repr(v))
            continue
        s = str(v)
        clean = unicodedata.normalize("NFKC", s).strip()
        if clean != s and s.strip():
            repaired[i] = True
        out.append(clean)
    return out, repaired


def _numbers(values: list[object]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Floats (NaN for empty), a mask of unparseable cells, a mask of repaired ones."""
    n = len(values)
    nums = np.full(n, np.nan)
    bad = np.zeros(n, bool)
    repaired = np.zeros(n, bool)
    for i, v in enumerate(values):
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            nums[i] = v
        elif isinstance(v, str):
            s = v.strip()
            if not s or s in ("-", "—"):
                continue
            try:
                nums[i] = float(s.replace(",", ""))
                continue
            except ValueError:
                pass
            t = _NUM_STRIP.sub("", unicodedata.normalize("NFKC", s))
            neg = t.startswith("(") and t.endswith(")")
            if neg:
                t = t[1:-1]
            try:
                nums[i] = -float(t) if neg else float(t)
                repaired[i] = True
            except ValueError:
                bad[i] = True
        elif v is not None:
            bad[i] = True
    return nums, bad, repaired


def _dates(values: list[object]) -> tuple[pd.Series, np.ndarray]:
    n = len(values)
    out = np.full(n, np.datetime64("NaT"), dtype="datetime64[s]")
    bad = np.zeros(n, bool)
    texts: dict[int, str] = {}
    for i, v in enumerate(values):
        if isinstance(v, dt.datetime):
            out[i] = np.datetime64(v.replace(tzinfo=None), "s")
        elif isinstance(v, dt.date):
            out[i] = np.datetime64(v, "s")
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            if 1 <= v < 2958466:  # Excel serials 1900-01-01 … 9999-12-31
                out[i] = _EXCEL_EPOCH + np.timedelta64(int(round(v * 86400)), "s")
            else:
                bad[i] = True
        elif isinstance(v, str) and v.strip():
            texts[i] = v
        else:
            bad[i] = True
    if texts:
        idx = np.fromiter(texts.keys(), dtype=np.int64)
        cleaned = pd.Series(
            [_DATE_SEP.sub("-", unicodedata.normalize("NFKC", t).strip().split()[0]).rstrip("日-")
             for t in texts.values()]
        )
        parsed = pd.to_datetime(cleaned, format="%Y-%m-%d", errors="coerce")
        compact = parsed.isna() & cleaned.str.fullmatch(r"\d{8}")
        if compact.any():
            parsed[compact] = pd.to_datetime(cleaned[compact], format="%Y%m%d", errors="coerce")
        ok = parsed.notna().to_numpy()
        out[idx[ok]] = parsed[ok].to_numpy().astype("datetime64[s]")
        bad[idx[~ok]] = True
    return pd.Series(out), bad
