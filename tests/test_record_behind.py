"""The history record is made while the workbook is written, in a thread (grading.record_behind: the
add-in, runs in line) or in grade-etl's side process (grading.side_process, `parallel`: these tests run
both ways), and still commits only with the output: a failed write, a failed move or a failed insert
leave both as they were, and the database is free again afterwards."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

import grading.record_behind as record_behind
from grading.config import load_config
from grading.errors import HistoryBusy
from grading.fill_plan import FillPlan
from grading.history import file_digest
from grading.pipeline import FileSink, run_pipeline

from .conftest import FIXED_TIME
from .test_history import _project

BOTH = pytest.mark.parametrize("parallel", [False, True], ids=["thread", "side process"])


def _write_locked(db: Path) -> bool:
    """Whether another connection holds the database's write lock now."""
    if not db.exists():
        return False
    conn = sqlite3.connect(db, timeout=0)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.rollback()
        return False
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc)
        return True
    finally:
        conn.close()


class _Sink(FileSink):
    """FileSink with a hook before the workbook is written."""

    before: Callable[[], None] = staticmethod(lambda: None)

    def write(self, plan: FillPlan, progress: Any,
              commit: Callable[[], AbstractContextManager[object]]) -> list[str]:
        self.before()
        return super().write(plan, progress, commit)


def _setup(tmp_path: Path, demo: Any) -> tuple[Any, Path, Path]:
    cfg = load_config(_project(tmp_path, demo[0]), period="2026H1")
    output = cfg.output_path()
    db = cfg.history_path(output)
    assert db is not None
    return cfg, output, db


def _stored_periods(db: Path) -> list[str]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT period FROM runs ORDER BY run_id")]


def until_locked(db: Path) -> bool:
    """Wait (up to 20 s) until another connection holds the database's write lock; whether it does."""
    deadline = time.monotonic() + 20
    while not (db.exists() and _write_locked(db)) and time.monotonic() < deadline:
        time.sleep(0.01)
    return db.exists() and _write_locked(db)


@BOTH
def test_history_rows_are_inserted_while_the_workbook_is_written(tmp_path: Path, demo: Any, parallel: bool) -> None:
    cfg, output, db = _setup(tmp_path, demo)
    seen: list[bool] = []

    def before() -> None:  # the recorder's transaction is open before the workbook is written
        seen.append(until_locked(db))

    sink = _Sink(cfg.template_path(), output)
    sink.before = before
    result = run_pipeline(cfg, sink, db, generated_at=FIXED_TIME, parallel=parallel)
    assert seen == [True]
    assert _stored_periods(db) == ["2026H1"]
    assert not _write_locked(db)
    with sqlite3.connect(db) as conn:
        stored = {Path(p): (size, sha) for p, size, sha in conn.execute("SELECT path, size, sha256 FROM run_inputs")}
        customers = conn.execute("SELECT COUNT(*) FROM customer_grades").fetchone()[0]
    assert stored and stored == {p: file_digest(p) for p in stored}
    assert customers == len(result.graded)
    assert output.exists()


@BOTH
def test_a_write_that_fails_before_its_commit_stores_nothing(tmp_path: Path, demo: Any, monkeypatch: Any,
                                                            parallel: bool) -> None:
    import grading.problems as problems

    monkeypatch.setattr(problems, "KEEP_PER_REASON", 3)  # a full problem list beside the workbook too
    cfg, output, db = _setup(tmp_path, demo)
    full_list = output.with_name(f"{output.stem}_数据问题.csv")

    def before() -> None:
        raise RuntimeError("disk gone")

    sink = _Sink(cfg.template_path(), output)
    sink.before = before
    with pytest.raises(RuntimeError, match="disk gone"):
        run_pipeline(cfg, sink, db, generated_at=FIXED_TIME, parallel=parallel)
    assert _stored_periods(db) == []  # (the empty database it created stays: another run may use it)
    assert not _write_locked(db)
    assert not output.exists()
    assert sorted(p.name for p in output.parent.iterdir() if p.name.endswith(".tmp")) == []
    assert full_list.exists() != parallel  # the side process moves it with the output; in line it goes first
    run_pipeline(cfg, FileSink(cfg.template_path(), output), db, generated_at=FIXED_TIME)
    sink.before = before
    before_bytes = db.read_bytes()
    with pytest.raises(RuntimeError, match="disk gone"):
        run_pipeline(cfg, sink, db, generated_at=FIXED_TIME, parallel=parallel)
    assert db.read_bytes() == before_bytes  # an existing one keeps its runs, untouched
    assert not _write_locked(db)  # the recorder's transaction was rolled back and its connection closed


@BOTH
def test_a_failed_move_rolls_the_history_back(tmp_path: Path, demo: Any, monkeypatch: Any, parallel: bool) -> None:
    cfg, output, db = _setup(tmp_path, demo)
    import grading.outputs as outputs

    def refuse(src: str, dst: Path) -> None:
        raise RuntimeError("move refused")

    monkeypatch.setattr(outputs, "_replace", refuse)
    with pytest.raises(RuntimeError, match="move refused"):
        run_pipeline(cfg, FileSink(cfg.template_path(), output), db, generated_at=FIXED_TIME, parallel=parallel)
    assert _stored_periods(db) == []
    assert not _write_locked(db)
    assert not output.exists()


