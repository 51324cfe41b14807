"""Rule-change preview and `history diff` on the demo data: the customers listed as moving are
exactly those whose grades differ between two real runs (computed here from the two output
workbooks), and a preview leaves the history and every earlier output byte for byte as it was."""

from __future__ import annotations

import hashlib
import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from etl.cli import EXIT_INPUT, EXIT_OK, EXIT_OUTPUT, main
from grading.preview import Side, compare, visits_range
from grading.preview_layout import rows

from .conftest import ROOT, copy_template

ABC, PARETO = "examples/abc_thresholds.yaml", "examples/pareto_70_20_10.yaml"


@pytest.fixture
def project(tmp_path: Path, demo: tuple[Path, Any]) -> Path:
    """The demo exports with the shipped examples beside them (their ../demo_data paths work)."""
    shutil.copytree(demo[0] / "demo_data", tmp_path / "demo_data")
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    for name in (ABC, PARETO):  # one history for both rule sets, as when a company changes its rules
        path = tmp_path / name
        text = re.sub(r"(?m)^  database: .*$", "  database: ../output/客户分级历史.sqlite", path.read_text(encoding="utf-8"))
        assert "../output/客户分级历史.sqlite" in text
        path.write_text(text, encoding="utf-8")
    copy_template(tmp_path)
    return tmp_path


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def _grades(workbook: Path) -> dict[str, str]:
    ws = openpyxl.load_workbook(workbook, read_only=True)["客户分级管理表"]
    values = list(ws.iter_rows(values_only=True))
    header = list(values[3])
    code, grade = header.index("客户编码"), header.index("等级")
    return {str(r[code]): str(r[grade]) for r in values[4:] if r[code]}


def _section(workbook: Path, title_start: str) -> list[dict[str, Any]]:
    ws = openpyxl.load_workbook(workbook, read_only=True)["规则预览"]
    values = [list(r) for r in ws.iter_rows(values_only=True)]
    start = next(i for i, r in enumerate(values) if isinstance(r[0], str) and r[0].startswith(title_start))
    header = values[start + 1]
    out = []
    for r in values[start + 2:]:
        if r[0] is None or r[0] == "（无）":
            break
        out.append({h: v for h, v in zip(header, r) if h})
    return out


def _run(project: Path, config: str, *extra: str) -> int:
    return main(["run", "-c", str(project / config), "-q", *extra])


