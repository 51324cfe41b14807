"""grade-etl on Linux writes the full problem list and inserts the history record in a forked process
while it builds the plan and writes the workbook (grading.side_process). The results are those of a run
in line, and what the user relies on holds: the record commits only with the output, a failed or
abandoned run leaves neither a list nor a temporary file nor a stored run, a child that dies is replaced
by doing its part here, and the history is free again afterwards."""

from __future__ import annotations

import datetime as dt
import os
import signal
import sqlite3
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest

import grading.pipeline as pipeline
import grading.problems as problems_module
import grading.side_process as side_process
from grading.errors import HistoryBusy
from grading.history import HistoryError, RunRecord
from grading.pipeline import FileSink, run_pipeline

from .conftest import FIXED_TIME
from .test_record_behind import _setup, _stored_periods, _write_locked

pytestmark = pytest.mark.skipif(not side_process.available(), reason="fork: Linux only")


@pytest.fixture(autouse=True)
def _few_kept(monkeypatch: Any) -> None:
    """The workbook lists 3 problems per kind: the demo's problems then need the full list beside it."""
    monkeypatch.setattr(problems_module, "KEEP_PER_REASON", 3)


def _started(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT started_at FROM runs ORDER BY run_id")]


def _full_list(output: Path) -> Path:
    return output.with_name(f"{output.stem}_数据问题.csv")


def _temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def _rows(db: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    with sqlite3.connect(db) as conn:
        grades = conn.execute("SELECT customer_code, customer_name, rule_grade, grade, score, net_sales, pinned, "
                              "below_streak, explanation, metrics, salesperson FROM customer_grades ORDER BY rowid").fetchall()
        inputs = conn.execute("SELECT path, size, sha256 FROM run_inputs ORDER BY path").fetchall()
    return grades, inputs


def test_the_list_and_the_record_are_made_in_another_process_and_equal_a_run_in_line(
        tmp_path: Path, demo: Any, monkeypatch: Any) -> None:
    cfg, output, db = _setup(tmp_path, demo)
    result = run_pipeline(cfg, FileSink(cfg.template_path(), output), db, generated_at=FIXED_TIME)
    in_line = (_full_list(output).read_bytes(), _rows(db))
    assert result.problems and _full_list(output).exists()

    real_record, real_draft = side_process.record_run, side_process.draft_problems_csv
    marks = tmp_path / "pids"

    def record(*args: Any) -> int:
        with marks.open("a") as fh:
            fh.write(f"record {os.getpid()}\n")
        return real_record(*args)

    def draft(*args: Any) -> Any:
        with marks.open("a") as fh:
            fh.write(f"list {os.getpid()}\n")
        return real_draft(*args)

    monkeypatch.setattr(side_process, "record_run", record)
    monkeypatch.setattr(side_process, "draft_problems_csv", draft)
    _full_list(output).unlink()
    run_pipeline(cfg, FileSink(cfg.template_path(), output), db, generated_at=FIXED_TIME, parallel=True)
    pids = [int(line.split()[1]) for line in marks.read_text().splitlines()]
    assert [line.split()[0] for line in marks.read_text().splitlines()] == ["list", "record"]
    assert len(set(pids)) == 1 and pids[0] != os.getpid()
    assert (_full_list(output).read_bytes(), _rows(db)) == in_line
    assert _stored_periods(db) == ["2026H1"]
    assert not _write_locked(db)
    assert _temporaries(output.parent) == []


def test_a_list_that_cannot_be_moved_keeps_the_previous_output_and_history(tmp_path: Path, demo: Any,
                                                                           monkeypatch: Any) -> None:
    cfg, output, db = _setup(tmp_path, demo)
    run_pipeline(cfg, FileSink(cfg.template_path(), output), db, generated_at=FIXED_TIME, parallel=True)
    before = (output.read_bytes(), _full_list(output).read_bytes(), _started(db))

    def refuse(draft: Any) -> list[str]:
        raise PermissionError("list locked")

    monkeypatch.setattr(side_process, "place_problems_csv", refuse)
    later = FIXED_TIME + dt.timedelta(hours=1)  # another workbook (its generation time) and another stored run
    tag = {"period": "2026H1", "config_hash": cfg.digest, "started_at": "2026-07-01T01:00:00.000000"}
    with pytest.raises(PermissionError, match="list locked"):  # as grade-etl runs it: the previous output kept aside
        run_pipeline(cfg, FileSink(cfg.template_path(), output, tag), db, generated_at=later, parallel=True)
    assert (output.read_bytes(), _full_list(output).read_bytes(), _started(db)) == before
    assert not _write_locked(db)
    assert _temporaries(output.parent) == []
    monkeypatch.undo()
    run_pipeline(cfg, FileSink(cfg.template_path(), output), db, generated_at=later, parallel=True)
    assert output.read_bytes() != before[0] and _started(db) != before[2]  # what the failed run would have left


def test_a_run_that_fails_before_the_output_is_moved_leaves_no_list(tmp_path: Path, demo: Any,
                                                                      monkeypatch: Any) -> None:
    """The child writes the list to a temporary file right away; a run that fails while the plan is built
    removes it (in line, no list was written at all). The list is moved into place with the output."""
    cfg, output, db = _setup(tmp_path, demo)

    def broken_plan(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.5)  # the child has written its temporary list by now
        raise RuntimeError("plan failed")

    monkeypatch.setattr(pipeline, "build_plan", broken_plan)
    with pytest.raises(RuntimeError, match="plan failed"):
        run_pipeline(cfg, FileSink(cfg.template_path(), output), db, generated_at=FIXED_TIME, parallel=True)
    assert not _full_list(output).exists()
    assert _temporaries(output.parent) == []
    assert _stored_periods(db) == []
    assert not _write_locked(db)


def test_a_list_that_cannot_be_written_is_the_same_error_as_in_line(tmp_path: Path, demo: Any,
                                                                     monkeypatch: Any) -> None:
    from grading.errors import OutputFolderNotWritable

    cfg, output, db = _setup(tmp_path, demo)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OutputFolderNotWritable("无法在文件夹中创建输出文件")

    monkeypatch.setattr(side_process, "draft_problems_csv", refuse)
    with pytest.raises(OutputFolderNotWritable, match="无法在文件夹"):
        run_pipeline(cfg, FileSink(cfg.template_path(), output), db, generated_at=FIXED_TIME, parallel=True)
    assert _stored_periods(db) == []
    assert not output.exists()


@pytest.mark.parametrize("dies", ["at once", "after the list"])
def test_a_child_that_dies_is_replaced_by_doing_its_part_here(tmp_path: Path, demo: Any, monkeypatch: Any,
                                                              dies: str) -> None:
    cfg, output, db = _setup(tmp_path, demo)
    result = run_pipeline(cfg, FileSink(cfg.template_path(), output), db, generated_at=FIXED_TIME)
    in_line = (_full_list(output).read_bytes(), _rows(db))
    _full_list(output).unlink()

    def killed(*args: Any) -> None:
        os._exit(9)

    monkeypatch.setattr(side_process, "_side" if dies == "at once" else "_record", killed)
    stored = _started(db)
    again = run_pipeline(cfg, FileSink(cfg.template_path(), output), db, generated_at=FIXED_TIME, parallel=True)
    assert _started(db) != stored and len(_started(db)) == 1  # stored again, here
    assert (_full_list(output).read_bytes(), _rows(db)) == in_line
    assert len(again.graded) == len(result.graded)
    assert _stored_periods(db) == ["2026H1"]
    assert not _write_locked(db)


def _side(db: Path, graded: Any, problems: Any, beside: Path) -> side_process.SideProcess:
    run = RunRecord("2026H1", dt.date(2026, 6, 30), dt.datetime(2026, 7, 1), "h", "out.xlsx", [])
    side = side_process.SideProcess(problems, beside, db, run, graded)
    side.start()
    return side


def test_the_end_of_the_pipe_rolls_back(tmp_path: Path, demo: Any) -> None:
    """The run's process dies after the rows were inserted: the child sees the end of its pipe, rolls back
    and ends; the database is free."""
    cfg, output, db = _setup(tmp_path, demo)
    result = run_pipeline(cfg, FileSink(cfg.template_path(), output), db, generated_at=FIXED_TIME, record=False)
    side = _side(db, result.graded, result.problems, output)
    kind, draft = side._conn.recv()
    assert kind == "csv" and draft.temp.exists()
    assert side._conn.recv() == ("inserted",)
    assert _write_locked(db)
    side._conn.close()  # as the kernel does when the run's process is killed
    side._process.join(20)
    assert side._process.exitcode == 0
    assert _stored_periods(db) == []
    assert not _write_locked(db)


def test_ctrl_c_while_the_child_commits_ends_as_a_finished_run(tmp_path: Path, demo: Any) -> None:
    cfg, output, db = _setup(tmp_path, demo)
    result = run_pipeline(cfg, FileSink(cfg.template_path(), output), db, generated_at=FIXED_TIME, record=False)
    side = _side(db, result.graded, result.problems, output)
    real_next = side._next
    calls: list[int] = []

    def interrupted_once() -> Any:
        calls.append(1)
        if len(calls) == 3:  # the wait for the COMMIT (after the list and the rows)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # Python's handler runs at its next check
        return real_next()

    side._next = interrupted_once  # type: ignore[method-assign]
    try:
        with side.commit():
            pass
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C while the child commits interrupted the run")
    side.abandon()
    assert len(calls) >= 4 and side.notes and _full_list(output).exists()
    assert _stored_periods(db) == ["2026H1"]
    assert not _write_locked(db)


def _tagged(cfg: Any, output: Path, hour: int) -> FileSink:
    """A sink as grade-etl makes it (the previous output kept aside until the history commits)."""
    return FileSink(cfg.template_path(), output,
                    {"period": "2026H1", "config_hash": cfg.digest, "started_at": f"2026-07-01T{hour:02d}:00:00.000000"})


def _in_child(parent: int, word: str) -> Callable[..., Any]:
    """Connection.recv that ends the child (as a kill would) when it has read `word`."""
    real_recv = Connection.recv

    def recv(self: Connection) -> Any:
        got = real_recv(self)
        if os.getpid() != parent and got == word:
            os._exit(9)
        return got

    return recv


def test_a_child_killed_before_its_commit_fails_the_run_and_keeps_the_previous_output(
        tmp_path: Path, demo: Any, monkeypatch: Any) -> None:
    cfg, output, db = _setup(tmp_path, demo)
    run_pipeline(cfg, _tagged(cfg, output, 0), db, generated_at=FIXED_TIME, parallel=True)
    before = (output.read_bytes(), _started(db))
    monkeypatch.setattr(Connection, "recv", _in_child(os.getpid(), "commit"))
    later = FIXED_TIME + dt.timedelta(hours=1)
    with pytest.raises(HistoryError, match="意外退出"):
        run_pipeline(cfg, _tagged(cfg, output, 1), db, generated_at=later, parallel=True)
    assert (output.read_bytes(), _started(db)) == before
    assert not _write_locked(db)


def test_a_child_killed_after_its_commit_ends_as_a_finished_run(tmp_path: Path, demo: Any, monkeypatch: Any) -> None:
    cfg, output, db = _setup(tmp_path, demo)
    run_pipeline(cfg, _tagged(cfg, output, 0), db, generated_at=FIXED_TIME, parallel=True)
    before = (output.read_bytes(), _started(db))
    real_record = side_process._record

    def committed_then_killed(*args: Any) -> bool:
        if real_record(*args):
            os._exit(9)  # before it could say so
        return False

    monkeypatch.setattr(side_process, "_record", committed_then_killed)
    later = FIXED_TIME + dt.timedelta(hours=1)
    run_pipeline(cfg, _tagged(cfg, output, 1), db, generated_at=later, parallel=True)
    assert output.read_bytes() != before[0] and _started(db) != before[1] and len(_started(db)) == 1
    assert not _write_locked(db)


def test_a_busy_commit_is_the_busy_error_and_the_previous_output_is_kept(tmp_path: Path, demo: Any,
                                                                        monkeypatch: Any) -> None:
    """A reader holding the database (e.g. DB Browser in a transaction) when the child commits: after the
    busy timeout the run fails with the busy error; the output and the history stay as they were."""
    from grading import history

    cfg, output, db = _setup(tmp_path, demo)
    run_pipeline(cfg, _tagged(cfg, output, 0), db, generated_at=FIXED_TIME, parallel=True)
    before = (output.read_bytes(), _started(db))
    monkeypatch.setattr(history, "BUSY_TIMEOUT", 0.5)
    reader = sqlite3.connect(db)
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM runs").fetchone()  # a shared lock, held until the transaction ends
    try:
        with pytest.raises(HistoryBusy, match="数据库忙"):
            run_pipeline(cfg, _tagged(cfg, output, 1), db, generated_at=FIXED_TIME + dt.timedelta(hours=1),
                         parallel=True)
    finally:
        reader.rollback()
        reader.close()
    assert (output.read_bytes(), _started(db)) == before
    assert not _write_locked(db)


def test_an_unexpected_error_in_the_child_carries_its_traceback(tmp_path: Path, demo: Any, monkeypatch: Any) -> None:
    cfg, output, db = _setup(tmp_path, demo)

    def broken(*args: Any) -> int:
        raise ZeroDivisionError("a bug in the record")

    monkeypatch.setattr(side_process, "record_run", broken)
    with pytest.raises(ZeroDivisionError, match="a bug in the record") as caught:
        run_pipeline(cfg, FileSink(cfg.template_path(), output), db, generated_at=FIXED_TIME, parallel=True)
    cause = caught.value.__cause__
    assert isinstance(cause, side_process.ChildTraceback) and "in broken" in str(cause)
    assert not output.exists() and _stored_periods(db) == []


def test_abandoning_stops_an_insert_that_is_running(tmp_path: Path, demo: Any, monkeypatch: Any) -> None:
    """A run cancelled while the child inserts: the statement stops at SQLite's next progress check, the
    child ends soon and nothing is stored."""
    cfg, output, db = _setup(tmp_path, demo)
    result = run_pipeline(cfg, FileSink(cfg.template_path(), output), db, generated_at=FIXED_TIME, record=False)

    def endless(conn: sqlite3.Connection, *args: Any) -> int:  # a statement of minutes
        conn.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000000) "
                     "SELECT COUNT(*) FROM c").fetchone()
        return 0

    monkeypatch.setattr(side_process, "record_run", endless)
    side = _side(db, result.graded, result.problems, output)
    kind, draft = side._conn.recv()  # the list is written: the child is inserting now
    assert kind == "csv"
    time.sleep(0.2)
    started = time.monotonic()
    side.abandon()
    assert time.monotonic() - started < 10
    draft.temp.unlink()  # (its message was taken above, not by the side process)
    assert _stored_periods(db) == [] and not _write_locked(db)


def test_nothing_is_forked_with_neither_a_record_nor_a_long_list(tmp_path: Path, demo: Any, monkeypatch: Any) -> None:
    cfg, output, db = _setup(tmp_path, demo)
    monkeypatch.setattr(problems_module, "KEEP_PER_REASON", 10**6)  # the workbook lists every problem
    started: list[bool] = []
    real_start = side_process.SideProcess.start

    def start(self: side_process.SideProcess) -> None:
        started.append(True)
        real_start(self)

    monkeypatch.setattr(side_process.SideProcess, "start", start)
    run_pipeline(cfg, FileSink(cfg.template_path(), output), db, generated_at=FIXED_TIME, record=False, parallel=True)
    assert started == [] and not _full_list(output).exists() and _stored_periods(db) == []
    run_pipeline(cfg, FileSink(cfg.template_path(), output), db, generated_at=FIXED_TIME, parallel=True)
    assert started == [True] and _stored_periods(db) == ["2026H1"]
