"""Bulk transfers between an open workbook and the core: one read per source
sheet, one read of each output sheet's header area, one write per output
block (per contiguous run of matched columns), one clear for stale rows.
Values only: formats, formulas, tables and charts of the workbook stay."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from pathlib import Path

import xlwings as xw

from grading.errors import TemplateError
from grading.fill_plan import FillPlan, SheetPlan
from grading.layout_match import BlockMatch, match_blocks
from grading.read import RawSheet
from grading.xlsx_template import load_sheet, shared_strings, workbook_sheets

HEADER_ROWS = 60  # rows read to find headers (the default template's headers are in row 4)
FORMULA_START = ("=", "+", "-", "@")


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


def cell_value(value: object) -> object:
    """What to hand Excel: text that looks like a formula is forced to text; NaN becomes empty."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str):
        return "'" + value if value.startswith(FORMULA_START) else value
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


def ensure_sheets(book: xw.Book, plan: FillPlan, template: Path) -> list[str]:
    """Copy sheets the workbook lacks from the template (one open of the template); return their names."""
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
    source = book.app.books.open(str(template), update_links=False, read_only=True)
    try:
        for name in missing:
            source.sheets[name].copy(after=book.sheets[len(book.sheets) - 1])
    finally:
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


def fill_sheet(book: xw.Book, sp: SheetPlan, template: Path, placeholders: dict[str, str]) -> list[BlockMatch]:
    if sp.optional and sp.name not in sheet_names(book):
        return []
    sheet = book.sheets[sp.name]
    used = sheet.used_range
    width = max(int(used.last_cell.column), 1)
    last_used_row = int(used.last_cell.row)
    cells = _header_cells(sheet, max(width, 30))
    matches = match_blocks(cells, sp.blocks, sp.name, book.name)
    for m in matches:
        n = m.block.n_rows
        lo, hi = min(m.span), max(m.span)
        if n > 1 and not m.block.positional:  # new rows get the sample row's formats (values follow)
            sheet.range((m.first_row, lo + 1), (m.first_row, hi + 1)).copy(
                sheet.range((m.first_row + 1, lo + 1), (m.first_row + n - 1, hi + 1)))
        for run_lo, run_hi in _runs(list(m.columns)):
            if n == 0:
                continue
            data = [[cell_value(m.columns[c].values[i]) for c in range(run_lo, run_hi + 1)] for i in range(n)]
            sheet.range((m.first_row, run_lo + 1), (m.first_row + n - 1, run_hi + 1)).value = data
        stale_from = m.first_row + n
        if last_used_row >= stale_from:  # rows left by a previous, longer run
            sheet.range((stale_from, lo + 1), (last_used_row, hi + 1)).clear_contents()
        for table in sheet.tables:
            top = table.range
            if int(top.row) == m.header_row and int(top.column) - 1 == lo:
                table.resize(sheet.range((m.header_row, lo + 1), (m.header_row + max(n, 1), hi + 1)))
    for (r, c), text in template_texts(template, sp.name).items():
        for key, value in placeholders.items():
            text = text.replace(key, value)
        sheet.range((r, c + 1)).value = cell_value(text)
    return matches
