"""Stage 1, read: any export file → plain rows (lists of Python values).

The format is sniffed from the first bytes, not trusted from the extension:
OLE (real BIFF .xls), zip (xlsx/xlsm/xlsb/ods), `<` (HTML table or XML
Spreadsheet 2003 saved as ".xls" by web ERPs), otherwise delimited text
(CSV/TSV in UTF-8, UTF-8-BOM, UTF-16 or GB18030).
"""

from __future__ import annotations

import csv
import glob
import io
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
from python_calamine import CalamineWorkbook

from .errors import BadTextLine, EmptySheet, InputFileMissing, SheetTooLarge, UnreadableFile
from .read_markup import SpanTooLarge, read_html_tables, read_xml_spreadsheet
from .text_checks import check_mixed, check_text_bytes, line_of
from . import read_arrow, xlsx_extent
from .arrow_body import ArrowBody
from .read_text_arrow import read_body
from .xlsx_extent import MAX_CELLS, inflates_beyond, shared_strings_part, sheet_part, wide_extent



HEAD_ROWS = 200  # rows kept as lists when a sheet is read column-wise (header search, messages)
GRID_ROWS = 1000  # from this many rows, columns are cut from one 2-D array of the rows (RawSheet._grid)


@dataclass
class RawSheet:
    """Cells of one sheet as read; `first_row` is the 1-based row number of the first row.

    Either `rows` holds every row (Excel readers), or `table` holds every row column-wise
    (large xlsx sheets, text exports pyarrow cannot take) and `rows` only the first of them, or `body`
    holds the rows from `body.start` on in Arrow (large text exports) and `rows` only the first rows."""

    file: Path
    sheet: str
    rows: list[list[object]]
    first_row: int = 1
    notes: list[str] = field(default_factory=list)
    table: pd.DataFrame | None = None
    body: ArrowBody | None = None
    _grid_cache: np.ndarray | bool | None = field(default=None, init=False, repr=False, compare=False)
    _columns: list[np.ndarray] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def where(self) -> str:
        return f"文件 {self.file.name} 工作表 {self.sheet}"

    @property
    def n_rows(self) -> int:
        if self.body is not None:
            return self.body.start + self.body.n_rows
        return len(self.table) if self.table is not None else len(self.rows)

    def rows_at(self, indices: np.ndarray) -> list[list[object]]:
        """row(i) for every i of `indices` (an Arrow body converts each column once for all of them)."""
        if self.body is not None:
            at = np.asarray(indices, dtype=np.int64)
            return [self.rows[i] if i < len(self.rows) else r
                    for i, r in zip(at.tolist(), self.body.rows_at(at))]
        return [self.row(int(i)) for i in indices]

    def row(self, index: int) -> list[object]:
        if self.body is not None and index >= len(self.rows):
            return self.body.row(index)
        if self.table is not None and index >= len(self.rows):
            return [column[index] for column in self._table_columns()]
        return self.rows[index]

    def _table_columns(self) -> list[np.ndarray]:
        """The table's columns as object arrays, made once: a row is then one index per column
        (not a pandas row lookup: normalise looks at every 合计/小计 candidate row)."""
        if self._columns is None:
            assert self.table is not None
            self._columns = [np.asarray(self.table.iloc[:, c].to_numpy(dtype=object))
                             for c in range(self.table.shape[1])]
        return self._columns

    def _grid(self) -> np.ndarray | None:
        """The rows as one 2-D object array, built once, when they are many and all of one width
        (calamine's are): every column is then a strided copy instead of a pass over all rows."""
        if self._grid_cache is None and len(self.rows) >= GRID_ROWS:
            widths = set(map(len, self.rows))
            if len(widths) == 1:
                grid = np.empty((len(self.rows), widths.pop()), dtype=object)
                grid[:] = self.rows
                self._grid_cache = grid
            else:
                self._grid_cache = False
        return self._grid_cache if isinstance(self._grid_cache, np.ndarray) else None

    def column(self, col: int, start: int) -> np.ndarray:
        """Values of column `col` from row index `start` on, as an object array (None past a short row)."""
        if self.body is not None:
            if col >= self.body.width:
                return np.full(max(self.n_rows - start, 0), None, dtype=object)
            return self.body.objects(col, start)
        if self.table is not None:
            if col >= self.table.shape[1]:
                return np.full(len(self.table) - start, None, dtype=object)
            return self._table_columns()[col][start:].copy()
        grid = self._grid()
        if grid is not None:
            if col >= grid.shape[1]:
                return np.full(max(len(self.rows) - start, 0), None, dtype=object)
            return grid[start:, col].copy()
        data = self.rows[start:]
        try:
            values = list(map(itemgetter(col), data))
        except IndexError:
            values = [r[col] if col < len(r) else None for r in data]
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out

    def _in_body(self, col: int, start: int) -> ArrowBody | None:
        body = self.body
        return body if body is not None and col < body.width and start <= self.n_rows else None

    def factorized(self, col: int, start: int) -> tuple[np.ndarray, np.ndarray] | None:
        """pandas.factorize of column(col, start) made without a Python object per cell (Arrow body), or None."""
        body = self._in_body(col, start)
        return body.factorized(col, start) if body is not None else None

    def text_uniques(self, col: int, start: int) -> Any:
        """The distinct values of factorized(col, start) as an Arrow string array, when the Arrow body holds
        them as its own strings (grading.arrow_body.ArrowBody.text_uniques), else None."""
        body = self._in_body(col, start)
        return body.text_uniques(col, start) if body is not None else None

    def cells(self, col: int, start: int, rows: np.ndarray) -> np.ndarray | None:
        """column(col, start)[rows] without building the whole column (Arrow body), or None."""
        body = self._in_body(col, start)
        return body.cells(col, start, rows) if body is not None else None

    def amounts(self, col: int, start: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """grading.amounts.parse_amounts(column(col, start)) parsed in Arrow (Arrow body), or None."""
        body = self._in_body(col, start)
        return body.amounts(col, start) if body is not None else None


def expand_globs(patterns: Iterable[str], base: Path, source_label: str,
                 skip: Callable[[Path], bool] | None = None, skipped: list[Path] | None = None) -> list[Path]:
    """Resolve config globs against the config folder; every pattern must match something.
    Files for which `skip` is true (the tool's own outputs) are left out and added to `skipped`."""
    found: list[Path] = []
    for pattern in patterns:
        full = pattern if Path(pattern).is_absolute() else str(base / pattern)
        matches = sorted(Path(p) for p in glob.glob(full, recursive=True) if Path(p).is_file())
        matches = [m for m in matches if not m.name.startswith("~$")]  # Excel lock files
        if skip is not None:
            own = [m for m in matches if skip(m)]
            if skipped is not None:
                skipped += [m for m in own if m not in skipped]
            matches = [m for m in matches if m not in own]
        if not matches:
            raise InputFileMissing(
                f"{source_label}：找不到文件 {pattern}（在 {base} 下查找）。"
                "请检查 config.yaml 中 files 的路径，或先导出数据。"
            )
        found += [m for m in matches if m not in found]
    return found


def sniff(head: bytes) -> str:
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "xls"
    if head.startswith(b"PK"):
        return "zip"
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"<"):
        return "markup"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) and b"<\x00" in head[2:8]:
        return "markup"
    return "text"


