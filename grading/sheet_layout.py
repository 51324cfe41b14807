"""Where filled tables may sit in a sheet: blocks stacked in the same columns must not run
into each other, and charts or pictures are moved below any table that grew under them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from .errors import BlocksOverlap
from .plan_types import Block


class Placed(Protocol):
    """A block located in a sheet (rows 1-based, columns 0-based)."""

    @property
    def block(self) -> Block: ...
    @property
    def header_row(self) -> int: ...
    @property
    def last_row(self) -> int: ...
    @property
    def span(self) -> tuple[int, int]: ...


def check_overlaps(placed: Sequence[Placed], sheet: str, template: str) -> None:
    """Blocks stacked in the same columns must not run into each other (the upper one's rows would
    cover the lower one's header)."""
    for a in placed:
        for b in placed:
            if a is b or a.header_row > b.header_row or a.span[1] < b.span[0] or b.span[1] < a.span[0]:
                continue
            if a.header_row < b.header_row <= a.last_row:
                raise BlocksOverlap(
                    f"模板 {template} 的工作表 {sheet} 中，表「{a.block.anchors[0]}」（第 {a.header_row} 行表头）"
                    f"本次有 {a.block.n_rows} 行数据，会覆盖下方表「{b.block.anchors[0]}」的第 {b.header_row} 行表头。"
                    "请把下方的表移到右侧不同的列，或在两表之间留出更多空行。")


_ANCHOR = re.compile(r"<xdr:twoCellAnchor\b.*?</xdr:twoCellAnchor>", re.S)
_FROM_TO = re.compile(r"<xdr:(from|to)>\s*<xdr:col>(\d+)</xdr:col>\s*<xdr:colOff>(-?\d+)</xdr:colOff>\s*"
                      r"<xdr:row>(\d+)</xdr:row>", re.S)


def rows_down(top: int, bottom: int, c1: int, c2: int, placed: Sequence[Placed]) -> int:
    """How many rows a chart or picture covering rows top..bottom (0-based) and columns c1..c2
    (0-based) moves down so that it covers no filled table: it starts one empty row below the
    lowest table it would cover (the file writer and the add-in move charts by this one rule)."""
    shift = 0
    for _ in range(len(placed) + 1):
        moved = False
        for p in placed:
            lo, hi = p.span
            if hi < c1 or c2 < lo:
                continue
            t, b = top + shift + 1, bottom + shift + 1  # 1-based, like the blocks' rows
            if p.header_row <= b and p.last_row >= t:
                shift = p.last_row + 2 - (top + 1)
                moved = True
        if not moved:
            break
    return max(shift, 0)


def move_anchors_below(drawing: str, placed: Sequence[Placed]) -> str:
    """Move charts and pictures down until they cover no filled table (a table that grew with the
    number of grades would otherwise sit under a chart); their size stays the same."""
    def fix(m: re.Match[str]) -> str:
        xml = m.group(0)
        pos = {k: (int(c), int(r)) for k, c, _, r in _FROM_TO.findall(xml)}
        if "from" not in pos or "to" not in pos:
            return xml
        (c1, top), (c2, bottom) = pos["from"], pos["to"]  # 0-based rows
        shift = rows_down(top, bottom, c1, c2, placed)
        if shift <= 0:
            return xml
        return _FROM_TO.sub(lambda f: f.group(0).replace(f"<xdr:row>{f.group(4)}</xdr:row>",
                                                          f"<xdr:row>{int(f.group(4)) + shift}</xdr:row>"), xml)

    return _ANCHOR.sub(fix, drawing)
