"""Broken and hostile inputs and faults: each case asserts the exit code, the exact message the
user sees, and that the inputs, the previous output and the history are unchanged (hashes).

The README's reliability table counts the cases of this module (RELIABILITY_CASES)."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from etl.cli import EXIT_BUSY, EXIT_CONFIG, EXIT_INPUT, EXIT_OK, EXIT_OUTPUT, main
from grading import history

from .conftest import base_config, copy_template

ABC = [{"type": "thresholds", "metric": "净销售额", "else": "C",
        "bands": [{"grade": "A", "min": "500万"}, {"grade": "B", "min": "100万"}]}]
HEADER = "单据日期,单据编号,客户编码,客户名称,价税合计\n"
GOOD_ROWS = "".join(f"2026-0{m}-1{m},XS-{m}{c},C{c:03d},客户{c},{1000 * c + m}.50\n"
                    for m in range(1, 6) for c in range(1, 8))


def project(tmp: Path, sales: bytes | str = HEADER + GOOD_ROWS, name: str = "sales.csv",
            edit: Callable[[dict[str, Any]], None] | None = None) -> Path:
    """A small project: one sales export in exports/, ABC thresholds, the default template."""
    folder = tmp / "exports"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(sales.encode("utf-8") if isinstance(sales, str) else sales)
    copy_template(tmp)
    data = base_config()
    data["sources"] = {"sales": {"files": [f"exports/{name}"]}}
    data["grading"] = {"stages": ABC}
    data["grades"] = {k: v for k, v in data["grades"].items() if k in "ABC"}
    data["period"] = {"as_of": "2026-06-30", "months": 12, "name": "2026H1"}
    if edit:
        edit(data)
    cfg = tmp / "config.yaml"
    cfg.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return cfg


def hashes(folder: Path) -> dict[str, str]:
    """Every file under `folder` (logs left out: each run adds one) → SHA-256."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and "logs" not in p.parts}


def run(*args: str) -> int:
    return main(["run", *args])


OUTPUT = Path("output") / "客户分级管理表_2026H1.xlsx"
DB = Path("output") / "客户分级历史.sqlite"


# ------------------------------------------------------------------ never lose data

@pytest.mark.parametrize("target", ["exports/sales.csv", "exports/../config.yaml", "link.xlsx",
                                    "templates/../templates/客户分级管理表.xlsx"])
def test_output_over_an_input_is_refused_before_reading(tmp_path, capsys, target) -> None:  # type: ignore[no-untyped-def]
    cfg = project(tmp_path)
    (tmp_path / "link.xlsx").symlink_to(tmp_path / "exports" / "sales.csv")
    before = hashes(tmp_path)
    assert run("-c", str(cfg), "-o", target, "-q") == EXIT_CONFIG
    err = capsys.readouterr().err
    out = tmp_path / target
    assert err.startswith(f"[E106] 配置文件有 1 处错误，请修改后重试：\n  - config.yaml output.file（或 -o）: 输出路径 {out} "
                          "与本次运行要读取的文件相同（")
    assert "写入会覆盖它，已停止，未读取也未修改任何文件。请把 output.file（或命令行 -o）改到另一个文件" in err
    assert hashes(tmp_path) == before


