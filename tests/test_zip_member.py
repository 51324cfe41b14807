"""grading.zip_member gives zipfile's bytes and zipfile's refusals, faster."""

from __future__ import annotations

import io
import os
import zipfile

import pytest

from grading.zip_member import member_blocks


def _package(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


MEMBERS = {"a.xml": b"<row r=\"1\"/>" * 50_000, "b.bin": os.urandom(300_000), "empty": b""}


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED])
@pytest.mark.parametrize("block", [1, 777, 1 << 20])
def test_every_member_reads_as_zipfile_reads_it(method: int, block: int) -> None:
    zf = zipfile.ZipFile(io.BytesIO(_package(MEMBERS, method)))
    for name in MEMBERS:
        blocks = list(member_blocks(zf, name, block))
        assert b"".join(blocks) == zf.read(name)
        assert all(len(b) <= max(block, 1) for b in blocks)


def test_damaged_bytes_are_refused_like_zipfile_refuses_them() -> None:
    raw = bytearray(_package(MEMBERS))
    zf = zipfile.ZipFile(io.BytesIO(bytes(raw)))
    at = zf.getinfo("a.xml").header_offset + 60
    raw[at] ^= 0x55
    damaged = zipfile.ZipFile(io.BytesIO(bytes(raw)))
    with pytest.raises((zipfile.BadZipFile, Exception)):
        b"".join(member_blocks(damaged, "a.xml"))


def test_output_stops_at_the_declared_size() -> None:
    """A member inflating beyond what the directory declares is refused, never read past it."""
    raw = bytearray(_package({"a.xml": b"x" * 100_000}))
    zf = zipfile.ZipFile(io.BytesIO(bytes(raw)))
    info = zf.getinfo("a.xml")
    # declare 1,000 bytes in the central directory (the local header is not read for sizes)
    central = raw.rfind(b"PK\x01\x02")
    raw[central + 24:central + 28] = (1000).to_bytes(4, "little")
    lying = zipfile.ZipFile(io.BytesIO(bytes(raw)))
    assert lying.getinfo("a.xml").file_size == 1000 != info.file_size
    read = 0
    with pytest.raises(zipfile.BadZipFile):
        for block in member_blocks(lying, "a.xml"):
            read += len(block)
    assert read <= 1000
