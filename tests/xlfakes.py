"""Fakes of an open Excel workbook for the add-in's seam, built with
unittest.mock.create_autospec from xlwings' own classes (so a call xlwings
does not have fails here too), holding real cell contents in a grid and
logging every transfer (read, write, clear, copy).

They behave like Excel where it matters to the add-in:
- `Range.value = ...` goes to COM's `Range.Value` (xlwings 0.37.8 `_xlwindows.Range.raw_value`), and
  Excel parses each string as if typed: 000123 → 123, 1E5 → 100000, 4-6 / 2-4 / 1/2 → dates,
  TRUE → a boolean, 12% → 0.12, long digit strings → a float of 15 digits, = + - @ → formulas,
  #N/A → an error. Unless the cell's number format is Text (`@`) or the string starts with an
  apostrophe (the prefix character, not part of the value);
- `Range.number_format` is per cell (COM `NumberFormat`), copied by `Range.copy` with the values;
- Excel tables (ListObjects) with `Table.resize`; chart series that plot a whole table column follow
  the table when it is resized (as Excel does); charts and tables are loaded from the .xlsx;
- geometry in points as xlwings exposes it (`Range.top/left/height/width`, read-only; `Chart.top/left/
  width/height`, settable): rows and columns keep the .xlsx's heights and widths (Excel's defaults
  otherwise); a chart sits where its drawing anchor puts it and moves only when the add-in moves it;
- `app.books.open` of a workbook that is already open returns that workbook;
- on Windows `Sheet.api` is Excel's COM Worksheet: `ComWorksheet` models the members of the sheet-level
  AutoFilter the add-in uses (AutoFilterMode, FilterMode, AutoFilter.Range, Range(address).AutoFilter()),
  loaded from the .xlsx's <autoFilter ref>.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock, PropertyMock, create_autospec

import openpyxl
import xlwings as xw
from openpyxl.utils.cell import column_index_from_string, range_boundaries

EMU_PER_POINT = 12700
EXCEL_YEAR = 2026  # "this year" for dates typed without one (4-6 → 6 April)


class Formula(str):
    """A cell Excel turned into a formula: the text was not kept."""


class ExcelError(str):
    """An error value (#N/A …) Excel made of the text."""


_NUMBER = re.compile(r"^[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][+-]?\d+)?%?$")
_YMD = re.compile(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})$")
_MDY = re.compile(r"^(\d{1,2})[-/](\d{1,2})[-/](\d{2,4})$")
_MD = re.compile(r"^(\d{1,2})[-/](\d{1,2})$")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
_ERRORS = ("#N/A", "#VALUE!", "#REF!", "#DIV/0!", "#NUM!", "#NAME?", "#NULL!")


def _date(y: int, m: int, d: int) -> dt.datetime | None:
    try:
        return dt.datetime(y, m, d)
    except ValueError:
        return None


def excel_parse(text: str) -> Any:
    """What Excel stores when `text` is written to a General-formatted cell through COM."""
    s = text.strip()
    if not s:
        return text
    if s.upper() in ("TRUE", "FALSE"):
        return s.upper() == "TRUE"
    if s.upper() in _ERRORS:
        return ExcelError(s.upper())
    if any(ch.isdigit() for ch in s) and _NUMBER.match(s):
        number = float(s.rstrip("%").replace(",", ""))
        if s.endswith("%"):
            number /= 100
        return float(f"{number:.15g}")  # Excel keeps 15 significant digits
    if m := _YMD.match(s):
        if (d := _date(int(m[1]), int(m[2]), int(m[3]))) is not None:
            return d
    if m := _MDY.match(s):
        year = int(m[3]) + (2000 if len(m[3]) == 2 else 0)
        if (d := _date(year, int(m[1]), int(m[2]))) is not None:
            return d
    if m := _MD.match(s):
        if (d := _date(EXCEL_YEAR, int(m[1]), int(m[2]))) is not None:
            return d
    if (m := _TIME.match(s)) and int(m[1]) < 24:
        return (int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3] or 0)) / 86400
    if text.startswith(("=", "+", "-", "@")):
        return Formula(text)
    return text


ROW_HEIGHT = 15.0  # points: Excel's default row (Calibri 11)
COLUMN_WIDTH = 8.43  # characters: Excel's default column


def column_points(width: float) -> float:
    """A column width in characters as points (Calibri 11: 7 pixels a character plus 5, 0.75 pt a pixel)."""
    return float(int(width * 7 + 5) * 0.75)


