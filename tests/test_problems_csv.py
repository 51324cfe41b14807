"""The full problem list beside the output (outputs.write_problems_csv): every problem, formula-safe,
exactly as the row-by-row reference below writes it."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from grading.outputs import write_problems_csv
from grading.problems import Problem, ProblemLog


def reference(problems: list[Problem]) -> str:
    def safe(value: object) -> object:
        if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
            return "'" + value
        return "" if value is None else value

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["序号", "文件", "工作表", "行号", "列", "值", "问题", "处理"])
    for i, p in enumerate(problems, start=1):
        w.writerow([i, *(safe(v) for v in (p.file, p.sheet, p.row, p.column, p.value, p.reason, p.action))])
    return buf.getvalue()


texts = st.text(max_size=8) | st.sampled_from(["=1+2", "+x", "-3", "@SUM(1)", 'a,"b"', "x\ny", " 前"])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(texts, texts, st.none() | st.integers(1, 10**6), texts, texts, texts,
                          st.sampled_from(["已跳过", "已修正", "提示"])), min_size=1, max_size=12),
       st.lists(texts, max_size=6))
def test_problems_csv_is_the_reference(tmp_path_factory, singles, bulk) -> None:  # type: ignore[no-untyped-def]
    log = ProblemLog(keep_per_reason=0)  # every kind beyond the limit: the CSV is written
    for file, sheet, row, column, value, reason, action in singles:
        log.append(Problem(file, sheet, row, column, value, reason, action))  # type: ignore[arg-type]
    log.add_rows("=a.csv", "s", np.arange(3, 3 + len(bulk)), "-列", np.array(bulk, dtype=object), "坏值", "已跳过")
    out = tmp_path_factory.mktemp("csv") / "o.xlsx"
    note = write_problems_csv(log, out)
    assert note and note[0].startswith(f"数据问题共 {len(log):,} 条")
    got = (out.parent / "o_数据问题.csv").read_bytes().decode("utf-8-sig")
    assert got == reference(list(log))
