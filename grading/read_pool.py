"""Reading input files two at a time (grade-etl on large inputs).

Reading and cleaning one export is independent of every other file, and most of it holds Python's
lock, so the files of a run are read and normalised two at a time, largest first: one in this process,
the others in a worker process (this process would otherwise only wait). The largest file is read
here, so its rows, the most of any file, need not travel back from a worker; after it, this process
takes the next file no worker has started. When the largest file is larger than all the others together,
its sheet is split (if large) and the worker parses the second part before its next file
(grading.xlsx_split.ELSEWHERE): that file no longer keeps this process busy alone while the worker waits.
The caller takes the results in configured order (grading.load.merge_file): problems, notes and errors
come out exactly as a run in line gives them. A run is done in line when it is small (starting a worker
costs more than it saves), when it reads sheets of an open workbook (the Excel add-in), or where processes
cannot be started; a worker that dies is replaced by loading its file in line.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from .config_model import Config, SourceConfig
from .errors import InputError
from . import xlsx_split
from .normalise import fast_categorical
from .process_memory import trim

if TYPE_CHECKING:
    from multiprocessing.context import ForkContext  # not defined on Windows

    from .load import FileLoad

PARALLEL_MIN_BYTES = 16 << 20  # below this much input, the workers' start-up costs more than it saves
WORKERS = 2  # files read at once: this process and WORKERS - 1 worker processes
PACK_MIN_CATEGORIES = 1000  # text categoricals with this many categories go back from a worker as Arrow

Job = Callable[[str, SourceConfig, Config, Path], "FileLoad"]
PathsOf = Callable[[str, SourceConfig, Config, Callable[[Path], bool] | None], tuple[list[Path], list[Path]]]


def fork_context() -> ForkContext | None:
    """fork where it is safe and cheap (Linux: a worker, or the side process, starts with everything imported
    and shares the run's pages); None elsewhere: macOS forbids fork after some system libraries have started
    threads, and spawn re-imports the program in every worker (seconds on Windows) for a gain only very
    large inputs would repay."""
    if sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return None


class ReadPool:
    """Files of the given sources read two at a time (globs expanded once, here), largest first: the
    largest by this process when a result is first asked for, the next by the worker, which a thread
    hands the next file each time it finishes one (files queued in the worker could not be taken back);
    `result` hands back each file's load, reading files here while it waits. Disabled (`has` is false
    for every source) unless `enabled`, no sheet reader is given, the sources have two or more files and
    at least PARALLEL_MIN_BYTES."""

    def __init__(self, config: Config, sources: Sequence[tuple[str, SourceConfig]], job: Job, paths_of: PathsOf,
                 sheet_reader: object | None, own_output: Callable[[Path], bool] | None, enabled: bool) -> None:
        self._config = config
        self._job = job
        self._sources = dict(sources)
        self._paths: dict[str, tuple[list[Path], list[Path]] | InputError] = {}
        self._lock = threading.Lock()  # guards _queue and _futures (the feeders add to them)
        self._queue: list[tuple[str, Path] | _Part] = []  # not started anywhere: a split sheet's part, then files
        self._feeding = 0  # feeder threads handing the worker its next job (guarded by _lock)
        self._futures: dict[tuple[str, Path], Future[tuple[FileLoad, list[list[tuple[str, Any]]]]]] = {}
        self._largest: tuple[str, Path] | None = None  # read by this process first (only it takes it)
        self._loaded: dict[tuple[str, Path], FileLoad] = {}  # read by this process, not yet taken
        self._spare: dict[tuple[str, Path], bool] = {}
        self._shares: dict[tuple[str, Path], bool] = {}
        self._feeders: list[threading.Thread] = []
        self._closing = False
        self._executor: ProcessPoolExecutor | None = None
        cores = os.cpu_count() or 1
        context = fork_context()
        if not enabled or sheet_reader is not None or cores < 2 or context is None:
            return
        listed: list[tuple[int, str, Path]] = []
        for name, source in sources:
            if not source.files:
                continue
            try:
                found = self._paths[name] = paths_of(name, source, config, own_output)
            except InputError as exc:  # raised again at this source's turn, in order
                self._paths[name] = exc
                continue
            listed += [(_size(p), name, p) for p in found[0]]
        if len(listed) < 2 or sum(size for size, _, _ in listed) < PARALLEL_MIN_BYTES:
            self._paths.clear()
            return
        total = sum(size for size, _, _ in listed)
        for size, name, path in sorted(listed, key=lambda item: -item[0]):  # the last to finish is small
            self._queue.append((name, path))
            self._spare[(name, path)] = size > 2 * (total - size)  # the others are small: one core idles
            # larger than the others together: the worker, done with them first, can take a part of it
            self._shares[(name, path)] = size > total - size
        workers = min(WORKERS, cores, len(listed)) - 1
        self._executor = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_ignore_interrupts)
        largest = self._queue.pop(0)  # read by this process
        assert not isinstance(largest, _Part)
        self._largest = largest
        for _ in range(workers):  # the first files submitted now, from this thread: the workers are forked
            with self._lock:  # before this process starts any thread of its own
                first = self._submit_first()
            if first is not None:
                self._feeding += 1
                self._feeders.append(threading.Thread(target=self._feed, args=(first,), name="read-feeder",
                                                      daemon=True))
        for feeder in self._feeders:
            feeder.start()

    def _submit_first(self) -> Future[Any] | None:
        """The first queued job to a worker (call holding the lock)."""
        if not self._queue or self._closing or self._executor is None:
            return None
        job = self._queue[0]
        try:
            if isinstance(job, _Part):
                future = self._executor.submit(_part_in_worker, job.package, job.sheet, job.skip)
            else:
                name, path = job
                future = self._executor.submit(_in_worker, self._job, name, self._sources[name], self._config,
                                               path, self._spare[(name, path)])
        except (BrokenProcessPool, RuntimeError):  # a worker died, or the pool is shutting down
            return None
        self._queue.pop(0)
        if isinstance(job, _Part):
            job.future = future
        else:
            self._futures[job] = future
        return future

    def _feed(self, future: Future[Any]) -> None:
        """A worker's next job each time it finishes one, until none is left or the pool broke. A feeder that
        stops is counted out while it still holds the lock under which it found nothing to hand on (a part
        queued after that is handed to the worker at once, see _parse_elsewhere)."""
        while True:
            wait([future])
            broken = not future.cancelled() and isinstance(future.exception(), BrokenProcessPool)
            with self._lock:
                nxt = None
                try:
                    if not (broken or (future.cancelled() and self._closing)):  # (a part withdrawn: go on)
                        nxt = self._submit_first()
                finally:
                    if nxt is None:
                        self._feeding -= 1
            if nxt is None:
                return
            future = nxt

    def _parse_elsewhere(self, package: Path, sheet: str, skip: int) -> _Part | None:
        """The second part of a sheet this process splits (grading.xlsx_split.ELSEWHERE), handed to the worker,
        which takes it before its next file (at once when it has nothing to do); None without a worker."""
        part = _Part(self, package, sheet, skip)
        with self._lock:
            if self._closing or self._executor is None:
                return None
            self._queue.insert(0, part)
            if self._feeding:  # the worker reads a file: its feeder hands it this part next
                return part
            future = self._submit_first()
            if future is None:  # the pool broke
                self._queue.remove(part)
                return None
            self._feeding += 1
            feeder = threading.Thread(target=self._feed, args=(future,), name="read-feeder", daemon=True)
            self._feeders.append(feeder)
        feeder.start()
        return part

    def has(self, name: str) -> bool:
        return name in self._paths

    def paths(self, name: str) -> tuple[list[Path], list[Path]]:
        found = self._paths[name]
        if isinstance(found, InputError):
            raise found
        return found

    def result(self, name: str, path: Path) -> FileLoad:
        key = (name, path)
        while key not in self._loaded:  # read here what no worker has started, until this file is done
            with self._lock:
                future = self._futures.get(key)
                if future is not None and future.done():
                    nxt = None
                elif self._largest is not None:
                    nxt, self._largest = self._largest, None
                else:  # (a part of a split sheet is queued only while this process parses the rest of it)
                    nxt = next((job for job in self._queue if not isinstance(job, _Part)), None)
                    if nxt is not None:
                        self._queue.remove(nxt)
            if nxt is None:
                break
            self._load_here(nxt)
        if key in self._loaded:
            return self._loaded.pop(key)
        with self._lock:
            future = self._futures[key]
        try:
            loaded, frames = future.result()
            loaded.frames = [_unpacked(columns) for columns in frames]
            return loaded
        except BrokenProcessPool:  # a worker was killed (e.g. out of memory): this file in line
            return self._job(name, self._sources[name], self._config, path)

    def _load_here(self, key: tuple[str, Path]) -> None:
        name, path = key
        before = xlsx_split.SPARE_CORE, xlsx_split.ELSEWHERE
        xlsx_split.SPARE_CORE = self._spare[key]
        # a large sheet of a file larger than all others split, a part of it to the worker (the worker, done with
        # the others first, takes it; with another file as large, it would be taken back: the split for nothing)
        xlsx_split.ELSEWHERE = self._parse_elsewhere if self._shares[key] else None
        try:
            self._loaded[key] = self._job(name, self._sources[name], self._config, path)
        finally:
            xlsx_split.SPARE_CORE, xlsx_split.ELSEWHERE = before
        trim()  # the parse's memory handed back to the system: the run holds only the frames from here on

    def __enter__(self) -> ReadPool:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._executor is None:
            return
        with self._lock:
            self._closing = True  # no file is handed to a worker from now on
        if error is not None:  # cancelled (Ctrl-C) or failed: stop the workers now, not after their files
            stop_now(self._executor)
            return
        self._executor.shutdown(wait=True, cancel_futures=True)
        for feeder in self._feeders:
            feeder.join()


def stop_now(executor: ProcessPoolExecutor) -> None:
    """End the executor's workers at once. A worker killed while it sends a result leaves the executor's
    reading thread waiting for the rest of that message, and the interpreter's exit joins that thread: this
    process also holds the pipe's writing end, so no end of file ever came (a Ctrl-C while the worker sent a
    part of a split sheet back: the run said 已取消 and then hung). With the workers gone that end is closed
    here too, and the read ends."""
    workers = list((getattr(executor, "_processes", None) or {}).values())  # no public call before 3.14
    writer = getattr(getattr(executor, "_result_queue", None), "_writer", None)  # (shutdown forgets it)
    executor.shutdown(wait=False, cancel_futures=True)
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.join(timeout=5)
    if writer is not None and all(not worker.is_alive() for worker in workers):
        writer.close()


class _Part:
    """The second part of a sheet this process splits, queued for the worker (grading.xlsx_split.Handed)."""

    def __init__(self, pool: ReadPool, package: Path, sheet: str, skip: int) -> None:
        self.pool, self.package, self.sheet, self.skip = pool, package, sheet, skip
        self.future: Future[Any] | None = None  # set when it is handed to the worker
        self.withdrawn = False

    def _withdrawn(self) -> bool:
        """Out of the queue if the worker has not got it yet (then it is parsed here, or not at all); asked
        again (a drop after a take whose parse here failed), the same answer."""
        with self.pool._lock:
            if self.future is None and not self.withdrawn:
                self.pool._queue.remove(self)
                self.withdrawn = True
            return self.withdrawn

    def take(self, here: Callable[[], Any]) -> Any:
        if self._withdrawn():
            return here()
        assert self.future is not None
        return self.future.result()

    def drop(self) -> None:
        if not self._withdrawn() and self.future is not None:
            self.future.cancel()  # (a part the worker has started is parsed there, and its result dropped)


def _part_in_worker(package: Path, sheet: str, skip: int) -> Any:
    """A part of a sheet the run's process splits, parsed here (grading.xlsx_split.strict_sheet); the parse's
    memory handed back before the worker's next file, as after a file."""
    batch = xlsx_split.strict_sheet(package, sheet, skip)
    gc.collect()
    trim()
    return batch


