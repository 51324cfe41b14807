"""Large text exports (CSV/TSV) read column-wise into Arrow, giving the very cells pandas' C parser gives.

pandas' C parser (the path before this one) builds one Python string per cell: a 1,000,000-line export
of 11 columns is 11 M objects. pyarrow's CSV reader parses on both cores into string columns instead,
and the cleaning then touches Python objects only once per distinct value (codes, names, dates) or
not at all (amounts are parsed in Arrow): see grading.arrow_body.

The file is read in two parts:

- the head, the records up to the last one of the first lines whose width is not the table's (titles,
  blank lines, a short note above the header): by Python's csv module, as lists;
- the body, every record from there on, by pyarrow with exactly `width` string columns. A record of
  another width anywhere in the body (a blank line, a ragged row), bytes that do not decode, or any
  other error, and an odd number of quote characters (one left open at the end, which pyarrow would
  take, or a lone one inside a cell): None is returned and the caller reads the file as before.

Cells are the texts as written ("" for an empty cell), quotes removed and doubled quotes undone.

A GB18030 body is parsed as bytes and decoded column by column (`_decoded`): a column of ASCII cells is
its bytes as they are, the other cells are decoded by Python's codec once per distinct value. GB18030
writes every character other than ASCII with bytes from 0x30 up (a first byte from 0x81, the others
0x30–0x39 or 0x40–0xFE), never a comma, tab, quote or line break, so the records and cells are the ones
the decoded text gives, and so are the cells' texts (the codec has no state). A cell that does not decode
sends the file to the careful path, as a byte that does not decode anywhere did before. Parsing the
bytes on both cores and decoding only distinct values took 0.4 s where decoding every byte in pyarrow's
reading thread (holding Python's lock) took 0.65 s and twice the processor time (1M lines).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .arrow_body import ArrowBody

PROBE_BYTES = 200_000  # the head is looked for in this many first bytes
_FEW = 1000  # cells of another kind in a column replaced by copying the runs between them
_NEVER_IN_GB18030 = (",", "\t")  # delimiters no byte of a GB18030 character can be (every one is 0x30 or more)
_GB18030_BOM = "\ufeff".encode("gb18030")


def read_body(raw: bytes, encoding: str, delimiter: str, width: int,
              max_head: int | None = None) -> tuple[list[list[object]], ArrowBody] | None:
    """(the head records as lists, the body) of a text export, or None: read it the usual way.

    `encoding` is "utf-8", "utf-8-sig" or "gb18030" (nothing else is taken here); `width` the widest
    record among the first lines; `max_head`: None as well when the head has this many records or more
    (found before the body is parsed)."""
    if encoding not in ("utf-8", "utf-8-sig", "gb18030") or width < 2:
        return None
    try:
        import pyarrow as pa
        import pyarrow.csv as pcsv
    except ImportError:
        return None
    bom = 3 if encoding == "utf-8-sig" else 0
    if encoding == "gb18030" and raw.startswith(_GB18030_BOM):  # pandas drops it, the csv module keeps it
        return None
    head = _head(raw, bom, encoding, delimiter, width)
    if head is None:
        return None
    records, offset = head
    if max_head is not None and len(records) >= max_head:
        return None
    body_bytes = memoryview(raw)[offset:]
    if raw.count(b'"', offset) % 2:  # a quote left open at the end (pyarrow would take it), or a lone one
        return None
    as_bytes = encoding == "gb18030" and delimiter in _NEVER_IN_GB18030  # decoded per distinct value below
    if raw.startswith(b"\xef\xbb\xbf", offset) or (encoding == "gb18030" and not as_bytes and
                                                   raw.startswith(_GB18030_BOM, offset)):
        return None  # a byte-order mark where pyarrow decodes: it would drop it there, pandas keeps it
    names = [f"c{i}" for i in range(width)]
    # GB18030 with another delimiter: decoded by Python's codec in pyarrow's reading thread (strict)
    codec = {"encoding": "gb18030"} if encoding == "gb18030" and not as_bytes else {}
    kind = pa.binary() if as_bytes else pa.string()
    try:
        table = pcsv.read_csv(
            pa.BufferReader(pa.py_buffer(body_bytes)),
            read_options=pcsv.ReadOptions(column_names=names, use_threads=True, block_size=8 << 20, **codec),
            parse_options=pcsv.ParseOptions(delimiter=delimiter, newlines_in_values=True, ignore_empty_lines=False),
            convert_options=pcsv.ConvertOptions(column_types={name: kind for name in names},
                                                strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
        if as_bytes:  # Arrow's kernels release Python's lock: two columns at a time
            with ThreadPoolExecutor(max_workers=2) as pool:
                table = pa.table(list(pool.map(_decoded, table.columns)), names=names)
    except Exception:  # a record of another width, bad UTF-8 or GB18030, anything: the careful path reads the file
        return None
    if table.num_rows == 0 or not _ends_closed(raw, str(table.column(width - 1)[-1].as_py()), encoding,
                                               delimiter):
        return None
    return records, ArrowBody(len(records), table, records)


def _decoded(column: Any) -> Any:
    """A column of GB18030 cells (Arrow binary) as text, in one chunk; UnicodeDecodeError if a cell does not
    decode."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    cells = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    as_is = cells.view(pa.string())  # right for ASCII cells, the others replaced below
    ascii_ = pc.string_is_ascii(as_is)
    if pc.all(ascii_).as_py():
        return as_is
    other = pc.invert(ascii_)
    if pc.all(other).as_py():
        return _decoded_distinct(cells)
    texts = _decoded_distinct(cells.filter(other))
    if len(texts) > _FEW:
        return pc.replace_with_mask(as_is, other, texts)
    pieces, at = [], 0  # a few cells: the runs of ASCII cells between them copied as they are
    for k, row in enumerate(np.flatnonzero(np.asarray(other.to_numpy(zero_copy_only=False), dtype=bool)).tolist()):
        pieces += [as_is.slice(at, row - at), texts.slice(k, 1)]
        at = row + 1
    pieces.append(as_is.slice(at))
    return pa.concat_arrays(pieces)


