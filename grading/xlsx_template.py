"""Read-side helpers for an .xlsx template package: sheet paths, shared
strings, cell texts and styles of the first rows. Only the small template is
parsed; the data is never loaded through a full workbook model."""

from __future__ import annotations

import posixpath
import re
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass

NS = {
    "m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
    "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
    "pr": "http://schemas.openxmlformats.org/package/2006/relationships",
}
_M = "{%s}" % NS["m"]
_CELL_REF = re.compile(r"^([A-Z]+)(\d+)$")


def col_index(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n - 1


def col_letters(index: int) -> str:
    out = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        out = chr(65 + rem) + out
    return out


@dataclass
class TemplateCell:
    text: str
    style: str | None


@dataclass
class TemplateSheet:
    name: str
    path: str                                   # zip member, e.g. xl/worksheets/sheet1.xml
    cells: dict[tuple[int, int], TemplateCell]  # (row 1-based, col 0-based) → cell


def rels_of(zf: zipfile.ZipFile, part: str) -> dict[str, tuple[str, str]]:
    """Relationship id → (type suffix, absolute target part) of a part."""
    folder, name = posixpath.split(part)
    rels_path = posixpath.join(folder, "_rels", name + ".rels")
    if rels_path not in zf.namelist():
        return {}
    root = ET.fromstring(zf.read(rels_path))
    out = {}
    for rel in root.findall("pr:Relationship", NS):
        target = rel.get("Target", "")
        full = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join(folder, target))
        out[rel.get("Id", "")] = (rel.get("Type", "").rsplit("/", 1)[-1], full)
    return out


def shared_strings(zf: zipfile.ZipFile) -> list[str]:
    if "xl/sharedStrings.xml" not in zf.namelist():
        return []
    root = ET.fromstring(zf.read("xl/sharedStrings.xml"))
    return ["".join(t.text or "" for t in si.iter(f"{_M}t")) for si in root.findall("m:si", NS)]


def workbook_sheets(zf: zipfile.ZipFile) -> list[tuple[str, str]]:
    """(sheet name, worksheet part) in workbook order."""
    root = ET.fromstring(zf.read("xl/workbook.xml"))
    rels = rels_of(zf, "xl/workbook.xml")
    out = []
    for sheet in root.iter(f"{_M}sheet"):
        rid = sheet.get(f"{{{NS['r']}}}id", "")
        if rid in rels:
            out.append((sheet.get("name", ""), rels[rid][1]))
    return out


def load_sheet(zf: zipfile.ZipFile, name: str, path: str, strings: list[str],
               max_row: int = 60) -> TemplateSheet:
    root = ET.fromstring(zf.read(path))
    cells: dict[tuple[int, int], TemplateCell] = {}
    data = root.find("m:sheetData", NS)
    for row in data.findall("m:row", NS) if data is not None else []:
        r = int(row.get("r", "0"))
        if r > max_row:
            break
        for c in row.findall("m:c", NS):
            m = _CELL_REF.match(c.get("r", ""))
            if not m:
                continue
            kind = c.get("t")
            v = c.find("m:v", NS)
            if kind == "s" and v is not None and v.text is not None:
                text = strings[int(v.text)]
            elif kind == "inlineStr":
                text = "".join(t.text or "" for t in c.iter(f"{_M}t"))
            else:
                text = v.text or "" if v is not None else ""
            cells[(r, col_index(m.group(1)))] = TemplateCell(text.strip(), c.get("s"))
    return TemplateSheet(name, path, cells)