def read_file(path: Path, sheet: str | None = None) -> list[RawSheet]:
    """Read the named sheet (or the first visible one) of any supported file."""
    try:
        with path.open("rb") as fh:
            head = fh.read(512)
    except FileNotFoundError:
        raise InputFileMissing(f"找不到文件 {path}。请检查文件名和路径是否正确。") from None
    except PermissionError:
        raise UnreadableFile(f"无法打开文件 {path}：没有读取权限。请检查文件权限，或文件是否正被其他程序独占打开。") from None
    except IsADirectoryError:
        raise UnreadableFile(f"{path} 是一个文件夹，不是数据文件。请在 config.yaml 的 files 中写文件名或通配符（如 exports/*.xlsx）。") from None
    except OSError as exc:
        raise UnreadableFile(f"无法打开文件 {path}（系统错误 {exc.errno}）。文件是否被其他程序占用？请关闭后重试。") from None
    if not head:
        raise EmptySheet(f"文件 {path.name} 是空文件（0 字节），请重新导出。")
    kind = sniff(head)
    if kind in ("xls", "zip"):
        return [_read_calamine(path, sheet, kind)]
    if kind == "markup":
        return [_read_markup(path, sheet)]
    return [read_text(path)]


def _read_calamine(path: Path, sheet: str | None, kind: str) -> RawSheet:
    checked = None
    if kind == "zip":
        _check_package(path)
        large = _xlsx_choice(path, sheet)  # a large xlsx sheet: no need to open the workbook in calamine
        if large is not None:
            checked, part = large
            _check_extent(path, checked)
            columns = _read_large_xlsx(path, checked, part)
            if columns is not None:
                head, first_row, body = columns
                return _non_empty(RawSheet(path, checked, head, first_row, [], None, body))
    try:
        with path.open("rb") as fh:
            wb = CalamineWorkbook.from_filelike(fh)
    except Exception as exc:  # calamine raises several private error types
        raise _damaged(path, kind, exc) from None
    names = list(wb.sheet_names)
    if sheet is not None:
        if sheet not in names:
            raise UnreadableFile(
                f"文件 {path.name} 中没有名为 {sheet!r} 的工作表；找到的工作表：{'、'.join(names)}。"
                "请修改 config.yaml 中的 sheet。"
            )
        name = sheet
    else:
        visible = [m.name for m in wb.sheets_metadata if str(m.visible).endswith(".Visible")]
        name = (visible or names)[0]
    if kind == "zip" and name != checked:
        _check_extent(path, name)
    try:
        ws = wb.get_sheet_by_name(name)
    except Exception as exc:  # the sheet's own bytes are damaged (e.g. a corrupt deflate stream)
        raise _damaged(path, kind, exc) from None
    if ws.height * ws.width > MAX_CELLS:
        raise UnreadableFile(
            f"文件 {path.name} 工作表 {name} 的数据区域过大（{ws.height} 行 × {ws.width} 列），"
            "可能含有格式化到底部的空行/空列；请删除多余区域后重新保存。"
        )
    try:
        rows = cast(list[list[object]], ws.to_python(skip_empty_area=True))
    except Exception as exc:
        raise _damaged(path, kind, exc) from None
    start = ws.start[0] + 1 if ws.start else 1
    return _non_empty(RawSheet(path, name, rows, start))


