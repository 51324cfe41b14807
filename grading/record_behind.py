"""The history record made in a thread while the output is written (the Excel add-in, and runs that
fork no process; grade-etl on Linux makes it in a second process: grading.side_process, which shares the
pieces below).

Storing a run (grading.history.record_run: 50,000 customers with their explanations at 1M lines) runs
beside the writing of the workbook instead of after it. What the user can rely on does not change: the
transaction is committed only when the sink's commit step (moving the output into place) has succeeded,
and rolled back when it, or anything before it, fails; the output and the history still change together.

The thread owns its connection from opening to closing (SQLite connections stay in one thread). The
caller's side: `commit()` waits until the rows are inserted (raising the thread's error, if any, before
the output is moved), lets the output be moved, then has the thread commit and waits for it, Ctrl-C
ignored meanwhile. A run abandoned while rows are being inserted stops the insert at SQLite's next
progress check.

Locks: the transaction holds SQLite's write lock from its first statement (so another program writing
the history waits, up to BUSY_TIMEOUT, as it would for the insert itself), but the rows stay in memory
until the commit (cache_spill off): readers — the history commands, another run reading the previous
period, DB Browser — are not blocked while the workbook is written. A failed first run leaves the empty
database it created (schema only): another run may be using it already, so it is never deleted here.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing, contextmanager
from pathlib import Path
from typing import NoReturn

import pandas as pd

from .history import RunRecord, busy_error, connect, file_digest, is_busy, record_run
from .outputs import interrupts_deferred

_PROGRESS_STEPS = 10_000  # SQLite virtual-machine steps between checks whether the run was abandoned


class PendingDigests(Mapping[Path, tuple[int, str]]):
    """The inputs' (size, sha256), hashed in another thread: waited for when first looked at."""

    def __init__(self, future: Future[dict[Path, tuple[int, str]]]) -> None:
        self._future = future

    def _all(self) -> dict[Path, tuple[int, str]]:
        return self._future.result()

    def __getitem__(self, key: Path) -> tuple[int, str]:
        return self._all()[key]

    def __iter__(self) -> Iterator[Path]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


def input_digests(paths: list[Path]) -> dict[Path, tuple[int, str]]:
    """(size, sha256) per input file; one that vanished is hashed (and reported) again when recorded."""
    out: dict[Path, tuple[int, str]] = {}
    for path in dict.fromkeys(paths):
        try:
            out[path] = file_digest(path)
        except OSError:
            continue
    return out


def hashed_beside(run: RunRecord, pool: ThreadPoolExecutor) -> RunRecord:
    """`run` with its inputs hashed by `pool` meanwhile (waited for when the digests are first looked at)."""
    return dataclasses.replace(run, digests=PendingDigests(pool.submit(input_digests, list(run.inputs))))


def raise_history_error(history: Path, error: BaseException) -> NoReturn:
    """An error of the record's insert or commit, as the user sees it (busy: the Chinese busy error)."""
    if isinstance(error, sqlite3.OperationalError) and is_busy(error):
        raise busy_error(history) from None
    raise error


class Abandoned(Exception):
    """The output was not moved into place: the transaction is rolled back."""


@contextmanager
def record_transaction(history: Path, abandoned: Callable[[], int]) -> Iterator[sqlite3.Connection]:
    """One transaction on `history`, committed when the block exits normally, else rolled back (Abandoned
    is swallowed). Its rows stay in memory until the COMMIT (cache_spill off), so the database file is not
    locked against readers before; a statement stops at SQLite's next progress check once `abandoned()`
    is non-zero."""
    try:
        with closing(connect(history)) as conn:
            conn.execute("PRAGMA cache_spill = OFF")
            conn.set_progress_handler(abandoned, _PROGRESS_STEPS)
            with conn:
                yield conn
    except Abandoned:
        pass


class RecordBehind:
    """record_run of `run` in `history`, started at once in a thread and committed by `commit()`."""

    def __init__(self, history: Path, run: RunRecord, graded: pd.DataFrame) -> None:
        self._history = history
        self._inserted = threading.Event()  # rows inserted (or failed): the output may be moved
        self._decided = threading.Event()   # the caller said commit (keep) or roll back
        self._keep = False
        self._error: BaseException | None = None
        self.waited = 0.0  # seconds the caller spent waiting for the history
        graded = graded.copy(deep=False)  # a frame object of its own: no cache shared with the writer's reads
        self._thread = threading.Thread(target=self._work, args=(run, graded), name="history", daemon=True)
        self._thread.start()

    def _abandoned(self) -> int:
        """SQLite's progress check (in this thread): non-zero stops the running statement."""
        return 1 if self._decided.is_set() and not self._keep else 0

    def _work(self, run: RunRecord, graded: pd.DataFrame) -> None:
        try:
            with record_transaction(self._history, self._abandoned) as conn:
                if not self._decided.is_set():  # not abandoned before it began
                    record_run(conn, run, graded)
                self._inserted.set()
                self._decided.wait()
                if not self._keep:
                    raise Abandoned
        except BaseException as exc:  # handed to the caller, raised there
            self._error = exc
        finally:
            self._inserted.set()

    def _raise(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise_history_error(self._history, error)

    def _wait(self, until: Callable[[], object]) -> None:
        started = time.perf_counter()
        until()
        self.waited += time.perf_counter() - started

    @contextmanager
    def commit(self) -> Iterator[None]:
        """Around the step that makes the output final: raises the history's error before it; commits
        after it (raising the commit's error, so the sink puts the previous output back)."""
        self._wait(self._inserted.wait)
        if self._error is not None:
            self.abandon()
            self._raise()
        try:
            yield
        except BaseException:
            self.abandon()
            raise
        with interrupts_deferred():  # the output is in place: the run ends as a finished run
            self._keep = True
            self._decided.set()
            self._wait(self._thread.join)
        self._raise()

    def abandon(self) -> None:
        """Roll back (if not committed yet) and wait for the thread to end; safe to call more than once.
        An insert still running stops at its next progress check (a cancelled run ends soon)."""
        self._decided.set()
        self._thread.join()