@dataclass
class Grid:
    """Cells of one sheet, 1-based (row, column) → value; number formats and prefix characters;
    row heights (points) and column widths (characters) that differ from Excel's defaults."""

    cells: dict[tuple[int, int], Any] = field(default_factory=dict)
    formats: dict[tuple[int, int], str] = field(default_factory=dict)
    prefixed: set[tuple[int, int]] = field(default_factory=set)
    heights: dict[int, float] = field(default_factory=dict)
    widths: dict[int, float] = field(default_factory=dict)

    def row_top(self, row: int) -> float:
        """Points from the top of row 1 to the top of `row`."""
        return (row - 1) * ROW_HEIGHT + sum(h - ROW_HEIGHT for r, h in self.heights.items() if r < row)

    def column_left(self, col: int) -> float:
        return sum(column_points(self.widths.get(c, COLUMN_WIDTH)) for c in range(1, col))

    def bounds(self) -> tuple[int, int, int, int]:
        keys = list(self.cells) + list(self.formats)
        if not keys:
            return 1, 1, 1, 1
        rows = [r for r, _ in keys]
        cols = [c for _, c in keys]
        return min(rows), min(cols), max(rows), max(cols)

    def block(self, r1: int, c1: int, r2: int, c2: int) -> list[list[Any]]:
        return [[self.cells.get((r, c)) for c in range(c1, c2 + 1)] for r in range(r1, r2 + 1)]

    def put(self, r1: int, c1: int, r2: int, c2: int, value: Any, typed: bool = False) -> None:
        """Store values; `typed`: as Excel does for COM writes (strings parsed unless Text/apostrophe)."""
        if not isinstance(value, list):
            value = [[value]]
        elif value and not isinstance(value[0], list):
            value = [value]
        assert len(value) == r2 - r1 + 1 and all(len(row) == c2 - c1 + 1 for row in value), "shape mismatch"
        for i, row in enumerate(value):
            for j, v in enumerate(row):
                key = (r1 + i, c1 + j)
                self.prefixed.discard(key)
                if typed and isinstance(v, str) and v:
                    if v.startswith("'"):
                        v = v[1:]
                        self.prefixed.add(key)
                    elif self.formats.get(key) != "@":
                        v = excel_parse(v)
                if typed and isinstance(v, float) and not math.isfinite(v):
                    raise AssertionError("COM cannot take NaN/inf")
                if v is None or v == "":
                    self.cells.pop(key, None)
                else:
                    self.cells[key] = v

    def column(self, c: int, from_row: int) -> list[Any]:
        last = max([r for r, cc in self.cells if cc == c] + [from_row - 1])
        return [self.cells.get((r, c)) for r in range(from_row, last + 1)]


@dataclass
class Log:
    reads: list[tuple[str, tuple[int, int, int, int]]] = field(default_factory=list)
    writes: list[tuple[str, tuple[int, int, int, int]]] = field(default_factory=list)
    clears: list[tuple[str, tuple[int, int, int, int]]] = field(default_factory=list)
    copies: list[tuple[str, tuple[int, int, int, int]]] = field(default_factory=list)
    resizes: list[tuple[str, tuple[int, int, int, int]]] = field(default_factory=list)


@dataclass
class ChartModel:
    """A chart on `sheet`: its series references, (sheet, r1, c1, r2, c2) per values/categories range,
    and its position and size in points."""

    name: str
    refs: list[list[Any]] = field(default_factory=list)  # mutable [sheet, r1, c1, r2, c2]
    sheet: str = ""
    top: float = 0.0
    left: float = 0.0
    width: float = 360.0
    height: float = 216.0


def _cell(ref: Any) -> tuple[int, int]:
    if isinstance(ref, tuple):
        return int(ref[0]), int(ref[1])
    raise AssertionError(f"the add-in should address cells by (row, column), got {ref!r}")


def _area(ref: str) -> tuple[int, int, int, int]:
    c1, r1, c2, r2 = range_boundaries(ref.replace("$", ""))
    return int(r1), int(c1), int(r2), int(c2)


