"""The fill plan's types: what goes into which sheet, by header text. Shared by
the planner (fill_plan) and the writers (write_xlsx, the Excel add-in), which
need nothing else from the grading core."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

import numpy as np


class _HeldValues(Sequence[object]):
    """A column's values held in one array and read as Python values, made once, when first read (the
    add-in, a CSV beside the output); the file writer formats the array itself (grading.sheet_cells),
    without a Python object per cell."""

    __slots__ = ("_python",)
    __hash__ = None  # type: ignore[assignment]  # compared by value, like the list it stands for

    def __init__(self) -> None:
        self._python: list[object] | None = None

    def _make(self) -> list[object]:
        raise NotImplementedError

    def _slice(self, index: slice) -> _HeldValues:
        raise NotImplementedError

    def _values(self) -> list[object]:
        if self._python is None:
            self._python = self._make()
        return self._python

    @overload
    def __getitem__(self, index: int) -> object: ...
    @overload
    def __getitem__(self, index: slice) -> _HeldValues: ...

    def __getitem__(self, index: int | slice) -> object:
        if isinstance(index, slice):
            return self._slice(index)
        return self._values()[index]

    def __iter__(self) -> Iterator[object]:
        return iter(self._values())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (list, _HeldValues)) and list(self) == list(other)  # as the list it stands for


class ArrayValues(_HeldValues):
    """Numbers or dates held as one numpy array (float, integer or datetime64), read as the Python values its
    `tolist()` gives (float, int, datetime.datetime; None for NaT). The array is its own copy, as a list
    would be: a plan never shares a table's memory."""

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray) -> None:
        super().__init__()
        if array.dtype.kind not in "fiuM":
            raise TypeError(f"ArrayValues: numbers or datetime64 only, not {array.dtype}")
        # its own copy (astype copies), datetimes to the microsecond
        self.array = array.astype("datetime64[us]" if array.dtype.kind == "M" else array.dtype)

    def _make(self) -> list[object]:
        values: list[object] = self.array.tolist()
        return values

    def _slice(self, index: slice) -> ArrayValues:
        return ArrayValues(self.array[index])

    def __len__(self) -> int:
        return len(self.array)

    def __repr__(self) -> str:
        return f"ArrayValues({self.array!r})"


class TextValues(_HeldValues):
    """Texts held as one Arrow string array without nulls (a table's text column), read as its str values.
    Arrow arrays are immutable: holding the table's own array shares nothing a later step could change."""

    __slots__ = ("array",)

    def __init__(self, array: Any) -> None:
        super().__init__()
        import pyarrow as pa

        if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)) or array.null_count:
            raise TypeError(f"TextValues: an Arrow string array without nulls, not {array.type}")
        self.array = array

    def _make(self) -> list[object]:
        values: list[object] = self.array.to_pylist()
        return values

    def _slice(self, index: slice) -> TextValues:
        start, stop, step = index.indices(len(self.array))
        if step != 1:
            import pyarrow as pa

            return TextValues(self.array.take(pa.array(range(start, stop, step), type=pa.int64())))
        return TextValues(self.array.slice(start, max(stop - start, 0)))

    def __len__(self) -> int:
        return len(self.array)

    def __repr__(self) -> str:
        return f"TextValues({self.array!r})"


@dataclass(frozen=True)
class Column:
    """One output column: header text (plus accepted variants) and its values."""

    header: str
    values: Sequence[object]  # Python values (a list), or ArrayValues / TextValues
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