def test_preview_lists_exactly_the_customers_two_runs_grade_differently(project: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert _run(project, PARETO) == EXIT_OK
    assert _run(project, ABC) == EXIT_OK  # the history now holds ABC as period 2026H1
    out = project / "output"
    abc, pareto = _grades(out / "示例_ABC_2026H1.xlsx"), _grades(out / "示例_帕累托_2026H1.xlsx")
    assert set(abc) == set(pareto)
    differ = {c for c in abc if abc[c] != pareto[c]}
    assert 20 < len(differ) < len(abc)  # a real difference, not everything
    before = _hashes(out)
    capsys.readouterr()

    target = project / "previews" / "预览.xlsx"
    assert main(["preview", "-c", str(project / PARETO), "--base", str(project / ABC), "-o", str(target)]) == EXIT_OK
    movers = _section(target, "三、等级变动的客户")
    assert {m["客户编码"] for m in movers} == differ
    assert len(movers) == len(differ)
    assert all((m["原等级"], m["新等级"]) == (abc[m["客户编码"]], pareto[m["客户编码"]]) for m in movers)
    sales = [m["新净销售额"] for m in movers]
    assert sales == sorted(sales, reverse=True)
    assert all(m["原分级依据"].startswith("净销售额") and "累计占比" in m["新分级依据"] for m in movers)
    assert _hashes(out) == before  # history and outputs untouched

    text = capsys.readouterr().out.splitlines()
    assert text[0] == "规则预览"
    assert f"等级变动的客户 {len(differ)} 个（升级 {len(differ)}）" in text
    assert text[-2:] == [f"已生成：{target}", "历史记录和已有的输出文件均未改动。"]

    summary = _section(target, "一、各等级客户数")
    counts = {r["等级"]: (r["原客户数"], r["新客户数"]) for r in summary}
    for g in "ABC":
        assert counts[g] == (Counter(abc.values())[g], Counter(pareto.values())[g])
    assert counts["合计"] == (len(abc), len(abc))
    matrix = _section(target, "二、等级迁移矩阵")
    cells = {(r["原＼新"], g): r.get(g) for r in matrix for g in "ABC"}
    for g1 in "ABC":
        for g2 in "ABC":
            assert cells[(g1, g2)] == sum(1 for c in abc if abc[c] == g1 and pareto[c] == g2)

    # the default base is the rules of the last stored run (ABC), the result the same
    second = project / "previews" / "默认.xlsx"
    assert main(["preview", "-c", str(project / PARETO), "-o", str(second), "-q"]) == EXIT_OK
    assert {m["客户编码"] for m in _section(second, "三、等级变动的客户")} == differ
    # against the stored period's grades
    third = project / "previews" / "期间.xlsx"
    assert main(["preview", "-c", str(project / PARETO), "--base-period", "2026H1", "-o", str(third), "-q"]) == EXIT_OK
    assert {m["客户编码"] for m in _section(third, "三、等级变动的客户")} == differ
    assert _hashes(out) == before


def test_preview_policy_changes_and_visit_load(project: Path) -> None:
    target = project / "p.xlsx"
    assert main(["preview", "-c", str(project / PARETO), "--base", str(project / ABC), "-o", str(target), "-q"]) == 0
    abc_policy = {"A": ("4-6", "月结60天"), "B": ("2-4", "月结30天"), "C": ("0-2", "款到发货")}
    policy = _section(target, "四、服务政策变化的客户")
    assert policy and all(p["原信用政策"] == abc_policy[p["原等级"]][1] and p["新信用政策"] == "" for p in policy)
    load = _section(target, "五、业务员拜访负荷")
    movers = _section(target, "三、等级变动的客户")
    low = {"A": 4, "B": 2, "C": 0}
    for r in load:  # the change of each salesperson's load = the movers' change of visits
        mine = [m for m in movers if (m["业务员"] or "（未指定）") == r["业务员"]]
        assert r["下限变化"] == sum(low[m["新等级"]] - low[m["原等级"]] for m in mine)
        assert r["原客户数"] == r["新客户数"]


def test_preview_never_writes_over_an_output_or_the_history(project: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert _run(project, ABC) == EXIT_OK
    out = project / "output"
    before = _hashes(out)
    sales = sorted((project / "demo_data").glob("sales_*.xlsx"))[0]
    inputs = _hashes(project / "demo_data")
    for target in (out / "示例_ABC_2026H1.xlsx", out / "客户分级历史.sqlite", sales, project / ABC):
        code = main(["preview", "-c", str(project / PARETO), "--base", str(project / ABC), "-o", str(target)])
        assert code == EXIT_OUTPUT
        assert capsys.readouterr().err.startswith(f"[E250] 预览不会覆盖运行的输出、历史数据库、模板、配置或输入文件：{target}")
    assert _hashes(out) == before
    assert _hashes(project / "demo_data") == inputs


def test_unknown_period_and_missing_history_are_input_errors(project: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["preview", "-c", str(project / PARETO), "-o", str(project / "x.xlsx")]) == EXIT_INPUT
    assert "[E252] 没有找到历史数据库" in capsys.readouterr().err
    assert _run(project, ABC) == EXIT_OK
    assert main(["preview", "-c", str(project / PARETO), "--base-period", "2025H9", "-o", str(project / "x.xlsx")]) \
        == EXIT_INPUT
    err = capsys.readouterr().err
    assert "[E251]" in err and "没有期间 '2025H9'。已保存的期间：2026H1" in err
    assert not (project / "x.xlsx").exists()


def test_history_diff_between_any_two_periods(project: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert _run(project, ABC, "--period", "ABC期") == EXIT_OK
    assert _run(project, PARETO, "--period", "帕累托期") == EXIT_OK
    out = project / "output"
    abc, pareto = _grades(out / "示例_ABC_ABC期.xlsx"), _grades(out / "示例_帕累托_帕累托期.xlsx")
    differ = {c for c in abc if abc[c] != pareto[c]}
    before = _hashes(out)
    capsys.readouterr()
    target = project / "diff.xlsx"
    assert main(["history", "diff", "ABC期", "帕累托期", "-c", str(project / ABC), "-o", str(target)]) == EXIT_OK
    text = capsys.readouterr().out.splitlines()
    assert text[:3] == ["等级迁移：ABC期 → 帕累托期", "  原：ABC期（截止 2026-06-30，已保存）",
                        "  新：帕累托期（截止 2026-06-30，已保存）"]
    movers = _section(target, "三、等级变动的客户")
    assert {m["客户编码"] for m in movers} == differ
    assert _hashes(out) == before
    # the stored rules give each period its own policies
    policy = _section(target, "四、服务政策变化的客户")
    assert {p["原信用政策"] for p in policy} <= {"月结60天", "月结30天", "款到发货"}


# ------------------------------------------------------------------ the comparison itself

def _side(grades: dict[str, str], order: tuple[str, ...] = ("A", "B", "C")) -> Side:
    codes = sorted(grades)
    table = pd.DataFrame({
        "customer_name": [f"客户{c}" for c in codes], "salesperson": ["张伟"] * len(codes),
        "net_sales": [float(len(c)) for c in codes], "grade": [grades[c] for c in codes],
        "reason": ["规则"] * len(codes), "visits_per_month": ["1-2"] * len(codes),
        "credit_terms": [""] * len(codes), "discount": [""] * len(codes)}, index=codes)
    return Side("x", table, order)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text("CDE", min_size=1, max_size=3), st.sampled_from("ABC"), max_size=12),
       st.dictionaries(st.text("CDE", min_size=1, max_size=3), st.sampled_from("ABC"), max_size=12))
def test_comparison_invariants(before: dict[str, str], after: dict[str, str]) -> None:
    p = compare(_side(before), _side(after), "t")
    codes = set(before) | set(after)
    assert int(p.matrix.to_numpy().sum()) == len(codes)
    assert set(p.moved_codes) == {c for c in codes if before.get(c) != after.get(c)}
    diagonal = sum(int(p.matrix.loc[g, g]) for g in p.matrix.index if g in p.matrix.columns)
    assert diagonal + len(p.movers) == len(codes)
    total = p.summary[p.summary["grade"] == "合计"].iloc[0]
    assert (total["before_customers"], total["after_customers"]) == (len(before), len(after))
    kinds = Counter(p.movers["change"])
    assert kinds["新增"] == len(set(after) - set(before)) and kinds["流失"] == len(set(before) - set(after))
    assert rows(p)[0].values == ("t",)


def test_visits_are_read_as_ranges_or_reported() -> None:
    assert visits_range("4-6") == (4, 6)
    assert visits_range("2～4 次/月") == (2, 4)
    assert visits_range("3") == (3, 3)
    assert visits_range("") == (0, 0)
    assert visits_range("按需") is None
    before = _side({"C1": "A"})
    after = _side({"C1": "B"})
    after.table.loc["C1", "visits_per_month"] = "按需"
    p = compare(before, after, "t")
    assert "拜访频率“按需”（1 个客户）不是次数，未计入业务员拜访负荷。" in p.notes
    assert p.load.iloc[0]["after_low"] == 0 and p.load.iloc[0]["before_low"] == 1


def test_history_of_schema_1_is_read_unchanged_and_migrated_by_the_next_run(tmp_path: Path) -> None:
    import sqlite3
    from contextlib import closing

    from grading.history import MIGRATIONS, connect
    from grading.history_read import load_period

    db = tmp_path / "h.sqlite"
    with closing(sqlite3.connect(db)) as conn:
        conn.executescript(MIGRATIONS[0])
        conn.execute("PRAGMA user_version = 1")
        conn.execute("INSERT INTO runs (period, as_of, started_at, config_hash, customers, output) "
                     "VALUES ('2025H2', '2025-12-31', '2026-01-02T06:30:00', 'abc', 1, 'x.xlsx')")
        conn.execute("INSERT INTO customer_grades (run_id, customer_code, customer_name, rule_grade, grade, score, "
                     "net_sales, pinned, explanation, metrics) VALUES (1, 'C1', '甲', 'A', 'A', NULL, 5.0, 0, '规则', '{}')")
        conn.commit()
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    stored = load_period(db, "2025H2")
    assert (stored.period, stored.config_text, stored.table.loc["C1", "grade"]) == ("2025H2", None, "A")
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before  # read-only: not even migrated
    with closing(connect(db)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
        assert conn.execute("SELECT period, config_text FROM runs").fetchall() == [("2025H2", None)]
        assert conn.execute("SELECT count(*) FROM pin_audit").fetchone()[0] == 0


def test_preview_workbook_keeps_text_as_text_and_is_written_atomically(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import os

    from grading.errors import OutputLocked
    from grading.preview_xlsx import write_preview

    before = _side({"C1": "A", "C2": "B"})
    after = _side({"C1": "B", "C2": "B"})
    after.table.loc["C1", "customer_name"] = "=HYPERLINK(\"http://x\")"
    after.table.loc["C1", "reason"] = "+1"
    target = write_preview(tmp_path / "p.xlsx", compare(before, after, "t"))
    ws = openpyxl.load_workbook(target)["规则预览"]
    cells = {c.value: c.data_type for row in ws.iter_rows() for c in row if c.value is not None}
    assert cells["=HYPERLINK(\"http://x\")"] == "s" and cells["+1"] == "s"

    old = target.read_bytes()
    monkeypatch.setattr(os, "replace", lambda a, b: (_ for _ in ()).throw(PermissionError(13, "locked")))
    with pytest.raises(OutputLocked):
        write_preview(target, compare(after, before, "t"))
    assert target.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == ["p.xlsx"]  # no temp file left
