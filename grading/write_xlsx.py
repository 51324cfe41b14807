"""Stage 6, write: fill the template's sheets by rewriting their XML inside
a copy of the template package; every other part is copied unchanged, so
charts, images, styles and the user's own sheets survive.

Strings are written as inline strings, never formulas (so "=1+2" from an
export stays text). Ranges that start at a filled table (autofilter, Excel
tables, defined names, chart series) are stretched to the new row count.
The output is written to a temp file and moved into place.
"""

from __future__ import annotations

import csv
import os
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from itertools import chain
from pathlib import Path

from .errors import OutputError, OutputFolderNotWritable, TemplateError
from .plan_types import Block, Column, FillPlan
from .safe_text import csv_safe as csv_safe
from .safe_text import xml_escape as escape
from .layout_match import find_anchor, match_block
from .outputs import file_mode, publish, temp_prefix
from .sheet_body import SheetBody, TemplateRows, sheet_body
from .xlsx_package import write_part
from .sheet_layout import check_overlaps, move_anchors_below
from .xlsx_template import (
    TemplateSheet,
    col_index,
    col_letters,
    load_sheet,
    rels_of,
    shared_strings,
    workbook_sheets,
)

_ROW = re.compile(r"<row\b[^>]*?(?:/>|>.*?</row>)", re.S)
_ROW_NUM = re.compile(r'\br="(\d+)"')
_SHEETDATA = re.compile(r"<sheetData\s*/>|<sheetData>.*?</sheetData>", re.S)
_REF = re.compile(r"^(?:'((?:[^']|'')+)'|([^'!]+))!\$?([A-Z]+)\$?(\d+)(?::\$?([A-Z]+)\$?(\d+))?$")
EXCEL_MAX_ROWS = 1_048_576


@dataclass(frozen=True)
class _Sheet:
    """A filled worksheet part: its XML around the sheetData, which is produced while it is written."""

    head: bytes
    body: SheetBody
    tail: bytes


Part = bytes | _Sheet | None  # a package part's new content (None: removed)


@dataclass
class Placed:
    """A plan block located in the template: header row and column → plan column."""

    block: Block
    header_row: int
    columns: dict[int, Column]
    styles: dict[int, str]
    columns_all: tuple[int, ...] = ()
    header_styles: dict[int, str] = field(default_factory=dict)

    @property
    def first_row(self) -> int:
        return self.header_row + 1

    @property
    def last_row(self) -> int:
        return self.header_row + max(self.block.n_rows, 1)

    @property
    def span(self) -> tuple[int, int]:
        return min(self.columns_all), max(self.columns_all)


def write_workbook(template: Path, output: Path, plan: FillPlan,
                   progress: Callable[[str, float], None] = lambda m, f: None,
                   around_replace: Callable[[], AbstractContextManager[object]] = nullcontext,
                   tag: Mapping[str, str] | None = None) -> list[Overflow]:
    """Fill `template` into `output`; returns the tables that exceeded Excel's row limit. The final move into place runs inside `around_replace()`,
    so a caller can tie it to a database transaction (rolled back if the move fails); with a `tag` (what
    identifies the run in that database) the previous output is kept aside until the transaction has
    committed (see outputs.publish)."""
    if not template.is_file():
        raise TemplateError(f"找不到模板文件 {template}。请检查 config.yaml 中 output.template 的路径。")
    if output.resolve() == template.resolve():
        raise OutputError(f"输出文件不能与模板相同：{output}。请修改 output.file。")
    try:
        zf = zipfile.ZipFile(template)
    except (zipfile.BadZipFile, OSError) as exc:
        raise TemplateError(f"模板文件 {template.name} 不是有效的 .xlsx 文件（{exc}）。") from None
    overflows: list[Overflow] = []
    with zf:
        parts = _fill_parts(zf, template, plan, progress, output, overflows)
        for o in overflows:  # the full lists first: the workbook's note points at them
            _write_csv_atomically(o.block, o.csv, output)
        _write_zip_atomically(zf, output, parts, around_replace, tag)
    return overflows


@dataclass(frozen=True)
class Overflow:
    """A table longer than Excel allows: the workbook holds what fits and a note, `csv` holds all rows."""

    sheet: str
    block: Block
    written: int
    csv: Path

    @property
    def message(self) -> str:
        return (f"工作表「{self.sheet}」共 {self.block.n_rows:,} 行，超过 Excel 每个工作表 {EXCEL_MAX_ROWS:,} 行的上限；"
                f"工作簿中列出前 {self.written:,} 行，完整清单见 {self.csv.name}")


