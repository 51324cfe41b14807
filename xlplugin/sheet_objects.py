"""What sits on an output sheet besides the tables, in the open workbook: charts are moved below a
table that grew under them, by the rule grade-etl's file writer applies to drawing anchors
(grading.sheet_layout.rows_down). Only xlwings' portable API is used: `Chart.top` (settable) and
the read-only geometry of ranges (`Range.top/left/height/width`, points)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import xlwings as xw

from grading.layout_match import BlockMatch
from grading.plan_types import Block
from grading.sheet_layout import rows_down

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
    """Move every chart of `sheet` that covers a filled table down to one empty row below it (the
    lowest such table), keeping its size and its offset within its first row; returns how many moved."""
    if not blocks:
        return 0
    def row_top(r: int) -> float:
        return float(sheet.range((r, 1)).top)

    def col_left(c: int) -> float:
        return float(sheet.range((1, c)).left)

    rows, cols = 1_048_576, 16_384
    moved = 0
    for chart in sheet.charts:
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
