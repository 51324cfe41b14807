"""The problem CSV built column-wise (grading.problems_csv) has the very bytes csv.writer writes."""

from __future__ import annotations

import csv
import io

from hypothesis import given, settings
from hypothesis import strategies as st

from grading import problems_csv
from grading.safe_text import csv_safe as _safe

_TEXT = st.text(alphabet=st.sampled_from(list("ab ,\"\r\n=+-@'合计¥\t0")), max_size=6)
_BLOCK = st.tuples(_TEXT, _TEXT, st.lists(st.one_of(st.none(), st.integers(0, 10**7)), min_size=0, max_size=12),
                   _TEXT, st.data(), _TEXT, st.sampled_from(["已跳过", "已修正", "提示"]))


def _reference(blocks: list[problems_csv.Block]) -> bytes:
    out = io.StringIO(newline="")
    w = csv.writer(out)
    w.writerow(problems_csv.HEADER)
    i = 1
    for file, sheet, rows, column, values, reason, action in blocks:
        for r, v in zip(rows, values):
            w.writerow([i, _safe(file), _safe(sheet), _safe(r), _safe(column), _safe(v), _safe(reason), _safe(action)])
            i += 1
    return out.getvalue().encode("utf-8")


@settings(max_examples=150, deadline=None)
@given(raw=st.lists(_BLOCK, max_size=8), chunk=st.integers(1, 20), large=st.integers(1, 10))
def test_bytes_are_csv_writers(raw: list, chunk: int, large: int) -> None:  # type: ignore[type-arg]
    blocks: list[problems_csv.Block] = []
    for file, sheet, rows, column, data, reason, action in raw:
        values = data.draw(st.lists(_TEXT, min_size=len(rows), max_size=len(rows)))
        blocks.append((file, sheet, rows, column, values, reason, action))
    got = b"".join(problems_csv.lines(blocks, chunk=chunk, large=large))
    assert got == _reference(blocks)