def _truncated(p: Placed, sheet: str, output: Path, name: str | None = None) -> tuple[Block, Overflow | None]:
    """`name`: the CSV's suffix when the sheet holds several tables (default: the sheet's name)."""
    leftmost = p.columns[min(p.columns)] if p.columns else (p.block.columns[0] if p.block.columns else None)
    return truncate_block(p.block, p.first_row, leftmost, sheet, output, name=name)


def truncate_block(block: Block, first_row: int, leftmost: Column | None, sheet: str, output: Path,
                   max_rows: int | None = None, name: str | None = None) -> tuple[Block, Overflow | None]:
    """What fits below `first_row` plus a note row (in the `leftmost` filled column); the overflow
    names the CSV beside `output` that gets every row (`name`, default the sheet's, in the file name).
    Shared by the file writer and the add-in."""
    capacity = (max_rows or EXCEL_MAX_ROWS) - first_row + 1
    if block.n_rows <= capacity:
        return block, None
    keep = capacity - 1  # the last row carries the note, in the leftmost filled column
    suffix = re.sub(r'[\\/:*?"<>|]', "_", name or sheet)
    overflow = Overflow(sheet, block, keep, output.with_name(f"{output.stem}_{suffix}.csv"))
    columns = tuple(
        Column(c.header, [*c.values[:keep], overflow.message if c is leftmost else None], c.aliases)
        for c in block.columns)
    return replace(block, columns=columns, n_rows=capacity), overflow


