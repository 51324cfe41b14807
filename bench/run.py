"""Benchmark: generate demo exports at a given size, run the headless pipeline
end to end in a fresh process, print seconds per stage and peak RSS.

    python bench/run.py                      # 200k lines / 10k customers
    python bench/run.py --lines 50000 --customers 2000
Inputs are cached in bench/out/<lines>_<customers>/ (generation is not timed).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def child(folder: Path) -> None:
    from grading.config import load_config
    from grading.pipeline import run_to_file

    t = time.perf_counter()
    config = load_config(folder / "config.yaml")
    result = run_to_file(config, folder / "output.xlsx")
    total = time.perf_counter() - t
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"timings": result.timings, "total": total, "rss_mb": rss_mb,
                      "customers": len(result.graded), "lines": result.lines_in_window + result.lines_outside,
                      "problems": len(result.problems)}))


def prepare(lines: int, customers: int) -> Path:
    import yaml

    from grading.demo_data import generate

    folder = ROOT / "bench" / "out" / f"{lines}_{customers}"
    if not (folder / "config.yaml").exists():
        t = time.perf_counter()
        generate(folder / "demo_data", customers=customers, lines=lines)
        data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
        data["output"]["template"] = str(ROOT / "templates" / "客户分级管理表.xlsx")
        data["sources"]["sales"]["files"] = ["demo_data/sales_*"]  # large sizes write the SAP part as .xlsx
        (folder / "config.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        print(f"generated inputs in {time.perf_counter() - t:.1f} s: {folder}", file=sys.stderr)
    return folder


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--customers", type=int, default=10_000)
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child)
        return
    folder = prepare(args.lines, args.customers)
    proc = subprocess.run([sys.executable, __file__, "--child", str(folder)], capture_output=True, text=True,
                          check=True)
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"machine: {platform.processor() or platform.machine()}, {platform.python_version()}, "
          f"{len(__import__('os').sched_getaffinity(0))} cores")
    print(f"size: {r['lines']:,} order lines, {r['customers']:,} customers, {r['problems']:,} data problems")
    print("| stage | seconds |\n|---|---|")
    for stage, sec in r["timings"].items():
        print(f"| {stage} | {sec:.2f} |")
    print(f"| **total (incl. config)** | **{r['total']:.2f}** |")
    print(f"peak RSS: {r['rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
