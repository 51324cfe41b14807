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
       st.lists(texts, max_size=6),
       st.lists(st.tuples(st.sampled_from(["a.csv", "=b.xlsx"]), st.sampled_from(["s1", "s2"]), texts), max_size=8))
def test_problems_csv_is_the_reference(tmp_path_factory, singles, bulk, placed) -> None:  # type: ignore[no-untyped-def]
    log = ProblemLog(keep_per_reason=0)  # every kind beyond the limit: the CSV is written
    for file, sheet, row, column, value, reason, action in singles:
        log.append(Problem(file, sheet, row, column, value, reason, action))  # type: ignore[arg-type]
    log.add_rows("=a.csv", "s", np.arange(3, 3 + len(bulk)), "-列", np.array(bulk, dtype=object), "坏值", "已跳过")
    if placed:  # each row in its own file and sheet (runs of one place, and changes)
        files, sheets, values = (np.array(c, dtype=object) for c in zip(*placed))
        log.add_rows(files, sheets, np.arange(7, 7 + len(placed)), "成本", values, "部分成本", "提示")
    out = tmp_path_factory.mktemp("csv") / "o.xlsx"
    note = write_problems_csv(log, out)
    assert note and note[0].startswith(f"数据问题共 {len(log):,} 条")
    got = (out.parent / "o_数据问题.csv").read_bytes().decode("utf-8-sig")
    assert got == reference(list(log))


def test_rows_each_in_their_own_file_are_told_apart() -> None:
    """A part whose rows lie in several files (a cross-file finding): every reader sees each row's own
    file and sheet, and the dropped-line summary counts each file's lines."""
    from grading.problems import drop_summary

    log = ProblemLog(keep_per_reason=2)
    files = np.array(["a.csv", "a.csv", "b.xlsx", "a.csv"], dtype=object)
    sheets = np.array(["s", "s", "t", "s"], dtype=object)
    log.add_rows(files, sheets, np.array([5, 6, 7, 8]), "金额", np.array(["x", "y", "z", "w"], dtype=object),
                 "坏值", "已跳过", amounts=np.array([1.0, 2.0, 4.0, 8.0]))
    got = [(p.file, p.sheet, p.row, p.value, p.amount) for p in log]
    assert got == [("a.csv", "s", 5, "x", 1.0), ("a.csv", "s", 6, "y", 2.0), ("b.xlsx", "t", 7, "z", 4.0),
                   ("a.csv", "s", 8, "w", 8.0)]
    assert [(b[0], b[1], b[2], b[4]) for b in log.blocks()] == [
        ("a.csv", "s", [5, 6], ["x", "y"]), ("b.xlsx", "t", [7], ["z"]), ("a.csv", "s", [8], ["w"])]
    assert [(p.file, p.row) for p in log.examples()] == [("a.csv", 5), ("a.csv", 6)]
    [only_a] = drop_summary(log, 100.0, 0.5, files={"a.csv"})
    assert (only_a.lines, only_a.amount) == (3, 11.0)
    [both] = drop_summary(log, 100.0, 0.5)
    assert (both.lines, both.amount) == (4, 15.0)
