"""The fill plan's types: what goes into which sheet, by header text. Shared by
the planner (fill_plan) and the writers (write_xlsx, the Excel add-in), which
need nothing else from the grading core."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import overload

import numpy as np


class ArrayValues(Sequence[object]):
    """A column's values held as one numpy array (float, integer or datetime64), read as the Python values
    its `tolist()` gives (float, int, datetime.datetime; None for NaT), made once, when first read (the
    add-in, a CSV beside the output). The file writer formats the array itself (grading.sheet_cells), without
    a Python object per cell. The array is its own copy, as a list would be: a plan never shares a table's
    memory."""

    __slots__ = ("array", "_python")
    __hash__ = None  # type: ignore[assignment]  # compared by value, like the list it stands for

    def __init__(self, array: np.ndarray) -> None:
        if array.dtype.kind not in "fiuM":
            raise TypeError(f"ArrayValues: numbers or datetime64 only, not {array.dtype}")
        # its own copy (astype copies), datetimes to the microsecond
        self.array = array.astype("datetime64[us]" if array.dtype.kind == "M" else array.dtype)
        self._python: list[object] | None = None

    def _values(self) -> list[object]:
        if self._python is None:
            self._python = self.array.tolist()
        return self._python

    def __len__(self) -> int:
        return len(self.array)

    @overload
    def __getitem__(self, index: int) -> object: ...
    @overload
    def __getitem__(self, index: slice) -> ArrayValues: ...

    def __getitem__(self, index: int | slice) -> object:
        if isinstance(index, slice):
            return ArrayValues(self.array[index])
        return self._values()[index]

    def __iter__(self) -> Iterator[object]:
        return iter(self._values())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (list, ArrayValues)) and list(self) == list(other)  # as the list it stands for

    def __repr__(self) -> str:
        return f"ArrayValues({self.array!r})"


@dataclass(frozen=True)
class Column:
    """One output column: header text (plus accepted variants) and its values."""

    header: str
    values: Sequence[object]  # Python values (a list), or ArrayValues
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
