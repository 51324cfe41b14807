"""What sits on an output sheet besides the tables, in the open workbook, follows the data as in
grade-etl's file:
- charts and pictures are moved below a table that grew under them, by the rule the file writer
  applies to drawing anchors (grading.sheet_layout.rows_down), with xlwings' portable API only:
  `Chart.top` / `Picture.top` (settable) and the read-only geometry of ranges
  (`Range.top/left/height/width`, points). Other shapes (text boxes …) are not moved: xlwings'
  `sheet.shapes` also holds Excel's comment boxes and filter drop-downs, which must stay;
- a sheet-level autofilter (one outside an Excel table) that starts at a filled block's header is
  stretched to the rows written, as the file writer stretches `<autoFilter ref>`. xlwings 0.37.8
  has no portable way to read or move a sheet's filter range (`Range.autofilter` applies criteria
  to a range it is given, and refuses a sheet already filtered elsewhere), so this goes through COM
  (`sheet.api`, Windows only): `AutoFilterMode`, `AutoFilter.Range`, `FilterMode`, and
  `Range(...).AutoFilter()` to filter the new range. A filter with criteria in use (rows hidden) is
  left as it is, with a note: re-creating it would drop the user's criteria. On macOS the filter
  stays as it is."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sys

import xlwings as xw

from grading.layout_match import BlockMatch
from grading.plan_types import Block
from grading.sheet_layout import rows_down
from grading.xlsx_template import col_letters

COM = sys.platform == "win32"  # sheet.api is Excel's COM Worksheet (on macOS an appscript reference)

MAX_STEPS = 64  # bisection steps: far more than Excel's 1,048,576 rows or 16,384 columns need


@dataclass(frozen=True)
class Filled:
    """A block as written: the rows it holds (header to last row, the 合计 below a table included)."""

    block: Block
    header_row: int
    last_row: int
    span: tuple[int, int]  # 0-based columns


def filled(m: BlockMatch) -> Filled:
    return Filled(m.block, m.header_row, m.header_row + max(m.block.n_rows, 1), (min(m.span), max(m.span)))


def _index_at(position: float, start_of: Callable[[int], float], limit: int) -> int:
    """The 1-based row (or column) whose extent holds `position` points (the last one starting at
    or above it): doubling, then bisection over the sheet's geometry (a few reads near the top)."""
    lo = 1
    while lo < limit and start_of(min(lo * 2, limit)) <= position:
        lo = min(lo * 2, limit)
    hi = min(lo * 2, limit)
    for _ in range(MAX_STEPS):
        if lo >= hi:
            break
        mid = (lo + hi + 1) // 2
        if start_of(mid) <= position:
            lo = mid
        else:
            hi = mid - 1
    return lo


def move_charts_below(sheet: xw.Sheet, blocks: Sequence[Filled]) -> int:
    """Move every chart and picture of `sheet` that covers a filled table down to one empty row below
    it (the lowest such table), keeping its size and its offset within its first row; returns how
    many moved."""
    if not blocks:
        return 0
    def row_top(r: int) -> float:
        return float(sheet.range((r, 1)).top)

    def col_left(c: int) -> float:
        return float(sheet.range((1, c)).left)

    rows, cols = 1_048_576, 16_384
    moved = 0
    for chart in [*sheet.charts, *sheet.pictures]:
        top, left = float(chart.top), float(chart.left)
        bottom, right = top + float(chart.height), left + float(chart.width)
        # the cells holding the corners, as a drawing's from/to anchors name them
        first, last = _index_at(top, row_top, rows), _index_at(bottom, row_top, rows)
        c1, c2 = _index_at(left, col_left, cols), _index_at(right, col_left, cols)
        shift = rows_down(first - 1, last - 1, c1 - 1, c2 - 1, blocks)
        if shift > 0:
            chart.top = top + row_top(first + shift) - row_top(first)
            moved += 1
    return moved


def _stretched(r1: int, c1: int, r2: int, c2: int, blocks: Sequence[Filled]) -> tuple[int, int] | None:
    """(first, last) rows of a filter range (1-based rows, 0-based columns) that starts at a filled
    block's header (or first data) row within its columns — grade-etl's rule for `<autoFilter ref>`."""
    for b in blocks:
        lo, hi = b.span
        if not (lo <= c1 and c2 <= hi):
            continue
        if r1 in (b.header_row, b.header_row + 1):
            return r1, b.header_row + max(b.block.n_rows, 1)
    return None


def stretch_autofilter(sheet: xw.Sheet, blocks: Sequence[Filled]) -> str | None:
    """Stretch the sheet's own autofilter to the rows written (Windows); a note when it is left as it is."""
    if not COM or not blocks:
        return None
    ws = sheet.api
    if not ws.AutoFilterMode:
        return None
    rng = ws.AutoFilter.Range
    r1, c1 = int(rng.Row), int(rng.Column) - 1
    r2, c2 = r1 + int(rng.Rows.Count) - 1, c1 + int(rng.Columns.Count) - 1
    rows = _stretched(r1, c1, r2, c2, blocks)
    if rows is None or rows == (r1, r2):
        return None
    address = f"{col_letters(c1)}{rows[0]}:{col_letters(c2)}{rows[1]}"
    if ws.FilterMode:
        return (f"工作表「{sheet.name}」的筛选正在使用（部分行被隐藏），筛选范围没有扩展到新写入的行（应为 {address}）。"
                "请在「数据」选项卡点「清除」后再点「分级」，或手动重新设置筛选。")
    ws.AutoFilterMode = False  # a sheet has one such filter: remove it, then filter the stretched range
    ws.Range(address).AutoFilter()
    return None
