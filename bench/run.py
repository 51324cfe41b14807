"""Benchmark: generate inputs at several sizes, run the headless pipeline end to
end in a fresh process each, and print seconds per stage, total, peak RSS and
the I/O floor measured in the same run:

  floor = time to read the same input files with the bare readers (python-calamine
          for xlsx/xls, the csv module for CSV, the table parser for HTML "xls")
        + time to write the same output cells with the fastest writer alone
          (sheet XML with inline strings deflated into a zip, no template work)

    python bench/run.py                     # all cases below
    python bench/run.py --case 200k         # one case
    python bench/run.py --lines 50000 --customers 2000

Inputs are cached in bench/out/<case>/ (generation is not timed). Results go in the README.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CASES = {  # name: (order lines, customers, layout)
    "200k": (200_000, 10_000, "mixed"),
    "1M": (1_000_000, 50_000, "mixed"),
    "1M-csv": (1_000_000, 50_000, "csv"),
}


def _read_floor(config_path: Path) -> float:
    """Read every input file with the bare reader, nothing else."""
    import csv
    import io

    from python_calamine import CalamineWorkbook

    from grading.config import load_config
    from grading.read import _fast_csv, decode_text, expand_globs, sniff
    from grading.read_markup import read_html_tables

    config = load_config(config_path)
    files = []
    for name in ("sales", "receivables", "customers", "overrides"):
        source = getattr(config.sources, name)
        if source is not None and source.files:
            files += expand_globs(source.files, config.base_dir, name)
    started = time.perf_counter()
    for path in files:
        with path.open("rb") as fh:
            kind = sniff(fh.read(512))
        if kind in ("xls", "zip"):
            with path.open("rb") as fh:
                wb = CalamineWorkbook.from_filelike(fh)
                wb.get_sheet_by_index(0).to_python()
        elif kind == "markup":
            read_html_tables(path.read_text(encoding="utf-8"))
        else:  # the fastest bare CSV reader: pandas' C parser (the csv module where rows are ragged)
            raw = path.read_bytes()
            if _fast_csv(raw) is None:
                text, _ = decode_text(raw, path)
                list(csv.reader(io.StringIO(text, newline="")))
    return time.perf_counter() - started


def _write_floor(plan: object, target: Path) -> float:
    """Write the plan's cells as plain sheets (inline strings, numbers) into a zip."""
    import datetime as dt
    import math
    from xml.sax.saxutils import escape

    from grading.fill_plan import FillPlan
    from grading.xlsx_template import col_letters

    assert isinstance(plan, FillPlan)
    started = time.perf_counter()
    epoch = dt.datetime(1899, 12, 30)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for k, sheet in enumerate(plan.sheets, 1):
            rows: list[str] = []
            for block in sheet.blocks:
                letters = [col_letters(i) for i in range(len(block.columns))]
                for r in range(block.n_rows):
                    cells = []
                    for c, column in enumerate(block.columns):
                        v = column.values[r]
                        ref = f"{letters[c]}{r + 1}"
                        if isinstance(v, str):
                            cells.append(f'<c r="{ref}" t="inlineStr"><is><t>{escape(v)}</t></is></c>')
                        elif isinstance(v, dt.datetime):
                            cells.append(f'<c r="{ref}"><v>{(v - epoch).total_seconds() / 86400}</v></c>')
                        elif isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v)):
                            cells.append(f'<c r="{ref}"><v>{v}</v></c>')
                    rows.append(f'<row r="{r + 1}">{"".join(cells)}</row>')
            xml = "<worksheet><sheetData>" + "".join(rows) + "</sheetData></worksheet>"
            data = xml.encode("utf-8")
            zf.writestr(f"xl/worksheets/sheet{k}.xml", data, compresslevel=1 if len(data) > 1 << 20 else 6)
    return time.perf_counter() - started


def child(folder: Path) -> None:
    from grading.config import load_config
    from grading.pipeline import run_to_file

    history = folder / "客户分级历史.sqlite"
    if history.exists():
        history.unlink()  # every measurement starts without history
    t = time.perf_counter()
    config = load_config(folder / "config.yaml")
    result = run_to_file(config, folder / "output.xlsx")
    total = time.perf_counter() - t
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    floor_read = _read_floor(folder / "config.yaml")
    floor_write = _write_floor(result.plan, folder / "floor.xlsx")
    print(json.dumps({"timings": result.timings, "total": total, "rss_mb": rss_mb,
                      "customers": len(result.graded), "lines": result.lines_in_window + result.lines_outside,
                      "problems": len(result.problems), "floor_read": floor_read, "floor_write": floor_write,
                      "output_mb": (folder / "output.xlsx").stat().st_size / 1e6}))


def prepare(name: str, lines: int, customers: int, layout: str) -> Path:
    import yaml

    from grading.demo_data import generate, generate_csv

    folder = ROOT / "bench" / "out" / name
    if not (folder / "config.yaml").exists():
        t = time.perf_counter()
        data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
        data["output"]["template"] = str(ROOT / "templates" / "客户分级管理表.xlsx")
        if layout == "csv":
            generate_csv(folder / "demo_data" / "sales_u8_1M.csv", customers=customers, lines=lines)
            data["sources"] = {"sales": {"files": ["demo_data/sales_u8_1M.csv"]}}
        else:
            generate(folder / "demo_data", customers=customers, lines=lines)
            data["sources"]["sales"]["files"] = ["demo_data/sales_*"]  # large sizes write SAP as .xlsx
        (folder / "config.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        print(f"generated {name} in {time.perf_counter() - t:.1f} s: {folder}", file=sys.stderr)
    return folder


def run_case(name: str, lines: int, customers: int, layout: str) -> dict[str, object]:
    folder = prepare(name, lines, customers, layout)
    proc = subprocess.run([sys.executable, __file__, "--child", str(folder)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"case {name} failed:\n{proc.stderr}")
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["name"] = name
    return result


def table(results: list[dict[str, object]]) -> str:
    stages = ["read", "normalise", "metrics", "grade", "fill plan", "write", "history"]
    head = "| case | lines | customers | " + " | ".join(stages) + " | total s | I/O floor s | total/floor | peak RSS MB |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        t = r["timings"]
        assert isinstance(t, dict)
        floor = float(r["floor_read"]) + float(r["floor_write"])  # type: ignore[arg-type]
        total = float(r["total"])  # type: ignore[arg-type]
        lines.append(
            f"| {r['name']} | {int(r['lines']):,} | {int(r['customers']):,} | "  # type: ignore[call-overload]
            + " | ".join(f"{t.get(s, 0):.2f}" for s in stages)
            + f" | **{total:.2f}** | {floor:.2f} ({float(r['floor_read']):.2f} + {float(r['floor_write']):.2f})"  # type: ignore[arg-type]
            + f" | {total / floor:.2f} | {float(r['rss_mb']):.0f} |")  # type: ignore[arg-type]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", choices=sorted(CASES), action="append")
    ap.add_argument("--lines", type=int)
    ap.add_argument("--customers", type=int, default=10_000)
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child)
        return
    if args.lines:
        cases = {f"{args.lines}_{args.customers}": (args.lines, args.customers, "mixed")}
    else:
        cases = {k: CASES[k] for k in (args.case or CASES)}
    results = [run_case(name, *spec) for name, spec in cases.items()]
    cpu = platform.processor() or platform.machine()
    print(f"machine: {cpu}, {len(os.sched_getaffinity(0))} cores, Python {platform.python_version()}")
    print(table(results))


if __name__ == "__main__":
    main()