def _decoded_distinct(cells: Any) -> Any:
    """The cells decoded, each distinct value once: all of them joined by NUL (never a byte of a GB18030
    character, and never inside a cell here: else one by one) in one call of the codec."""
    import pyarrow as pa
    import pyarrow.compute as pc

    encoded = cells.dictionary_encode()
    distinct = encoded.dictionary
    if pc.any(pc.match_substring(distinct.view(pa.string()), "\x00")).as_py():
        texts = [value.decode("gb18030") for value in distinct.to_pylist()]
    else:
        joined = pc.binary_join(pa.ListArray.from_arrays(pa.array([0, len(distinct)], pa.int32()), distinct), b"\x00")
        texts = joined[0].as_py().decode("gb18030").split("\x00")
    return pa.array(texts, type=pa.string()).take(encoded.indices)


def _ends_closed(raw: bytes, last: str, encoding: str, delimiter: str) -> bool:
    """Does the file end with the last cell as read, written plainly or quoted and closed (then at most one
    line break)? pyarrow takes a quote left open at the end as a cell running to the end of the file, where
    pandas' parser refuses the file (and the csv module then names the line): such a file is not taken here,
    whatever the number of quote characters (a lone quote inside a cell makes it even)."""
    codec = "gb18030" if encoding == "gb18030" else "utf-8"
    try:
        plain = last.encode(codec)
    except UnicodeEncodeError:
        return False
    quoted = b'"' + plain.replace(b'"', b'""') + b'"'
    separators = (delimiter.encode(codec), b"\n", b"\r")
    for end in (b"\r\n", b"\n", b"\r", b""):
        for form in (quoted, plain):
            if raw.endswith(form + end):  # no copy of the file
                at = len(raw) - len(end) - len(form)
                if raw[at - 1: at] in separators and (form is quoted or not plain.startswith(b'"')):
                    return True
    return False


def _head(raw: bytes, bom: int, encoding: str, delimiter: str,
          width: int) -> tuple[list[list[object]], int] | None:
    """The records before the body (every one up to the last record of another width than `width` among
    the first PROBE_BYTES), and the byte offset where the body starts."""
    end = raw.rfind(b"\n", 0, PROBE_BYTES)
    if end < 0:
        return None
    lines = raw[bom:end + 1].splitlines(keepends=True)
    consumed = [bom]
    codec = "gb18030" if encoding == "gb18030" else "utf-8"

    def feed() -> Iterator[str]:
        for line in lines:
            consumed[0] += len(line)
            yield line.decode(codec)

    offsets: list[int] = []  # byte offset of each record's start
    records: list[list[str]] = []
    try:
        reader = csv.reader(feed(), delimiter=delimiter)
        while True:
            offsets.append(consumed[0])
            try:
                records.append(next(reader))
            except StopIteration:
                offsets.pop()
                break
    except (UnicodeDecodeError, csv.Error):
        return None
    if len(records) < 2:
        return None
    # the last record read may be cut by the probe's end (a quoted line break): it never counts
    other = [i for i, r in enumerate(records[:-1]) if len(r) != width]
    k = other[-1] + 1 if other else 0
    if k >= len(records) - 1:
        return None
    return [list(r) for r in records[:k]], offsets[k]
