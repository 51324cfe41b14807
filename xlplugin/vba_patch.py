"""Add a ribbon callback to a module of xlwings' VBA project (xl/vbaProject.bin) without Excel.

The project xlwings ships has no compiled cache (its _VBA_PROJECT stream is the 7-byte header with
version 0xFFFF), so Excel compiles the modules from their source. A module stream holds compiled
code up to MODULEOFFSET and the compressed source after it ([MS-OVBA] 2.3.4.3). To give a module
new source inside the same compound file:
  - its MODULEOFFSET in the VBA/dir stream is set to 0 and the dir stream is compressed again to
    exactly its old size (a leading run of literal tokens tunes the size; checked by decompressing);
  - the module stream becomes the compressed new source alone, written with literal tokens only
    and padded with comment lines to exactly the old stream size,
so both streams keep their sizes and olefile rewrites them in place.
"""

from __future__ import annotations

import io
import math

CHUNK = 4096


class VbaPatchError(Exception):
    """The VBA project does not have the expected shape (another xlwings version?)."""


def decompress(data: bytes) -> tuple[bytes, dict[int, int]]:
    """[MS-OVBA] 2.4.1 decompression; also where each literal output byte sits in `data`."""
    if not data or data[0] != 1:
        raise VbaPatchError("不是 VBA 压缩容器（签名字节不是 0x01）")
    out = bytearray()
    literal: dict[int, int] = {}
    pos = 1
    while pos < len(data):
        header = int.from_bytes(data[pos:pos + 2], "little")
        end = min(pos + (header & 0x0FFF) + 3, len(data))
        pos += 2
        start = len(out)
        if not header & 0x8000:  # raw chunk
            for k in range(CHUNK):
                literal[len(out)] = pos + k
                out.append(data[pos + k])
            pos += CHUNK
            continue
        while pos < end:
            flags = data[pos]
            pos += 1
            for bit in range(8):
                if pos >= end:
                    break
                if not (flags >> bit) & 1:
                    literal[len(out)] = pos
                    out.append(data[pos])
                    pos += 1
                    continue
                token = int.from_bytes(data[pos:pos + 2], "little")
                pos += 2
                bits = max((len(out) - start - 1).bit_length(), 4)
                offset = (token >> (16 - bits)) + 1
                for _ in range((token & (0xFFFF >> bits)) + 3):
                    out.append(out[-offset])
    return bytes(out), literal


def literal_container(text: bytes) -> bytes:
    """A compressed container of one chunk holding `text` as literal tokens only."""
    if not 0 < len(text) <= CHUNK:
        raise VbaPatchError("源代码超过一个压缩块")
    body = bytearray()
    for i in range(0, len(text), 8):
        body.append(0)
        body += text[i:i + 8]
    return b"\x01" + (0xB000 | (len(body) + 2 - 3)).to_bytes(2, "little") + bytes(body)


def compress(data: bytes, literal_prefix: int = 0, literal_at: int = -1) -> bytes:
    """[MS-OVBA] 2.4.1.3 compression (greedy longest match); the first `literal_prefix` bytes of
    each chunk and the byte at `literal_at` are written as literals (knobs to reach an exact size)."""
    out = bytearray(b"\x01")
    for start in range(0, len(data), CHUNK):
        chunk = data[start:start + CHUNK]
        body = bytearray()
        pos = 0
        while pos < len(chunk):
            flag_at = len(body)
            body.append(0)
            for bit in range(8):
                if pos >= len(chunk):
                    break
                bits = max((pos - 1).bit_length(), 4)
                best_len, best_off = 0, 0
                if pos >= literal_prefix and start + pos != literal_at:
                    max_len = min((0xFFFF >> bits) + 3, len(chunk) - pos)
                    for cand in range(pos - 1, max(pos - (1 << bits), 0) - 1, -1):
                        n = 0
                        while n < max_len and chunk[cand + n] == chunk[pos + n]:
                            n += 1
                        if n > best_len:
                            best_len, best_off = n, pos - cand
                            if n == max_len:
                                break
                if best_len >= 3:
                    body[flag_at] |= 1 << bit
                    body += (((best_off - 1) << (16 - bits)) | (best_len - 3)).to_bytes(2, "little")
                    pos += best_len
                else:
                    body.append(chunk[pos])
                    pos += 1
        out += (0xB000 | (len(body) + 2 - 3)).to_bytes(2, "little") + body
    return bytes(out)