@contextmanager
def temp_beside(target: Path, suffix: str, owner: Path | None = None) -> Iterator[tuple[int, str]]:
    """A temp file in the target's folder, named after the run's output (`owner`) so the next run can
    remove it if this one is killed; removed unless the caller moved it into place. Created with the
    permissions of any file the user creates (umask), not mkstemp's 0600."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(owner or target), suffix=suffix, dir=target.parent)
    except OSError as exc:
        raise OutputFolderNotWritable(
            f"无法在文件夹 {target.parent} 中创建输出文件：{exc.strerror}。请检查文件夹是否存在且可写，"
            "或把输出路径（config.yaml 的 output.file 或命令行的 -o）改到可写的文件夹。") from None
    if hasattr(os, "fchmod"):
        os.fchmod(fd, file_mode())
    try:
        yield fd, tmp
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_overflow_csv(overflow: Overflow, owner: Path) -> None:
    """The full list of a table cut at Excel's row limit, beside the output (`owner`: the run's output)."""
    _write_csv_atomically(overflow.block, overflow.csv, owner)


def _write_csv_atomically(block: Block, target: Path, owner: Path) -> None:
    """UTF-8 with BOM (Excel opens it correctly), formula-safe text."""
    with temp_beside(target, ".csv.tmp", owner) as (fd, tmp):
        with os.fdopen(fd, "w", encoding="utf-8-sig", newline="") as fh:
            w = csv.writer(fh)
            w.writerow([c.header for c in block.columns])
            for row in zip(*(c.values for c in block.columns)):
                w.writerow([csv_safe(v) for v in row])
        os.replace(tmp, target)


def _fill_parts(zf: zipfile.ZipFile, template: Path, plan: FillPlan, progress: Callable[[str, float], None],
                output: Path, overflows: list[Overflow]) -> dict[str, Part]:
    strings = shared_strings(zf)
    sheets = workbook_sheets(zf)
    index = dict(sheets)
    missing = [sp.name for sp in plan.sheets if sp.name not in index and not sp.optional]
    if missing:
        raise TemplateError(
            f"模板 {template.name} 缺少工作表：{'、'.join(missing)}；模板中的工作表："
            f"{'、'.join(n for n, _ in sheets)}。请使用 templates/ 中的默认模板，或把缺少的工作表加回去。"
        )
    parts: dict[str, Part] = {}
    placed_by_sheet: dict[str, list[Placed]] = {}
    for k, sp in enumerate(plan.sheets):
        progress(f"写入工作表 {sp.name}", k / len(plan.sheets))
        if sp.name not in index:
            continue  # an optional sheet the user removed from the template
        path = index[sp.name]
        tsheet = load_sheet(zf, sp.name, path, strings)
        texts = {key: cell.text for key, cell in tsheet.cells.items()}
        placed = [_locate(tsheet, b, template.name) for b in sp.blocks
                  if not (b.optional and find_anchor(texts, b) is None)]
        if not placed:
            continue
        check_overlaps(placed, sp.name, template.name)
        for j, p in enumerate(placed):
            block, overflow = _truncated(p, sp.name, output,
                                         None if len(placed) == 1 else f"{sp.name}_{p.block.anchors[0]}")
            if overflow is not None:
                overflows.append(overflow)
                swap = {id(old): new for old, new in zip(p.block.columns, block.columns)}
                placed[j] = replace(p, block=block, columns={c: swap[id(col)] for c, col in p.columns.items()})
        placed_by_sheet[sp.name] = placed
        xml = zf.read(path).decode("utf-8")
        xml, body = _rebuild_sheet(xml, tsheet, placed)  # the rest of the sheet XML, and its sheetData
        for p in placed:
            if p.block.colours:
                styles = parts.get("xl/styles.xml") or zf.read("xl/styles.xml")
                assert isinstance(styles, bytes)
                xml, new_styles = _colour_rules(xml, styles.decode("utf-8"), p)
                parts["xl/styles.xml"] = new_styles.encode("utf-8")
        head, _, tail = xml.partition(_SHEETDATA_TOKEN)
        parts[path] = _Sheet(head.encode("utf-8"), body, tail.encode("utf-8"))
        for rid, (kind, target) in rels_of(zf, path).items():
            if kind == "table":
                parts[target] = _stretch_table(zf.read(target).decode("utf-8"), placed).encode("utf-8")
            elif kind == "drawing" and target in zf.namelist():
                parts[target] = move_anchors_below(zf.read(target).decode("utf-8"), placed).encode("utf-8")

    def fix(ref: str, chart: bool) -> str:
        return _stretch_ref(ref, placed_by_sheet, chart)

    for name in zf.namelist():
        if re.fullmatch(r"xl/charts/chart\d+\.xml", name):
            xml = zf.read(name).decode("utf-8")
            xml = re.sub(r"<c:f>(.*?)</c:f>", lambda m: f"<c:f>{fix(m.group(1), True)}</c:f>", xml)
            xml = re.sub(r"<c:(num|str)Cache>.*?</c:\1Cache>", "", xml, flags=re.S)
            parts[name] = xml.encode("utf-8")
    parts["xl/workbook.xml"] = _fix_workbook(zf.read("xl/workbook.xml").decode("utf-8"), fix).encode("utf-8")
    if "xl/sharedStrings.xml" in zf.namelist() and plan.placeholders:
        xml = zf.read("xl/sharedStrings.xml").decode("utf-8")
        for key, value in plan.placeholders.items():
            xml = xml.replace(escape(key), escape(value))
        parts["xl/sharedStrings.xml"] = xml.encode("utf-8")
    if "xl/calcChain.xml" in zf.namelist():  # cells changed: Excel rebuilds the chain
        parts["xl/calcChain.xml"] = None
        rels = "xl/_rels/workbook.xml.rels"
        parts[rels] = re.sub(r"<Relationship[^>]*calcChain[^>]*/>", "", zf.read(rels).decode("utf-8")).encode()
        ct = zf.read("[Content_Types].xml").decode("utf-8")
        parts["[Content_Types].xml"] = re.sub(r"<Override[^>]*calcChain[^>]*/>", "", ct).encode("utf-8")
    return parts


def _locate(ts: TemplateSheet, block: Block, template_name: str) -> Placed:
    m = match_block({k: cell.text for k, cell in ts.cells.items()}, block, ts.name, template_name)
    row, col = m.anchor
    if block.positional:  # a matrix written from the anchor cell on, its first row holds the labels
        first_style = _style_at(ts, row, col)
        data_style = _style_at(ts, row + 1, col)
        header = {c: _style_at(ts, row, c) or first_style for c in m.span}
        body = {c: _style_at(ts, row + 1, c) or data_style for c in m.span}
        body[col] = first_style  # the row labels look like the header
        return Placed(block, m.header_row, dict(m.columns), _clean_styles(body), m.span, _clean_styles(header))
    styles = _clean_styles({c: _style_at(ts, m.first_row, c) for c in m.span})
    return Placed(block, m.header_row, dict(m.columns), styles, m.span)


def _style_at(ts: TemplateSheet, row: int, col: int) -> str | None:
    cell = ts.cells.get((row, col))
    return cell.style if cell is not None else None


def _clean_styles(styles: dict[int, str | None]) -> dict[int, str]:
    return {c: s for c, s in styles.items() if s is not None}


_CELL = re.compile(r"<c\b[^>]*?(?:/>|>.*?</c>)", re.S)
_CELL_COL = re.compile(r'\br="([A-Z]+)\d+"')
_SHEETDATA_TOKEN = "\x00sheetData\x00"


def _rebuild_sheet(xml: str, ts: TemplateSheet, placed: list[Placed]) -> tuple[str, SheetBody]:
    """Each block owns its columns from its first data row down; every other template cell stays.
    Returns the sheet XML with a token for its sheetData, and the sheetData (see sheet_body)."""
    match = _SHEETDATA.search(xml)
    if match is None:
        raise TemplateError(f"模板工作表 {ts.name} 的结构无法识别（缺少 sheetData）。")
    template_rows: TemplateRows = {}
    for m in _ROW.finditer(match.group(0)):
        row_xml = m.group(0)
        num = _ROW_NUM.search(row_xml)
        if not num:
            continue
        tag = row_xml[: row_xml.index(">") + 1].removesuffix("/>").removesuffix(">")
        attrs = re.sub(r'\s(?:r|spans)="[^"]*"', "", tag.removeprefix("<row"))
        cells = {col_index(ref.group(1)): x for x in _CELL.findall(row_xml) if (ref := _CELL_COL.search(x))}
        template_rows[int(num.group(1))] = (attrs, cells)

    body = sheet_body(template_rows, placed)
    xml = xml[: match.start()] + _SHEETDATA_TOKEN + xml[match.end():]  # small: edited without the data
    last_row = max([p.first_row - 1 + p.block.n_rows for p in placed] + [p.header_row for p in placed]
                   + list(template_rows))
    last_col = max(c for p in placed for c in p.columns_all)
    xml = re.sub(r'<dimension ref="[^"]*"\s*/>', f'<dimension ref="A1:{col_letters(last_col)}{last_row}"/>', xml)

    def autofilter(m: re.Match[str]) -> str:
        return f'<autoFilter ref="{_stretch_range(m.group(1), placed, chart=False)}"'

    return re.sub(r'<autoFilter ref="([^"]+)"', autofilter, xml), body


_CF_BEFORE = ("<conditionalFormatting", "<dataValidations", "<hyperlinks", "<printOptions", "<pageMargins",
              "<pageSetup", "<headerFooter", "<rowBreaks", "<colBreaks", "<drawing", "<legacyDrawing",
              "<tableParts", "<extLst", "</worksheet>")


def _colour_rules(sheet: str, styles: str, placed: Placed) -> tuple[str, str]:
    """Fill the 等级 column's cells with the configured grade colours, ahead of the template's own rules."""
    col = next((c for c, column in placed.columns.items() if column.header == "等级"), None)
    if col is None:
        return sheet, styles
    if "<dxfs" not in styles:
        anchor = "<tableStyles" if "<tableStyles" in styles else "</styleSheet>"
        styles = styles.replace(anchor, '<dxfs count="0"/>' + anchor, 1)
    styles = styles.replace('<dxfs count="0"/>', '<dxfs count="0"></dxfs>')
    first_dxf = int(re.search(r'<dxfs count="(\d+)"', styles).group(1))  # type: ignore[union-attr]
    dxfs = "".join(f'<dxf><fill><patternFill><bgColor rgb="FF{c.lstrip("#").upper()}"/></patternFill></fill></dxf>'
                   for _, c in placed.block.colours)
    styles = re.sub(r'<dxfs count="\d+">', f'<dxfs count="{first_dxf + len(placed.block.colours)}">', styles, count=1)
    styles = styles.replace("</dxfs>", dxfs + "</dxfs>", 1)
    k = len(placed.block.colours)
    sheet = re.sub(r'(<cfRule\b[^>]*\spriority=")(\d+)"', lambda m: f'{m.group(1)}{int(m.group(2)) + k}"', sheet)
    letter = col_letters(col)
    rules = "".join(
        f'<cfRule type="cellIs" dxfId="{first_dxf + i}" priority="{i + 1}" operator="equal">'
        f'<formula>"{escape(grade.replace(chr(34), chr(34) * 2))}"</formula></cfRule>'
        for i, (grade, _) in enumerate(placed.block.colours))
    block = f'<conditionalFormatting sqref="{letter}{placed.first_row}:{letter}1048576">{rules}</conditionalFormatting>'
    at = min((i for i in (sheet.find(t) for t in _CF_BEFORE) if i >= 0), default=len(sheet))
    return sheet[:at] + block + sheet[at:], styles


def _stretch_range(rng: str, placed: list[Placed], chart: bool) -> str:
    m = re.fullmatch(r"\$?([A-Z]+)\$?(\d+)(?::\$?([A-Z]+)\$?(\d+))?", rng)
    if not m:
        return rng
    c1, r1 = col_index(m.group(1)), int(m.group(2))
    c2 = col_index(m.group(3)) if m.group(3) else c1
    for p in placed:
        lo, hi = p.span
        if not (lo <= c1 and c2 <= hi):
            continue
        rows = p.block.chart_rows if chart and p.block.chart_rows is not None else p.block.n_rows
        if r1 == p.header_row:
            end = p.header_row + max(rows, 1)
        elif r1 == p.first_row:
            end = p.first_row + max(rows, 1) - 1
        else:
            continue
        dollar = "$" in rng
        d = "$" if dollar else ""
        return f"{d}{m.group(1)}{d}{r1}:{d}{m.group(3) or m.group(1)}{d}{end}"
    return rng


def _stretch_ref(ref: str, placed_by_sheet: dict[str, list[Placed]], chart: bool) -> str:
    m = _REF.match(ref.strip())
    if not m:
        return ref
    sheet = (m.group(1) or "").replace("''", "'") or (m.group(2) or "")
    sheet = sheet.replace("&apos;", "'")
    if sheet not in placed_by_sheet:
        return ref
    prefix, _, rng = ref.strip().rpartition("!")
    return f"{prefix}!{_stretch_range(rng, placed_by_sheet[sheet], chart)}"


def _stretch_table(xml: str, placed: list[Placed]) -> str:
    def row_of(ref: str) -> int:
        return int(re.sub(r"\D", "", ref))

    def fix(m: re.Match[str]) -> str:  # a table holds what its charts plot (a 合计 row goes just below it)
        rng = _stretch_range(m.group(2), placed, chart=True)
        a, _, b = rng.partition(":")
        if b and row_of(b) <= row_of(a):  # an Excel table needs one data row
            b = re.sub(r"\d+", str(row_of(a) + 1), b)
            rng = f"{a}:{b}"
        return f'{m.group(1)}ref="{rng}"'

    return re.sub(r'(<(?:table|autoFilter)\b[^>]*?\s)ref="([^"]+)"', fix, xml)


def _fix_workbook(xml: str, fix: Callable[[str, bool], str]) -> str:
    xml = re.sub(r"(<definedName\b[^>]*>)(.*?)(</definedName>)",
                 lambda m: m.group(1) + ",".join(fix(part, False) for part in m.group(2).split(",")) + m.group(3),
                 xml, flags=re.S)
    if "<calcPr" in xml:
        xml = re.sub(r"<calcPr\b([^>]*?)\s*/>",
                     lambda m: "<calcPr" + re.sub(r'\sfullCalcOnLoad="[^"]*"', "", m.group(1)) + ' fullCalcOnLoad="1"/>',
                     xml, count=1)
    else:
        anchor = "</definedNames>" if "</definedNames>" in xml else "</sheets>"
        xml = xml.replace(anchor, anchor + '<calcPr fullCalcOnLoad="1"/>', 1)
    return xml


def _write_zip_atomically(src: zipfile.ZipFile, output: Path, parts: dict[str, Part],
                          around_replace: Callable[[], AbstractContextManager[object]],
                          tag: Mapping[str, str] | None) -> None:
    with temp_beside(output, ".xlsx.tmp") as (fd, tmp):
        with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as out:
            for info in src.infolist():
                if info.filename in parts:
                    data = parts[info.filename]
                    if data is None:
                        continue
                else:
                    data = src.read(info.filename)
                zi = zipfile.ZipInfo(info.filename, date_time=info.date_time)
                zi.external_attr = info.external_attr
                if isinstance(data, bytes):
                    write_part(out, zi, [data], len(data))
                else:
                    write_part(out, zi, chain([data.head], data.body.chunks(), [data.tail]),
                               len(data.head) + data.body.size + len(data.tail))
        publish(tmp, output, around_replace, tag)