def _damaged(path: Path, kind: str, exc: Exception) -> UnreadableFile:
    fmt = "Excel 97-2003 (.xls)" if kind == "xls" else "Excel (.xlsx/.xlsm/.xlsb/.ods)"
    return UnreadableFile(
        f"文件 {path.name} 看起来是 {fmt} 格式，但无法读取（读取程序 calamine 报告：{exc}）。"
        "文件可能已损坏或加密，请在 Excel 中打开后另存为 .xlsx 再试。"
    )


def _check_package(path: Path) -> None:
    """Refuse an xlsx whose parts inflate beyond what can be held in memory, before calamine opens it:
    the workbook index (read whole to find the sheets) and the shared strings (opening the workbook
    loads every one of them). A few MB can inflate to gigabytes."""
    limits = {part: xlsx_extent.MAX_INDEX_PART_BYTES for part in xlsx_extent.INDEX_PARTS}
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if "xl/workbook.xml" not in names:
                return  # xlsb, ods: not this layout
            over = next((p for p, n in limits.items() if p in names and zf.getinfo(p).file_size > n), None)
            if over is None:
                part = shared_strings_part(zf)
                if part is None or not inflates_beyond(zf, part, xlsx_extent.MAX_SHARED_STRINGS_BYTES):
                    return
                over, what, limit = part, "共享文本", xlsx_extent.MAX_SHARED_STRINGS_BYTES
            else:
                what, limit = "工作簿目录", limits[over]
            packed = zf.getinfo(over).compress_size
    except (zipfile.BadZipFile, OSError, KeyError, ValueError, ET.ParseError):
        return  # damaged: calamine reports it (it refuses parts larger than their declared size)
    raise SheetTooLarge(
        f"文件 {path.name} 的{what}（{over}）解压后超过 {limit >> 20:,} MB 的上限"
        f"（压缩包内只有 {max(packed >> 10, 1):,} KB），可能是损坏或恶意构造的文件（压缩炸弹），为避免耗尽内存已停止读取。"
        "请在 Excel 中打开后另存为 .xlsx，或从 ERP 重新导出。")


