"""The full problem list and the history record, made in a second process while this one builds the
fill plan and writes the workbook (grade-etl on Linux).

Right after grading, the run's process forks. The child writes the full problem list to its temporary
file (grading.outputs.draft_problems_csv), then inserts the run's record into the history in one open
transaction (grading.history.record_run; the inputs are hashed in a thread there). Both are mostly
Python work under one lock: in a thread beside the writing (grading.record_behind) they slowed it about
as much as they took, while the second core idled during the fill plan. What the user relies on does
not change:

- the list is moved into place by this process right after the output, before the history commits (in
  line it is moved before the workbook is written). A run that fails or is abandoned before the output
  is moved leaves no list and no temporary file (a killed child's is removed by the next run, as every
  killed run's files are); a list that cannot be moved fails the run before the history commits (the
  previous output is put back). If the COMMIT itself then fails, the new list stays beside the previous
  output, as it does in line;
- the transaction commits only when the output has been moved into place, and is rolled back otherwise:
  `commit()` waits for the list and the rows (raising the child's error, with the child's traceback as its
  cause, before the output is moved), lets the output be moved, then tells the child to commit and waits
  for it with Ctrl-C ignored (once the output is in place the run ends as a finished run);
- the child ignores Ctrl-C: this process decides. When this process dies, the child reads the end of its
  pipe and rolls back (an insert still running stops at SQLite's next progress check). When the child
  dies before its part is done, that part is done here as before: the list in line, the record in a
  thread (grading.record_behind). When it dies during the COMMIT, the database says whether the run was
  stored; if not, the run fails and the previous output is put back.

Memory: the child shares this process's pages as they were at the fork until either writes them, and
pages this process frees afterwards stay with the child until it ends. So the rows read are let go before
the fork (grading.pipeline.grade_data) and freed memory is handed back to the system first.
"""

from __future__ import annotations

import gc
import signal
import time
import traceback
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

import pandas as pd

from .history import HistoryError, RunRecord, record_run, run_committed, stamp
from .outputs import ProblemsCsvDraft, draft_problems_csv, interrupts_deferred, place_problems_csv, write_problems_csv
from .problems import Problem
from .process_memory import release_memory
from .read_pool import fork_context
from .record_behind import Abandoned, RecordBehind, hashed_beside, raise_history_error, record_transaction


def available() -> bool:
    """Can the side process be started here (Linux: fork)?"""
    return fork_context() is not None


class SideProcess:
    """The full problem list of `problems` beside `beside`, and the record of `run` in `history` (when
    both are given), made in a forked process; see the module's text."""

    def __init__(self, problems: Sequence[Problem], beside: Path, history: Path | None, run: RunRecord | None,
                 graded: pd.DataFrame) -> None:
        context = fork_context()
        if context is None:
            raise RuntimeError("fork is not available here")
        self._problems, self._beside, self._history, self._run, self._graded = problems, beside, history, run, graded
        self.waited = 0.0  # seconds this process spent waiting for the child
        self.notes: list[str] = []  # the list's note for the user, once it is in place
        self._draft: ProblemsCsvDraft | None = None  # the list's temporary file, until it is moved into place
        self._ended = False  # the child was told to end and has been waited for
        self._fallback: RecordBehind | None = None
        self._context = context
        self._conn: Connection | None = None  # this process's end of the pipe, once started

    def start(self) -> None:
        """Fork the child (list it for `abandon` before calling this)."""
        release_memory()  # pages freed but not handed back would stay in the child as long as it runs
        here, there = self._context.Pipe()
        self._conn = here
        self._process = self._context.Process(target=_side, name="grading-side", daemon=True, args=(
            there, here, self._problems, self._beside, self._history, self._run, self._graded))
        self._process.start()
        there.close()

    def _next(self) -> tuple[Any, ...] | None:
        """The child's next message; None when it ended without one (killed, or done)."""
        assert self._conn is not None, "start() first"
        started = time.perf_counter()
        try:
            message: tuple[Any, ...] = self._conn.recv()
            return message
        except (EOFError, OSError):
            return None
        finally:
            self.waited += time.perf_counter() - started

    @contextmanager
    def commit(self) -> Iterator[None]:
        """Around the step that makes the output final: waits for the list and the rows (raising the
        child's error before the output is moved), lets the output be moved, moves the list into place,
        then has the child commit and waits for it (as grading.record_behind.RecordBehind.commit). When
        the list cannot be moved, the commit is not made and the error is raised (the sink puts the
        previous output back)."""
        recording = self._history is not None and self._run is not None
        listed = self._next()
        if listed is not None and listed[0] == "failed":
            raise _failure(listed)
        self._draft = listed[1] if listed is not None else None
        inserted = self._next() if recording and listed is not None else None
        if inserted is not None and inserted[0] == "failed":
            self.abandon()
            raise_history_error(cast(Path, self._history), _failure(inserted))
        if recording and inserted is None:  # the child died before the rows were inserted: inserted here
            yield from self._in_a_thread(listed is None)
            return
        try:
            yield
            self._place(listed is None)
        except BaseException:
            self.abandon()
            raise
        if not recording:
            return
        with interrupts_deferred():  # the output is in place: the run ends as a finished run
            try:
                assert self._conn is not None
                self._conn.send("commit")
            except OSError:
                pass  # the child died: not committed (seen below)
            committed = self._next()
        if committed is None:
            if not self._stored():
                raise HistoryError(f"保存到历史数据库 {self._history} 的进程意外退出，本次运行没有记入历史。请重新运行。")
        elif committed[0] == "failed":
            raise_history_error(cast(Path, self._history), _failure(committed))

    def _place(self, here: bool) -> None:
        """The list moved into place (`here`: written here first, the child having died before it)."""
        if here:
            self.notes = write_problems_csv(self._problems, self._beside)
        elif self._draft is not None:
            self.notes = place_problems_csv(self._draft)
            self._draft = None

    def _in_a_thread(self, list_here: bool) -> Iterator[None]:
        assert self._history is not None and self._run is not None
        self._fallback = RecordBehind(self._history, self._run, self._graded)
        try:
            with self._fallback.commit():
                yield
                self._place(list_here)
        finally:
            self.waited += self._fallback.waited

    def _stored(self) -> bool:
        run = self._run
        assert run is not None and self._history is not None
        return run_committed(self._history, run.period, stamp(run.started_at), run.config_hash)

    def abandon(self) -> None:
        """Roll back what is not committed, remove a list not moved into place, and wait for the child to
        end; safe to call more than once (and after a commit)."""
        if self._fallback is not None:
            self._fallback.abandon()
        if self._draft is not None:
            self._draft.temp.unlink(missing_ok=True)
            self._draft = None
        if self._ended or self._conn is None:
            return
        self._ended = True
        try:
            self._conn.send("abandon")
        except OSError:
            pass  # the child has ended
        while (message := self._next()) is not None:
            if message[0] == "csv" and isinstance(message[1], ProblemsCsvDraft):
                message[1].temp.unlink(missing_ok=True)
        self._conn.close()
        self._process.join()