def _ignore_interrupts() -> None:
    """A worker leaves Ctrl-C to the run's process, which ends it (a terminal sends it to every process of the
    run: a worker waiting for its next file printed a KeyboardInterrupt traceback). A worker hands no part of a
    sheet on (only the run's process splits for it)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    xlsx_split.ELSEWHERE = None


def _in_worker(job: Job, name: str, source: SourceConfig, config: Config, path: Path,
               spare: bool = False) -> tuple[FileLoad, list[list[tuple[str, Any]]]]:
    """The job, its frames packed for the way back, then the memory it freed handed back to the system
    (a worker that waits for its next file, or for the pool to end, should not hold its last peak).
    `spare`: the other core is mostly free while this file is read (grading.xlsx_split.SPARE_CORE)."""
    xlsx_split.SPARE_CORE = spare
    result = job(name, source, config, path)
    frames = [_packed(frame) for frame in result.frames]
    result.frames = []
    gc.collect()
    trim()
    return result, frames


class _PackedText:
    """A categorical column on its way back from a worker: codes, and categories as one Arrow string array
    (pickled as two buffers; 700,000 distinct document numbers as Python strings took a second each way)."""

    def __init__(self, codes: np.ndarray, categories: Any, ordered: bool) -> None:
        self.codes, self.categories, self.ordered = codes, categories, ordered

    def unpack(self) -> pd.Categorical:
        labels = np.asarray(self.categories.to_numpy(zero_copy_only=False), dtype=object)
        if not self.ordered:  # a categorical's own codes and categories: valid and distinct, not checked again
            return fast_categorical(self.codes, labels)
        return pd.Categorical.from_codes(self.codes, categories=pd.Index(labels, dtype=object), ordered=True)


def _packed(frame: pd.DataFrame) -> list[tuple[str, Any]]:
    """The frame's columns in order (RangeIndex frames only): large text categoricals as _PackedText."""
    import pyarrow as pa

    out: list[tuple[str, Any]] = []
    for column in frame.columns:
        values = frame[column]
        if isinstance(values.dtype, pd.CategoricalDtype) and len(values.cat.categories) >= PACK_MIN_CATEGORIES:
            try:
                arrow = pa.array(np.asarray(values.cat.categories, dtype=object), type=pa.string())
            except (pa.ArrowException, TypeError):  # not all text: pickled as it is
                out.append((column, values))
                continue
            out.append((column, _PackedText(values.cat.codes.to_numpy(), arrow, bool(values.cat.ordered))))
        else:
            out.append((column, values))
    return out


def _unpacked(columns: list[tuple[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame({c: v.unpack() if isinstance(v, _PackedText) else v for c, v in columns}, copy=False)




def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
