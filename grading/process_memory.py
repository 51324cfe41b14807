"""The run's process and its memory (grade-etl): which allocator Arrow uses, how often Python's collector
runs, and freed memory handed back to the system.

Arrow's default allocator in its Linux wheels (mimalloc) hands freed pages back to the system within
milliseconds, and every page a run takes again is a page fault. A 1M-line run touches about 1 GB, frees
most of it stage by stage and takes it again; on the benchmark machine its process spent 1.5–1.9 s of
system time in faults with mimalloc, 1.0–1.3 s with jemalloc (Arrow's other allocator, whose freed pages
stay with the process for about a second), and the run took 0.3 s less (bench/run.py, interleaved runs).

numpy asks Linux for transparent huge pages (madvise) for every large array. A huge page is faulted in
whole (2 MB zeroed; with the kernel's usual defrag=madvise setting, after compacting memory when no 2 MB
are free in one piece). On the benchmark machine, 30 fresh 24 MB arrays took 1.05 s to make with huge pages
and 0.26–0.30 s without; a 3M-line run spends most of its cleaning in fresh arrays of 3 M values, and the
cleaning took 0.3–0.7 s less with ordinary pages (the whole run 0.7 s less, interleaved runs; at 1M lines
the difference is within the spread). So huge pages are not asked for during the run.

Python's collector ran about 260 times in a 1M-line run (0.13 s), twice over every object the imports made:
for the run, those are set aside (gc.freeze, as a forked process would want them anyway) and the youngest
generation is collected after 100,000 new container objects instead of 700 (cycles are still collected,
only less often: memory stays bounded by the data).
"""

from __future__ import annotations

import ctypes
import gc
import importlib
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import cast

import pyarrow as pa


YOUNG_THRESHOLD = 100_000  # new container objects between two collections of the youngest generation


@contextmanager
def tuned_for_a_run() -> Iterator[None]:
    """grade-etl's run: Arrow's memory from jemalloc, the collector less often, numpy's arrays in ordinary
    pages; all as before afterwards."""
    with jemalloc_pool(), fewer_collections(), small_pages():
        yield


@contextmanager
def small_pages() -> Iterator[None]:
    """numpy does not ask for transparent huge pages meanwhile (on Linux, where it does by default); its
    setting as before afterwards. Nothing changes where numpy has no such setting."""
    setting = _huge_page_setting() if sys.platform == "linux" else None
    before = setting(False) if setting is not None else None
    try:
        yield
    finally:
        if setting is not None and before is not None:
            setting(before)


def _huge_page_setting() -> Callable[[bool], bool] | None:
    """numpy's switch for madvise(MADV_HUGEPAGE) on large arrays (returns the previous setting), if it has one."""
    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            found = getattr(importlib.import_module(module), "_set_madvise_hugepage", None)
        except ImportError:
            continue
        if found is not None:
            return cast(Callable[[bool], bool], found)
    return None


@contextmanager
def fewer_collections() -> Iterator[None]:
    """What exists now is left out of collections (gc.freeze) and the youngest generation is collected after
    YOUNG_THRESHOLD new container objects, meanwhile. A caller's own frozen objects or a threshold of 0
    (automatic collection off) are left as they are."""
    before = gc.get_threshold()
    freezing = gc.get_freeze_count() == 0  # unfreeze would thaw what a caller froze too
    if freezing:
        gc.freeze()
    gc.set_threshold(max(before[0], YOUNG_THRESHOLD) if before[0] else 0, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
        if freezing:
            gc.unfreeze()


@contextmanager
def jemalloc_pool() -> Iterator[None]:
    """Arrow allocates from jemalloc meanwhile (on Linux, where pyarrow's wheels have it; elsewhere the
    default stays). Buffers keep the pool that made them, so they stay valid after it ends."""
    before = pa.default_memory_pool()
    try:
        pool = pa.jemalloc_memory_pool() if sys.platform == "linux" else None
    except NotImplementedError:  # a pyarrow built without jemalloc
        pool = None
    if pool is not None:
        pa.set_memory_pool(pool)
    try:
        yield
    finally:
        if pool is not None:
            pa.set_memory_pool(before)


def trim() -> None:
    """glibc's freed memory handed back to the system (nothing elsewhere)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def release_memory() -> None:
    """Freed memory handed back to the system, Arrow's pool's too: before a fork, whose child would
    otherwise keep the freed pages as long as it runs."""
    pa.default_memory_pool().release_unused()
    trim()
