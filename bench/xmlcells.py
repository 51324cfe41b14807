"""Sheet XML built column-wise by polars string expressions (no Python loop per cell).

Shared by the strict floor's writer and the polars reference pipeline: a table is a polars
DataFrame whose columns are numbers (Float64/Int64), text (String) or datetimes; each column becomes
one expression producing the `<c>` element of every row, and the rows are joined in Rust.
Text is written as inline strings (escaped, control characters removed), never as formulas.
"""

from __future__ import annotations

import zipfile
from itertools import chain
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import polars as pl

from grading.xlsx_template import col_letters

_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x{FFFE}\x{FFFF}]"
MAX_CHARS = 32767
_EPOCH = pl.datetime(1899, 12, 30)


@dataclass(frozen=True)
class Placement:
    """Where a column goes: sheet column index (0-based) and the style id of its cells (None: none)."""

    column: int
    style: str | None = None


def _escaped(expr: pl.Expr) -> pl.Expr:
    return (expr.str.replace_all(_CONTROL, "")
            .str.slice(0, MAX_CHARS)
            .str.replace_all("&", "&amp;", literal=True)
            .str.replace_all("<", "&lt;", literal=True)
            .str.replace_all(">", "&gt;", literal=True))


def cell_expr(name: str, dtype: pl.DataType, letter: str, row: pl.Expr, style: str | None) -> pl.Expr:
    """The `<c>` element of column `name` in every row ("" where nothing is written)."""
    s = f' s="{style}"' if style else ""
    empty: pl.Expr = pl.concat_str([pl.lit(f'<c r="{letter}'), row, pl.lit(f'"{s}/>')]) if style else pl.lit("")
    col = pl.col(name)
    if dtype == pl.String or dtype == pl.Categorical:
        text = col.cast(pl.String)
        xml = pl.concat_str([pl.lit(f'<c r="{letter}'), row, pl.lit(f'"{s} t="inlineStr"><is><t xml:space="preserve">'),
                             _escaped(text), pl.lit("</t></is></c>")])
        return pl.when(text.is_not_null() & (text != "")).then(xml).otherwise(empty)
    if dtype.is_temporal():
        serial = (col.cast(pl.Datetime("ms")) - _EPOCH).dt.total_milliseconds().cast(pl.Float64) / 86_400_000.0
        xml = pl.concat_str([pl.lit(f'<c r="{letter}'), row, pl.lit(f'"{s}><v>'), serial.cast(pl.String), pl.lit("</v></c>")])
        return pl.when(col.is_not_null()).then(xml).otherwise(empty)
    if dtype == pl.Boolean:
        xml = pl.concat_str([pl.lit(f'<c r="{letter}'), row, pl.lit(f'"{s} t="b"><v>'), col.cast(pl.Int8).cast(pl.String),
                             pl.lit("</v></c>")])
        return pl.when(col.is_not_null()).then(xml).otherwise(empty)
    number = col.cast(pl.Float64)
    ok = number.is_not_null() & number.is_finite()
    shown = col.cast(pl.String) if dtype.is_integer() else number.cast(pl.String)
    xml = pl.concat_str([pl.lit(f'<c r="{letter}'), row, pl.lit(f'"{s}><v>'), shown, pl.lit("</v></c>")])
    return pl.when(ok).then(xml).otherwise(empty)


def row_cells(frame: pl.DataFrame, placements: Sequence[Placement], first_row: int) -> pl.DataFrame:
    """Per sheet row (`r`, from `first_row` on) the XML of its cells (`x`); the i-th frame column goes to
    placements[i], cells in column order."""
    order = sorted(range(frame.width), key=lambda i: placements[i].column)
    row = pl.int_range(first_row, first_row + frame.height, eager=False).cast(pl.String)
    names = frame.columns
    cells = [cell_expr(names[i], frame.schema[names[i]], col_letters(placements[i].column), row, placements[i].style)
             for i in order]
    return frame.select(pl.int_range(first_row, first_row + frame.height, dtype=pl.Int64).alias("r"),
                        pl.concat_str(cells).alias("x") if cells else pl.lit("").alias("x"))


CHUNK_ROWS = 50_000  # rows built and deflated at a time: memory stays bounded for million-row sheets


def iter_rows_xml(frame: pl.DataFrame, placements: Sequence[Placement], first_row: int,
                  chunk: int = CHUNK_ROWS) -> Iterator[str]:
    """`<row>` elements for every row of `frame` from sheet row `first_row` (1-based) on, `chunk` rows a piece."""
    for offset in range(0, frame.height, chunk):
        yield join_rows(row_cells(frame.slice(offset, chunk), placements, first_row + offset))


def rows_xml(frame: pl.DataFrame, placements: Sequence[Placement], first_row: int) -> str:
    return "".join(iter_rows_xml(frame, placements, first_row))


def join_rows(cells: pl.DataFrame, row_attrs: str = "") -> str:
    """`<row>` elements from (r, x) rows; several tables side by side: concatenate their frames in column
    order first (cells of one row are joined in that order)."""
    if cells.height == 0:
        return ""
    if cells["r"].n_unique() != cells.height:
        cells = cells.group_by("r", maintain_order=True).agg(pl.col("x").str.join("")).sort("r")
    line = pl.concat_str([pl.lit('<row r="'), pl.col("r").cast(pl.String), pl.lit(f'"{row_attrs}>'), pl.col("x"),
                          pl.lit("</row>")])
    return str(cells.select(line.str.join("")).item(0, 0))


def count_cells(xml: str) -> int:
    """`<c` elements that carry a value (not bare styled empties)."""
    return xml.count("</c>")


_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>{sheets}</Types>')
_SHEET_CT = ('<Override PartName="/xl/worksheets/sheet{k}.xml" '
             'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>')
_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    'officeDocument" Target="xl/workbook.xml"/></Relationships>')
_NS = ('xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
       'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"')


def write_member(zf: zipfile.ZipFile, name: str, pieces: Iterable[str]) -> int:
    """Stream text pieces into one deflated zip member (level 1); returns the cells written."""
    cells = 0
    with zf.open(name, "w", force_zip64=True) as fh:
        for piece in pieces:
            cells += count_cells(piece)
            fh.write(piece.encode("utf-8"))
    return cells


def write_plain_xlsx(target: str, sheets: Sequence[tuple[str, Iterable[str]]]) -> int:
    """A minimal valid workbook: (sheet name, pieces of its sheetData inner XML) per sheet, inline strings,
    no styles; returns the number of cells written."""
    cells = 0
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("[Content_Types].xml", _CONTENT_TYPES.format(
            sheets="".join(_SHEET_CT.format(k=k) for k in range(1, len(sheets) + 1))))
        zf.writestr("_rels/.rels", _ROOT_RELS)
        names = "".join(f'<sheet name="{name}" sheetId="{k}" r:id="rId{k}"/>' for k, (name, _) in enumerate(sheets, 1))
        zf.writestr("xl/workbook.xml", f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                                       f"<workbook {_NS}><sheets>{names}</sheets></workbook>")
        rels = "".join(f'<Relationship Id="rId{k}" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
                       f'relationships/worksheet" Target="worksheets/sheet{k}.xml"/>' for k in range(1, len(sheets) + 1))
        zf.writestr("xl/_rels/workbook.xml.rels", '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                    f'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">{rels}'
                    "</Relationships>")
        for k, (_, body) in enumerate(sheets, 1):
            head = f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet {_NS}><sheetData>'
            cells += write_member(zf, f"xl/worksheets/sheet{k}.xml", chain([head], body, ["</sheetData></worksheet>"]))
    return cells
