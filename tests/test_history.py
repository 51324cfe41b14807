"""Grade history across periods, 变动 and the migration matrix, idempotent
re-runs, the stability rule, and the safety of unattended runs (lock, kill,
locked output)."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd
import pytest

from etl.cli import EXIT_BUSY, EXIT_LOCKED, EXIT_OK, main
from etl.lock import RunLock
from grading.config import load_config
from grading.history import customer_timeline, list_runs, stored_inputs
from grading.pipeline import run_to_file

from .conftest import FIXED_TIME, ROOT, copy_template

ABC = [{"type": "thresholds", "metric": "净销售额", "else": "C",
        "bands": [{"grade": "A", "min": "500万"}, {"grade": "B", "min": "100万"}]}]


def _project(tmp_path: Path, demo_folder: Path, **history: Any) -> Path:
    """config.yaml with ABC thresholds over the demo data, six-month periods."""
    import shutil

    import yaml

    from .conftest import base_config

    if not (tmp_path / "demo_data").exists():
        shutil.copytree(demo_folder / "demo_data", tmp_path / "demo_data")
    copy_template(tmp_path)
    data = base_config()
    data["grading"] = {"stages": ABC}
    data["grades"] = {k: v for k, v in data["grades"].items() if k in "ABC"}
    data["period"]["months"] = 6
    for source in ("receivables", "overrides"):  # customers = those with orders, grades = the ABC rule alone
        data["sources"].pop(source)
    data["history"] = history
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return tmp_path / "config.yaml"


def _run(cfg: Path, period: str, as_of: str, output: Path | None = None):  # type: ignore[no-untyped-def]
    import datetime as dt

    config = load_config(cfg, as_of=dt.date.fromisoformat(as_of), period=period)
    return run_to_file(config, output, generated_at=FIXED_TIME)


def _expected_grades(truth, start: str, end: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    lines = truth.lines
    window = lines[(lines["date"] >= pd.Timestamp(start)) & (lines["date"] <= pd.Timestamp(end))]
    sales = window.groupby("customer_code")["amount"].sum()
    seen = lines[lines["date"] <= pd.Timestamp(end)]["customer_code"].unique()
    sales = sales.reindex(seen, fill_value=0.0)
    return {c: "A" if s >= 5e6 else "B" if s >= 1e6 else "C" for c, s in sales.items()}


def test_two_periods_give_changes_and_migration_matrix(tmp_path, demo) -> None:  # type: ignore[no-untyped-def]
    folder, truth = demo
    cfg = _project(tmp_path, folder)
    first = _run(cfg, "2025H2", "2025-12-31")
    second = _run(cfg, "2026H1", "2026-06-30")
    before = _expected_grades(truth, "2025-07-01", "2025-12-31")
    now = _expected_grades(truth, "2026-01-01", "2026-06-30")
    assert first.graded["grade"].to_dict() == before and second.graded["grade"].to_dict() == now
    assert first.comparison is not None and first.comparison.previous is None
    rank = {"A": 0, "B": 1, "C": 2}

    def kind(code: str) -> str:
        if code not in before:
            return "新增"
        if before[code] == now[code]:
            return "不变"
        return "升级" if rank[now[code]] < rank[before[code]] else "降级"

    g = second.graded
    assert g["prev_grade"].to_dict() == {c: before.get(c, "") for c in g.index}
    assert g["change"].to_dict() == {c: kind(c) for c in g.index}
    expected = Counter((before.get(c, "新增"), now[c]) for c in now)
    matrix = second.comparison.matrix
    assert {(r, c): int(matrix.at[r, c]) for r in matrix.index for c in matrix.columns if matrix.at[r, c]} == \
        dict(expected)
    assert int(matrix.to_numpy().sum()) == len(now)

    book = openpyxl.load_workbook(second.output)
    changes = book["等级变动"]
    rows = [[c.value for c in r] for r in changes.iter_rows(min_row=5) if r[0].value is not None]
    assert len(rows) == sum(1 for c in now if kind(c) != "不变")
    assert {r[5] for r in rows} <= {"升级", "降级", "新增"}
    summary = book["分级汇总"]
    anchor = next(c for row in summary.iter_rows(max_row=6) for c in row if c.value == "上期＼本期")
    labels = [summary.cell(anchor.row, anchor.column + k).value for k in range(1, len(matrix.columns) + 2)]
    assert labels == [*matrix.columns, "合计"]
    main_sheet = book["客户分级管理表"]
    head = [c.value for c in main_sheet[4]]
    code_col, change_col = head.index("客户编码"), head.index("变动")
    shown = {r[code_col].value: r[change_col].value for r in main_sheet.iter_rows(min_row=5)}
    assert shown == {c: kind(c) for c in g.index}
    assert [r["period"] for r in list_runs(second.history)] == ["2025H2", "2026H1"]


def test_a_stored_period_reads_as_its_key_orders_it(tmp_path, demo) -> None:  # type: ignore[no-untyped-def]
    """previous_period and year_before read a run's rows in table order (neighbours, not looked up one by one):
    the very rows and columns of the customers' query by run, ordered by code, whichever run is asked for."""
    import datetime as dt
    import sqlite3

    from grading.history import previous_period, year_before

    cfg = _project(tmp_path, demo[0])
    for period, as_of in (("2025H1", "2025-06-30"), ("2025H2", "2025-12-31"), ("2026H1", "2026-06-30")):
        db = _run(cfg, period, as_of).history
    query = ("SELECT customer_code, customer_name, grade, rule_grade, score, net_sales, below_streak FROM "
             "customer_grades WHERE run_id = (SELECT run_id FROM runs WHERE period = ?) ORDER BY customer_code")
    with sqlite3.connect(db) as conn:
        stored = {p: pd.read_sql_query(query, conn, params=(p,)).set_index("customer_code")
                  for p in ("2025H1", "2025H2", "2026H1")}
    for as_of, period in ((dt.date(2025, 12, 31), "2025H1"), (dt.date(2026, 6, 30), "2025H2"),
                          (dt.date(2026, 12, 31), "2026H1")):
        got = previous_period(db, as_of, "later")
        assert got is not None and got.period == period
        pd.testing.assert_frame_equal(got.table, stored[period])
    ago = year_before(db, dt.date(2026, 6, 30))
    assert ago is not None and ago.period == "2025H1"
    pd.testing.assert_frame_equal(ago.table, stored["2025H1"])


