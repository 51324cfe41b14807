"""The full problem list and the history record, made in a second process while this one builds the
fill plan and writes the workbook (grade-etl on Linux).

Right after grading, the run's process forks. The child writes the full problem list to its temporary
file (grading.outputs.draft_problems_csv), then inserts the run's record into the history in one open
transaction (grading.history.record_run; the inputs are hashed in a thread there). Both are mostly
Python work under one lock: in a thread beside the writing (grading.record_behind) they slowed it about
as much as they took, while the second core idled during the fill plan. What the user relies on does
not change:

- the list is moved into place by this process right after the output (in line it is moved before the
  workbook is written); a run that fails or is abandoned before leaves no list and no temporary file, and
  a list that cannot be moved fails the run before the history commits (the previous output is put back);
- the transaction commits only when the output has been moved into place, and is rolled back otherwise:
  `commit()` waits for the list and the rows (raising the child's error before the output is moved), lets
  the output be moved, then tells the child to commit and waits for it, through Ctrl-C (once the output
  is in place the run ends as a finished run);
- the child ignores Ctrl-C: this process decides. When this process dies, the child reads the end of its
  pipe and rolls back (an insert still running stops at SQLite's next progress check). When the child
  dies before its part is done, that part is done here as before: the list in line, the record in a
  thread (grading.record_behind).

Memory: the child shares this process's pages as they were at the fork until either writes them, and
pages this process frees afterwards stay with the child until it ends. So the rows read are let go before
the fork (grading.pipeline.grade_data) and freed memory is handed back to the system first.
"""

from __future__ import annotations

import dataclasses
import signal
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

import pandas as pd

from .history import HistoryError, RunRecord, connect, record_run, run_committed
from .outputs import ProblemsCsvDraft, draft_problems_csv, place_problems_csv, write_problems_csv
from .problems import Problem
from .read_pool import fork_context, release_memory
from .record_behind import PendingDigests, RecordBehind, input_digests, raise_history_error

_PROGRESS_STEPS = 10_000  # SQLite virtual-machine steps between checks whether the run was abandoned


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
        release_memory()  # pages freed but not handed back would stay in the child as long as it runs
        here, there = context.Pipe()
        self._conn = here
        self._process = context.Process(target=_side, name="grading-side", daemon=True,
                                        args=(there, here, problems, beside, history, run, graded))
        self._process.start()
        there.close()

    def _next(self) -> tuple[str, Any] | None:
        """The child's next message; None when it ended without one (killed, or done)."""
        started = time.perf_counter()
        try:
            message: tuple[str, Any] = self._conn.recv()
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
            raise listed[1]
        self._draft = listed[1] if listed is not None else None
        inserted = self._next() if recording and listed is not None else None
        if inserted is not None and inserted[0] == "failed":
            self.abandon()
            raise_history_error(cast(Path, self._history), inserted[1])
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
        try:
            self._conn.send("commit")
        except OSError:
            pass  # the child died: not committed (seen below)
        committed = self._through_interrupt()
        if committed is None:
            if not self._stored():
                raise HistoryError(f"保存到历史数据库 {self._history} 的进程意外退出，本次运行没有记入历史。请重新运行。")
        elif committed[0] == "failed":
            raise_history_error(cast(Path, self._history), committed[1])

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

    def _through_interrupt(self) -> tuple[str, Any] | None:
        """The child's word on the COMMIT, waited for even through Ctrl-C: once the output is in place the
        child commits whatever this process does, so the run ends as a finished run."""
        while True:
            try:
                return self._next()
            except KeyboardInterrupt:
                continue

    def _stored(self) -> bool:
        run = self._run
        assert run is not None and self._history is not None
        return run_committed(self._history, run.period, run.started_at.isoformat(timespec="microseconds"),
                             run.config_hash)

    def abandon(self) -> None:
        """Roll back what is not committed, remove a list not moved into place, and wait for the child to
        end; safe to call more than once (and after a commit)."""
        if self._fallback is not None:
            self._fallback.abandon()
        if self._draft is not None:
            self._draft.temp.unlink(missing_ok=True)
            self._draft = None
        if self._ended:
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


class _Abandoned(Exception):
    """The output was not moved into place: the transaction is rolled back."""


def _side(conn: Connection, parent_end: Connection, problems: Sequence[Problem], beside: Path,
          history: Path | None, run: RunRecord | None, graded: pd.DataFrame) -> None:
    """The child: the list, then the record; every outcome is sent to the run's process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the run's process to handle
    parent_end.close()  # so that the run's process ending is seen as the end of the pipe
    try:
        try:
            draft = draft_problems_csv(problems, beside)
        except BaseException as exc:
            _send_failure(conn, exc)
            return
        conn.send(("csv", draft))
        if history is None or run is None or conn.poll():  # nothing to record, or already abandoned
            return
        _record(conn, history, run, graded)
    except OSError:
        pass  # the run's process has ended: nothing is committed


def _record(conn: Connection, history: Path, run: RunRecord, graded: pd.DataFrame) -> None:
    hashing = ThreadPoolExecutor(max_workers=1)  # inputs hashed while the rows are inserted
    run = dataclasses.replace(run, digests=PendingDigests(hashing.submit(input_digests, list(run.inputs))))
    try:
        with closing(connect(history)) as db:
            # rows kept in memory until COMMIT: the database file is not locked against readers before
            db.execute("PRAGMA cache_spill = OFF")
            db.set_progress_handler(lambda: 1 if conn.poll() else 0, _PROGRESS_STEPS)  # abandoned: stop
            with db:  # one transaction: committed when it exits normally, else rolled back
                record_run(db, run, graded)
                db.set_progress_handler(None, 0)  # the COMMIT itself is never interrupted
                conn.send(("inserted", None))
                if conn.recv() != "commit":
                    raise _Abandoned
        conn.send(("committed", None))
    except (_Abandoned, EOFError):
        pass
    except BaseException as exc:
        _send_failure(conn, exc)
    finally:
        hashing.shutdown(wait=False, cancel_futures=True)


def _send_failure(conn: Connection, error: BaseException) -> None:
    """The error as the run's process raises it; one that cannot be pickled as its text."""
    try:
        conn.send(("failed", error))
    except (OSError, EOFError):
        raise
    except Exception:
        conn.send(("failed", RuntimeError(f"{type(error).__name__}: {error}")))
