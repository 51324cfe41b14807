"""The run's process and its memory (grade-etl on Linux): which allocator Arrow uses, and freed memory
handed back to the system.

Arrow's default allocator in its Linux wheels (mimalloc) hands freed pages back to the system within
milliseconds, and every page a run takes again is a page fault. A 1M-line run touches about 1 GB, frees
most of it stage by stage and takes it again; on the benchmark machine its process spent 1.5–1.9 s of
system time in faults with mimalloc, 1.0–1.3 s with jemalloc (Arrow's other allocator, whose freed pages
stay with the process for about a second), and the run took 0.3 s less (bench/run.py, interleaved runs).
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pyarrow as pa


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
