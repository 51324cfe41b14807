"""Find the header row of a messy export and map its columns to canonical fields.

Handles title/filter rows above the header, a two-level merged header
(本期发生 → 本期应收 / 本期收回), units written in a title row ("单位：万元")
or in a header ("金额(万元)"), and aliases from config before built-in ones.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .codes import header_text
from .derive import AmountPlan, derivation_hint, formula_missing, plan_amount, unit_price_mapped_as_amount
from .errors import AmountIsUnitPrice, DuplicateColumns, HeaderNotFound, MissingColumn
from .fields import InputField
from .xlsx_template import col_letters
from .header_text import UNIT_IN_HEADER as _UNIT_IN_HEADER, norm_header as norm_header
from .read import RawSheet

SCAN_ROWS = 30
_UNIT_IN_TITLE = re.compile(r"单位\s*[:：]\s*(万元|万|元)")


@dataclass(frozen=True)
class Layout:
    """Where the header is and which column holds which field (0-based indices)."""

    header_index: int          # last header row (0-based in RawSheet.rows)
    header_rows: int           # 1 or 2
    columns: Mapping[str, int]
    headers: Sequence[str]     # display text of every column of the header
    multipliers: Mapping[str, float] = field(default_factory=dict)
    amount_plan: AmountPlan | None = None  # sales: the amount from its column or by a formula

    @property
    def data_start(self) -> int:
        return self.header_index + 1


def detect_layout(
    sheet: RawSheet,
    fields: Sequence[InputField],
    extra_aliases: Mapping[str, Sequence[str]],
    required: Sequence[str],
    header_row: int | None = None,
    unit: str | None = None,
    source_label: str = "",
    amount_target: str | None = None,
    amount_from: str | None = None,
    columns_key: str = "",
) -> Layout:
    picks = {k: _picks(v) for k, v in extra_aliases.items()}  # "价税合计#2": the 2nd column of that name
    raw_aliases = {f.key: list(dict.fromkeys((*(a for a, _ in picks.get(f.key, ())), *f.aliases))) for f in fields}
    aliases = {k: [norm_header(a) for a in names] for k, names in raw_aliases.items()}
    nth = {(k, norm_header(a)): n for k, pairs in picks.items() for a, n in pairs if n}
    alias_set = {a: k for k, names in aliases.items() for a in names}
    rows = sheet.rows
    if header_row is not None:
        index = header_row - sheet.first_row
        if not 0 <= index < len(rows):
            raise HeaderNotFound(
                f"{sheet.where}：config.yaml 指定的表头行 {header_row} 超出数据范围"
                f"（第 {sheet.first_row}–{sheet.first_row + len(rows) - 1} 行）。"
            )
    else:
        scores = [
            (len({alias_set[n] for h in row if h not in ("", None)
                  for n in map(norm_header, _variants(header_text(h))) if n in alias_set}), -i)
            for i, row in enumerate(rows[:SCAN_ROWS])
        ]
        best, neg = max(scores, default=(0, 0))
        index = -neg
        if best < min(2, len(required)):
            shown = "；".join(
                f"第 {sheet.first_row + i} 行：" + "、".join(header_text(v) for v in row if v not in ("", None))[:80]
                for i, row in enumerate(rows[:5])
            )
            raise HeaderNotFound(
                f"{source_label}{sheet.where}：在前 {SCAN_ROWS} 行中找不到表头"
                f"（需要如 {'、'.join(f.label for f in fields if f.key in required)} 等列）。"
                f"文件开头是：{shown}。请确认文件类型正确，或在 config.yaml 中用 header_row 指定表头行。"
            )
    headers = [_text(v) for v in rows[index]]
    header_rows = 1
    nxt = rows[index + 1] if index + 1 < len(rows) else []
    lower = [_text(v) for v in nxt]
    upper_keys = {alias_set.get(norm_header(h)) for h in headers} - {None}
    lower_hits = {alias_set.get(norm_header(h)) for h in lower} - {None} - upper_keys
    if lower_hits and all(isinstance(v, str) or v is None for v in nxt):
        headers = _merge_two_levels(headers, lower)
        header_rows = 2
        index += 1

    columns: dict[str, int] = {}
    candidates = [[norm_header(p) for p in _variants(h)] for h in headers]
    duplicates: list[str] = []
    reported: set[str] = set()
    configured = {k: [norm_header(a) for a, _ in picks.get(k, ())] for k in aliases}
    for pass_aliases in (configured, aliases):  # the config's aliases win over every built-in one
        for f in fields:
            if f.key in columns or f.key in reported:
                continue
            for alias in pass_aliases[f.key]:
                matching = [c for c, names in enumerate(candidates) if alias in names and c not in columns.values()]
                if not matching:
                    continue
                n = nth.get((f.key, alias))
                if n is not None:
                    if n > len(matching):
                        continue
                    columns[f.key] = matching[n - 1]
                elif len(matching) > 1:
                    reported.add(f.key)
                    duplicates.append(_duplicate_message(sheet, f, headers[matching[0]], matching, index,
                                                         header_rows, columns_key))
                else:
                    columns[f.key] = matching[0]
                break
    if duplicates:
        raise DuplicateColumns(f"{source_label}" + "\n".join(duplicates))

    if "customer_code" in required and "customer_code" not in columns and "customer_name" in columns:
        columns["customer_code"] = columns["customer_name"]
    missing = [k for k in required if k not in columns]
    plan = plan_amount(amount_target, amount_from, columns) \
        if amount_target is not None and amount_target in required else None
    hint = ""
    if amount_target is not None and amount_target in missing:
        if plan is not None and plan.formula is not None:
            missing.remove(amount_target)
        else:
            hint = derivation_hint(columns, headers, {f.key: f.label for f in fields})
    missing += [k for k in formula_missing(plan, columns) if k not in missing]
    if missing:
        raise MissingColumn(
            "\n".join(_missing_message(sheet, f, raw_aliases[f.key], headers, index, header_rows, source_label)
                       + (hint if f.key == amount_target else "")
                       for f in fields if f.key in missing)
        )
    if plan is not None and plan.formula is None and amount_from is None and "unit_price" in aliases:
        header = headers[columns[plan.target]]
        if unit_price_mapped_as_amount(norm_header(header), set(aliases["unit_price"])):
            raise AmountIsUnitPrice(
                f"{source_label}{sheet.where}：作为金额的列「{header}」是单价，按它求和会把单价当作销售额。"
                f"请从 config.yaml 的 sources.sales.columns.{plan.target} 中删除「{header}」，"
                "金额将按 数量 × 单价 自动计算；如果这一列确实是每行的金额，请在 sources.sales 下写 amount_from: 金额列。"
            )

    title_unit = unit
    if title_unit is None:
        for row in rows[: max(0, index - header_rows + 1)]:
            for v in row:
                m = _UNIT_IN_TITLE.search(str(v)) if isinstance(v, str) else None
                if m:
                    title_unit = m.group(1)
    base = 1e4 if title_unit in ("万元", "万") else 1.0
    multipliers: dict[str, float] = {}
    by_key = {f.key: f for f in fields}
    for key, col in columns.items():
        if by_key[key].kind != "number":
            continue
        m = _UNIT_IN_HEADER.search(headers[col])
        multipliers[key] = (1e4 if m.group(1) in ("万元", "万") else 1.0) if m else base
    return Layout(index, header_rows, columns, headers, multipliers, plan)


def _picks(names: Sequence[str]) -> list[tuple[str, int | None]]:
    """Config aliases; "名称#2" picks the 2nd column whose header is 名称."""
    out: list[tuple[str, int | None]] = []
    for name in names:
        m = re.fullmatch(r"(.+?)#([1-9][0-9]?)", name)
        out.append((m.group(1), int(m.group(2))) if m else (name, None))
    return out


def _duplicate_message(sheet: RawSheet, f: InputField, header: str, cols: list[int], index: int,
                       header_rows: int, columns_key: str) -> str:
    first = sheet.first_row + index - header_rows + 1
    letters = "、".join(f"第 {col_letters(c)} 列" for c in cols)
    key = columns_key or "sources.<来源>.columns"
    return (f"{sheet.where} 第 {first} 行有 {len(cols)} 列的列名都是「{header}」（{letters}），都对应字段「{f.label}」，"
            f"无法确定用哪一列，已停止。请在 config.yaml 的 {key} 中指定，例如 {f.key}: [\"{header}#2\"] "
            f"表示用第 2 个「{header}」列（第 {col_letters(cols[1])} 列）；或在导出中删除或改名多余的列。")


def _text(v: object) -> str:
    return header_text(v)


_BILINGUAL = (
    re.compile(r"^\s*([^\x00-\x7f][^A-Za-z]*?)\s*[(（\[|]?\s*([A-Za-z][A-Za-z0-9 ._#&'-]*?)\s*[)）\]]?\s*$"),
    re.compile(r"^\s*([A-Za-z][A-Za-z0-9 ._#&'-]*?)\s*[(（\[|]?\s*([^\x00-\x7f][^A-Za-z]*?)\s*[)）\]]?\s*$"),
)


def _variants(header: str) -> list[str]:
    """The header, its last part after '/', both parts joined (`本期/应收` → 本期应收: a two-level header
    whose lower cells do not repeat the parent's words), and each language of a bilingual header
    (`客户编码 Customer Code`, `Customer Code（客户编码）`)."""
    parts = header.split("/")
    out = [header, parts[-1], parts[-2] + parts[-1]] if len(parts) > 1 else [header]
    for pattern in _BILINGUAL:
        m = pattern.match(header)
        if m:
            out += [m.group(1), m.group(2)]
    return out


def _merge_two_levels(upper: list[str], lower: list[str]) -> list[str]:
    width = max(len(upper), len(lower))
    upper = upper + [""] * (width - len(upper))
    lower = lower + [""] * (width - len(lower))
    out: list[str] = []
    parent = ""
    for u, lo in zip(upper, lower):
        if u:
            parent = u
        if lo and u:
            out.append(f"{u}/{lo}")
        elif lo:
            out.append(f"{parent}/{lo}" if parent else lo)
        else:
            out.append(u)
            parent = u if u else ""
    return out


def _missing_message(
    sheet: RawSheet,
    f: InputField,
    tried: list[str],
    headers: list[str],
    index: int,
    header_rows: int,
    source_label: str,
) -> str:
    found = [h for h in headers if h]
    normed = {norm_header(h): h for h in found}
    best: tuple[float, str] = (0.0, "")
    for alias in tried:
        for n, original in normed.items():
            score = difflib.SequenceMatcher(None, norm_header(alias), n).ratio()
            if score > best[0]:
                best = (score, original)
    closest = f"最接近的是「{best[1]}」；" if best[0] >= 0.5 else ""
    first = sheet.first_row + index - header_rows + 1
    rows = f"第 {first} 行" if header_rows == 1 else f"第 {first}–{first + 1} 行"
    return (
        f"{source_label}{sheet.where}：找不到必需的列「{f.label}」（字段 {f.key}）。"
        f"尝试过的列名：{'、'.join(tried)}。"
        f"表头（{rows}）中找到的列：{'、'.join(found)}。{closest}"
        f"如果列名不同，请在 config.yaml 的 sources 下该数据源的 columns.{f.key} 中加入实际列名。"
    )