def _side(conn: Connection, parent_end: Connection, problems: Sequence[Problem], beside: Path,
          history: Path | None, run: RunRecord | None, graded: pd.DataFrame) -> None:
    """The child: the list, then the record; every outcome is sent to the run's process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the run's process to handle
    parent_end.close()  # so that the run's process ending is seen as the end of the pipe
    gc.freeze()  # the collector never walks the inherited objects: walking them copied their pages
    # (the list of 1M problems took 0.64–0.80 s in the child without this, 0.55 s with it)
    try:
        try:
            draft = draft_problems_csv(problems, beside)
        except BaseException as exc:
            _send_failure(conn, exc)
            return
        conn.send(("csv", draft))
        if history is None or run is None or conn.poll():  # nothing to record, or already abandoned
            return
        if _record(conn, history, run, graded):
            conn.send(("committed",))
    except OSError:
        pass  # the run's process has ended: nothing is committed


def _record(conn: Connection, history: Path, run: RunRecord, graded: pd.DataFrame) -> bool:
    """Insert the rows, say so, and commit when told to; whether it was committed."""
    hashing = ThreadPoolExecutor(max_workers=1)  # inputs hashed while the rows are inserted
    run = hashed_beside(run, hashing)
    committed = False
    try:
        with record_transaction(history, lambda: 1 if conn.poll() else 0) as db:  # told anything: abandoned
            record_run(db, run, graded)
            db.set_progress_handler(None, 0)  # the COMMIT itself is never interrupted
            conn.send(("inserted",))
            if conn.recv() != "commit":
                raise Abandoned
            committed = True
    except EOFError:
        committed = False  # the run's process has ended: rolled back
    except BaseException as exc:
        committed = False
        _send_failure(conn, exc)
    finally:
        hashing.shutdown(wait=False, cancel_futures=True)
    return committed


class ChildTraceback(Exception):
    """Where in the side process an error it sent was raised: the cause of the error raised here (as
    concurrent.futures does for its processes)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _send_failure(conn: Connection, error: BaseException) -> None:
    """The error and its traceback; an error that cannot be pickled is sent as its text."""
    trace = "".join(traceback.format_exception(error))
    try:
        conn.send(("failed", error, trace))
    except (OSError, EOFError):
        raise
    except Exception:
        conn.send(("failed", RuntimeError(f"{type(error).__name__}: {error}"), trace))


def _failure(message: tuple[Any, ...]) -> BaseException:
    """The error a "failed" message carries, its traceback in the child as its cause."""
    error: BaseException = message[1]
    error.__cause__ = ChildTraceback("\n" + message[2])
    return error
