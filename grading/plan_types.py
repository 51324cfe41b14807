"""The fill plan's types: what goes into which sheet, by header text. Shared by
the planner (fill_plan) and the writers (write_xlsx, the Excel add-in), which
need nothing else from the grading core."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Column:
    """One output column: header text (plus accepted variants) and its values."""

    header: str
    values: Sequence[object]
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Block:
    """A table in a sheet, found by one of its anchor headers; `chart_rows` rows feed charts."""

    anchors: tuple[str, ...]
    columns: tuple[Column, ...]
    n_rows: int
    chart_rows: int | None = None
    colours: tuple[tuple[str, str], ...] = ()  # (grade, "#RRGGBB"): fill of the 等级 column's cells
    positional: bool = False  # a matrix: columns by position from the anchor cell, first row = labels
    optional: bool = False  # a template without this block (the user deleted it) is filled without it


@dataclass(frozen=True)
class SheetPlan:
    name: str
    blocks: tuple[Block, ...]
    optional: bool = False  # a template without this sheet is filled without it


@dataclass(frozen=True)
class FillPlan:
    sheets: tuple[SheetPlan, ...]
    placeholders: dict[str, str] = field(default_factory=dict)
