"""The whole run, previous period → read → normalise → metrics → grade →
stability → compare → fill plan → write → record, as pure functions with a
progress callback. The CLI and the Excel add-in are thin shells over the one
function `run_pipeline`; they differ only in the sink that writes the plan
(a new file from the template, or the open workbook)."""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pandas as pd

from .changes import Comparison, compare
from .config_model import Config
from .history import (PreviousPeriod, RunRecord, busy_error, is_busy, stamp, previous_period,
                      run_committed, sheet_digest, year_before)
from .fill_plan import FillPlan, build_plan
from .grade import grade_customers
from .crosscheck import partial_cost, receivables_coverage
from .load import SheetReader, SourceData, amount_field, load_sources
from .metrics import compute_metrics
from .outputs import check_targets, own_output_check, reconcile, write_problems_csv
from .modifiers import pins_from_frame
from .problems import DropSummary, Problem, ProblemLog, drop_summary
from .process_memory import tuned_for_a_run
from .read import RawSheet
from .record_behind import RecordBehind, hashed_beside
from . import side_process
from .rules.provides import check_loaded
from .reviews import pins_from_reviews, with_carried_reviews, with_pin_audit
from .views.growth import add_growth
from .write_xlsx import write_workbook

Progress = Callable[[str, float], None]
GradedHook = Callable[[pd.DataFrame, list[Problem], dict[str, list[str]]], None]
PROBLEMS_CSV_NOTE = "输出文件旁的「<输出文件名>_数据问题.csv」（grade-etl 运行时生成）"


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
    comparison: Comparison | None = None
    timings: dict[str, float] = field(default_factory=dict)
    output: Path | None = None
    history: Path | None = None
    overflows: list[str] = field(default_factory=list)  # tables cut at Excel's row limit (full CSV beside)
    notes: list[str] = field(default_factory=list)  # what was repaired on disk before the run (killed runs)
    warnings: list[str] = field(default_factory=list)   # shown first: large drops, cross-source findings, guesses
    drops: list[DropSummary] = field(default_factory=list)  # dropped lines per reason with amount and share

    @property
    def grade_counts(self) -> dict[str, int]:
        counts = Counter(self.graded["grade"])
        return {g: counts[g] for g in dict.fromkeys(self.graded["grade"])}


def grade_data(config: Config, progress: Progress = _silent, generated_at: dt.datetime | None = None,
               previous: PreviousPeriod | None = None, sheet_reader: SheetReader | None = None,
               own_output: Callable[[Path], bool] | None = None,
               year_ago: PreviousPeriod | None = None, parallel: bool = False,
               graded_hook: GradedHook | None = None) -> GradingResult:
    """Read the configured sources and grade (against `previous` if given; growth against `previous`
    and `year_ago`); nothing is written. `parallel`: large inputs are read in worker processes
    (grading.read_pool; the result is the same). `graded_hook` is called with the graded table, the
    run's problems (complete from then on) and the files read, before the fill plan is built."""
    timings: dict[str, float] = {}
    problems: list[Problem] = ProblemLog()  # columnar and bounded: 1 M bad rows are not 1 M objects
    t = time.perf_counter()
    progress("读取并清洗数据", 0.0)
    sources = load_sources(config, problems, lambda m, f: progress(m, 0.5 * f), sheet_reader, own_output, parallel)
    check_loaded(config, {k: set(v.frame.columns) for k, v in sources.items()})  # no silent no-op rules
    # wall time of loading, split between reading and cleaning as the files' own timings are (with worker
    # processes both overlap, so their sum is larger than the wall time)
    loading = time.perf_counter() - t
    read = sum(s.read_seconds for s in sources.values())
    cleaning = sum(s.normalise_seconds for s in sources.values())
    timings["read"] = loading * read / (read + cleaning) if read + cleaning > loading else min(read, loading)
    timings["normalise"] = loading - timings["read"]

    drops, warnings, notes = input_findings(config, sources, problems)

    t = time.perf_counter()
    progress("计算客户指标", 0.55)
    rec = sources["receivables"].frame if "receivables" in sources else None
    cus = sources["customers"].frame if "customers" in sources else None
    metrics = compute_metrics(config, sources["sales"].frame, rec, cus)
    timings["metrics"] = time.perf_counter() - t

    t = time.perf_counter()
    progress("分级", 0.7)
    overrides = sources["overrides"].frame if "overrides" in sources else None
    reviews = sources["reviews"].frame if "reviews" in sources else None
    today = (generated_at or dt.datetime.now()).date()
    pins = [*pins_from_frame(overrides, problems), *pins_from_reviews(reviews, config, problems, today)]
    graded = with_pin_audit(config, grade_customers(config, metrics.table, problems, pins, previous), pins)
    graded = with_carried_reviews(graded, reviews, config.period.as_of)
    graded, comparison = compare(config, graded, previous)
    if config.views.growth:
        graded = add_growth(graded, previous, year_ago)
    timings["grade"] = time.perf_counter() - t

    files = {k: v.files for k, v in sources.items()}
    rows_read = {k: v.rows_read for k, v in sources.items()}
    lines_in_window, lines_outside = metrics.lines_in_window, metrics.lines_before + metrics.lines_after
    del sources, metrics, rec, cus, overrides, reviews  # the rows read are freed here: not kept in a forked side process
    if graded_hook is not None:
        graded_hook(graded, problems, files)
    t = time.perf_counter()
    shown = problems.for_workbook(PROBLEMS_CSV_NOTE) if isinstance(problems, ProblemLog) else problems
    plan = build_plan(config, graded, [*notes, *shown],
                      generated_at or dt.datetime.now().replace(microsecond=0), comparison,
                      year_ago.period if year_ago is not None else None)
    timings["fill plan"] = time.perf_counter() - t
    return GradingResult(
        graded, problems, plan,
        files=files,
        rows_read=rows_read,
        lines_in_window=lines_in_window,
        lines_outside=lines_outside,
        comparison=comparison,
        timings=timings,
        warnings=warnings,
        drops=drops,
    )


