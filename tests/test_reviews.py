"""The review meeting's round trip, end to end: a run's workbook carries the 评审 columns, a manager
fills them (here with openpyxl), the next run with that workbook as the `reviews` source pins the
approved customers (who/when/why in 分级依据 and in the history), lists unusable rows in 数据问题,
and carries the approvals forward into its own 评审 columns."""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import openpyxl
import yaml

from etl.cli import EXIT_OK, main

from .conftest import base_config, copy_template

REVIEW = ("建议等级", "理由", "审批人", "审批日期", "有效至", "状态")


def _project(tmp_path: Path, demo: tuple[Path, Any], reviews: str | None = None) -> Path:
    if not (tmp_path / "demo_data").exists():
        shutil.copytree(demo[0] / "demo_data", tmp_path / "demo_data")
    copy_template(tmp_path)
    data = base_config()
    if reviews:
        data["sources"]["reviews"] = {"files": [reviews]}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return tmp_path / "config.yaml"


def _table(path: Path, sheet: str, header_row: int = 4) -> tuple[list[str], list[list[Any]]]:
    ws = openpyxl.load_workbook(path)[sheet]
    values = [list(r) for r in ws.iter_rows(values_only=True)]
    header = [str(v) if v is not None else "" for v in values[header_row - 1]]
    return header, [r for r in values[header_row:] if any(v is not None for v in r)]


def test_review_round_trip(tmp_path: Path, demo: tuple[Path, Any], capsys) -> None:  # type: ignore[no-untyped-def]
    cfg = _project(tmp_path, demo)
    assert main(["run", "-c", str(cfg), "-q"]) == EXIT_OK
    output = tmp_path / "output" / "客户分级管理表_2026H1.xlsx"
    header, rows = _table(output, "客户分级管理表")
    assert header[-6:] == list(REVIEW)  # the 评审 block ends the main table, empty for the meeting
    assert all(all(v is None for v in r[len(header) - 6:len(header)]) for r in rows)

    # the meeting: fill the 评审 columns of the produced workbook
    wb = openpyxl.load_workbook(output)
    ws = wb["客户分级管理表"]
    col = {h: i + 1 for i, h in enumerate(header)}
    by_code = {r[col["客户编码"] - 1]: (i + 5, r) for i, r in enumerate(rows)}
    a_codes = [c for c, (_, r) in by_code.items() if r[col["等级"] - 1] == "A" and not r[col["人工指定"] - 1]]
    c_codes = [c for c, (_, r) in by_code.items() if r[col["等级"] - 1] == "C" and not r[col["人工指定"] - 1]]
    approved, later, rejected, no_approver, bad_grade = a_codes[0], c_codes[0], a_codes[1], a_codes[2], a_codes[3]

    def fill(code: str, grade: str, reason: str, by: str | None, on: dt.datetime | None, status: str,
             until: dt.datetime | None = None) -> None:
        row = by_code[code][0]
        for h, v in zip(REVIEW, (grade, reason, by, on, until, status)):
            ws.cell(row, col[h], v)

    fill(approved, "C", "连续两季度回款逾期", "王经理", dt.datetime(2026, 7, 2), "通过", dt.datetime(2026, 12, 31))
    fill(later, "A", "新签年度框架协议", "李总", None, "通过")
    fill(rejected, "B", "销售建议降级", "王经理", dt.datetime(2026, 7, 2), "驳回")
    fill(no_approver, "B", "业务员建议", None, dt.datetime(2026, 7, 2), "通过")
    fill(bad_grade, "S", "战略客户", "王经理", dt.datetime(2026, 7, 2), "通过")
    last = max(r for r, _ in by_code.values()) + 1  # a row for a customer the data does not know
    for h, v in (("客户编码", "C99999"), ("建议等级", "A"), ("理由", "新客户"), ("审批人", "王经理"),
                 ("状态", "通过")):
        ws.cell(last, col[h], v)
    reviewed = tmp_path / "评审结果.xlsx"
    wb.save(reviewed)

    # the next run, given that workbook as the reviews source
    cfg = _project(tmp_path, demo, reviews="评审结果.xlsx")
    assert main(["run", "-c", str(cfg), "-q", "-o", str(tmp_path / "output" / "第二次.xlsx")]) == EXIT_OK
    header, rows = _table(tmp_path / "output" / "第二次.xlsx", "客户分级管理表")
    col = {h: i for i, h in enumerate(header)}
    got = {r[col["客户编码"]]: r for r in rows}
    r = got[approved]
    assert (r[col["等级"]], r[col["人工指定"]]) == ("C", "人工指定")
    assert "人工指定：王经理 2026-07-02 通过，理由 连续两季度回款逾期 → C（评审，有效期至 2026-12-31；按规则为 A）" \
        in r[col["分级依据"]]
    assert [r[col[h]] for h in REVIEW] == ["C", "连续两季度回款逾期", "王经理", dt.datetime(2026, 7, 2),
                                           dt.datetime(2026, 12, 31), "通过"]  # carried forward
    today = dt.date.today().isoformat()
    assert got[later][col["等级"]] == "A" and f"人工指定：李总 {today} 通过，理由 新签年度框架协议" in got[later][col["分级依据"]]
    for code in (rejected, no_approver, bad_grade):
        assert got[code][col["等级"]] == "A" and not got[code][col["人工指定"]]
    # what the meeting wrote is shown again, also where it did not (yet) become a pin
    assert [got[rejected][col[h]] for h in REVIEW] == ["B", "销售建议降级", "王经理", dt.datetime(2026, 7, 2), None, "驳回"]
    assert [got[no_approver][col[h]] for h in REVIEW] == ["B", "业务员建议", None, dt.datetime(2026, 7, 2), None, "通过"]
    untouched = next(c for c in got if c not in (approved, later, rejected, no_approver, bad_grade))
    assert all(got[untouched][col[h]] is None for h in REVIEW)

    _, problems = _table(tmp_path / "output" / "第二次.xlsx", "数据问题")
    text = {(p[1], p[4], p[5], p[6]) for p in problems}
    assert ("评审结果.xlsx", "审批人", None, f"客户 {no_approver} 的评审已通过但没有审批人（请填写审批人），已忽略") in text
    assert ("评审结果.xlsx", "建议等级", "S",
            f"客户 {bad_grade} 的评审的建议等级未在 grades 中定义（已定义：A、B、C、暂定），已忽略") in text
    assert ("评审结果.xlsx", "客户编码", "C99999", "人工指定的客户不在本期客户中，已忽略") in text
    assert ("评审结果.xlsx", "审批日期", None, f"客户 {later} 的评审没有审批日期，按本次运行日期 {today} 记录") in text
    assert not any(rejected in str(p[6]) for p in problems)

    # audited in the history
    db = tmp_path / "output" / "客户分级历史.sqlite"
    with sqlite3.connect(db) as conn:
        audit = conn.execute("SELECT customer_code, grade, rule_grade, approved_by, approved_on, reason, valid_until, "
                             "origin, source FROM pin_audit WHERE origin = '评审' ORDER BY customer_code").fetchall()
        stored = conn.execute("SELECT grade, pinned, explanation, salesperson FROM customer_grades "
                              "WHERE customer_code = ?", (approved,)).fetchone()
        config_text = conn.execute("SELECT config_text FROM runs").fetchone()[0]
    assert sorted(audit) == sorted([
        (approved, "C", "A", "王经理", "2026-07-02", "连续两季度回款逾期", "2026-12-31", "评审",
         f"评审结果.xlsx / 客户分级管理表 第 {by_code[approved][0]} 行"),
        (later, "A", "C", "李总", today, "新签年度框架协议", None, "评审",
         f"评审结果.xlsx / 客户分级管理表 第 {by_code[later][0]} 行"),
    ])
    assert stored[:2] == ("C", 1) and "人工指定：王经理 2026-07-02 通过" in stored[2] and stored[3]
    assert config_text == cfg.read_text(encoding="utf-8")
    capsys.readouterr()
    assert main(["history", "customer", approved, "-c", str(cfg)]) == EXIT_OK
    assert "2026H1（2026-06-30）：C（人工指定）  " in capsys.readouterr().out


