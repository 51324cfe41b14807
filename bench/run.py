"""Benchmark: the project end to end against a strict I/O floor and a hand-written polars pipeline,
each in its own fresh process, paired in every repeat, on inputs generated once (not timed).

    python bench/run.py                          # 200k, 1M, 1M-csv (the default set)
    python bench/run.py --case 200k --repeat 3   # one case, medians of 3 paired runs
    python bench/run.py --case 3M --case 1M-bad  # larger cases (3M: minutes to generate, GBs of memory)
    python bench/run.py --lines 50000 --customers 2000

Needs the optional extra: pip install -e ".[bench]" (polars, fastexcel, pyarrow). Cases are listed in
bench/cases.py; the table goes to bench/out/report.md and stdout (the README's Speed section shows it).
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.cases import CASES, OUT, Case, prepare  # noqa: E402
from bench.report import CaseResult, compare_results, markdown, summary  # noqa: E402

DEFAULT = ("200k", "1M", "1M-csv")
LOAD: list[float] = []  # 1-minute load average at the start of every measured child


def child(kind: str, folder: Path, config: str = "config.yaml") -> dict[str, object]:
    """Run `python -m bench.measure KIND FOLDER` and return its JSON result."""
    target = folder / f".result_{kind}.json"
    target.unlink(missing_ok=True)
    LOAD.append(os.getloadavg()[0])
    env = {**os.environ, "BENCH_CONFIG": config}
    proc = subprocess.run([sys.executable, "-m", "bench.measure", kind, str(folder), str(target)], cwd=ROOT,
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} run in {folder} failed:\n{proc.stderr[-4000:]}")
    result: dict[str, object] = json.loads(target.read_text(encoding="utf-8"))
    return result


def seed_history(folder: Path) -> None:
    """One untimed run of each pipeline as of 2025-12-31: the stored previous period."""
    for path in (folder / "客户分级历史.sqlite", folder / "polars_history"):
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    child("project", folder, "config_seed.yaml")
    child("polars", folder, "config_seed.yaml")


def run_case(case: Case, repeat: int) -> CaseResult:
    folder = prepare(case)
    out = CaseResult(case.name)
    if case.history_of is not None:
        seed_history(folder)
    for _ in range(repeat):
        if case.history_of is None:  # every measurement starts without history
            (folder / "客户分级历史.sqlite").unlink(missing_ok=True)
            shutil.rmtree(folder / "polars_history", ignore_errors=True)
        out.project.append(child("project", folder))
        if not out.floor:
            child("floor-prep", folder)  # the project's output cells, for the floor's writer (not timed)
        out.floor.append(child("floor", folder))
        out.polars.append(child("polars", folder))
    out.checks = compare_results(out.project[-1], out.polars[-1])  # type: ignore[arg-type]
    for runs in (out.project, out.polars):
        for r in runs:
            r.pop("net_cents", None)
            r.pop("grades", None)
    return out


def machine() -> str:
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor() or platform.machine()
    mem = ""
    try:
        kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal")))
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, StopIteration):
        pass
    from importlib.metadata import PackageNotFoundError, version

    versions = []
    for name in ("pandas", "numpy", "python-calamine", "polars", "fastexcel", "pyarrow"):
        try:
            versions.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            continue
    return (f"{cpu}, {len(os.sched_getaffinity(0))} cores{mem}, {platform.system()}, Python {platform.python_version()}, "
            + ", ".join(versions))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", choices=sorted(CASES), action="append")
    ap.add_argument("--repeat", type=int, default=1, help="paired runs per case; the table shows medians")
    ap.add_argument("--lines", type=int)
    ap.add_argument("--customers", type=int, default=10_000)
    args = ap.parse_args()
    if args.lines:
        cases = [Case(f"{args.lines}_{args.customers}", args.lines, args.customers)]
    else:
        cases = [CASES[k] for k in (args.case or DEFAULT)]
    # An installed package has its bytecode (pip compiles it; a checkout writes it on its first run). This
    # machine sets PYTHONDONTWRITEBYTECODE, so without this every measured child compiled the project again
    # (about 0.1 s of its import).
    for package in ("grading", "bench"):
        compileall.compile_dir(str(ROOT / package), quiet=1)
    summaries = []
    for case in cases:
        started = time.perf_counter()
        summaries.append(summary(run_case(case, args.repeat)))
        print(f"{case.name}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    load = f"; load average during the runs {min(LOAD):.1f}–{max(LOAD):.1f} (1 min)" if LOAD else ""
    text = markdown(summaries, machine() + load)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "report.md").write_text(text, encoding="utf-8")
    (OUT / "report.json").write_text(json.dumps(summaries, ensure_ascii=False, indent=1), encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
