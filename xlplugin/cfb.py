"""A small writer of Compound File Binary files ([MS-CFB] version 3), enough for a vbaProject.bin.

Writing the container fresh (instead of patching streams in place) leaves stream sizes and names
free. Layout: header, FAT sectors, directory, mini FAT, mini stream, then the large streams, each
contiguous. Streams below 4096 bytes live in the mini stream (64-byte mini sectors). Each storage's
children form a red-black tree ordered as [MS-CFB] 2.6.4 orders names (length first, then upper
case): a size-balanced tree whose deepest, incomplete level is red and everything else black. No
DIFAT sectors: up to 109 FAT sectors (about 7 MB), far more than an add-in's VBA project needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

SECTOR = 512
MINI_SECTOR = 64
MINI_CUTOFF = 4096
FREESECT, ENDOFCHAIN, FATSECT = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD
NOSTREAM = 0xFFFFFFFF
RED, BLACK = 0, 1
STORAGE, STREAM, ROOT = 1, 2, 5
MAX_FAT_SECTORS = 109  # the header's DIFAT array


class CfbError(Exception):
    """The streams cannot be written as a compound file."""


@dataclass
class _Entry:
    name: str
    kind: int
    data: bytes = b""
    children: dict[str, _Entry] = field(default_factory=dict)
    sid: int = 0
    left: int = NOSTREAM
    right: int = NOSTREAM
    child: int = NOSTREAM
    color: int = BLACK
    start: int = ENDOFCHAIN
    size: int = 0


def _check_name(name: str) -> None:
    if not (0 < len(name) <= 31 and name.isascii() and name.isprintable() and not set(name) & set("/\\:!")):
        raise CfbError(f"复合文件中的名称不合规（1–31 个 ASCII 字符，不含 / \\ : !）：{name!r}")


def _key(entry: _Entry) -> tuple[int, str]:
    return len(entry.name), entry.name.upper()


def _tree(entries: list[_Entry], depth: int, red_depth: int) -> int:
    """Links sorted `entries` as a size-balanced tree; returns the root's sid. Nodes at `red_depth`
    (the deepest level when it is not full) are red, so every path has the same black count."""
    if not entries:
        return NOSTREAM
    mid = len(entries) // 2
    node = entries[mid]
    node.color = RED if depth == red_depth else BLACK
    node.left = _tree(entries[:mid], depth + 1, red_depth)
    node.right = _tree(entries[mid + 1:], depth + 1, red_depth)
    return node.sid


def _link(storage: _Entry) -> None:
    children = sorted(storage.children.values(), key=_key)
    height = len(children).bit_length()  # levels of a size-balanced tree of n nodes
    full = len(children) == (1 << height) - 1
    storage.child = _tree(children, 0, -1 if full else height - 1)
    for child in children:
        if child.kind == STORAGE:
            _link(child)


def _chain(fat: list[int], start: int, count: int) -> None:
    for i in range(count):
        fat[start + i] = start + i + 1 if i + 1 < count else ENDOFCHAIN


def _sectors(size: int, unit: int) -> int:
    return -(-size // unit)


def _direntry(e: _Entry) -> bytes:
    name = (e.name + "\0").encode("utf-16-le") if e.name else b""
    return (name.ljust(64, b"\0") + len(name).to_bytes(2, "little") + bytes([e.kind, e.color])
            + e.left.to_bytes(4, "little") + e.right.to_bytes(4, "little") + e.child.to_bytes(4, "little")
            + bytes(16) + bytes(4) + bytes(16) + e.start.to_bytes(4, "little") + e.size.to_bytes(8, "little"))


def write_cfb(streams: Mapping[str, bytes]) -> bytes:
    """A compound file holding `streams` ({"VBA/dir": data, "PROJECT": data, …}; storages are the
    folders of the paths). Deterministic: no timestamps, no CLSIDs."""
    root = _Entry("Root Entry", ROOT)
    order: list[_Entry] = [root]
    for path in sorted(streams):
        *folders, leaf = path.split("/")
        node = root
        for folder in folders:
            _check_name(folder)
            found = node.children.get(folder.upper())
            if found is None:
                found = node.children[folder.upper()] = _Entry(folder, STORAGE, sid=len(order), start=0)
                order.append(found)
            elif found.kind != STORAGE:
                raise CfbError(f"{folder} 既是流又是存储")
            node = found
        _check_name(leaf)
        if leaf.upper() in node.children:
            raise CfbError(f"复合文件中的名称重复（不区分大小写）：{path}")
        entry = node.children[leaf.upper()] = _Entry(leaf, STREAM, bytes(streams[path]), sid=len(order))
        entry.size = len(entry.data)
        order.append(entry)
    _link(root)

    small = [e for e in order if e.kind == STREAM and 0 < e.size < MINI_CUTOFF]
    large = [e for e in order if e.kind == STREAM and e.size >= MINI_CUTOFF]
    mini_stream = bytearray()
    minifat: list[int] = []
    for e in small:
        e.start = len(minifat)
        n = _sectors(e.size, MINI_SECTOR)
        minifat += [0] * n
        _chain(minifat, e.start, n)
        mini_stream += e.data.ljust(n * MINI_SECTOR, b"\0")
    dir_sectors = _sectors(len(order) * 128, SECTOR)
    minifat_sectors = _sectors(len(minifat) * 4, SECTOR)
    mini_sectors = _sectors(len(mini_stream), SECTOR)
    data_sectors = dir_sectors + minifat_sectors + mini_sectors + sum(_sectors(e.size, SECTOR) for e in large)
    fat_sectors = 1
    while fat_sectors * (SECTOR // 4) < fat_sectors + data_sectors:
        fat_sectors += 1
    if fat_sectors > MAX_FAT_SECTORS:
        raise CfbError("复合文件过大（需要 DIFAT 扇区，本写入器不支持）")

    fat = [FREESECT] * (fat_sectors * SECTOR // 4)
    for i in range(fat_sectors):
        fat[i] = FATSECT
    pos = fat_sectors
    dir_start = pos
    _chain(fat, pos, dir_sectors)
    pos += dir_sectors
    minifat_start = pos if minifat_sectors else ENDOFCHAIN
    _chain(fat, pos, minifat_sectors)
    pos += minifat_sectors
    root.start, root.size = (pos, len(mini_stream)) if mini_stream else (ENDOFCHAIN, 0)
    _chain(fat, pos, mini_sectors)
    pos += mini_sectors
    body = bytearray()
    for e in large:
        e.start = pos
        n = _sectors(e.size, SECTOR)
        _chain(fat, pos, n)
        pos += n
        body += e.data.ljust(n * SECTOR, b"\0")

    difat = list(range(fat_sectors)) + [FREESECT] * (MAX_FAT_SECTORS - fat_sectors)
    header = (bytes.fromhex("D0CF11E0A1B11AE1") + bytes(16) + (0x003E).to_bytes(2, "little")
              + (3).to_bytes(2, "little") + (0xFFFE).to_bytes(2, "little") + (9).to_bytes(2, "little")
              + (6).to_bytes(2, "little") + bytes(6) + (0).to_bytes(4, "little")
              + fat_sectors.to_bytes(4, "little") + dir_start.to_bytes(4, "little") + bytes(4)
              + MINI_CUTOFF.to_bytes(4, "little") + minifat_start.to_bytes(4, "little")
              + minifat_sectors.to_bytes(4, "little") + ENDOFCHAIN.to_bytes(4, "little") + bytes(4)
              + b"".join(s.to_bytes(4, "little") for s in difat))
    assert len(header) == SECTOR
    free = _Entry("", 0, left=NOSTREAM, right=NOSTREAM, child=NOSTREAM, color=RED, start=0)
    directory = b"".join(_direntry(e) for e in order)
    directory += _direntry(free) * (dir_sectors * 4 - len(order))
    out = bytearray(header)
    out += b"".join(s.to_bytes(4, "little") for s in fat)
    out += directory
    out += b"".join(s.to_bytes(4, "little") for s in minifat).ljust(minifat_sectors * SECTOR, b"\xff")
    out += mini_stream.ljust(mini_sectors * SECTOR, b"\0")
    out += body
    assert len(out) == SECTOR * (1 + pos)
    return bytes(out)
