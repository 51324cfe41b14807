"""Rebuild xlwings' VBA project (xl/vbaProject.bin) under our own names and sources, without Excel.

The project xlwings ships has no compiled cache: its _VBA_PROJECT stream is the 7-byte header with
Version 0xFFFF and no PerformanceCache, which is what [MS-OVBA] 2.3.4.1 prescribes on write, so
Excel compiles every module from its source. A module stream holds a module cache up to
MODULEOFFSET and the compressed source after it (2.3.4.3). `rebuild_project`:
  - renames the project (PROJECTNAME in VBA/dir, Name= in PROJECT) and modules (MODULENAME,
    MODULENAMEUNICODE, MODULESTREAMNAME and its Unicode form in VBA/dir; Module=/Document=/Class=
    and the [Workspace] keys in PROJECT; the name map PROJECTwm; the stream names under VBA/);
  - gives edited modules their new source, compressed, at MODULEOFFSET 0 (no cache);
  - copies every other stream byte for byte, and writes a fresh compound file (cfb.py), so stream
    sizes and names are free.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping

from .cfb import write_cfb

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


def compress(data: bytes) -> bytes:
    """[MS-OVBA] 2.4.1.3 compression (greedy longest match)."""
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
                if pos > 0:
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
        if len(body) <= CHUNK:
            out += (0xB000 | (len(body) + 2 - 3)).to_bytes(2, "little") + body
        elif len(chunk) == CHUNK:  # incompressible: a raw chunk (2.4.1.3.10)
            out += (0x3FFF).to_bytes(2, "little") + chunk
        else:
            raise VbaPatchError("最后一块数据无法压缩，原始块会补零改变内容")
    return bytes(out)


Record = tuple[int, bytes]
PROJECTNAME, MODULENAME, MODULENAMEUNICODE, MODULESTREAMNAME, STREAMNAMEUNICODE = 0x04, 0x19, 0x47, 0x1A, 0x32
MODULEOFFSET, PROJECTVERSION, DIR_END = 0x31, 0x09, 0x10


def dir_records(text: bytes) -> list[Record]:
    """The decompressed VBA/dir stream as (Id, Data) records ([MS-OVBA] 2.3.4.2; PROJECTVERSION's
    Size field says 4 but 6 bytes follow)."""
    records: list[Record] = []
    pos = 0
    while pos + 6 <= len(text):
        rec, size = int.from_bytes(text[pos:pos + 2], "little"), int.from_bytes(text[pos + 2:pos + 6], "little")
        size = 6 if rec == PROJECTVERSION else size
        if pos + 6 + size > len(text):
            break
        records.append((rec, text[pos + 6:pos + 6 + size]))
        pos += 6 + size
        if rec == DIR_END:
            break
    if not records or records[-1][0] != DIR_END or pos != len(text):
        raise VbaPatchError("VBA/dir 流的记录结构不是预期的样子")
    return records


def dir_bytes(records: list[Record]) -> bytes:
    out = bytearray()
    for rec, data in records:
        size = 4 if rec == PROJECTVERSION else len(data)
        out += rec.to_bytes(2, "little") + size.to_bytes(4, "little") + data
    return bytes(out)


def _modules(records: list[Record]) -> list[tuple[str, str]]:
    """(module name, stream name) of each module, in dir order."""
    names = [data.decode("cp1252") for rec, data in records if rec == MODULENAME]
    streams = [data.decode("cp1252") for rec, data in records if rec == MODULESTREAMNAME]
    if len(names) != len(streams):
        raise VbaPatchError("VBA/dir 流中模块名与流名的数目不一致")
    return list(zip(names, streams))


def _rename_project_stream(text: str, project: str, names: Mapping[str, str]) -> str:
    lines = text.split("\r\n")
    workspace = False
    for i, line in enumerate(lines):
        key, eq, value = line.partition("=")
        if line == "[Workspace]":
            workspace = True
        elif workspace and eq and key in names:
            lines[i] = f"{names[key]}={value}"
        elif not workspace and key == "Name" and eq:
            lines[i] = f'Name="{project}"'
        elif not workspace and key in ("Module", "Document", "Class", "BaseClass") and value.split("/")[0] in names:
            old, sep, rest = value.partition("/")
            lines[i] = f"{key}={names[old]}{sep}{rest}"
    return "\r\n".join(lines)


def _rename_name_map(data: bytes, names: Mapping[str, str]) -> bytes:
    """PROJECTwm ([MS-OVBA] 2.3.3): per module its MBCS name, NUL, its UTF-16 name, NUL NUL; then NUL NUL."""
    out = bytearray()
    pos = 0
    while data[pos:pos + 2] != b"\0\0":
        end = data.index(b"\0", pos)
        name = data[pos:end].decode("cp1252")
        uend = end + 1
        while data[uend:uend + 2] != b"\0\0":
            uend += 2
        new = names.get(name, name)
        out += new.encode("cp1252") + b"\0" + new.encode("utf-16-le") + b"\0\0"
        pos = uend + 2
    return bytes(out + data[pos:])


def rebuild_project(vba_project: bytes, project: str, names: Mapping[str, str],
                    edit: Callable[[str, bytes], bytes | None]) -> bytes:
    """vbaProject.bin with the project named `project`, modules renamed by `names` (old → new) and
    sources edited: `edit(new module name, source)` returns the new source (ASCII, CRLF) or None to
    keep the stream byte for byte."""
    import olefile  # a dependency of oletools (test extra); only needed to rebuild the add-in

    for name in (project, *names.values()):
        if not (name.isascii() and name.isidentifier() and len(name) <= 31):
            raise VbaPatchError(f"VBA 名称必须是 ASCII 标识符（不超过 31 个字符）：{name!r}")
    ole = olefile.OleFileIO(io.BytesIO(vba_project))
    try:
        streams = {"/".join(e): ole.openstream(e).read() for e in ole.listdir()}
    finally:
        ole.close()
    records = dir_records(decompress(streams["VBA/dir"])[0])
    modules = _modules(records)
    if not set(names) <= {name for name, _ in modules}:
        raise VbaPatchError(f"VBA 工程中没有模块 {sorted(set(names) - {name for name, _ in modules})}")
    out = {k: v for k, v in streams.items() if k not in {f"VBA/{s}" for _, s in modules}}
    new_records: list[Record] = []
    module = stream = new_name = new_stream = ""
    for rec, data in records:
        if rec == PROJECTNAME:
            data = project.encode("cp1252")
        elif rec == MODULENAME:
            module = data.decode("cp1252")
            new_name = names.get(module, module)
            data = new_name.encode("cp1252")
        elif rec == MODULENAMEUNICODE:
            data = new_name.encode("utf-16-le")
        elif rec == MODULESTREAMNAME:  # a stream named like its module is renamed with it
            stream = data.decode("cp1252")
            new_stream = new_name if stream == module else stream
            data = new_stream.encode("cp1252")
        elif rec == STREAMNAMEUNICODE:
            data = new_stream.encode("utf-16-le")
        elif rec == MODULEOFFSET:
            old_stream = streams[f"VBA/{stream}"]
            offset = int.from_bytes(data, "little")
            old_source = decompress(old_stream[offset:])[0]
            source = edit(new_name, old_source)
            if not (old_source if source is None else source).startswith(f'Attribute VB_Name = "{new_name}"'.encode()):
                raise VbaPatchError(f"模块 {new_name} 的源代码第一行必须是 Attribute VB_Name = \"{new_name}\"")
            if source is None:
                out[f"VBA/{new_stream}"] = old_stream
            else:
                if not source.isascii():
                    raise VbaPatchError("VBA 源代码只能是 ASCII（工程代码页 1252 没有中文；中文用 ChrW）")
                packed = compress(source)
                if decompress(packed)[0] != source:
                    raise VbaPatchError(f"模块 {new_name} 的压缩校验失败")
                out[f"VBA/{new_stream}"] = packed
                data = (0).to_bytes(4, "little")
        new_records.append((rec, data))
    text = dir_bytes(new_records)
    out["VBA/dir"] = compress(text)
    if decompress(out["VBA/dir"])[0] != text:
        raise VbaPatchError("dir 流压缩校验失败")
    out["PROJECT"] = _rename_project_stream(streams["PROJECT"].decode("cp1252"), project, names).encode("cp1252")
    out["PROJECTwm"] = _rename_name_map(streams["PROJECTwm"], names)
    return write_cfb(out)