@BOTH
def test_a_busy_insert_is_the_busy_error_and_the_output_is_not_moved(tmp_path: Path, demo: Any,
                                                                      monkeypatch: Any, parallel: bool) -> None:
    import grading.side_process as side_process

    cfg, output, db = _setup(tmp_path, demo)

    def busy(*args: Any) -> int:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(record_behind, "record_run", busy)
    monkeypatch.setattr(side_process, "record_run", busy)
    with pytest.raises(HistoryBusy, match="数据库忙"):
        run_pipeline(cfg, FileSink(cfg.template_path(), output), db, generated_at=FIXED_TIME, parallel=parallel)
    assert _stored_periods(db) == []
    assert not output.exists()


def test_readers_are_not_blocked_while_the_workbook_is_written(tmp_path: Path, demo: Any,
                                                               monkeypatch: Any) -> None:
    """The record's rows stay in memory until the commit: another program (the history commands, the
    next run reading the previous period) can still read the database while the workbook is written,
    even when the rows outgrow SQLite's page cache (made tiny here to force that)."""
    import threading

    from grading import history

    cfg, output, db = _setup(tmp_path, demo)
    run_pipeline(cfg, FileSink(cfg.template_path(), output), db, generated_at=FIXED_TIME)  # a stored run
    real_connect, real_record = record_behind.connect, record_behind.record_run
    inserted = threading.Event()

    def small_cache(path: Path) -> sqlite3.Connection:
        conn = real_connect(path)
        conn.execute("PRAGMA cache_size = 1")
        return conn

    def record(*args: Any) -> int:
        run_id = real_record(*args)
        inserted.set()
        return run_id

    monkeypatch.setattr(record_behind, "connect", small_cache)
    monkeypatch.setattr(record_behind, "record_run", record)
    read: list[object] = []

    def before() -> None:
        assert inserted.wait(20)
        with sqlite3.connect(db, timeout=0) as conn:  # fails at once if the file is locked against readers
            read.append(conn.execute("SELECT COUNT(*) FROM customer_grades").fetchone()[0])

    sink = _Sink(cfg.template_path(), output)
    sink.before = before
    result = run_pipeline(cfg, sink, db, generated_at=FIXED_TIME)
    assert read == [len(result.graded)]  # the stored run, not the one being written
    assert _stored_periods(db) == ["2026H1"]
    assert history.list_runs(db)[0]["customers"] == len(result.graded)


def test_ctrl_c_while_the_history_commits_ends_as_a_finished_run(tmp_path: Path, demo: Any) -> None:
    """Ctrl-C after the output was moved into place, while the thread commits: it is ignored, the commit
    is waited for and the run ends normally (the interrupt must not put the previous output back beside a
    stored run)."""
    import datetime as dt
    import os
    import signal

    from grading.history import RunRecord

    cfg, output, db = _setup(tmp_path, demo)
    result = run_pipeline(cfg, FileSink(cfg.template_path(), output), db, generated_at=FIXED_TIME, record=False)
    run = RunRecord("2026H1", dt.date(2026, 6, 30), dt.datetime(2026, 7, 1), "h", str(output), [])
    recorder = record_behind.RecordBehind(db, run, result.graded)
    real_join = recorder._thread.join
    calls: list[int] = []

    def interrupted_once(timeout: float | None = None) -> None:
        calls.append(1)
        if len(calls) == 1:  # the wait for the COMMIT
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # Python's handler runs at its next check
        real_join(timeout)

    recorder._thread.join = interrupted_once  # type: ignore[method-assign]
    try:
        with recorder.commit():
            pass
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C while the history commits interrupted the run")
    recorder.abandon()
    assert len(calls) >= 2
    assert _stored_periods(db) == ["2026H1"]


def test_ctrl_c_right_after_the_history_commits_keeps_the_new_output(tmp_path: Path) -> None:
    """A real Ctrl-C between the history's COMMIT and the end of the output's move: ignored, so the new
    output stays beside the committed history (undoing it there would split them)."""
    import os
    import signal
    from collections.abc import Iterator
    from contextlib import contextmanager

    from grading.outputs import publish

    output, new = tmp_path / "o.xlsx", tmp_path / "new.tmp"
    output.write_bytes(b"old")
    new.write_bytes(b"new")
    committed: list[bool] = []

    @contextmanager
    def history() -> Iterator[None]:
        yield
        committed.append(True)  # the COMMIT
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C right after it
        time.sleep(0.05)  # Python's handler runs at its next check

    try:
        publish(str(new), output, history, {"period": "p", "started_at": "s", "config_hash": "h"})
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C after the history's commit interrupted the output's move")
    assert committed and output.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.xlsx"]  # no backup, no marker left