class FakeWorkbook:
    """A workbook: named sheets with grids; `book` is the autospecced xw.Book handed to run()."""

    def __init__(self, name: str, folder: Path, app: Any | None = None) -> None:
        self.grids: dict[str, Grid] = {}
        self.sheets: dict[str, Any] = {}
        self.tables: dict[str, list[Any]] = {}
        self.table_areas: dict[str, list[int]] = {}  # table name → [r1, c1, r2, c2]
        self.charts: list[ChartModel] = []
        self.pictures: list[ChartModel] = []  # pictures: a position and size (points) on a sheet, no series
        self.autofilters: dict[str, list[int] | None] = {}  # sheet → [r1, c1, r2, c2] of its own (non-table) filter
        self.filter_mode: dict[str, bool] = {}  # sheet → rows hidden by the filter's criteria
        self._ranges: dict[tuple[str, int, tuple[int, int, int, int]], Any] = {}
        self.log = Log()
        self.closed = False
        self.book: Any = create_autospec(xw.Book, instance=True)
        self.book.name = name
        self.book.fullname = str(folder / name)
        self.book.names = []
        self.app: Any = app or make_app()
        self.book.app = self.app
        self.app._open_books.append(self)
        sheets = create_autospec(xw.main.Sheets, instance=True)
        sheets.__iter__.side_effect = lambda: iter(list(self.sheets.values()))
        sheets.__len__.side_effect = lambda: len(self.sheets)
        sheets.__getitem__.side_effect = self._get_sheet
        sheets.add.side_effect = lambda name=None, before=None, after=None: self.add_sheet(str(name))
        self.book.sheets = sheets
        self.book.close.side_effect = self._close
        self.book._fake = self  # lets Sheet.copy(after=...) find the target workbook

    def _close(self) -> None:
        self.closed = True
        self.app._open_books.remove(self)

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
        charts = create_autospec(xw.main.Charts, instance=True)
        charts.__iter__.side_effect = lambda: iter([self._chart(c) for c in self.charts if c.sheet == name])
        charts.__len__.side_effect = lambda: sum(c.sheet == name for c in self.charts)
        sheet.charts = charts
        pictures = create_autospec(xw.main.Pictures, instance=True)
        pictures.__iter__.side_effect = lambda: iter([self._chart(p, xw.Picture) for p in self.pictures if p.sheet == name])
        pictures.__len__.side_effect = lambda: sum(p.sheet == name for p in self.pictures)
        sheet.pictures = pictures
        sheet.api = ComWorksheet(self, name)
        sheet.copy.side_effect = lambda before=None, after=None, name=None, _n=name: self._copy_sheet(_n, after, before)
        self.sheets[name] = sheet
        return sheet

    def add_table(self, sheet: str, name: str, ref: str) -> Any:
        """An Excel table (ListObject) on `sheet` covering `ref` (header row included)."""
        area = list(_area(ref))
        self.table_areas[name] = area
        table = create_autospec(xw.main.Table, instance=True)
        table.name = name
        type(table).range = PropertyMock(side_effect=lambda: self._range(sheet, (area[0], area[1]), (area[2], area[3])))

        def resize(rng: Any) -> None:
            r1, c1, r2, c2 = int(rng.row), int(rng.column), int(rng.last_cell.row), int(rng.last_cell.column)
            assert (r1, c1) == (area[0], area[1]), "a table keeps its top-left corner when resized"
            assert r2 > r1, "an Excel table needs at least one data row"
            old_last = area[2]
            self._follow_table(sheet, area, old_last, r2)
            area[:] = [r1, c1, r2, c2]
            self.log.resizes.append((sheet, (r1, c1, r2, c2)))

        table.resize.side_effect = resize
        self.tables.setdefault(sheet, []).append(table)
        return table

    def _chart(self, model: ChartModel, spec: type = xw.Chart) -> Any:
        """An autospecced xw.Chart (or xw.Picture) whose position and size (points) live in `model`."""
        chart = create_autospec(spec, instance=True)
        chart.name = model.name
        for attr in ("top", "left", "width", "height"):
            def prop(*args: Any, _a: str = attr) -> Any:
                if args:
                    setattr(model, _a, float(args[0]))
                    return None
                return getattr(model, _a)
            setattr(type(chart), attr, PropertyMock(side_effect=prop))
        return chart

    def _follow_table(self, sheet: str, area: list[int], old_last: int, new_last: int) -> None:
        """Excel: a series on a whole data column of a table follows the table's rows."""
        for chart in self.charts:
            for ref in chart.refs:
                s, r1, c1, r2, c2 = ref
                if s == sheet and c1 == c2 and area[1] <= c1 <= area[3] and r1 == area[0] + 1 and r2 == old_last:
                    ref[3] = new_last

    def _used(self, name: str) -> tuple[tuple[int, int], tuple[int, int]]:
        r1, c1, r2, c2 = self.grids[name].bounds()
        return (r1, c1), (r2, c2)

    def _copy_sheet(self, name: str, after: Any, before: Any = None) -> None:
        target: FakeWorkbook = (after if after is not None else before).book._fake
        copied = target.add_sheet(name)
        if after is None:  # Sheet.copy(before=…): the copy goes in front of that sheet, as in Excel
            order = [n for n in target.sheets if n != name]
            order.insert(order.index(before.name), name)
            target.sheets = {n: target.sheets[n] for n in order}
        grid = self.grids[name]
        target.grids[name] = Grid(dict(grid.cells), dict(grid.formats), set(grid.prefixed), dict(grid.heights),
                                  dict(grid.widths))
        for table in self.tables.get(name, []):
            r1, c1, r2, c2 = self.table_areas[table.name]
            target.add_table(name, table.name, f"{_letters(c1)}{r1}:{_letters(c2)}{r2}")
        area = self.autofilters.get(name)
        target.autofilters[name] = list(area) if area is not None else None
        for chart in self.charts:
            if chart.sheet == name:
                target.charts.append(replace(chart, refs=[list(r) for r in chart.refs]))
        return copied

    def _range(self, sheet: str, c1: Any, c2: Any = None) -> Any:
        r1, col1 = _cell(c1)
        r2, col2 = _cell(c2) if c2 is not None else (r1, col1)
        area = (r1, col1, r2, col2)
        key = (sheet, id(self.grids[sheet]), area)
        if key not in self._ranges:  # one autospec per sheet area (building one is slow); values live in the grid
            self._ranges[key] = self._new_range(sheet, area)
        return self._ranges[key]

    def _new_range(self, sheet: str, area: tuple[int, int, int, int]) -> Any:
        r1, col1, r2, col2 = area
        grid = self.grids[sheet]
        rng = create_autospec(xw.Range, instance=True)

        def value(*args: Any) -> Any:
            if args:
                self.log.writes.append((sheet, area))
                grid.put(r1, col1, r2, col2, args[0], typed=True)
                return None
            self.log.reads.append((sheet, area))
            return grid.block(r1, col1, r2, col2)

        def number_format(*args: Any) -> Any:
            if args:
                for r in range(r1, r2 + 1):
                    for c in range(col1, col2 + 1):
                        grid.formats[(r, c)] = args[0]
                return None
            return grid.formats.get((r1, col1), "General")

        type(rng).value = PropertyMock(side_effect=value)
        type(rng).number_format = PropertyMock(side_effect=number_format)
        rng.row, rng.column = r1, col1
        type(rng).top = PropertyMock(side_effect=lambda: grid.row_top(r1))
        type(rng).left = PropertyMock(side_effect=lambda: grid.column_left(col1))
        type(rng).height = PropertyMock(side_effect=lambda: grid.row_top(r2 + 1) - grid.row_top(r1))
        type(rng).width = PropertyMock(side_effect=lambda: grid.column_left(col2 + 1) - grid.column_left(col1))
        last = MagicMock(spec=xw.Range)
        last.row, last.column = r2, col2
        rng.last_cell = last
        rng.options.return_value = rng  # options(ndim=2): reads already come back 2-D
        rng.clear_contents.side_effect = lambda: (self.log.clears.append((sheet, area)),
                                                  grid.put(r1, col1, r2, col2, [[None] * (col2 - col1 + 1)] * (r2 - r1 + 1)))

        def copy(destination: Any = None) -> None:  # values and formats, the source tiled over the destination
            self.log.copies.append((sheet, area))
            d1, dc1 = int(destination.row), int(destination.column)
            d2, dc2 = int(destination.last_cell.row), int(destination.last_cell.column)
            h, w = r2 - r1 + 1, col2 - col1 + 1
            for r in range(d1, d2 + 1):
                for c in range(dc1, dc2 + 1):
                    src = (r1 + (r - d1) % h, col1 + (c - dc1) % w)
                    for store in (grid.cells, grid.formats):
                        if src in store:
                            store[(r, c)] = store[src]  # type: ignore[index]
                        else:
                            store.pop((r, c), None)

        rng.copy.side_effect = copy
        return rng


