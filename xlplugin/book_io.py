"""Bulk transfers between an open workbook and the core: one read per source
sheet, one read of each output sheet's header area, one write per output
block (per contiguous run of matched columns), one clear for stale rows.
Values only: formats, formulas and charts of the workbook stay; the Excel
tables (ListObjects) the blocks fill are resized, and charts that plot their
columns follow them (Excel keeps a series on a table column with the table).

Text stays text: Excel parses every string written through COM (`Range.Value`)
as if typed (000123 → 123, 4-6 → a date, TRUE → a boolean, 12% → 0.12), so text
that could be parsed goes in with an apostrophe prefix, which Excel keeps out
of the cell's value. Numbers and dates go in as typed values and take the
sample row's formats."""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path

import xlwings as xw

from grading import write_xlsx
from grading.errors import TemplateError
from grading.fill_plan import FillPlan, SheetPlan
from grading.layout_match import BlockMatch, match_blocks
from grading.read import RawSheet
from grading.write_xlsx import Overflow, truncate_block, write_overflow_csv
from grading.xlsx_template import load_sheet, shared_strings, workbook_sheets

from .sheet_objects import filled, move_charts_below, stretch_autofilter

HEADER_ROWS = 60  # rows read to find headers (the default template's headers are in row 4)
_PARSED_START = ("'", "=", "+", "-", "@", "#", "(", "$", "¥", "￥", ".", ",")
_WORDS = ("TRUE", "FALSE")


def sheet_names(book: xw.Book) -> list[str]:
    return [s.name for s in book.sheets]


def read_sheet(book: xw.Book, name: str) -> RawSheet | None:
    """The used range of a sheet as plain rows (one read), or None if the sheet does not exist."""
    if name not in sheet_names(book):
        return None
    used = book.sheets[name].used_range
    values = used.options(ndim=2).value
    rows: list[list[object]] = [list(r) for r in values] if values else []
    return RawSheet(Path(book.name), name, rows, int(used.row))


def excel_text(text: str) -> str:
    """A string as it must be handed to Excel to arrive as the same text. Excel parses what it is
    given like typed input: anything with a digit may become a number, date, time, fraction or
    percentage, TRUE/FALSE a boolean, #N/A an error, = + - @ a formula, and a leading apostrophe
    is taken as the text prefix (and dropped). Such strings get an apostrophe prefix."""
    if not text:
        return text
    if text.startswith(_PARSED_START) or text.strip().upper() in _WORDS or any(ch.isdigit() for ch in text):
        return "'" + text
    return text


