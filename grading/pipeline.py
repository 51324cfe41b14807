"""The whole run, read → normalise → metrics → grade → fill plan → write,
as pure functions with a progress callback. The CLI and the Excel add-in are
thin shells over `grade_workbook_data` / `run_to_file`."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .config_model import Config
from .fill_plan import FillPlan, build_plan
from .grade import grade_customers
from .load import load_sources
from .metrics import compute_metrics
from .modifiers import pins_from_frame
from .problems import Problem
from .write_xlsx import write_workbook

Progress = Callable[[str, float], None]


def _silent(message: str, fraction: float) -> None:
    return None


@dataclass
class GradingResult:
    """Everything a shell needs to report a run and to write it anywhere."""

    graded: pd.DataFrame
    problems: list[Problem]
    plan: FillPlan
    files: dict[str, list[str]]
    rows_read: dict[str, int]
    lines_in_window: int
    lines_outside: int
    timings: dict[str, float] = field(default_factory=dict)
    output: Path | None = None

    @property
    def grade_counts(self) -> dict[str, int]:
        counts = Counter(self.graded["grade"])
        return {g: counts[g] for g in dict.fromkeys(self.graded["grade"])}


def grade_data(config: Config, progress: Progress = _silent,
               generated_at: dt.datetime | None = None) -> GradingResult:
    """Read the configured sources and grade; nothing is written."""
    timings: dict[str, float] = {}
    problems: list[Problem] = []
    t = time.perf_counter()
    progress("读取并清洗数据", 0.0)
    sources = load_sources(config, problems, lambda m, f: progress(m, 0.5 * f))
    timings["read+normalise"] = time.perf_counter() - t

    t = time.perf_counter()
    progress("计算客户指标", 0.55)
    rec = sources["receivables"].frame if "receivables" in sources else None
    cus = sources["customers"].frame if "customers" in sources else None
    metrics = compute_metrics(config, sources["sales"].frame, rec, cus)
    timings["metrics"] = time.perf_counter() - t

    t = time.perf_counter()
    progress("分级", 0.7)
    overrides = sources["overrides"].frame if "overrides" in sources else None
    graded = grade_customers(config, metrics.table, problems, pins_from_frame(overrides, problems))
    timings["grade"] = time.perf_counter() - t

    t = time.perf_counter()
    plan = build_plan(config, graded, problems, generated_at or dt.datetime.now().replace(microsecond=0))
    timings["fill plan"] = time.perf_counter() - t
    return GradingResult(
        graded, problems, plan,
        files={k: v.files for k, v in sources.items()},
        rows_read={k: v.rows_read for k, v in sources.items()},
        lines_in_window=metrics.lines_in_window,
        lines_outside=metrics.lines_before + metrics.lines_after,
        timings=timings,
    )


def run_to_file(config: Config, output: Path | None = None, progress: Progress = _silent,
                generated_at: dt.datetime | None = None) -> GradingResult:
    """Grade and write the filled template to a new file (atomically)."""
    result = grade_data(config, progress, generated_at)
    target = output or config.output_path()
    t = time.perf_counter()
    progress("写入工作簿", 0.8)
    write_workbook(config.resolve(config.output.template), target, result.plan,
                   lambda m, f: progress(m, 0.8 + 0.2 * f))
    result.timings["write"] = time.perf_counter() - t
    result.output = target
    progress("完成", 1.0)
    return result