def _xlsx_choice(path: Path, sheet: str | None) -> tuple[str, str] | None:
    """The sheet calamine would read (the named one, else the first visible) and its part, from
    xl/workbook.xml, when it is large enough for the column-wise read; None otherwise (calamine opens the workbook and decides).
    Opening the workbook in calamine first would parse every shared string once more."""
    try:
        with zipfile.ZipFile(path) as zf:
            if "xl/workbook.xml" not in zf.namelist():
                return None
            root = ET.fromstring(zf.read("xl/workbook.xml"))
            listed = [(e.get("name", ""), e.get("state", "visible")) for e in root.iter() if e.tag.endswith("}sheet")]
            names = [n for n, _ in listed]
            if sheet is not None:
                name = sheet if sheet in names else None
            else:
                visible = [n for n, state in listed if state not in ("hidden", "veryHidden")]
                name = (visible or names)[0] if names else None
            part = sheet_part(zf, name) if name is not None else None
            if name is None or part is None or part not in zf.namelist() or \
                    zf.getinfo(part).file_size < read_arrow.MIN_SHEET_BYTES:
                return None
            return name, part
    except (zipfile.BadZipFile, OSError, KeyError, ValueError, ET.ParseError):
        return None


def _read_large_xlsx(path: Path, sheet: str, part: str) -> tuple[list[list[object]], int, ArrowBody] | None:
    """A large sheet column-wise (grading.read_arrow: the same cells, 1.7× faster); None: read row-wise."""
    try:
        with zipfile.ZipFile(path) as zf:
            return read_arrow.read_columns(path, sheet, part, zf)
    except Exception:  # an optimisation only: whatever goes wrong, the sheet is read row-wise as before
        return None


def _check_extent(path: Path, sheet: str) -> None:
    """Refuse a sheet whose cells span more than MAX_CELLS (found by streaming its XML) before calamine
    allocates the rectangle; a value far from the data (e.g. in XFD1048576) would abort the process."""
    try:
        with zipfile.ZipFile(path) as zf:
            part = sheet_part(zf, sheet)
            extent = wide_extent(zf, part) if part else None
    except (zipfile.BadZipFile, OSError, KeyError, ValueError, ET.ParseError):
        return  # not an xlsx package calamine reads this way (xlsb, ods) or damaged: calamine reports it
    if extent is not None and extent.cells > MAX_CELLS:
        raise SheetTooLarge(
            f"文件 {path.name} 工作表 {sheet} 的单元格 {extent.far_cell} 有内容，数据区域因此达到 {extent.rows:,} 行 × "
            f"{extent.columns:,} 列（超过 {MAX_CELLS:,} 个单元格的上限），为避免耗尽内存已停止读取。"
            "请在 Excel 中删除数据右侧和下方多余的单元格（选中多余的列或行 → 删除）后保存，再重新运行。")


