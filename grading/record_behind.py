"""The history record made in a thread while the output is written.

Storing a run (grading.history.record_run: 50,000 customers with their explanations at 1M lines) is
mostly SQLite's own work, which releases Python's lock, so it runs beside the writing of the workbook
instead of after it. What the user can rely on does not change: the transaction is committed only
when the sink's commit step (moving the output into place) has succeeded, and rolled back when it, or
anything before it, fails; the output and the history still change together.

The thread owns its connection from opening to closing (SQLite connections stay in one thread; only
`interrupt`, which SQLite allows from any thread, is called from outside). The caller's side: `commit()`
waits until the rows are inserted (raising the thread's error, if any, before the output is moved), lets
the output be moved, then has the thread commit and waits for it.

Locks: the transaction holds SQLite's write lock from its first statement (so another program writing
the history waits, up to BUSY_TIMEOUT, as it would for the insert itself), but the rows stay in memory
until the commit (cache_spill off): readers — the history commands, another run reading the previous
period, DB Browser — are not blocked while the workbook is written. A run that fails removes the history
file it created.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from contextlib import closing, contextmanager
from pathlib import Path

import pandas as pd

from .history import RunRecord, busy_error, connect, is_busy, record_run


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


class _Abandoned(Exception):
    """The output was not moved into place: the transaction is rolled back."""


class RecordBehind:
    """record_run of `run` in `history`, started at once in a thread and committed by `commit()`."""

    def __init__(self, history: Path, run: RunRecord, graded: pd.DataFrame) -> None:
        self._history = history
        self._inserted = threading.Event()  # rows inserted (or failed): the output may be moved
        self._decided = threading.Event()   # the caller said commit (keep) or roll back
        self._keep = False
        self._error: BaseException | None = None
        self._conn: sqlite3.Connection | None = None
        self._created = not history.exists()  # removed again if the run fails
        self.waited = 0.0  # seconds the caller spent waiting for the history
        graded = graded.copy(deep=False)  # a frame object of its own: no cache shared with the writer's reads
        self._thread = threading.Thread(target=self._work, args=(run, graded), name="history", daemon=True)
        self._thread.start()

    def _work(self, run: RunRecord, graded: pd.DataFrame) -> None:
        stored = False
        try:
            with closing(connect(self._history)) as conn:
                # rows kept in memory until COMMIT: the database file is not locked against readers before
                conn.execute("PRAGMA cache_spill = OFF")
                self._conn = conn
                try:
                    with conn:  # one transaction: committed when it exits normally, else rolled back
                        if not self._decided.is_set():  # not abandoned before it began
                            record_run(conn, run, graded)
                        self._inserted.set()
                        self._decided.wait()
                        if not self._keep:
                            raise _Abandoned
                    stored = True
                finally:
                    self._conn = None
        except _Abandoned:
            pass
        except BaseException as exc:  # handed to the caller, raised there
            self._error = exc
        finally:
            if not stored and self._created:
                _remove_unused(self._history)
            self._inserted.set()

    def _raise(self) -> None:
        error, self._error = self._error, None
        if error is None:
            return
        if isinstance(error, sqlite3.OperationalError) and is_busy(error):
            raise busy_error(self._history) from None
        raise error

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
        self._keep = True
        self._decided.set()
        self._wait(self._thread.join)
        self._raise()

    def abandon(self) -> None:
        """Roll back (if not committed yet) and wait for the thread to end; safe to call more than once.
        An insert still running is interrupted (a cancelled run ends at once)."""
        if not self._keep:
            self._decided.set()
            conn = self._conn
            if conn is not None and not self._inserted.is_set():
                try:
                    conn.interrupt()
                except sqlite3.Error:  # closed meanwhile: nothing to interrupt
                    pass
        self._thread.join()


def _remove_unused(path: Path) -> None:
    """Delete a history database this run created if it stores no run (the run failed)."""
    if not path.exists():
        return
    try:
        with closing(sqlite3.connect(path)) as conn:
            if conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]:
                return
    except sqlite3.Error:
        return  # not ours to judge: left as it is
    for leftover in (path, path.with_name(path.name + "-journal")):
        try:
            leftover.unlink()
        except OSError:
            pass