class _Count:
    def __init__(self, n: int) -> None:
        self.Count = n


class ComRange:
    """Excel's COM Range, as far as the sheet-level AutoFilter goes."""

    def __init__(self, fake: FakeWorkbook, sheet: str, area: tuple[int, int, int, int]) -> None:
        self._fake, self._sheet, self._area = fake, sheet, area
        r1, c1, r2, c2 = area
        self.Row, self.Column = r1, c1
        self.Rows, self.Columns = _Count(r2 - r1 + 1), _Count(c2 - c1 + 1)
        self.Address = f"${_letters(c1)}${r1}:${_letters(c2)}${r2}"

    def AutoFilter(self, *args: Any, **kwargs: Any) -> None:  # noqa: N802 (COM's name)
        """Without arguments Excel toggles the drop-downs: filters this range, or removes the filter."""
        assert not args and not kwargs, "the fake models AutoFilter() without criteria only"
        if self._fake.autofilters.get(self._sheet) is not None:
            self._fake.autofilters[self._sheet] = None
            self._fake.filter_mode[self._sheet] = False
        else:
            self._fake.autofilters[self._sheet] = list(self._area)


class ComWorksheet:
    """Excel's COM Worksheet (`Sheet.api` on Windows), as far as the sheet-level AutoFilter goes."""

    def __init__(self, fake: FakeWorkbook, sheet: str) -> None:
        self._fake, self._sheet = fake, sheet

    @property
    def AutoFilterMode(self) -> bool:  # noqa: N802
        return self._fake.autofilters.get(self._sheet) is not None

    @AutoFilterMode.setter
    def AutoFilterMode(self, value: bool) -> None:  # noqa: N802
        assert value is False, "Excel can only set AutoFilterMode to False (it removes the filter)"
        self._fake.autofilters[self._sheet] = None
        self._fake.filter_mode[self._sheet] = False

    @property
    def FilterMode(self) -> bool:  # noqa: N802
        return self._fake.filter_mode.get(self._sheet, False)

    @property
    def AutoFilter(self) -> Any:  # noqa: N802
        area = self._fake.autofilters.get(self._sheet)
        if area is None:
            return None
        holder = MagicMock()
        holder.Range = ComRange(self._fake, self._sheet, (area[0], area[1], area[2], area[3]))
        return holder

    def Range(self, address: str) -> ComRange:  # noqa: N802
        r1, c1, r2, c2 = _area(address)
        return ComRange(self._fake, self._sheet, (r1, c1, r2, c2))


