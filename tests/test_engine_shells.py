"""Issue 11 items that touch history, examples and the command line: the stated
previous-period rule, examples' own history, the four-axis code book, config
friction (comma in a flow mapping, missing config.yaml, history -c order), and
a rule whose column the export lacks."""

from __future__ import annotations

import datetime as dt
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from etl.cli import EXIT_CONFIG, EXIT_OK, main
from grading.config import load_config
from grading.errors import ConfigError, RuleInputMissing
from grading.history import RunRecord, connect, previous_period, record_run
from grading.pipeline import grade_data

from .conftest import ROOT


def _store(db: Path, period: str, as_of: str, digest: str, grade: str) -> None:
    graded = pd.DataFrame({"customer_name": ["x"], "grade": [grade], "rule_grade": [grade], "net_sales": [1.0],
                           "score": [None], "pinned": [""], "below_streak": [0], "reason": [""]},
                          index=pd.Index(["C1"], name="customer_code"))
    with closing(connect(db)) as conn, conn:
        record_run(conn, RunRecord(period, dt.date.fromisoformat(as_of), dt.datetime(2026, 1, 1), digest, "o", []),
                   graded)


def test_previous_period_by_a_stated_rule(tmp_path: Path) -> None:
    db = tmp_path / "h.sqlite"
    _store(db, "2025H2", "2025-12-31", "rules1", "A")
    _store(db, "2025H2-pareto", "2025-12-31", "trial", "C")  # a trial with other rules, stored last
    _store(db, "2025H1", "2025-06-30", "rules1", "B")
    prev = previous_period(db, dt.date(2026, 6, 30), "2026H1", "rules1")
    assert prev is not None and prev.period == "2025H2"
    assert prev.description == ("2025H2（截止 2025-12-31；截止日期早于本期的最近一期；该日期有 2 期"
                                "（2025H2、2025H2-pareto），取规则相同（配置校验码一致）的一期）")
    other = previous_period(db, dt.date(2026, 6, 30), "2026H1", "rules9")
    assert other is not None and other.period == "2025H2-pareto" and "取最后保存的一期" in other.description
    # a run of a stored period's own name never compares with itself
    again = previous_period(db, dt.date(2025, 12, 31), "2025H2", "rules1")
    assert again is not None and again.period == "2025H1"


def test_examples_never_write_into_the_main_history() -> None:
    main_db = load_config(ROOT / "config.yaml").history_path()
    seen = set()
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        db = load_config(path).history_path()
        assert db is not None and db != main_db, path.name
        seen.add(db)
    assert len(seen) == len(list((ROOT / "examples").glob("*.yaml")))


def test_four_axis_example_follows_the_code_book(demo: Any, tmp_path: Path) -> None:
    folder, _ = demo
    config = load_config(ROOT / "examples" / "multi_axis_codes.yaml")
    config = config.model_copy(update={"base_dir": folder / "examples"})
    (folder / "examples").mkdir(exist_ok=True)
    graded = grade_data(config).graded
    codes = set(graded["grade"])
    assert all(len(c) == 4 and c[0] in "EF" and c[1] in "12" and c[2] in "ABCD" and c[3] in "123?"
               for c in codes), codes
    master = pd.Series(graded["col:认可度"].astype(str))
    assert (graded.loc[master == "高", "grade"].str[0] == "E").all()
    assert (graded.loc[master != "高", "grade"].str[0] == "F").all()
    profit = graded["gross_profit"]
    assert (graded.loc[profit >= 1e7, "grade"].str[3] == "1").all()
    assert (graded.loc[profit < 2e6, "grade"].str[3] == "3").all()


def test_comma_inside_a_flow_mapping_is_explained_in_chinese(tmp_path: Path) -> None:
    text = (ROOT / "config.yaml").read_text(encoding="utf-8").replace("{min: 500万, points: 9}",
                                                                     "{min: 500,000, points: 9}")
    (tmp_path / "config.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "config.yaml")
    msg = str(info.value)
    assert "Keys should be strings" not in msg
    assert "花括号 {…} 里的逗号会把一项拆成两项，如 {grade: A, min: 500,000} 被读成 min: 500 和 000" in msg


def test_missing_config_says_where_it_looked_and_how_to_pass_c(tmp_path: Path, monkeypatch: Any,
                                                               capsys: Any) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["check-config"]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert f"找不到配置文件 config.yaml（在文件夹 {tmp_path.resolve()} 中查找）" in err
    assert "或用 -c 指定配置文件" in err


@pytest.mark.parametrize("order", ["before", "after"])
def test_history_list_takes_c_before_or_after_the_action(tmp_path: Path, monkeypatch: Any, capsys: Any,
                                                         order: str) -> None:
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    data["history"] = {"database": "h.sqlite"}
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    _store(tmp_path / "h.sqlite", "2025H2", "2025-12-31", "x", "A")
    monkeypatch.chdir(ROOT.parent)  # no config.yaml here
    cfg = str(tmp_path / "mine.yaml")
    args = ["history", "-c", cfg, "list"] if order == "before" else ["history", "list", "-c", cfg]
    assert main(args) == EXIT_OK
    assert "2025H2" in capsys.readouterr().out


def test_export_without_the_rules_column_is_refused(tmp_path: Path, write_config: Any) -> None:
    (tmp_path / "s.csv").write_text("单据编号,单据日期,客户编码,价税合计\nD1,2026-05-03,C1,100\n", encoding="utf-8")
    (tmp_path / "r.csv").write_text("客户编码,期末余额,账龄(天)\nC1,50,120\n", encoding="utf-8")

    def edit(d: dict[str, Any]) -> None:
        d["sources"] = {"sales": {"files": ["s.csv"]}, "receivables": {"files": ["r.csv"]}}
        d["grading"]["stages"] = [
            {"type": "thresholds", "metric": "净销售额", "else": "C", "bands": [{"grade": "A", "min": 50}, {"grade": "B", "min": 10}]},
            {"type": "adjust", "name": "逾期封顶", "when": "逾期天数 > 90", "at_most": "B"}]

    with pytest.raises(RuleInputMissing) as info:
        grade_data(write_config(tmp_path, edit))
    msg = str(info.value)
    assert msg.startswith("[E130] 配置文件有 1 处错误")
    assert "grading.stages[1]（逾期封顶）: 规则用到指标「逾期天数」，但应收账款余额表中没有可用的列" in msg
    assert "sources.receivables.columns.overdue_days" in msg


def test_the_previous_period_used_is_printed_and_written(tmp_path: Path, demo: Any, capsys: Any) -> None:
    import openpyxl

    from .test_history import _project

    cfg = _project(tmp_path, demo[0])
    assert main(["run", "-c", str(cfg), "--as-of", "2025-12-31", "--period", "2025H2"]) == EXIT_OK
    capsys.readouterr()
    assert main(["run", "-c", str(cfg), "--as-of", "2026-06-30", "--period", "2026H1"]) == EXIT_OK
    out_file = load_config(cfg, period="2026H1").output_path()
    chosen = "2025H2（截止 2025-12-31；截止日期早于本期的最近一期）"
    assert f"  上期选用：{chosen}" in capsys.readouterr().out.splitlines()
    sheet = openpyxl.load_workbook(out_file)["等级变动"]
    assert sheet.cell(2, 1).value.endswith(f"上期：{chosen}")
