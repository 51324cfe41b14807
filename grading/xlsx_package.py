"""Deflating the filled sheets into the output package: a large sheet's XML is compressed by a second
thread while the next rows are built, with ISA-L's deflate (python-isal) where it is installed, about
four times faster than zlib's fastest level and a little smaller; zlib otherwise. The inflated bytes
are the same either way."""

from __future__ import annotations

import importlib
import threading
import zlib
import zipfile
from collections.abc import Iterable
from queue import Queue
from typing import IO, Any

from .sheet_cells import Chunk

try:
    isal_zlib: Any = importlib.import_module("isal.isal_zlib")
except ImportError:  # a platform without ISA-L wheels
    isal_zlib = None

BIG = 1 << 20  # parts larger than this are deflated at the fastest level (~15% larger, ~3× faster)
_ZLIB = type(zlib.compressobj())


def write_part(out: zipfile.ZipFile, zi: zipfile.ZipInfo, pieces: Iterable[Chunk], size: int) -> None:
    """One package part of `size` bytes (exact: the entry's header uses ZIP64 only when needed, as
    ZipFile.writestr decides) from `pieces`."""
    zi.compress_type = zipfile.ZIP_DEFLATED
    zi.file_size = size
    zi._compresslevel = 1 if size > BIG else 6  # type: ignore[attr-defined]
    with out.open(zi, "w") as member:
        if size > BIG:
            _faster(member)
            deflate_behind(member, pieces)
        else:
            for piece in pieces:
                member.write(piece)


def _faster(member: IO[bytes]) -> None:
    """ISA-L's deflate in place of zlib's (zipfile has no hook for it: only when the member holds the
    untouched zlib compressor it made)."""
    if isal_zlib is not None and isinstance(getattr(member, "_compressor", None), _ZLIB):
        compressor: Any = isal_zlib.compressobj(1, isal_zlib.DEFLATED, -15)
        setattr(member, "_compressor", compressor)


def deflate_behind(member: IO[bytes], pieces: Iterable[Chunk]) -> None:
    """Write `pieces` into a zip member: this thread produces them (Arrow kernels), a second one
    compresses and writes, both without the GIL, so the two overlap on two cores."""
    queue: Queue[Chunk | None] = Queue(maxsize=2)
    failed: list[BaseException] = []

    def write() -> None:
        while (piece := queue.get()) is not None:
            if not failed:
                try:
                    member.write(piece)
                except BaseException as exc:  # re-raised by the producing thread
                    failed.append(exc)

    worker = threading.Thread(target=write, name="xlsx-deflate", daemon=True)
    worker.start()
    try:
        for piece in pieces:
            if failed:
                break
            queue.put(piece)
    finally:
        queue.put(None)
        worker.join()
    if failed:
        raise failed[0]
