"""Find where a plan block goes in a sheet, from the sheet's cell texts alone.

Shared by the file writer (template XML) and the Excel add-in (an open
workbook): a block is found by one of its anchor header texts; its columns
are the contiguous run of headed cells around the anchor, matched to plan
columns by header text. A positional block (a matrix) starts at the anchor
cell itself and takes one column per plan column.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .errors import TemplateError
from .header_text import norm_header
from .plan_types import Block, Column

Cells = Mapping[tuple[int, int], str]  # (row 1-based, column 0-based) → text


@dataclass(frozen=True)
class BlockMatch:
    """Header row (data starts below it), plan column per sheet column, and all columns of the block."""

    block: Block
    header_row: int
    columns: Mapping[int, Column]
    span: tuple[int, ...]
    anchor: tuple[int, int]

    @property
    def first_row(self) -> int:
        return self.header_row + 1


def find_anchor(cells: Cells, block: Block) -> tuple[int, int] | None:
    """The first cell (by row, then column) holding one of the block's anchor headers."""
    anchors = {norm_header(a) for a in block.anchors}
    return next(((r, c) for (r, c), text in sorted(cells.items()) if norm_header(text) in anchors), None)


def match_blocks(cells: Cells, blocks: tuple[Block, ...], sheet: str, template: str) -> list[BlockMatch]:
    """Every block found in the sheet; an optional block whose header is absent is skipped."""
    return [match_block(cells, b, sheet, template) for b in blocks
            if not (b.optional and find_anchor(cells, b) is None)]


def match_block(cells: Cells, block: Block, sheet: str, template: str) -> BlockMatch:
    hit = find_anchor(cells, block)
    if hit is None:
        raise TemplateError(
            f"模板 {template} 的工作表 {sheet} 中找不到表头「{'」或「'.join(block.anchors)}」。"
            "表头行用于确定填写位置，请恢复该表头（列的顺序可以调整，不需要的列可以删除）。"
        )
    row, col = hit
    if block.positional:
        span = tuple(range(col, col + max(len(block.columns), 1)))
        return BlockMatch(block, row - 1, dict(zip(span, block.columns)), span, hit)
    lo = hi = col
    while lo > 0 and cells.get((row, lo - 1), ""):
        lo -= 1
    while cells.get((row, hi + 1), ""):
        hi += 1
    wanted: dict[str, Column] = {}
    for column in block.columns:
        for name in (column.header, *column.aliases):
            wanted.setdefault(norm_header(name), column)
    columns: dict[int, Column] = {}
    used: set[int] = set()
    for c in range(lo, hi + 1):
        found = wanted.get(norm_header(cells[(row, c)]))
        if found is not None and id(found) not in used:
            columns[c] = found
            used.add(id(found))
    return BlockMatch(block, row, columns, tuple(range(lo, hi + 1)), hit)