def _read_markup(path: Path, sheet: str | None) -> RawSheet:
    raw = path.read_bytes()
    check_text_bytes(raw, path.name, line_limit=False)
    text, _ = decode_text(raw, path)
    head = text.lstrip()[:2000].lower()
    try:
        if "urn:schemas-microsoft-com:office:spreadsheet" in head:
            tables = read_xml_spreadsheet(text)
        else:
            tables = read_html_tables(text)
    except SpanTooLarge as exc:
        raise SheetTooLarge(f"文件 {path.name} 是网页/XML 格式的“Excel”，{exc}，为避免耗尽内存已停止读取。"
                            "请在 ERP 中重新导出（或在 Excel 中打开后另存为 .xlsx）再试。") from None
    except ValueError as exc:
        raise UnreadableFile(f"文件 {path.name} 是网页/XML 格式的“Excel”，但无法解析：{exc}") from None
    if not tables:
        raise EmptySheet(f"文件 {path.name} 是网页格式，但其中没有表格。请确认导出的是数据表。")
    if sheet is not None:
        match = [t for t in tables if t[0] == sheet]
        if not match:
            raise UnreadableFile(
                f"文件 {path.name} 中没有名为 {sheet!r} 的工作表；找到的：{'、'.join(t[0] for t in tables)}。"
            )
        name, rows = match[0]
    else:
        name, rows = max(tables, key=lambda t: len(t[1]))
    return _non_empty(RawSheet(path, name, rows, 1))


def decode_text(raw: bytes, path: Path) -> tuple[str, list[str]]:
    """Decode text exports: BOMs first, then strict UTF-8, then GB18030 (with a note if bytes were bad)."""
    notes: list[str] = []
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16"), notes
    bom = 3 if raw.startswith(b"\xef\xbb\xbf") else 0
    try:
        return raw[bom:].decode("utf-8"), notes
    except UnicodeDecodeError as exc:
        check_mixed(raw, path.name, exc.start + bom)
        if bom:
            notes.append(f"文件 {path.name} 标明是 UTF-8，但第 {line_of(raw, exc.start + bom)} 行起有不是 UTF-8 的字节，"
                         "已替换为 �；请检查导出编码。")
            return raw[bom:].decode("utf-8", errors="replace"), notes
    try:
        return raw.decode("gb18030"), notes
    except UnicodeDecodeError as exc:
        bad = raw.count(b"\x80")
        text = raw.decode("gb18030", errors="replace")
        notes.append(
            f"文件 {path.name} 含有无法识别的字节（位置 {exc.start}，共约 {max(bad, 1)} 处），"
            "已替换为 �；请检查导出编码（应为 UTF-8 或 GBK）。"
        )
        return text, notes


def read_text(path: Path) -> RawSheet:
    """CSV / TSV / Excel 'Unicode text' into rows of strings."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UnreadableFile(f"无法读取文件 {path}：{exc.strerror}") from None
    if b"\x00" in raw[:4096] and not raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UnreadableFile(
            f"文件 {path.name} 不是文本（CSV）也不是可识别的 Excel 文件。请确认导出格式为 .xlsx、.xls 或 .csv。"
        )
    check_text_bytes(raw, path.name)
    if len(raw) > 1 << 20:  # large: pyarrow's reader (else pandas' C parser) straight from the bytes
        encoding = _encoding(raw)
        if encoding == "gb18030":  # pandas would read UTF-8 lines as GB18030 without an error: look first
            try:
                raw[: 1 << 20].decode("utf-8")
            except UnicodeDecodeError as exc:
                check_mixed(raw, path.name, exc.start)
        delimiter, width = _probe(raw, encoding)  # sniffed once for both readers below
        arrow = _arrow_csv(raw, encoding, delimiter, width)
        if arrow is not None:
            records, body = arrow
            first = body.table.slice(0, max(HEAD_ROWS - len(records), 0))
            head = records + [list(r) for r in zip(*(c.to_pylist() for c in first.columns))]
            return _non_empty(RawSheet(path, path.stem, [_trim(r) for r in head], 1, [], None, body))
        table = _fast_csv(raw, encoding, delimiter, width)
        if table is not None:
            head = cast(list[list[object]], table.iloc[:HEAD_ROWS].to_numpy(dtype=object).tolist())
            return _non_empty(RawSheet(path, path.stem, [_trim(r) for r in head], 1, [], table))
    text, notes = decode_text(raw, path)
    sample = text[:20000]
    delimiter = "\t" if sample.count("\t") > sample.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[list[object]] = []
    try:
        for row in reader:
            rows.append(cast(list[object], row))
    except csv.Error as exc:
        raise BadTextLine(f"文件 {path.name} 从第 {_record_start(text, len(rows), delimiter)} 行开始的一条记录（到第 {reader.line_num} 行）"
                          f"无法按 CSV 读取（{exc}），可能有未配对的引号或超长的内容。请检查后重新导出。") from None
    return _non_empty(RawSheet(path, path.stem, rows, 1, notes))


def _record_start(text: str, records: int, delimiter: str) -> int:
    """The physical line where record number `records` (0-based) starts: re-read the good records."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    for _ in range(records):
        next(reader)
    return reader.line_num + 1


