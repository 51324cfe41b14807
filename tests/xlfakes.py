"""Fakes of an open Excel workbook for the add-in's seam, built with
unittest.mock.create_autospec from xlwings' own classes (so a call xlwings
does not have fails here too), holding real cell contents in a grid and
logging every transfer (read, write, clear, copy)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock, PropertyMock, create_autospec

import openpyxl
import xlwings as xw


@dataclass
class Grid:
    """Cells of one sheet, 1-based (row, column) → value."""

    cells: dict[tuple[int, int], Any] = field(default_factory=dict)

    def bounds(self) -> tuple[int, int, int, int]:
        if not self.cells:
            return 1, 1, 1, 1
        rows = [r for r, _ in self.cells]
        cols = [c for _, c in self.cells]
        return min(rows), min(cols), max(rows), max(cols)

    def block(self, r1: int, c1: int, r2: int, c2: int) -> list[list[Any]]:
        return [[self.cells.get((r, c)) for c in range(c1, c2 + 1)] for r in range(r1, r2 + 1)]

    def put(self, r1: int, c1: int, r2: int, c2: int, value: Any) -> None:
        if not isinstance(value, list):
            value = [[value]]
        elif value and not isinstance(value[0], list):
            value = [value]
        assert len(value) == r2 - r1 + 1 and all(len(row) == c2 - c1 + 1 for row in value), "shape mismatch"
        for i, row in enumerate(value):
            for j, v in enumerate(row):
                if v is None or v == "":
                    self.cells.pop((r1 + i, c1 + j), None)
                else:
                    self.cells[(r1 + i, c1 + j)] = v

    def column(self, c: int, from_row: int) -> list[Any]:
        last = max([r for r, cc in self.cells if cc == c] + [from_row - 1])
        return [self.cells.get((r, c)) for r in range(from_row, last + 1)]


@dataclass
class Log:
    reads: list[tuple[str, tuple[int, int, int, int]]] = field(default_factory=list)
    writes: list[tuple[str, tuple[int, int, int, int]]] = field(default_factory=list)
    clears: list[tuple[str, tuple[int, int, int, int]]] = field(default_factory=list)
    copies: list[tuple[str, tuple[int, int, int, int]]] = field(default_factory=list)


def _cell(ref: Any) -> tuple[int, int]:
    if isinstance(ref, tuple):
        return int(ref[0]), int(ref[1])
    raise AssertionError(f"the add-in should address cells by (row, column), got {ref!r}")


class FakeWorkbook:
    """A workbook: named sheets with grids; `book` is the autospecced xw.Book handed to run()."""

    def __init__(self, name: str, folder: Path, app: Any | None = None) -> None:
        self.grids: dict[str, Grid] = {}
        self.sheets: dict[str, Any] = {}
        self.tables: dict[str, list[Any]] = {}
        self.log = Log()
        self.book: Any = create_autospec(xw.Book, instance=True)
        self.book.name = name
        self.book.fullname = str(folder / name)
        self.book.names = []
        self.app: Any = app or make_app()
        self.book.app = self.app
        sheets = create_autospec(xw.main.Sheets, instance=True)
        sheets.__iter__.side_effect = lambda: iter(list(self.sheets.values()))
        sheets.__len__.side_effect = lambda: len(self.sheets)
        sheets.__getitem__.side_effect = self._get_sheet
        sheets.add.side_effect = lambda name=None, before=None, after=None: self.add_sheet(str(name))
        self.book.sheets = sheets
        self.book._fake = self  # lets Sheet.copy(after=...) find the target workbook

    def _get_sheet(self, key: Any) -> Any:
        if isinstance(key, int):
            return list(self.sheets.values())[key]
        return self.sheets[key]

    def add_sheet(self, name: str, rows: list[list[Any]] | None = None, top: int = 1) -> Any:
        grid = Grid()
        for i, row in enumerate(rows or []):
            for j, v in enumerate(row):
                if v is not None and v != "":
                    grid.cells[(top + i, 1 + j)] = v
        self.grids[name] = grid
        sheet = create_autospec(xw.Sheet, instance=True)
        sheet.name = name
        sheet.book = self.book
        sheet.range.side_effect = lambda c1, c2=None: self._range(name, c1, c2)
        type(sheet).used_range = PropertyMock(side_effect=lambda: self._range(name, *self._used(name)))
        sheet.tables = self.tables.setdefault(name, [])
        sheet.copy.side_effect = lambda before=None, after=None, name=None, _n=name: self._copy_sheet(_n, after)
        self.sheets[name] = sheet
        return sheet

    def _used(self, name: str) -> tuple[tuple[int, int], tuple[int, int]]:
        r1, c1, r2, c2 = self.grids[name].bounds()
        return (r1, c1), (r2, c2)

    def _copy_sheet(self, name: str, after: Any) -> None:
        target: FakeWorkbook = after.book._fake
        copied = target.add_sheet(name)
        target.grids[name] = Grid(dict(self.grids[name].cells))
        return copied

    def _range(self, sheet: str, c1: Any, c2: Any = None) -> Any:
        r1, col1 = _cell(c1)
        r2, col2 = _cell(c2) if c2 is not None else (r1, col1)
        area = (r1, col1, r2, col2)
        grid = self.grids[sheet]
        rng = create_autospec(xw.Range, instance=True)

        def value(*args: Any) -> Any:
            if args:
                self.log.writes.append((sheet, area))
                grid.put(r1, col1, r2, col2, args[0])
                return None
            self.log.reads.append((sheet, area))
            return grid.block(r1, col1, r2, col2)

        type(rng).value = PropertyMock(side_effect=value)
        rng.row, rng.column = r1, col1
        last = create_autospec(xw.Range, instance=True)
        last.row, last.column = r2, col2
        rng.last_cell = last
        rng.options.return_value = rng  # options(ndim=2): reads already come back 2-D
        rng.clear_contents.side_effect = lambda: (self.log.clears.append((sheet, area)),
                                                  grid.put(r1, col1, r2, col2, [[None] * (col2 - col1 + 1)] * (r2 - r1 + 1)))
        rng.copy.side_effect = lambda destination=None: self.log.copies.append((sheet, area))
        return rng


def make_app() -> Any:
    app = create_autospec(xw.App, instance=True)
    app.screen_updating = True
    app.calculation = "automatic"
    app.status_bar = False
    return app


def book_from_xlsx(path: Path, folder: Path, name: str, app: Any | None = None) -> FakeWorkbook:
    """A fake workbook with the values of an .xlsx file (e.g. the template)."""
    fake = FakeWorkbook(name, folder, app)
    wb = openpyxl.load_workbook(path)
    for ws in wb:
        rows = [[c.value for c in row] for row in ws.iter_rows()]
        fake.add_sheet(ws.title, rows)
    return fake


def link_books(app: Any, template: Path, folder: Path) -> MagicMock:
    """app.books.open(template) returns a fake of the template workbook."""
    def open_book(fullname: str, **kwargs: Any) -> Any:
        return book_from_xlsx(Path(fullname), folder, Path(fullname).name, app).book

    app.books.open.side_effect = open_book
    return app.books.open
