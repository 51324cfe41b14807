"""The benchmark's measuring side (bench/): generation, the strict floor, the polars reference pipeline,
the report. Nothing here times anything; speed is measured by `python bench/run.py` only."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

pl = pytest.importorskip("polars")
pytest.importorskip("fastexcel")

from python_calamine import CalamineWorkbook  # noqa: E402

from bench import cases, floor, polars_ref, report  # noqa: E402
from bench.xmlcells import Placement, rows_xml, write_plain_xlsx  # noqa: E402
from grading.config import load_config  # noqa: E402
from grading.demo_data import generate  # noqa: E402
from grading.pipeline import run_to_file  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def test_cells_are_built_column_wise_with_exact_xml() -> None:
    frame = pl.DataFrame({"n": [1.5, None, float("nan")], "t": ["a&b<c>", "=1+2", "\x01x"],
                          "d": [dt.datetime(2026, 6, 30), None, None], "i": [3, 4, None]})
    xml = rows_xml(frame, [Placement(0, "7"), Placement(1), Placement(3), Placement(2)], 5)
    assert xml == (
        '<row r="5"><c r="A5" s="7"><v>1.5</v></c><c r="B5" t="inlineStr"><is><t xml:space="preserve">a&amp;b&lt;c&gt;'
        '</t></is></c><c r="C5"><v>3</v></c><c r="D5"><v>46203.0</v></c></row>'
        '<row r="6"><c r="A6" s="7"/><c r="B6" t="inlineStr"><is><t xml:space="preserve">=1+2</t></is></c>'
        '<c r="C6"><v>4</v></c></row>'
        '<row r="7"><c r="A7" s="7"/><c r="B7" t="inlineStr"><is><t xml:space="preserve">x</t></is></c></row>')


def test_plain_workbook_reads_back_with_the_same_cells(tmp_path: Path) -> None:
    frame = pl.DataFrame({"n0": [None, 2.0], "t0": ["客户", None], "n1": [None, None], "t1": ["=SUM(1)", "x"]})
    target = tmp_path / "plain.xlsx"
    write_plain_xlsx(str(target), [("表一", rows_xml(frame, [Placement(0), Placement(0), Placement(1), Placement(1)], 1))])
    rows = CalamineWorkbook.from_path(str(target)).get_sheet_by_name("表一").to_python()
    assert rows == [["客户", "=SUM(1)"], [2.0, "x"]]


def test_split_keeps_whole_customers_under_the_row_limit() -> None:
    import pandas as pd

    lines = pd.DataFrame({"customer_code": ["C1"] * 5 + ["C2"] * 3 + ["C3"] * 4, "amount": range(12)})
    parts = cases.split_by_customer(lines, 7)
    assert [sorted(set(p["customer_code"])) for p in parts] == [["C1"], ["C2"], ["C3"]]
    assert all(len(p) + p["customer_code"].nunique() <= 7 for p in parts)
    assert sum(len(p) for p in parts) == len(lines)


def test_customer_names_stay_distinct_past_the_name_pool() -> None:
    import random

    frame = cases.customer_frame(random.Random(1), 3000, tries=1)  # one try: the pool 'runs out' at once
    assert frame["customer_name"].is_unique and frame["customer_code"].is_unique
    assert frame["customer_name"].str.contains("号有限公司").any()


def test_large_layout_splits_the_kingdee_sheet_under_the_limit(tmp_path: Path) -> None:
    files = cases.generate_large(tmp_path, customers=40, lines=1200, row_limit=300)
    kingdee = [f for f in files if f.name.startswith("sales_kingdee")]
    assert len(kingdee) >= 3
    for f in kingdee:
        rows = CalamineWorkbook.from_path(str(f)).get_sheet_by_index(0).to_python()
        assert len(rows) < 300
        assert rows[-1][0] == "合计"


def _bench_folder(tmp_path: Path, writer: str) -> Path:
    import yaml

    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    data["output"]["template"] = str(ROOT / "templates" / "客户分级管理表.xlsx")
    if writer == "large":
        cases.generate_large(tmp_path / "demo_data", customers=120, lines=3000, row_limit=800)
        data["sources"]["sales"]["files"] = ["demo_data/sales_*"]
    elif writer == "bad":
        cases.write_bad_csv(tmp_path / "demo_data", customers=50, good=500, bad=300)
        data["sources"]["sales"]["files"] = ["demo_data/sales_*"]
    else:
        generate(tmp_path / "demo_data")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("writer", ["demo", "large", "bad"])
def test_polars_reference_matches_the_project_at_cent_precision(tmp_path: Path, writer: str) -> None:
    folder = _bench_folder(tmp_path, writer)
    result = run_to_file(load_config(folder / "config.yaml"), folder / "output.xlsx")
    ref = polars_ref.run(folder / "config.yaml", folder / "polars_output.xlsx")
    project = {"net_cents": {str(k): int(round(v * 100)) for k, v in result.graded["net_sales"].items()},
               "grades": {str(k): str(v) for k, v in result.graded["grade"].items()}}
    assert report.compare_results(project, ref) == {"net_sales_equal": "yes", "grades_equal": "100.0%"}
    assert ref["problems"] == len(result.problems)
    ours = CalamineWorkbook.from_path(str(folder / "polars_output.xlsx"))
    main = ours.get_sheet_by_name("客户分级管理表").to_python()
    assert len(main) == 4 + len(result.graded) and main[4][1] == result.graded.index[0]
    theirs = CalamineWorkbook.from_path(str(folder / "output.xlsx")).get_sheet_by_name("数据问题").to_python()
    listed = ours.get_sheet_by_name("数据问题").to_python()
    assert len(listed) == len(theirs)  # the same problem rows, summary rows included
    assert sorted(str(r[1:]) for r in listed[4:]) == sorted(str(r[1:]) for r in theirs[4:])  # same rows, any order


def test_compare_reports_a_difference_above_one_cent() -> None:
    a = {"net_cents": {"C1": 100, "C2": 5}, "grades": {"C1": "A", "C2": "B"}}
    b = {"net_cents": {"C1": 100, "C2": 7}, "grades": {"C1": "A", "C2": "C"}}
    assert report.compare_results(a, b) == {"net_sales_equal": "NO (0 customers differ, 1 sums differ)",
                                            "grades_equal": "50.0%"}


def test_floor_reads_every_input_and_writes_the_outputs_cells(tmp_path: Path) -> None:
    folder = _bench_folder(tmp_path, "demo")
    run_to_file(load_config(folder / "config.yaml"), folder / "output.xlsx")
    files = floor.input_files(folder / "config.yaml")
    assert sorted(f.name for f in files) == sorted(f.name for f in (folder / "demo_data").iterdir())
    csv_file = next(f for f in files if f.suffix == ".csv")
    text = csv_file.read_bytes().decode("gb18030")
    import csv as csv_mod
    import io

    expected = sum(1 for r in csv_mod.reader(io.StringIO(text, newline="")) for v in r if v)
    assert floor.read_one(csv_file) == expected
    floor.save_tables(floor.output_tables(folder / "output.xlsx"), folder / "cells")
    seconds, written = floor.write_floor(floor.load_tables(folder / "cells"), folder / "floor.xlsx")
    book = CalamineWorkbook.from_path(str(folder / "output.xlsx"))
    cells = sum(1 for n in book.sheet_names for r in book.get_sheet_by_name(n).to_python() for v in r if v not in ("", None))
    assert written == cells
    again = CalamineWorkbook.from_path(str(folder / "floor.xlsx"))
    assert again.sheet_names == book.sheet_names
    assert (again.get_sheet_by_name("客户分级管理表").to_python()[4][:3]
            == book.get_sheet_by_name("客户分级管理表").to_python()[4][:3])


def test_report_shows_both_ratios_and_the_memory_of_each_side() -> None:
    def run(total: float, rss: int, **extra: object) -> dict[str, object]:
        return {"total": total, "rss_mb": rss, "cpu_s": total, "timings": {"read": total / 2, "write": total / 4},
                "lines": 10, "customers": 2, "problems": 1, "cells_out": 40, "cells_in": 80, **extra}

    case = report.CaseResult("x", project=[run(9.0, 300), run(11.0, 310), run(10.0, 305)],
                             floor=[run(2.0, 100), run(2.5, 100), run(3.0, 100)],
                             polars=[run(5.0, 200), run(4.0, 210), run(6.0, 200)],
                             checks={"net_sales_equal": "yes", "grades_equal": "100.0%"})
    s = report.summary(case)
    assert (s["total"], s["floor"], s["polars"], s["vs_polars"], s["vs_floor"]) == (10.0, 2.5, 5.0, 2.0, 4.0)
    text = report.markdown([s], "test machine")
    assert "| x | 10.00 | 2.50 (1.25 + 0.62) | 5.00 | **2.00** | **4.00** | 2.00 |" in text
    assert "| 10.0 / 5.0 / 2.5 | 2.00, 4.00 | 310 / 210 / 100 | 40 | yes | 100.0% |" in text
    json.dumps(s)


def test_csv_case_written_by_the_bench_has_every_line_and_customer(tmp_path: Path) -> None:
    path = cases.generate_csv_case(tmp_path, customers=30, lines=200, name_pool=10)
    text = path.read_bytes().decode("gb18030")
    import csv as csv_mod
    import io

    rows = list(csv_mod.reader(io.StringIO(text, newline="")))[3:-3]
    assert len(rows) == 200
    assert len({r[3] for r in rows}) == 30  # every customer, each with its own name


def test_the_memory_sampler_counts_a_forked_childs_shared_pages_once() -> None:
    """A forked child shares its parent's pages: the tree's memory is the parent's plus what the child
    has of its own, not twice the parent's; a child that has ended (not yet waited for) adds nothing."""
    import os
    import sys
    import time

    import numpy as np
    import pytest

    from bench.measure import _PAGE, RssSampler, _resident_pages

    if not sys.platform.startswith("linux"):
        pytest.skip("/proc: Linux only")
    block = np.ones(64 << 17)  # 64 MB, touched
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: holds the shared pages until told to end
        os.close(write_end)
        os.read(read_end, 1)
        os._exit(0)
    os.close(read_end)
    try:
        time.sleep(0.2)
        own = _resident_pages(os.getpid()) * _PAGE / 2**20
        tree = RssSampler().current_mb()
        assert own <= tree < own + 32, (own, tree)  # the child's own pages are a few MB
        sampler = RssSampler(refresh=1000)
        sampler.current_mb()  # the child's shared part read now, kept while it ends
        os.close(write_end)
        time.sleep(0.3)  # ended, not waited for: its RSS reads 0
        assert sampler.current_mb() >= own - 8
    finally:
        os.waitpid(pid, 0)
    assert block.sum() == len(block)