def _letters(col: int) -> str:
    from openpyxl.utils import get_column_letter

    return str(get_column_letter(col))


def make_app() -> Any:
    app = create_autospec(xw.App, instance=True)
    app.screen_updating = True
    app.calculation = "automatic"
    app.status_bar = False
    app._open_books = []
    books = create_autospec(xw.main.Books, instance=True)
    books.__iter__.side_effect = lambda: iter([b.book for b in app._open_books])
    app.books = books
    return app


def book_from_xlsx(path: Path, folder: Path, name: str, app: Any | None = None) -> FakeWorkbook:
    """A fake workbook with the values, number formats, tables and charts of an .xlsx file (e.g. the template)."""
    fake = FakeWorkbook(name, folder, app)
    wb = openpyxl.load_workbook(path)
    for ws in wb:
        rows = [[c.value for c in row] for row in ws.iter_rows()]
        fake.add_sheet(ws.title, rows)
        grid = fake.grids[ws.title]
        grid.heights = {int(r): float(d.ht) for r, d in ws.row_dimensions.items() if d.ht is not None}
        grid.widths = {column_index_from_string(k): float(d.width) for k, d in ws.column_dimensions.items()
                       if d.width}
        for row in ws.iter_rows():
            for c in row:
                if c.has_style and c.number_format != "General":
                    grid.formats[(c.row, c.column)] = c.number_format
        if ws.auto_filter.ref:
            fake.autofilters[ws.title] = list(_area(str(ws.auto_filter.ref)))
        for table_name, ref in ws.tables.items():
            fake.add_table(ws.title, table_name, str(ref))
        for k, chart in enumerate(ws._charts):
            model = ChartModel(f"{ws.title} chart {k + 1}", sheet=ws.title)
            start, end = chart.anchor._from, chart.anchor.to  # a two-cell anchor, as XlsxWriter writes
            model.top = grid.row_top(start.row + 1) + start.rowOff / EMU_PER_POINT
            model.left = grid.column_left(start.col + 1) + start.colOff / EMU_PER_POINT
            model.height = grid.row_top(end.row + 1) + end.rowOff / EMU_PER_POINT - model.top
            model.width = grid.column_left(end.col + 1) + end.colOff / EMU_PER_POINT - model.left
            for series in chart.series:
                for source in (series.val, series.cat):
                    ref = source and (source.numRef or source.strRef)
                    if ref is not None and ref.f:
                        sheet, _, rng = str(ref.f).rpartition("!")
                        model.refs.append([sheet.strip("'"), *_area(rng)])
            fake.charts.append(model)
    return fake


def link_books(app: Any, template: Path, folder: Path) -> MagicMock:
    """app.books.open(path) opens a fake of that workbook (or returns it if it is already open)."""
    def open_book(fullname: str, **kwargs: Any) -> Any:
        for fake in app._open_books:
            if Path(fake.book.fullname) == Path(fullname):
                return fake.book
        return book_from_xlsx(Path(fullname), Path(fullname).parent, Path(fullname).name, app).book

    app.books.open.side_effect = open_book
    return app.books.open  # type: ignore[no-any-return]