def test_rerunning_a_period_is_idempotent(tmp_path, demo) -> None:  # type: ignore[no-untyped-def]
    cfg = _project(tmp_path, demo[0])
    _run(cfg, "2025H2", "2025-12-31")
    one = _run(cfg, "2026H1", "2026-06-30")

    def dump() -> list[tuple[Any, ...]]:
        with sqlite3.connect(one.history) as conn:
            return conn.execute("SELECT r.period, r.as_of, g.customer_code, g.grade, g.score, g.net_sales, "
                                "g.explanation FROM customer_grades g JOIN runs r USING (run_id) "
                                "ORDER BY r.period, g.customer_code").fetchall()

    first_rows = dump()
    inputs = stored_inputs(one.history, "2026H1")
    assert {Path(p).name for p, _, _ in inputs} >= {"sales_kingdee_2025.xlsx", "sales_u8_2026Q1.csv"}
    for path, size, digest in inputs:
        assert size == Path(path).stat().st_size and digest == hashlib.sha256(Path(path).read_bytes()).hexdigest()
    again = _run(cfg, "2026H1", "2026-06-30")
    assert dump() == first_rows
    assert stored_inputs(one.history, "2026H1") == inputs
    assert len(list_runs(one.history)) == 2
    assert again.graded["change"].to_dict() == one.graded["change"].to_dict()  # still compared with 2025H2