def prepare_output(config: Config, target: Path) -> list[str]:
    """Before anything is read: refuse an output (or history database) that is one of the inputs, then
    finish or undo what a killed run left beside `target`; returns notes for the user. Idempotent;
    call it under the run lock."""
    check_targets(config, target)
    db = config.history_path(target)
    return reconcile(target, lambda tag: db is not None and run_committed(
        db, tag.get("period", ""), tag.get("started_at", ""), tag.get("config_hash", "")))


def input_findings(config: Config, sources: dict[str, SourceData],
                   problems: list[Problem]) -> tuple[list[DropSummary], list[str], list[Problem]]:
    """Dropped lines per reason with their amount and share; first-screen warnings (large drops,
    receivables period, partial cost, notes of the sources); summary rows for the top of 数据问题.
    Cross-source findings are appended to `problems`."""
    sales = sources["sales"]
    sales_files = {Path(f.split("!")[0]).name for f in sales.files}
    drops = drop_summary(problems, sales.amount_total, config.checks.dropped_share_warning, sales_files)
    limit = config.checks.dropped_share_warning
    warnings = [f"被跳过的销售明细「{d.reason}」{d.lines:,} 行，金额 {d.amount:,.2f}，"
                f"占全部金额 {d.share:.1%}（超过 {limit:.0%}，可在 config.yaml 的 checks.dropped_share_warning 调整）"
                for d in drops if d.warning and d.share is not None]
    for data in sources.values():
        warnings.extend(data.notes)
    rec = sources.get("receivables")
    if rec is not None:
        found, texts = receivables_coverage(rec.periods, rec.frame, config.period.as_of)
        problems.extend(found)
        warnings.extend(texts)
    warnings.extend(partial_cost(sales.frame, amount_field(config), config.period.start, config.period.as_of, problems))
    notes = [Problem("（汇总）", "", None, "", "", f"已跳过的销售明细 {d.render()}", "提示", d.amount if d.priced else None)
             for d in drops]
    return drops, warnings, notes


class Sink(Protocol):
    """Where a graded run goes: the file writer (grade-etl) or the open workbook (the add-in).

    `write` puts the plan somewhere and enters `commit()` around the step that makes its output
    final, so the history record and the output succeed or fail together; how that step is made
    safe (temp file, previous output kept aside, move into place, …) stays inside the sink. Returns
    the notes of tables cut at Excel's row limit (the full lists are written as CSV beside the output)."""

    @property
    def target(self) -> str: ...  # what the history records as the run's output

    @property
    def source(self) -> str: ...  # "run" (grade-etl) or "excel" (a Grade click), stored in the history

    @property
    def beside(self) -> Path: ...  # side files (full problem list, overflow CSVs) are named after this path

    def write(self, plan: FillPlan, progress: Progress,
              commit: Callable[[], AbstractContextManager[object]]) -> list[str]: ...


@dataclass
class FileSink:
    """grade-etl: fill `template` into a new file `output` (atomically, see write_workbook); `tag`
    marks the run so a killed run can be reconciled (see outputs.reconcile)."""

    template: Path
    output: Path
    tag: dict[str, str] | None = None
    source: str = "run"

    @property
    def target(self) -> str:
        return str(self.output)

    @property
    def beside(self) -> Path:
        return self.output

    def write(self, plan: FillPlan, progress: Progress,
              commit: Callable[[], AbstractContextManager[object]]) -> list[str]:
        overflows = write_workbook(self.template, self.output, plan, progress, commit, self.tag)
        return [o.message for o in overflows]


