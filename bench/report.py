"""The benchmark's table: medians over paired runs, both ratios, peak RSS of each side."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

PROJECT_STAGES = ("import", "read", "normalise", "metrics", "grade", "fill plan", "write", "history")


@dataclass
class CaseResult:
    """Every run of one case: lists of child results (project, floor, polars), paired by index."""

    name: str
    project: list[dict[str, Any]] = field(default_factory=list)
    floor: list[dict[str, Any]] = field(default_factory=list)
    polars: list[dict[str, Any]] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def _stage(runs: list[dict[str, Any]], key: str) -> float:
    return median([float(r["timings"].get(key, 0.0)) for r in runs])


def summary(case: CaseResult) -> dict[str, Any]:
    p, f, q = case.project, case.floor, case.polars
    total = median([r["total"] for r in p])
    floor = median([r["total"] for r in f]) if f else float("nan")
    ref = median([r["total"] for r in q]) if q else float("nan")
    return {
        "case": case.name, "runs": len(p), "lines": p[0]["lines"], "customers": p[0]["customers"],
        "problems": p[0]["problems"], "stages": {s: _stage(p, s) for s in PROJECT_STAGES}, "total": total,
        "floor": floor, "floor_read": _stage(f, "read") if f else float("nan"),
        "floor_write": _stage(f, "write") if f else float("nan"), "polars": ref,
        "polars_stages": {s: _stage(q, s) for s in ("import", "read", "clean", "metrics", "grade", "write", "history")}
        if q else {},
        "vs_polars": total / ref if q else float("nan"), "vs_floor": total / floor if f else float("nan"),
        "polars_vs_floor": ref / floor if q and f else float("nan"),
        "rss": max(r["rss_mb"] for r in p), "rss_stages": p[0].get("rss_stages", {}),
        "rss_floor": max(r["rss_mb"] for r in f) if f else float("nan"),
        "rss_polars": max(r["rss_mb"] for r in q) if q else float("nan"),
        "cpu": median([r["cpu_s"] for r in p]), "cpu_polars": median([r["cpu_s"] for r in q]) if q else float("nan"),
        "cpu_floor": median([r["cpu_s"] for r in f]) if f else float("nan"),
        "cells_out": f[0]["cells_out"] if f else 0, "cells_in": f[0]["cells_in"] if f else 0,
        "spread": (min(r["total"] for r in p), max(r["total"] for r in p)), **case.checks,
    }


def _f(x: float, digits: int = 2) -> str:
    return "–" if x != x else f"{x:.{digits}f}"


def markdown(summaries: list[dict[str, Any]], machine: str) -> str:
    stages = ("import", "read", "normalise", "metrics", "grade", "fill plan", "write", "history")
    out = [f"Machine: {machine}", "",
           "Project (grade-etl's pipeline), seconds per stage, median of the paired runs:", "",
           "| case | runs | lines | customers | problems | " + " | ".join(stages) + " | **total** | min–max |",
           "|---|" + "---|" * (len(stages) + 6)]
    for s in summaries:
        lo, hi = s["spread"]
        out.append(f"| {s['case']} | {s['runs']} | {s['lines']:,} | {s['customers']:,} | {s['problems']:,} | "
                   + " | ".join(_f(s["stages"][k]) for k in stages) + f" | **{_f(s['total'])}** | {_f(lo)}–{_f(hi)} |")
    out += ["", "Against the strict floor and the polars reference pipeline (same run, medians):", "",
            "| case | project s | strict floor s (read + write) | polars s | project/polars | project/floor | "
            "polars/floor | CPU s project / polars / floor | CPU ratio project/polars, project/floor | peak RSS MB project / polars / floor | cells written | "
            "net sales equal | grades equal |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in summaries:
        out.append(
            f"| {s['case']} | {_f(s['total'])} | {_f(s['floor'])} ({_f(s['floor_read'])} + {_f(s['floor_write'])}) | "
            f"{_f(s['polars'])} | **{_f(s['vs_polars'])}** | **{_f(s['vs_floor'])}** | {_f(s['polars_vs_floor'])} | "
            f"{_f(s['cpu'], 1)} / {_f(s['cpu_polars'], 1)} / {_f(s['cpu_floor'], 1)} | "
            f"{_f(s['cpu'] / s['cpu_polars'])}, {_f(s['cpu'] / s['cpu_floor'])} | "
            f"{s['rss']:,} / {_f(s['rss_polars'], 0)} / {_f(s['rss_floor'], 0)} | {s['cells_out']:,} | "
            f"{s.get('net_sales_equal', '–')} | {s.get('grades_equal', '–')} |")
    out += ["", "Peak RSS (MB) of the project per stage, and the polars pipeline's seconds per stage:", "",
            "| case | project RSS per stage | polars stages s |", "|---|---|---|"]
    for s in summaries:
        rss = ", ".join(f"{k} {v:,}" for k, v in s["rss_stages"].items())
        ps = ", ".join(f"{k} {_f(v)}" for k, v in s["polars_stages"].items())
        out.append(f"| {s['case']} | {rss} | {ps} |")
    return "\n".join(out) + "\n"


def compare_results(project: dict[str, Any], polars: dict[str, Any]) -> dict[str, str]:
    """Net sales per customer at cent precision (must be equal for a fair comparison), and grades."""
    a, b = project["net_cents"], polars["net_cents"]
    same_keys = a.keys() == b.keys()
    diff = [k for k in a if k in b and abs(a[k] - b[k]) > 1]  # one cent of float rounding
    ga, gb = project["grades"], polars["grades"]
    agree = sum(1 for k in ga if gb.get(k) == ga[k])
    net = "yes" if same_keys and not diff else (
        f"NO ({len(a.keys() ^ b.keys())} customers differ, {len(diff)} sums differ)")
    return {"net_sales_equal": net, "grades_equal": f"{agree / max(len(ga), 1):.1%}"}
