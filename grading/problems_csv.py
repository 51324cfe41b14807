"""The full problem list as CSV bytes, built column-wise with Arrow string kernels.

The bytes are exactly what Python's csv.writer (excel dialect: `,`, `"` doubled, minimal quoting,
"\\r\\n" line ends) writes for the same rows, with text Excel would run as a formula (`= + - @`)
prefixed by `'` (safe_text.csv_safe): a million problems were 5 s as one row object each, 2 s through
csv.writer, and are about 0.5 s this way (the shown values are still made one by one in Python).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from .safe_text import FORMULA_STARTS, csv_safe

HEADER = ["序号", "文件", "工作表", "行号", "列", "值", "问题", "处理"]
_SPECIAL = ("\r", "\n", ",", '"')
_FORMULA_START = "^[" + re.escape("".join(FORMULA_STARTS)) + "]"  # RE2: text Excel would run as a formula
Block = tuple[str, str, list[int | None], str, list[str], str, str]


def field(text: str) -> str:
    """One text as csv.writer writes it, formula-safe."""
    text = str(csv_safe(text))
    if any(ch in text for ch in _SPECIAL):
        return '"' + text.replace('"', '""') + '"'
    return text


def lines(blocks: Iterable[Block], chunk: int = 65_536, large: int = 4096) -> Iterator[bytes]:
    """The CSV's UTF-8 bytes (header first), about `chunk` problems at a time (blocks of one kind are
    gathered into chunks: the log holds many one-problem blocks as well as large ones)."""
    yield (",".join(HEADER) + "\r\n").encode("utf-8")
    first = 1
    texts: list[list[str]] = [[], [], [], [], [], []]  # file, sheet, column, value, reason, action
    rows: list[int | None] = []
    for file, sheet, numbers, column, values, reason, action in blocks:
        n = len(numbers)
        if n >= large:  # a large block: its constant texts made once
            if rows:
                yield _chunk(first, rows, texts)
                first += len(rows)
                rows, texts = [], [[], [], [], [], [], []]
            yield _block(first, numbers, values, file, sheet, column, reason, action)
            first += n
            continue
        for target, value in zip(texts, (file, sheet, column)):
            target.extend([value] * n)
        texts[3].extend(values)
        texts[4].extend([reason] * n)
        texts[5].extend([action] * n)
        rows.extend(numbers)
        if len(rows) >= chunk:
            yield _chunk(first, rows, texts)
            first += len(rows)
            rows, texts = [], [[], [], [], [], [], []]
    if rows:
        yield _chunk(first, rows, texts)


def _numbers(first: int, rows: list[int | None]) -> tuple[Any, Any]:
    """The 序号 and 行号 columns as text (行号 "" where a problem has no row)."""
    import pyarrow as pa

    index = pa.array(np.arange(first, first + len(rows), dtype=np.int64)).cast(pa.string())
    return index, pa.array(rows, type=pa.int64()).cast(pa.string()).fill_null("")


def _block(first: int, rows: list[int | None], values: list[str], file: str, sheet: str, column: str, reason: str,
           action: str) -> bytes:
    """A block of one kind: its constant texts made once."""
    import pyarrow as pa
    import pyarrow.compute as pc

    index, numbers = _numbers(first, rows)
    lead = pa.scalar(f",{field(file)},{field(sheet)},")
    middle = pa.scalar(f",{field(column)},")
    tail = pa.scalar(f",{field(reason)},{field(action)}\r\n")
    shown = _fields(pa.array(values, type=pa.string()))
    return _bytes(pc.binary_join_element_wise(index, lead, numbers, middle, shown, tail, ""))


def _chunk(first: int, rows: list[int | None], texts: list[list[str]]) -> bytes:
    """Small blocks gathered: every text column made per row."""
    import pyarrow as pa
    import pyarrow.compute as pc

    index, numbers = _numbers(first, rows)
    file, sheet, column, value, reason, action = (_fields(pa.array(t, type=pa.string())) for t in texts)
    return _bytes(pc.binary_join_element_wise(index, file, sheet, numbers, column, value, reason,
                                              pc.binary_join_element_wise(action, pa.scalar("\r\n"), ""), ","))


def _fields(texts: object) -> object:
    """field() of every text of an Arrow string array."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = texts
    formula = pc.match_substring_regex(arr, _FORMULA_START)
    arr = pc.if_else(formula, pc.binary_join_element_wise(pa.scalar("'"), arr, ""), arr)
    special = pc.match_substring_regex(arr, r"[\r\n,\"]")
    if pc.any(special).as_py():
        quoted = pc.binary_join_element_wise(pa.scalar('"'), pc.replace_substring(arr, '"', '""'), pa.scalar('"'), "")
        arr = pc.if_else(special, quoted, arr)
    return arr


def _bytes(strings: object) -> bytes:
    """The UTF-8 bytes of every string of an Arrow string array, one after the other."""
    import pyarrow as pa

    arr = strings if isinstance(strings, pa.Array) else pa.concat_arrays(strings.chunks)  # type: ignore[attr-defined]
    if arr.type != pa.large_string():
        arr = arr.cast(pa.large_string())
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset: arr.offset + len(arr) + 1]
    data = arr.buffers()[2]
    if data is None:
        return b""
    return memoryview(data)[int(offsets[0]): int(offsets[-1])].tobytes()