def _encoding(raw: bytes) -> str:
    """The codec of a text export from its BOM or its first megabyte (UTF-8 if that decodes, else GB18030)."""
    if raw.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    head = raw[: 1 << 20]
    try:
        head.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        return "utf-8" if exc.start >= len(head) - 3 else "gb18030"  # a character cut at the end


def _probe(raw: bytes, encoding: str) -> tuple[str, int]:
    """(delimiter, widest record) from the first lines of a text export."""
    probe_text = raw[:200_000].decode(encoding, errors="ignore")
    delimiter = "\t" if probe_text.count("\t") > probe_text.count(",") else ","
    probe = list(csv.reader(io.StringIO(probe_text, newline=""), delimiter=delimiter))[:-1]
    return delimiter, max((len(r) for r in probe), default=0)


def _arrow_csv(raw: bytes, encoding: str, delimiter: str,
               width: int) -> tuple[list[list[object]], ArrowBody] | None:
    """The head records and the Arrow body (grading.read_text_arrow), or None: pandas reads it."""
    try:  # as many head records as rows kept as lists: those would differ from pandas' padded rows
        return read_body(raw, encoding, delimiter, width, max_head=HEAD_ROWS)
    except Exception:  # an optimisation only: whatever goes wrong, the file is read as before
        return None


def _fast_csv(raw: bytes, encoding: str, delimiter: str, width: int) -> pd.DataFrame | None:
    """pandas' C parser, all cells as text (`encoding`, `delimiter`, `width` as _encoding and _probe give
    them). None (the careful path then reads the file) when the bytes do not all decode, or a row is wider
    than the widest of the first lines: nothing is ever dropped or silently replaced."""
    if not width:
        return None
    try:
        return pd.read_csv(io.BytesIO(raw), encoding=encoding, encoding_errors="strict", sep=delimiter,
                           header=None, names=list(range(width)), dtype=object, keep_default_na=False,
                           na_filter=False, skip_blank_lines=False, engine="c")
    except (pd.errors.ParserError, ValueError, UnicodeDecodeError):
        return None


def _trim(row: list[object]) -> list[object]:
    """A row padded to the table width, without its trailing empty cells (as the csv module gives it)."""
    end = len(row)
    while end and row[end - 1] in ("", None):
        end -= 1
    return row[:end]


def _non_empty(sheet: RawSheet) -> RawSheet:
    if not any(any(v not in ("", None) for v in row) for row in sheet.rows) and (
            sheet.table is None or not (sheet.table.to_numpy(dtype=object) != "").any()) and (
            sheet.body is None or not sheet.body.any_text()):
        raise EmptySheet(f"{sheet.where} 没有任何数据。请确认导出的文件和工作表正确。")
    return sheet
