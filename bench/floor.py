"""The strict I/O floor: the least a run must spend reading its inputs and writing its output.

read  = every input file parsed once by the fastest parser for its format, nothing else:
        fastexcel (calamine's Rust core straight into Arrow) for xlsx/xlsm/xls, python-calamine where
        fastexcel fails, polars' multi-threaded CSV reader for CSV (after one transcoding pass to UTF-8
        when the bytes are GB18030), the project's markup parser for HTML/XML "xls".
write = the same cells as the project's output workbook (read back from it, not timed) written as
        plain sheets: XML built column-wise by polars string expressions (bench/xmlcells.py), inline
        strings, deflated into a minimal valid .xlsx; no template, styles or charts.
"""

from __future__ import annotations

import csv
import datetime as dt
import glob
import io
import time
from pathlib import Path

import polars as pl
import yaml

from bench.xmlcells import Placement, iter_rows_xml, write_plain_xlsx


def input_files(config_path: Path) -> list[Path]:
    """Every file the config's sources name (globs relative to the config's folder)."""
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    out: list[Path] = []
    for source in ("sales", "receivables", "customers", "overrides"):
        spec = config["sources"].get(source)
        for pattern in (spec or {}).get("files", []):
            full = pattern if Path(pattern).is_absolute() else str(config_path.parent / pattern)
            out += [Path(p) for p in sorted(glob.glob(full)) if Path(p) not in out]
    return out


def _kind(path: Path) -> str:
    with path.open("rb") as fh:
        head = fh.read(512)
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "xls"
    if head.startswith(b"PK"):
        return "zip"
    return "markup" if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<") else "text"


def _utf8(raw: bytes) -> bytes:
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:]
    try:
        raw.decode("utf-8")
        return raw
    except UnicodeDecodeError:
        return raw.decode("gb18030").encode("utf-8")


def read_one(path: Path) -> int:
    """Parse one input file completely; returns the number of non-empty cells read."""
    kind = _kind(path)
    if kind in ("xls", "zip"):
        try:
            import fastexcel

            frame = fastexcel.read_excel(str(path)).load_sheet(0, header_row=None).to_polars()
            return int(frame.width * frame.height - sum(frame.null_count().row(0)))
        except Exception:  # fastexcel refuses some files calamine reads
            from python_calamine import CalamineWorkbook

            rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python()
            return sum(1 for r in rows for v in r if v not in ("", None))
    if kind == "markup":
        from grading.read_markup import read_html_tables

        raw = _utf8(path.read_bytes()).decode("utf-8")
        return sum(1 for _, rows in read_html_tables(raw) for r in rows for v in r if v not in ("", None))
    data = _utf8(path.read_bytes())
    head = list(csv.reader(io.StringIO(data[:200_000].decode("utf-8", errors="ignore"), newline="")))[:50]
    width = max((len(r) for r in head), default=0)
    skip = next((i for i, r in enumerate(head) if len(r) == width), 0)  # title lines above the widest (the header)
    frame = pl.read_csv(data, has_header=False, skip_lines=skip, infer_schema=False, truncate_ragged_lines=True)
    before = sum(1 for r in head[:skip] for v in r if v)
    return before + int(frame.width * frame.height - sum(frame.null_count().row(0)))


def read_floor(files: list[Path]) -> tuple[float, int]:
    started = time.perf_counter()
    cells = sum(read_one(p) for p in files)
    return time.perf_counter() - started, cells


Table = tuple[str, pl.DataFrame, list[Placement]]


def output_tables(workbook: Path) -> list[Table]:
    """Every non-empty cell of every sheet of `workbook`, as typed columns (a number and a text column per
    sheet column; dates as Excel serials) ready for the plain writer."""
    from python_calamine import CalamineWorkbook

    book = CalamineWorkbook.from_path(str(workbook))
    out: list[Table] = []
    epoch = dt.datetime(1899, 12, 30)
    for name in book.sheet_names:
        rows = book.get_sheet_by_name(name).to_python(skip_empty_area=False)
        width = max((len(r) for r in rows), default=0)
        columns: dict[str, pl.Series] = {}
        placements: list[Placement] = []
        for c in range(width):
            nums: list[float | None] = []
            texts: list[str | None] = []
            for r in rows:
                v = r[c] if c < len(r) else None
                if isinstance(v, bool):
                    v = float(v)
                if isinstance(v, dt.datetime):
                    v = (v - epoch).total_seconds() / 86400
                elif isinstance(v, dt.date):
                    v = float((v - epoch.date()).days)
                elif isinstance(v, (dt.time, dt.timedelta)):
                    v = str(v)
                nums.append(float(v) if isinstance(v, (int, float)) else None)
                texts.append(v if isinstance(v, str) and v != "" else None)
            columns[f"n{c}"] = pl.Series(nums, dtype=pl.Float64)
            columns[f"t{c}"] = pl.Series(texts, dtype=pl.String)
            placements += [Placement(c), Placement(c)]
        out.append((name, pl.DataFrame(columns), placements))
    return out


def side_files(workbook: Path) -> list[Path]:
    """The CSV lists the project writes beside its workbook (full problem list, tables past the row limit)."""
    return sorted(workbook.parent.glob(f"{workbook.stem}_*.csv"))


def write_floor(tables: list[Table], target: Path, csvs: list[tuple[str, pl.DataFrame]] = ()) -> tuple[float, int]:  # type: ignore[assignment]
    """The workbook's cells as plain sheets, plus the same CSV lists beside it (polars' CSV writer)."""
    started = time.perf_counter()
    cells = write_plain_xlsx(str(target), [(name, iter_rows_xml(frame, placements, 1)) for name, frame, placements in tables])
    for name, frame in csvs:
        frame.write_csv(target.with_name(f"floor_{name}"), include_bom=True)
        cells += frame.width * frame.height
    return time.perf_counter() - started, cells


def save_tables(tables: list[Table], folder: Path) -> None:
    """Keep the cells as parquet (one file per sheet) so the floor's process holds them compactly."""
    import json
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    index = []
    for k, (name, frame, placements) in enumerate(tables):
        frame.write_parquet(folder / f"{k}.parquet")
        index.append({"name": name, "columns": [p.column for p in placements]})
    (folder / "index.json").write_text(json.dumps(index, ensure_ascii=False), encoding="utf-8")


def save_csvs(files: list[Path], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for k, path in enumerate(files):
        pl.read_csv(path, infer_schema=False, encoding="utf8-lossy").write_parquet(folder / f"csv_{k}.parquet")
    (folder / "csvs.json").write_text(__import__("json").dumps([p.name for p in files], ensure_ascii=False),
                                      encoding="utf-8")


def load_csvs(folder: Path) -> list[tuple[str, pl.DataFrame]]:
    import json

    if not (folder / "csvs.json").exists():
        return []
    names = json.loads((folder / "csvs.json").read_text(encoding="utf-8"))
    return [(name, pl.read_parquet(folder / f"csv_{k}.parquet")) for k, name in enumerate(names)]


def load_tables(folder: Path) -> list[Table]:
    import json

    index = json.loads((folder / "index.json").read_text(encoding="utf-8"))
    return [(item["name"], pl.read_parquet(folder / f"{k}.parquet"), [Placement(c) for c in item["columns"]])
            for k, item in enumerate(index)]
