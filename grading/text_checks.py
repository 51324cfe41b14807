"""Checks on the bytes of a text export (CSV/TSV, HTML/XML "xls") before it is
parsed, so that a damaged file ends in a clear message naming the line instead
of a parser error, a huge allocation or silent mojibake.

- NUL bytes (outside UTF-16): the file is damaged or not text.
- A line longer than MAX_LINE: no export has such lines; a parser would hold it whole.
- UTF-8 and GBK mixed in one file (e.g. two exports appended): decoding it either
  way turns part of it into mojibake. Found when the text before the first byte
  that is not UTF-8 holds UTF-8 Chinese, or the end of a GBK file is UTF-8 Chinese.
"""

from __future__ import annotations

import numpy as np

from .errors import BadTextLine, MixedEncoding

MAX_LINE = 128 * 1024  # bytes; also bounds every field (the csv module's own limit)
_TAIL = 64 * 1024


def line_of(raw: bytes, pos: int) -> int:
    """1-based line number of byte offset `pos`."""
    return raw.count(b"\n", 0, pos) + 1


def check_text_bytes(raw: bytes, name: str, line_limit: bool = True) -> None:
    """Raise BadTextLine / MixedEncoding; `line_limit` off for HTML, which may be one long line."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return  # UTF-16: NUL bytes are part of every character
    nul = raw.find(b"\x00")
    if nul >= 0:
        count = raw.count(b"\x00")
        raise BadTextLine(
            f"文件 {name} 第 {line_of(raw, nul)} 行含有空字符（NUL，字节 0x00，共 {count:,} 个），"
            "文件可能已损坏或不是文本导出。请重新导出为 CSV（UTF-8）或 .xlsx 后再试。")
    if line_limit:
        _check_line_lengths(raw, name)


def _check_line_lengths(raw: bytes, name: str) -> None:
    if len(raw) <= MAX_LINE or not _may_have_long_line(raw):
        return
    data = np.frombuffer(raw, dtype=np.uint8)
    bounds = np.concatenate(([-1], np.flatnonzero(data == 10), [len(raw)]))
    lengths = np.diff(bounds) - 1
    longest = int(np.argmax(lengths))
    if lengths[longest] > MAX_LINE:
        raise BadTextLine(
            f"文件 {name} 第 {longest + 1} 行长达 {_size(int(lengths[longest]))}，超过每行 {_size(MAX_LINE)} 的上限"
            "（正常的导出每行只有几百字节）。文件可能已损坏、换行符丢失或不是数据导出，请检查后重新导出。")


def _may_have_long_line(raw: bytes) -> bool:
    """Could a line be longer than MAX_LINE? A line that long holds a whole aligned stretch of MAX_LINE // 2
    bytes without a line break, so only those stretches are looked at (a few hundred searches, not one per
    line); the exact check runs when one is found."""
    stride = max(MAX_LINE // 2, 1)
    return any(raw.find(b"\n", k, k + stride) < 0 for k in range(0, len(raw) - stride + 1, stride))


def _size(n: int) -> str:
    return f"{n / (1 << 20):.1f} MB" if n >= 1 << 20 else f"{n / 1024:.0f} KB"


def check_mixed(raw: bytes, name: str, bad: int) -> None:
    """Called when byte `bad` is the first that is not UTF-8: raise MixedEncoding if lines before it are
    UTF-8 Chinese, or the last lines of the file are."""
    start = raw.rfind(b"\n", 0, bad) + 1
    body = 3 if raw.startswith(b"\xef\xbb\xbf") else 0
    before = raw[body:start]
    if _chinese(before, 4):
        first = body + next(i for i, b in enumerate(before) if b >= 0x80)
        raise _mixed(name, line_of(raw, first), "UTF-8", line_of(raw, bad), "GBK/GB18030")
    tail_start = raw.find(b"\n", max(start, len(raw) - _TAIL)) + 1
    utf8_lines: list[int] = []  # offsets of the last non-ASCII lines, from the end, while they are UTF-8
    end = len(raw) + 1
    for line in reversed(raw[tail_start:].split(b"\n")):
        end -= len(line) + 1
        if line.isascii():
            continue
        if not _chinese(line, 2):
            break
        utf8_lines.append(end)
    if len(utf8_lines) >= 2:  # one line could be GBK that happens to be valid UTF-8; two in a row are not
        raise _mixed(name, line_of(raw, bad), "GBK/GB18030", line_of(raw, utf8_lines[-1]), "UTF-8")


def _chinese(part: bytes, at_least: int) -> bool:
    """Decodes as UTF-8 and holds at least `at_least` characters outside ASCII."""
    if part.isascii():
        return False
    try:
        return sum(1 for c in part.decode("utf-8") if ord(c) > 127) >= at_least
    except UnicodeDecodeError:
        return False


def _mixed(name: str, line_a: int, enc_a: str, line_b: int, enc_b: str) -> MixedEncoding:
    return MixedEncoding(
        f"文件 {name} 混用了两种编码：第 {line_a} 行是 {enc_a}，第 {line_b} 行是 {enc_b}，"
        "按任何一种读取都会有一部分变成乱码，已停止读取。请把各部分按同一种编码（建议 UTF-8）重新导出或另存后再合并。")