def test_stability_rule_delays_downgrades(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import yaml

    from .conftest import base_config

    copy_template(tmp_path)
    data = base_config()
    data["sources"] = {"sales": {"files": ["sales.csv"]}}
    data["grading"] = {"stages": ABC}
    data["grades"] = {k: v for k, v in data["grades"].items() if k in "ABC"}
    data["period"] = {"as_of": "2026-01-31", "months": 1}
    data["history"] = {"downgrade_after": 2}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    # C1 sells 600万 in January, then 200万 in February and March; C2 grows 50万 → 600万
    (tmp_path / "sales.csv").write_text(
        "单据编号,日期,客户编码,价税合计\nD1,2026-01-10,C1,6000000\nD2,2026-01-10,C2,500000\n"
        "D3,2026-02-10,C1,2000000\nD4,2026-02-10,C2,6000000\nD5,2026-03-10,C1,2000000\nD6,2026-03-10,C2,6000000\n",
        encoding="utf-8")
    cfg = tmp_path / "config.yaml"
    jan = _run(cfg, "2026-01", "2026-01-31")
    feb = _run(cfg, "2026-02", "2026-02-28")
    mar = _run(cfg, "2026-03", "2026-03-31")
    assert jan.graded["grade"].to_dict() == {"C1": "A", "C2": "C"}
    assert feb.graded["grade"].to_dict() == {"C1": "A", "C2": "A"}  # downgrade held, upgrade at once
    assert feb.graded.loc["C1", "reason"].endswith("等级稳定：规则结果 B 低于上期 A（连续 1/2 期），暂保持 A")
    assert mar.graded.loc["C1", "grade"] == "B"
    assert mar.graded.loc["C1", "reason"].endswith("等级稳定：连续 2 期低于 A，降级生效 → B")
    timeline = customer_timeline(mar.history, "C1")
    assert [(t["period"], t["grade"], t["rule_grade"]) for t in timeline] == [
        ("2026-01", "A", "A"), ("2026-02", "A", "B"), ("2026-03", "B", "B")]


KILLER = textwrap.dedent("""
    import datetime as dt, os, signal, sys
    from pathlib import Path
    from grading.config import load_config
    from grading.pipeline import run_to_file

    def progress(message, fraction):
        if message == "分级":          # right after the metrics stage
            os.kill(os.getpid(), signal.SIGKILL)

    config = load_config(sys.argv[1], as_of=dt.date(2026, 6, 30), period="2026H1")
    run_to_file(config, None, progress)
""")


def test_run_killed_midway_leaves_output_and_database(tmp_path, demo) -> None:  # type: ignore[no-untyped-def]
    cfg = _project(tmp_path, demo[0])
    done = _run(cfg, "2026H1", "2026-06-30")
    output_before = done.output.read_bytes()
    db_before = done.history.read_bytes()
    proc = subprocess.run([sys.executable, "-c", KILLER, str(cfg)], cwd=ROOT, capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert done.output.read_bytes() == output_before
    assert done.history.read_bytes() == db_before
    assert [p.name for p in done.output.parent.iterdir() if p.name.startswith(".~")] == []


def test_second_concurrent_run_exits_with_lock_message(tmp_path, demo, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg = _project(tmp_path, demo[0])
    output = load_config(cfg).output_path()
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time, sys
        from pathlib import Path
        from etl.lock import RunLock
        with RunLock(Path({str(output)!r})):
            print("locked", flush=True)
            time.sleep(60)
    """)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        assert main(["run", "-c", str(cfg)]) == EXIT_BUSY
        assert time.monotonic() - started < 10  # exits at once, does not wait
        err = capsys.readouterr().err
        assert f"[E402] 另一个分级任务正在运行（进程 {holder.pid}，" in err
        assert "本次运行已退出，未做任何修改。" in err
        assert not output.exists()
    finally:
        holder.kill()
        holder.wait()


def test_stale_lock_from_killed_run_is_recovered(tmp_path, demo, capsys) -> None:  # type: ignore[no-untyped-def]
    import json
    import socket

    cfg = _project(tmp_path, demo[0])
    output = load_config(cfg).output_path()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock = output.with_name(output.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "started": "2026-06-30T02:00:00"}))
    assert main(["run", "-c", str(cfg)]) == EXIT_OK
    out = capsys.readouterr().out
    assert f"发现上次中断的运行留下的锁（进程 {dead.pid} 已不存在），已清除并继续。" in out
    assert output.exists() and not lock.exists()


def test_locked_output_keeps_previous_file_and_history(tmp_path, demo, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    cfg = _project(tmp_path, demo[0])
    assert main(["run", "-c", str(cfg), "-q"]) == EXIT_OK
    output = load_config(cfg).output_path()
    before = output.read_bytes()
    db = output.parent / "客户分级历史.sqlite"
    db_before = db.read_bytes()

    real_replace = os.replace

    def locked(src: str, dst: str) -> None:
        if str(dst).endswith(".xlsx"):
            raise PermissionError(13, "Permission denied")  # what Windows says while Excel has the file open
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", locked)
    assert main(["run", "-c", str(cfg), "-q", "--period", "2026H1b"]) == EXIT_LOCKED
    err = capsys.readouterr().err
    assert f"[E401] 无法替换输出文件 {output.with_name('客户分级管理表_2026H1b.xlsx')}：文件可能正在 Excel 中打开。" in err
    assert output.read_bytes() == before
    assert db.read_bytes() == db_before  # the history transaction was rolled back


def test_history_commands_and_seed(tmp_path, demo, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg = _project(tmp_path, demo[0])
    older = _run(cfg, "2025H2", "2025-12-31", output=tmp_path / "old" / "old.xlsx")
    fresh = tmp_path / "fresh"
    cfg2 = _project(fresh, demo[0])
    assert main(["history", "seed", str(older.output), "--period", "2025H2", "-c", str(cfg2)]) == EXIT_OK
    assert "导入 " in capsys.readouterr().out
    second = _run(cfg2, "2026H1", "2026-06-30")
    assert second.comparison is not None and second.comparison.previous == "2025H2"
    assert second.graded["prev_grade"].to_dict() == {
        c: older.graded["grade"].get(c, "") for c in second.graded.index}
    assert main(["history", "list", "-c", str(cfg2)]) == EXIT_OK
    listing = capsys.readouterr().out
    assert "2025H2" in listing and "seed" in listing and "2026H1" in listing
    target = tmp_path / "c1.csv"
    code = second.graded.index[0]
    assert main(["history", "customer", code, "-c", str(cfg2), "-o", str(target)]) == EXIT_OK
    lines = target.read_text(encoding="utf-8-sig").splitlines()
    assert lines[0] == "期间,截止日期,等级,规则等级,综合得分,净销售额,人工指定,分级依据"
    assert [line.split(",")[0] for line in lines[1:]] == ["2025H2", "2026H1"]


def test_a_damaged_history_file_is_explained_in_chinese(tmp_path: Path) -> None:
    from grading.history import HistoryError, connect

    db = tmp_path / "客户分级历史.sqlite"
    db.write_bytes(b"this was never a database, just some bytes " * 200)
    with pytest.raises(HistoryError) as exc:
        connect(db)
    assert str(exc.value) == (f"[E500] 历史数据库 {db} 已损坏或不是数据库文件（文件不是 SQLite 数据库）。"
                              "请恢复备份或改用新的路径。")


def test_unknown_sqlite_texts_are_kept_and_marked() -> None:
    import sqlite3

    from grading.sqlite_text import reason

    assert reason(sqlite3.DatabaseError("database disk image is malformed")) == "数据库文件已损坏"
    assert reason(sqlite3.OperationalError("something new")) == "SQLite 报告：something new"