def cell_value(value: object) -> object:
    """What to hand Excel: text that Excel would parse goes in as text; NaN becomes empty."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str):
        return excel_text(value)
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    return value


def _runs(columns: Sequence[int]) -> list[tuple[int, int]]:
    """Contiguous runs of column indices: [(first, last)]."""
    out: list[tuple[int, int]] = []
    for c in sorted(columns):
        if out and c == out[-1][1] + 1:
            out[-1] = (out[-1][0], c)
        else:
            out.append((c, c))
    return out


def _same_file(a: str, b: Path) -> bool:
    try:
        return os.path.normcase(os.path.abspath(a)) == os.path.normcase(str(b.resolve()))
    except (OSError, ValueError):
        return False


def ensure_sheets(book: xw.Book, plan: FillPlan, template: Path) -> list[str]:
    """Copy sheets the workbook lacks from the template (one open of the template); return their names.
    A template the user already has open is used as it is and left open."""
    have = set(sheet_names(book))
    missing = [sp.name for sp in plan.sheets if sp.name not in have]
    optional = {sp.name for sp in plan.sheets if sp.optional}
    if missing and template.is_file():  # optional sheets are copied only if the template has them
        import zipfile

        with zipfile.ZipFile(template) as zf:
            in_template = {name for name, _ in workbook_sheets(zf)}
        missing = [m for m in missing if m in in_template or m not in optional]
    elif missing:
        missing = [m for m in missing if m not in optional]
    if not missing:
        return []
    if not template.is_file():
        raise TemplateError(f"工作簿缺少工作表 {'、'.join(missing)}，且找不到模板 {template} 来复制。"
                            "请检查 config.yaml 中 output.template。")
    source = next((b for b in book.app.books if _same_file(str(b.fullname), template)), None)
    opened = source is None
    if source is None:
        source = book.app.books.open(str(template), update_links=False, read_only=True)
    try:
        absent = [name for name in missing if name not in sheet_names(source)]
        if absent:
            raise TemplateError(f"模板 {template.name} 缺少工作表：{'、'.join(absent)}。"
                                "请使用默认模板（grade-etl init 可复制一份），或把缺少的工作表加回去。")
        first = plan.sheets[0].name  # 总览 when enabled: it goes in front, as in the template
        for name in missing:
            if name == first:
                source.sheets[name].copy(before=book.sheets[0])
            else:
                source.sheets[name].copy(after=book.sheets[len(book.sheets) - 1])
    finally:
        if opened:
            source.close()
    return missing


def _header_cells(sheet: xw.Sheet, width: int) -> dict[tuple[int, int], str]:
    values = sheet.range((1, 1), (HEADER_ROWS, max(width, 1))).options(ndim=2).value or []
    cells: dict[tuple[int, int], str] = {}
    for r, row in enumerate(values, start=1):
        for c, v in enumerate(row):
            if v is not None and str(v).strip():
                cells[(r, c)] = str(v).strip()
    return cells


def template_texts(template: Path, sheet: str) -> dict[tuple[int, int], str]:
    """Texts of the template's title cells that hold placeholders ({{期间}} …), by position."""
    import zipfile

    if not template.is_file():
        return {}
    with zipfile.ZipFile(template) as zf:
        index = dict(workbook_sheets(zf))
        if sheet not in index:
            return {}
        ts = load_sheet(zf, sheet, index[sheet], shared_strings(zf))
    return {k: c.text for k, c in ts.cells.items() if "{{" in c.text}


def _table_at(sheet: xw.Sheet, row: int, col: int) -> xw.main.Table | None:
    """The Excel table (ListObject) whose header row starts at (row, col), 1-based."""
    for table in sheet.tables:
        top = table.range
        if int(top.row) == row and int(top.column) == col:
            return table
    return None


def _truncated(m: BlockMatch, sheet: str, csv_base: Path) -> tuple[BlockMatch, Overflow | None]:
    """Above Excel's row limit: what fits plus a note row; the overflow names the full CSV."""
    leftmost = m.columns[min(m.columns)] if m.columns else None
    block, overflow = truncate_block(m.block, m.first_row, leftmost, sheet, csv_base,
                                     write_xlsx.EXCEL_MAX_ROWS)
    if overflow is None:
        return m, None
    swap = {id(old): new for old, new in zip(m.block.columns, block.columns)}
    return replace(m, block=block, columns={c: swap[id(col)] for c, col in m.columns.items()}), overflow


def _stale_end(sheet: xw.Sheet, m: BlockMatch, table_end: int | None, last_used_row: int) -> int:
    """Last row a previous, longer run may have filled: inside the table (plus the rows a block keeps
    below its table, such as 合计), else the rows below the block up to the first empty one. Cells
    further down (a user's note under the table) are not the block's."""
    stale_from = m.first_row + m.block.n_rows
    if table_end is not None:
        below = m.block.n_rows - m.block.chart_rows if m.block.chart_rows is not None else 0
        return table_end + below
    if last_used_row < stale_from:
        return stale_from - 1
    lo, hi = min(m.span), max(m.span)
    rows = sheet.range((stale_from, lo + 1), (last_used_row, hi + 1)).options(ndim=2).value or []
    end = stale_from - 1
    for row in rows:
        if all(v is None or v == "" for v in row):
            break
        end += 1
    return end


