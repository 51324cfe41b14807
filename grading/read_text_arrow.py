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
"""

from __future__ import annotations

import csv
from collections.abc import Iterator

from .arrow_body import ArrowBody

PROBE_BYTES = 200_000  # the head is looked for in this many first bytes
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
    if raw.startswith(b"\xef\xbb\xbf", offset):  # pyarrow would drop a byte-order mark there, pandas keeps it
        return None
    names = [f"c{i}" for i in range(width)]
    # GB18030 is decoded by Python's codec in pyarrow's reading thread (strict: a bad byte fails the read),
    # block by block while the parsing threads work, instead of a whole UTF-8 copy first
    codec = {"encoding": "gb18030"} if encoding == "gb18030" else {}
    try:
        table = pcsv.read_csv(
            pa.BufferReader(pa.py_buffer(body_bytes)),
            read_options=pcsv.ReadOptions(column_names=names, use_threads=True, block_size=8 << 20, **codec),
            parse_options=pcsv.ParseOptions(delimiter=delimiter, newlines_in_values=True, ignore_empty_lines=False),
            convert_options=pcsv.ConvertOptions(column_types={name: pa.string() for name in names},
                                                strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
    except Exception:  # a record of another width, bad UTF-8, anything: the careful path reads the file
        return None
    if table.num_rows == 0 or not _ends_closed(raw, str(table.column(width - 1)[-1].as_py()), encoding,
                                               delimiter):
        return None
    return records, ArrowBody(len(records), table, records)


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
