"""The extent check (grading.xlsx_extent) finds a value beyond column BE wherever the inflated sheet XML's blocks
happen to cut its reference: inside a block, across the seam of two blocks, or at a block's very start."""

from __future__ import annotations

import io
import zipfile

import pytest

from grading import xlsx_extent
from grading.xlsx_extent import Extent, wide_extent

_SHEET = "xl/worksheets/sheet1.xml"


def _package(xml: str) -> zipfile.ZipFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(_SHEET, xml)
    return zipfile.ZipFile(io.BytesIO(buffer.getvalue()))


def _rows(n: int, wide_at: int | None, pad: int) -> str:
    rows = []
    for r in range(1, n + 1):
        cells = "".join(f'<c r="{c}{r}" t="n"><v>{r}</v></c>' for c in "ABCXYZ")
        if r == wide_at:
            cells += '<c r="CA%d"><v>1</v></c>' % r
        rows.append(f'<row r="{r}">{cells}</row>')
    return f'<worksheet><sheetData>{" " * pad}{"".join(rows)}</sheetData></worksheet>'


@pytest.mark.parametrize("pad", range(0, 300, 7))
def test_a_wide_value_is_found_wherever_a_block_ends(monkeypatch: pytest.MonkeyPatch, pad: int) -> None:
    monkeypatch.setattr(xlsx_extent, "_CHUNK", 300)  # blocks of 300 bytes: a reference falls on every kind of seam
    assert wide_extent(_package(_rows(40, 9, pad)), _SHEET) == Extent(40, 79, "CA9")
    assert wide_extent(_package(_rows(40, None, pad)), _SHEET) is None


def test_an_empty_cell_beyond_be_does_not_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(xlsx_extent, "_CHUNK", 300)
    xml = _rows(20, None, 0).replace("</row></sheetData>", '<c r="XFD20" s="1"/></row></sheetData>')
    assert wide_extent(_package(xml), _SHEET) is None