def test_reviews_source_without_review_columns_is_a_clear_input_error(tmp_path: Path, demo: tuple[Path, Any],
                                                                     capsys) -> None:  # type: ignore[no-untyped-def]
    cfg = _project(tmp_path, demo, reviews="demo_data/customers_*.xls")
    assert main(["run", "-c", str(cfg), "-q"]) == 3
    err = capsys.readouterr().err
    assert "[E205]" in err and "评审表" in err and "状态" in err


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_ROW = st.fixed_dictionaries({
    "customer_code": st.sampled_from(["C1", "C2", "C3"]),
    "grade": st.sampled_from(["", "A", "B", "S"]),
    "reason": st.sampled_from(["", "理由"]),
    "by": st.sampled_from(["", "王经理"]),
    "approved_on": st.sampled_from([None, dt.datetime(2026, 7, 2)]),
    "until": st.sampled_from([None, dt.datetime(2027, 1, 1)]),
    "status": st.sampled_from(["", "待审", "通过", "驳回", "同意"]),
})


@settings(max_examples=80, deadline=None)
@given(st.lists(_ROW, max_size=8))
def test_every_approved_row_becomes_a_pin_or_a_listed_problem(rows: list[dict[str, Any]]) -> None:
    import pandas as pd

    from grading.config import parse_config
    from grading.reviews import pins_from_reviews

    config = parse_config(yaml.safe_dump(base_config(), allow_unicode=True), Path("."), "config.yaml")
    frame = pd.DataFrame([{**r, "_file": "r.xlsx", "_sheet": "评审", "_row": i + 5} for i, r in enumerate(rows)])
    problems: list[Any] = []
    pins = pins_from_reviews(frame if rows else None, config, problems, dt.date(2026, 7, 3))
    skipped = [p for p in problems if p.action == "已跳过"]
    decided = [r for r in rows if r["status"] not in ("", "待审", "驳回")]
    assert len(pins) + len(skipped) == len(decided)  # nothing dropped silently
    assert all(p.pin.by and p.pin.reason and config.policy_key(p.pin.grade) for p in pins)
    assert all(p.approved_on is not None for p in pins)
    notes = [p for p in problems if p.action == "提示"]
    assert len(notes) == sum(1 for p in pins if p.row is not None and rows[p.row - 5]["approved_on"] is None)