def fill_sheet(book: xw.Book, sp: SheetPlan, template: Path, placeholders: dict[str, str],
               csv_base: Path | None = None, overflows: list[Overflow] | None = None,
               notes: list[str] | None = None) -> list[BlockMatch]:
    if sp.optional and sp.name not in sheet_names(book):
        return []
    sheet = book.sheets[sp.name]
    used = sheet.used_range
    width = max(int(used.last_cell.column), 1)
    last_used_row = int(used.last_cell.row)
    cells = _header_cells(sheet, max(width, 30))
    matches = match_blocks(cells, sp.blocks, sp.name, book.name)
    for k, m in enumerate(matches):
        if csv_base is not None:
            m, overflow = _truncated(m, sp.name, csv_base)
            matches[k] = m
            if overflow is not None and overflows is not None:
                overflows.append(overflow)
        n = m.block.n_rows
        lo, hi = min(m.span), max(m.span)
        table = None if m.block.positional else _table_at(sheet, m.header_row, lo + 1)
        table_end = int(table.range.last_cell.row) if table is not None else None
        stale_end = _stale_end(sheet, m, table_end, last_used_row)
        if table is not None:  # the table holds the rows its charts plot; charts on its columns follow it
            rows = m.block.chart_rows if m.block.chart_rows is not None else n
            table.resize(sheet.range((m.header_row, lo + 1), (m.header_row + max(rows, 1), hi + 1)))
        if n > 1 and not m.block.positional:  # new rows get the sample row's formats (values follow)
            sheet.range((m.first_row, lo + 1), (m.first_row, hi + 1)).copy(
                sheet.range((m.first_row + 1, lo + 1), (m.first_row + n - 1, hi + 1)))
        for run_lo, run_hi in _runs(list(m.columns)):
            if n == 0:
                continue
            data = [[cell_value(m.columns[c].values[i]) for c in range(run_lo, run_hi + 1)] for i in range(n)]
            sheet.range((m.first_row, run_lo + 1), (m.first_row + n - 1, run_hi + 1)).value = data
        stale_from = m.first_row + n
        if stale_end >= stale_from:  # rows left by a previous, longer run
            sheet.range((stale_from, lo + 1), (stale_end, hi + 1)).clear_contents()
    blocks = [filled(m) for m in matches]
    move_charts_below(sheet, blocks)  # as grade-etl moves drawing anchors
    note = stretch_autofilter(sheet, blocks)  # as grade-etl stretches <autoFilter ref>
    if note is not None and notes is not None:
        notes.append(note)
    for (r, c), text in template_texts(template, sp.name).items():
        for key, value in placeholders.items():
            text = text.replace(key, value)
        sheet.range((r, c + 1)).value = cell_value(text)
    return matches


@dataclass
class BookSink:
    """The add-in's sink of the one pipeline: fills the open workbook. Tables beyond Excel's row
    limit keep what fits plus a note; their full lists go to CSV files beside the workbook (or
    beside the configured output when the workbook has no folder: unsaved, OneDrive/SharePoint)."""

    book: xw.Book
    template: Path
    csv_base: Path
    source: str = "excel"
    copied: list[str] = field(default_factory=list)

    @property
    def target(self) -> str:
        return str(self.book.fullname)

    @property
    def beside(self) -> Path:
        return self.csv_base

    def write(self, plan: FillPlan, progress: Callable[[str, float], None],
              commit: Callable[[], AbstractContextManager[object]]) -> list[str]:
        self.copied = ensure_sheets(self.book, plan, self.template)
        overflows: list[Overflow] = []
        notes: list[str] = []
        for k, sp in enumerate(plan.sheets):
            progress(f"写入工作表 {sp.name}", k / len(plan.sheets))
            fill_sheet(self.book, sp, self.template, plan.placeholders, self.csv_base, overflows, notes)
        for o in overflows:
            write_overflow_csv(o, self.csv_base)
        with commit():  # the history records the period once the workbook is filled
            pass
        if plan.sheets and plan.sheets[0].name in sheet_names(self.book):
            self.book.sheets[plan.sheets[0].name].activate()  # show the first screen (总览) after the click
        return [o.message for o in overflows] + notes