def compress_to(data: bytes, size: int) -> bytes:
    """`data` compressed to exactly `size` bytes (by writing a leading run of literals, or one
    byte as a literal where a copy would start)."""
    for prefix in range(0, min(len(data), CHUNK) + 1):
        packed = compress(data, prefix)
        if len(packed) == size:
            return packed
        if len(packed) > size:
            break
    for at in range(len(data)):
        for prefix in range(0, 64):
            packed = compress(data, prefix, at)
            if len(packed) == size:
                return packed
            if len(packed) > size:
                break
    raise VbaPatchError(f"无法把数据压缩成恰好 {size} 字节")


def literal_length_for(size: int) -> int:
    """Bytes of source whose literal-only container is exactly `size` bytes."""
    for n in range(1, CHUNK + 1):
        if 3 + n + math.ceil(n / 8) == size:
            return n
    raise VbaPatchError(f"无法把源代码写成恰好 {size} 字节的压缩容器")


def _module_offset_at(dir_text: bytes, module: str) -> int:
    """Position of the 4-byte MODULEOFFSET value of `module` in the decompressed dir stream."""
    name = module.encode("ascii")
    pos = dir_text.find(b"\x19\x00" + len(name).to_bytes(4, "little") + name)
    if pos < 0:
        raise VbaPatchError(f"VBA 工程中没有模块 {module}")
    while pos + 6 <= len(dir_text):
        rec, size = int.from_bytes(dir_text[pos:pos + 2], "little"), int.from_bytes(dir_text[pos + 2:pos + 6], "little")
        if rec == 0x0031 and size == 4:
            return pos + 6
        if rec == 0x002B:  # end of this module's records
            break
        pos += 6 + size
    raise VbaPatchError(f"模块 {module} 没有 MODULEOFFSET 记录")


def add_to_module(vba_project: bytes, module: str, code: str) -> bytes:
    """vbaProject.bin with `code` appended to the source of `module` (same streams, same sizes)."""
    import olefile  # a dependency of oletools (test extra); only needed to rebuild the add-in

    buffer = io.BytesIO(vba_project)
    ole = olefile.OleFileIO(buffer, write_mode=True)
    try:
        dir_packed = ole.openstream("VBA/dir").read()
        dir_text = decompress(dir_packed)[0]
        at = _module_offset_at(dir_text, module)
        offset = int.from_bytes(dir_text[at:at + 4], "little")
        expected = dir_text[:at] + b"\x00\x00\x00\x00" + dir_text[at + 4:]
        patched = compress_to(expected, len(dir_packed))
        if decompress(patched)[0] != expected:
            raise VbaPatchError("dir 流压缩校验失败")

        stream = f"VBA/{module}"
        old = ole.openstream(stream).read()
        source = decompress(old[offset:])[0].rstrip(b"\r\n") + b"\r\n" + code.replace("\n", "\r\n").encode("ascii")
        n = literal_length_for(len(old))
        pad = n - len(source)
        if pad < 3:
            raise VbaPatchError(f"模块 {module} 的流太小，放不下新增的代码")
        lines = []
        while pad > 0:  # comment lines of at most 80 characters fill the stream exactly
            take = min(pad, 82) if pad - min(pad, 82) == 0 or pad - min(pad, 82) >= 3 else pad - 3
            lines.append(b"'" + b"-" * (take - 3) + b"\r\n")
            pad -= take
        new = literal_container(source + b"".join(lines))
        assert len(new) == len(old)
        ole.write_stream("VBA/dir", bytes(patched))
        ole.write_stream(stream, new)
    finally:
        ole.close()
    return buffer.getvalue()