def test_output_file_with_period_over_the_config_is_refused(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    def edit(d: dict[str, Any]) -> None:
        d["output"] = {"file": "{period}.yaml"}
    cfg = project(tmp_path, edit=edit)
    before = hashes(tmp_path)
    assert run("-c", str(cfg), "--period", "config", "-q") == EXIT_CONFIG
    assert f"输出路径 {tmp_path / 'config.yaml'} 与本次运行要读取的文件相同（配置文件：" in capsys.readouterr().err
    assert hashes(tmp_path) == before


def test_history_database_over_an_input_is_refused(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    def edit(d: dict[str, Any]) -> None:
        d["history"] = {"database": "exports/sales.csv"}
    cfg = project(tmp_path, edit=edit)
    before = hashes(tmp_path)
    assert run("-c", str(cfg), "-q") == EXIT_CONFIG
    err = capsys.readouterr().err
    assert f"config.yaml history.database: 输出路径 {tmp_path / 'exports/sales.csv'} 与本次运行要读取的文件相同" in err
    assert hashes(tmp_path) == before


def test_busy_history_keeps_previous_output_and_history(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    cfg = project(tmp_path)
    assert run("-c", str(cfg), "-q") == EXIT_OK
    before = hashes(tmp_path)
    monkeypatch.setattr(history, "BUSY_TIMEOUT", 0.2)
    reader = sqlite3.connect(tmp_path / DB)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM runs").fetchall()  # another program holds a read transaction
        assert run("-c", str(cfg), "-q", "--as-of", "2026-05-31") == EXIT_BUSY
    finally:
        reader.close()
    err = capsys.readouterr().err
    assert err.startswith(f"[E403] 历史数据库 {tmp_path / DB} 正被另一个程序占用（数据库忙），等待 0.2 秒后仍未释放。"
                          "数据库没有损坏：请关闭正在打开它的程序（如 DB Browser）后重试；上一次的输出文件和历史记录保持不变。\n")
    assert "损坏或不是数据库" not in err
    assert hashes(tmp_path) == before


def test_killed_run_between_move_and_commit_is_undone_next_run(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg = project(tmp_path)
    assert run("-c", str(cfg), "-q") == EXIT_OK
    output = tmp_path / OUTPUT
    previous = output.read_bytes()
    # what a run killed after moving its workbook into place and before the commit leaves behind
    folder = output.parent
    (folder / f".~{output.name}~previous").write_bytes(previous)
    output.write_bytes(b"new workbook of an uncommitted run")
    (folder / f".~{output.name}~pending.json").write_text(
        '{"period": "2026H1", "started_at": "2026-06-30T23:59:59", "config_hash": "x", "had_previous": "1"}')
    (folder / f".~{output.name}~k2j3.xlsx.tmp").write_bytes(b"half")
    (tmp_path / "exports" / "sales.csv").write_text("bad", encoding="utf-8")  # the next run fails on input
    assert run("-c", str(cfg)) == EXIT_INPUT
    out = capsys.readouterr().out
    assert f"上次运行在写入输出后、记录历史前中断，已恢复之前的输出 {output.name}（与历史记录一致）。" in out
    assert "已清除上次中断的运行留下的 1 个临时文件。" in out
    assert output.read_bytes() == previous
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".~")) == []


def test_killed_run_after_commit_keeps_its_output(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg = project(tmp_path)
    assert run("-c", str(cfg), "-q") == EXIT_OK
    output = tmp_path / OUTPUT
    with sqlite3.connect(tmp_path / DB) as conn:
        started, digest = conn.execute("SELECT started_at, config_hash FROM runs").fetchone()
    current = output.read_bytes()
    folder = output.parent
    (folder / f".~{output.name}~previous").write_bytes(b"older workbook")
    (folder / f".~{output.name}~pending.json").write_text(
        f'{{"period": "2026H1", "started_at": "{started}", "config_hash": "{digest}", "had_previous": "1"}}')
    (tmp_path / "exports" / "sales.csv").write_text("bad", encoding="utf-8")
    assert run("-c", str(cfg)) == EXIT_INPUT
    assert f"上次运行在记录历史后中断，已保留其输出 {output.name}。" in capsys.readouterr().out
    assert output.read_bytes() == current
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".~")) == []


def test_output_permissions_follow_umask(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = project(tmp_path)
    old = os.umask(0o022)
    try:
        assert run("-c", str(cfg), "-q") == EXIT_OK
    finally:
        os.umask(old)
    assert (tmp_path / OUTPUT).stat().st_mode & 0o777 == 0o644


def test_glob_matching_own_outputs_skips_them(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    def edit(d: dict[str, Any]) -> None:
        d["sources"]["sales"]["files"] = ["exports/*"]
        d["output"] = {"file": "exports/客户分级管理表_{period}.xlsx"}
    cfg = project(tmp_path, edit=edit)
    assert run("-c", str(cfg), "-q") == EXIT_OK
    assert run("-c", str(cfg), "-q", "--period", "2026H1b") == EXIT_OK
    before = hashes(tmp_path)
    assert run("-c", str(cfg)) == EXIT_OK
    out = capsys.readouterr().out
    assert ("[提示] 是本程序自己的输出或临时文件，不作为销售明细读取（config.yaml 中 files 的通配符也匹配到了输出文件夹，"
            "建议把导出文件放到单独的文件夹）：4 条") in out
    after = hashes(tmp_path)
    assert {k: v for k, v in after.items() if "2026H1." not in k and "sqlite" not in k} == \
        {k: v for k, v in before.items() if "2026H1." not in k and "sqlite" not in k}


@pytest.mark.parametrize(("period", "shown"), [("2026/06", "/"), ("../..", "/"), ("a<b>", "<、>"),
                                               ("2026..06", ".."), ("x\\y", "\\")])
def test_period_name_must_be_a_file_name_part(tmp_path, capsys, period, shown) -> None:  # type: ignore[no-untyped-def]
    cfg = project(tmp_path)
    before = hashes(tmp_path)
    assert run("-c", str(cfg), "--period", period, "-q") == EXIT_CONFIG
    err = capsys.readouterr().err
    assert err == ("[E100] 配置文件有 1 处错误，请修改后重试：\n"
                   f"  - config.yaml 第 8 行 period.name: 期间名称 {period!r} 会用作输出文件名的一部分，不能含有 {shown}"
                   "（不允许 / \\ .. < > : \" | ? * 和首尾空格），例如 2026H1、202606 或 2026-06\n")
    assert hashes(tmp_path) == before
    assert not (tmp_path / "output").exists()
