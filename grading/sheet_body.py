"""The sheetData of a filled sheet: the template's rows kept (with their cells outside the tables), each
table owning its columns from its first data row down. Template rows are assembled one by one; the
tables' other rows are built column-wise (sheet_cells) CHUNK_ROWS at a time while the package is
written, so a million-row sheet never exists as one string. The exact size is known before the first
byte (the zip entry's header depends on it)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .plan_types import Block, Column
from .sheet_cells import Chunk, cell, cell_bytes, cells, digits, pieces, prepare, row_numbers, rows_xml
from .xlsx_template import col_letters

CHUNK_ROWS = 4096  # rows of a table built, joined and deflated at a time (small chunks reuse warm memory)
TemplateRows = dict[int, tuple[str, dict[int, str]]]  # row → (its attributes but r/spans, column → cell XML)


class Placed(Protocol):
    """A block located in the template (rows 1-based, columns 0-based), as write_xlsx places it."""

    @property
    def block(self) -> Block: ...
    @property
    def first_row(self) -> int: ...
    @property
    def last_row(self) -> int: ...
    @property
    def span(self) -> tuple[int, int]: ...
    @property
    def columns(self) -> dict[int, Column]: ...
    @property
    def styles(self) -> dict[int, str]: ...
    @property
    def header_styles(self) -> dict[int, str]: ...
    @property
    def columns_all(self) -> tuple[int, ...]: ...


class _Table:
    """A placed block's columns, each formatted once, cut into rows on demand."""

    def __init__(self, p: Placed) -> None:
        self.placed = p
        order = sorted(p.columns_all)
        self.first_col = order[0]
        self.first_row = p.first_row
        self.columns = [(c, col_letters(c), p.columns.get(c)) for c in order]
        lengths = [len(col.values) for _, _, col in self.columns if col is not None]
        if any(col is None for _, _, col in self.columns):
            lengths.append(p.block.n_rows)
        self.n = min(lengths)  # as many rows as its shortest column
        self.prepared = [prepare(col.values[: self.n] if col is not None else [], p.styles.get(c), letter, self.first_row)
                         for c, letter, col in self.columns]
        row_digits = digits(self.first_row, self.n)
        self.sizes = sum((cell_bytes(x, row_digits) for x in self.prepared), np.zeros(self.n, dtype=np.int64))

    def pieces(self, lo: int, hi: int, rows: Any) -> list[Any]:
        """What its rows lo … hi − 1 (sheet rows numbered `rows`) are joined from (sheet_cells.pieces)."""
        return [x for prep in self.prepared for x in pieces(prep, lo, hi, rows)]

    def row_text(self, i: int) -> str:
        """The cells of its row i as text (a matrix's first row is styled as its header)."""
        r = self.first_row + i
        p = self.placed
        if i == 0 and p.block.positional:
            return "".join(cell(f"{letter}{r}", col.values[0], p.header_styles.get(c)) if col is not None
                           else cell(f"{letter}{r}", None, p.styles.get(c)) for c, letter, col in self.columns)
        return "".join(a[0].as_py() for x in self.prepared if (a := cells(x, i, i + 1, row_numbers(r, 1))) is not None)


@dataclass(frozen=True)
class SheetBody:
    """`<sheetData>…</sheetData>`: `size` bytes, produced by `chunks()`."""

    size: int
    steps: tuple[bytes | tuple[int, int, tuple[_Table, ...]], ...]  # a row's XML, or (from, to, tables) built
    attrs: str  # the sample row's attributes, for built rows

    def chunks(self) -> Iterator[Chunk]:
        yield b"<sheetData>"
        for step in self.steps:
            if isinstance(step, bytes):
                yield step
                continue
            a, b, tables = step
            for lo in range(a, b, CHUNK_ROWS):
                hi = min(b, lo + CHUNK_ROWS)
                rows = row_numbers(lo, hi - lo)
                yield rows_xml(rows, self.attrs,
                               [x for t in tables for x in t.pieces(lo - t.first_row, hi - t.first_row, rows)])
        yield b"</sheetData>"


def sheet_body(template_rows: TemplateRows, placed: Sequence[Placed]) -> SheetBody:
    """The template's rows and the blocks' rows in row order; a block owns its columns from its first row
    to its last (at least the sample row): template cells there go."""
    def owned(r: int, c: int) -> bool:
        return any(p.first_row <= r <= p.last_row and p.span[0] <= c <= p.span[1] for p in placed)

    tables = [_Table(p) for p in placed]
    attrs = template_rows.get(min(p.first_row for p in placed), ("", {}))[0]
    # rows assembled one by one: the template's, and a matrix's first row (styled as its header)
    single = set(template_rows) | {t.first_row for t in tables if t.placed.block.positional and t.n}
    bounds = sorted({r for t in tables for r in (t.first_row, t.first_row + t.n)} | single | {r + 1 for r in single})
    steps: list[bytes | tuple[int, int, tuple[_Table, ...]]] = []
    size = len(b"<sheetData></sheetData>")
    fixed = len(f'<row r=""{attrs}></row>'.encode("utf-8"))
    for a, b in zip(bounds, bounds[1:]):
        covering = tuple(sorted((t for t in tables if t.first_row <= a and b <= t.first_row + t.n),
                                key=lambda t: t.first_col))
        if a in single:
            parts = [(t.first_col, t.row_text(a - t.first_row)) for t in covering]
            if a in template_rows:
                row_attrs, cells_at = template_rows[a]
                parts = sorted([(c, x) for c, x in cells_at.items() if not owned(a, c)] + parts, key=lambda t: t[0])
                if not parts and any(p.first_row == a for p in placed) and not any(a < p.first_row for p in placed):
                    continue  # an unused sample row
            else:
                row_attrs = attrs
            steps.append(f'<row r="{a}"{row_attrs}>{"".join(x for _, x in parts)}</row>'.encode("utf-8"))
            size += len(steps[-1])
        elif covering:
            steps.append((a, b, covering))
            size += (b - a) * fixed + int(digits(a, b - a).sum())
            size += sum(int(t.sizes[a - t.first_row: b - t.first_row].sum()) for t in covering)
    return SheetBody(size, tuple(steps), attrs)