def run_pipeline(config: Config, sink: Sink, history: Path | None, progress: Progress = _silent,
                 generated_at: dt.datetime | None = None, sheet_reader: SheetReader | None = None,
                 record: bool = True, started: dt.datetime | None = None,
                 own_output: Callable[[Path], bool] | None = None, parallel: bool = False) -> GradingResult:
    """The one run both shells use: previous period → grade → stability → compare → plan → write
    (through `sink`) → record (in `history`, unless it is None or `record` is False; the previous
    period is read from `history` either way). grade-etl reads large inputs in `parallel` worker
    processes; the add-in reads in line (no processes started from inside Excel)."""
    started = started or dt.datetime.now()  # microseconds: it identifies the run (see run_committed)
    try:
        previous = (previous_period(history, config.period.as_of, config.period.label, config.digest)
                    if history else None)
        year_ago = year_before(history, config.period.as_of) if history else None
    except (sqlite3.OperationalError, pd.errors.DatabaseError) as exc:
        if history is not None and is_busy(exc):  # another program is writing: busy, not damaged
            raise busy_error(history) from None
        raise
    pasted: dict[str, RawSheet] = {}

    def read_and_keep(name: str) -> RawSheet | None:  # inputs pasted into the workbook, hashed when recorded
        sheet = sheet_reader(name) if sheet_reader is not None else None
        if sheet is not None:
            pasted[f"{sheet.file.name}!{sheet.sheet}"] = sheet
        return sheet

    recording = history is not None and record

    def run_record(files: dict[str, list[str]]) -> RunRecord:
        """The run to store (its inputs hashed when recorded, or beside: record_behind.hashed_beside)."""
        inputs = [Path(p) for names in files.values() for p in names if Path(p).is_file()]
        sheets = [(label, *sheet_digest(pasted[label].rows)) for names in files.values()
                  for label in names if label in pasted]
        return RunRecord(config.period.label, config.period.as_of, started, config.digest, sink.target, inputs,
                         sink.source, config_text=config.source_text, sheets=sheets)

    sides: list[side_process.SideProcess] = []

    def start_side(graded: pd.DataFrame, problems: list[Problem], files: dict[str, list[str]]) -> None:
        """grade-etl on Linux: the full problem list and the record made in a second process (grading.side_process)
        while this one builds the plan and writes the workbook; with neither to make, nothing is forked."""
        if not recording and not (isinstance(problems, ProblemLog) and problems.truncated):
            return
        sides.append(side_process.SideProcess(problems, sink.beside, history if recording else None,
                                              run_record(files) if recording else None, graded))
        sides[-1].start()  # after it is listed: abandoned below whatever happens from here

    try:
        result = grade_data(config, progress, generated_at, previous, read_and_keep if sheet_reader else None,
                            own_output, year_ago, parallel,
                            start_side if parallel and side_process.available() else None)
        t = time.perf_counter()
        progress("写入工作簿", 0.8)
        if sides:  # the full list moved into place, and the record committed, with the output
            result.overflows = sink.write(result.plan, lambda m, f: progress(m, 0.8 + 0.2 * f), sides[0].commit)
            result.overflows += sides[0].notes
            result.timings["history"] = sides[0].waited  # what the list and the record added (they run beside)
        else:
            _write_in_line(result, sink, history if recording else None, run_record, progress)
    finally:
        for side in sides:
            side.abandon()  # rolled back unless the output was moved into place and the commit succeeded
    result.timings["write"] = time.perf_counter() - t - result.timings.get("history", 0.0)
    result.history = history if record else None
    progress("完成", 1.0)
    return result


def _write_in_line(result: GradingResult, sink: Sink, history: Path | None,
                   run_record: Callable[[dict[str, list[str]]], RunRecord], progress: Progress) -> None:
    """The problem list and the workbook written here; the record (when `history` is given) inserted by a
    thread meanwhile (grading.record_behind), its inputs hashed by another."""
    hashing = ThreadPoolExecutor(max_workers=1) if history is not None else None
    recorder: RecordBehind | None = None
    try:
        if history is not None and hashing is not None:
            recorder = RecordBehind(history, hashed_beside(run_record(result.files), hashing), result.graded)
        commit = recorder.commit if recorder is not None else nullcontext
        problems_csv = write_problems_csv(result.problems, sink.beside)
        result.overflows = sink.write(result.plan, lambda m, f: progress(m, 0.8 + 0.2 * f), commit) + problems_csv
    finally:
        if recorder is not None:
            recorder.abandon()  # rolled back unless the output was moved into place and the commit succeeded
        if hashing is not None:
            hashing.shutdown(wait=True)
    if recorder is not None:
        result.timings["history"] = recorder.waited  # what storing the run added to it (it runs beside the writing)


def run_to_file(config: Config, output: Path | None = None, progress: Progress = _silent,
                generated_at: dt.datetime | None = None) -> GradingResult:
    """Grade and write the filled template to a new file (atomically); record the run in the
    history database in the same step (both stay as they were if the run fails)."""
    started = dt.datetime.now()
    target = output or config.output_path()
    notes = prepare_output(config, target)
    db = config.history_path(target)
    tag = None if db is None else {"period": config.period.label, "config_hash": config.digest,
                                   "started_at": stamp(started)}
    with tuned_for_a_run():  # Arrow's allocator and Python's collector for one large batch (grading.process_memory)
        result = run_pipeline(config, FileSink(config.template_path(), target, tag), db, progress, generated_at,
                              started=started, own_output=own_output_check(config, target), parallel=True)
    result.notes = notes
    result.output = target
    return result
