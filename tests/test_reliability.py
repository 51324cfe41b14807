"""Broken and hostile inputs and faults: each case asserts the exit code, the exact message the
user sees, and that the inputs, the previous output and the history are unchanged (hashes).

The README's reliability table counts the cases of this module (RELIABILITY_CASES)."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
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


def test_history_export_over_the_config_is_refused(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg = project(tmp_path)
    assert run("-c", str(cfg), "-q") == EXIT_OK
    before = hashes(tmp_path)
    assert main(["history", "customer", "C001", "-c", str(cfg), "-o", str(cfg)]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert err.startswith(f"[E106] 配置文件有 1 处错误，请修改后重试：\n  - config.yaml -o: 输出路径 {cfg} 是要保留的文件（配置文件：")
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


def test_history_locked_by_a_writer_at_start_is_busy(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    cfg = project(tmp_path)
    assert run("-c", str(cfg), "-q") == EXIT_OK
    before = hashes(tmp_path)
    monkeypatch.setattr(history, "BUSY_TIMEOUT", 0.2)
    writer = sqlite3.connect(tmp_path / DB)
    try:
        writer.execute("BEGIN EXCLUSIVE")  # another program is writing: even reading must wait
        assert run("-c", str(cfg), "-q", "--as-of", "2026-07-31", "--period", "2026M7") == EXIT_BUSY
    finally:
        writer.rollback()
        writer.close()
    err = capsys.readouterr().err
    assert err.startswith(f"[E403] 历史数据库 {tmp_path / DB} 正被另一个程序占用（数据库忙）")
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


KILL_AFTER_MOVE = """
import os, signal, sys
from grading import outputs
from etl.cli import main
real = outputs._replace
def replace_then_die(src, dst):
    real(src, dst)
    if str(dst).endswith(".xlsx"):  # the new workbook is in place, the history not yet committed
        os.kill(os.getpid(), signal.SIGKILL)
outputs._replace = replace_then_die
sys.exit(main(["run", "-c", sys.argv[1], "-q", "--as-of", "2026-05-31"]))
"""


def test_run_killed_after_the_move_is_undone_by_the_next_run(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    import signal

    cfg = project(tmp_path)
    assert run("-c", str(cfg), "-q") == EXIT_OK
    before = hashes(tmp_path)
    proc = subprocess.run([sys.executable, "-c", KILL_AFTER_MOVE, str(cfg)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert hashes(tmp_path)[str(OUTPUT)] != before[str(OUTPUT)]  # what the user would see without the fix
    (tmp_path / "exports" / "sales.csv").write_text("bad", encoding="utf-8")  # the next run fails on input
    assert run("-c", str(cfg)) == EXIT_INPUT
    out = capsys.readouterr().out
    assert f"上次运行在写入输出后、记录历史前中断，已恢复之前的输出 {OUTPUT.name}（与历史记录一致）。" in out
    after = hashes(tmp_path)  # SQLite may leave its own (empty) rollback journal: its file, not ours
    assert {k: v for k, v in after.items() if not k.startswith("exports") and not k.endswith("-journal")} == \
        {k: v for k, v in before.items() if not k.startswith("exports")}


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


# ------------------------------------------------------------------ no crash, bounded

def refused(tmp: Path, capsys: pytest.CaptureFixture[str], code: int, *args: str) -> str:
    """Run once (a previous output and history exist), break the input, run again: exit `code`,
    nothing changed on disk; returns stderr."""
    before = hashes(tmp)
    assert run("-c", str(tmp / "config.yaml"), "-q", *args) == code
    assert hashes(tmp) == before
    return capsys.readouterr().err


def with_previous(tmp: Path, sales: bytes | str, name: str = "sales.csv",
                  edit: Callable[[dict[str, Any]], None] | None = None) -> None:
    """A good run first (output + history), then the export replaced by `sales`."""
    cfg = project(tmp, name=name, edit=edit)
    assert run("-c", str(cfg), "-q") == EXIT_OK
    (tmp / "exports" / name).write_bytes(sales.encode("utf-8") if isinstance(sales, str) else sales)


def test_header_only_export_exits_3(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    with_previous(tmp_path, HEADER)
    err = refused(tmp_path, capsys, EXIT_INPUT)
    assert err.startswith("[E206] 销售明细没有可用的数据行（文件：sales.csv，共读取 1 行）。"
                          "跳过的行：文件只有表头（或标题），没有数据行。请确认导出的期间和筛选条件，或修正上述问题后重试。\n"
                          "上一次的输出文件保持不变。\n")


def test_every_row_dropped_exits_3_with_counts_by_reason(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    with_previous(tmp_path, HEADER + "2026-01-01,X1,,张三,100\n2026-01-02,X2,C1,李四,abc\n"
                  "2026-01-03,X3,C2,王五,\n2026-01-04,X4,C3,赵六,x\n合计,,,,100\n")
    err = refused(tmp_path, capsys, EXIT_INPUT)
    assert err.startswith("[E206] 销售明细没有可用的数据行（文件：sales.csv，共读取 6 行）。跳过的行：金额不是有效数字 2 行；"
                          "合计/小计行，不计入客户数据 1 行；客户编码为空 1 行；金额为空 1 行。")


def _far_corner_xlsx(path: Path, title: str = "Sheet") -> None:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = title
    for line in (HEADER + GOOD_ROWS).splitlines():
        ws.append(line.split(","))
    ws["XFD1048576"] = 1
    wb.save(path)


def in_child(*args: str) -> subprocess.CompletedProcess[str]:
    """grade-etl in a child process limited to 3 GB of address space (today calamine aborts it: exit 134)."""
    script = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30)); "
              "from etl.cli import main; sys.exit(main(sys.argv[1:]))")
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120,
                          check=False)


def test_far_corner_cell_is_refused_before_calamine_allocates(tmp_path) -> None:  # type: ignore[no-untyped-def]
    _far_corner_xlsx(tmp_path / "far.xlsx")
    with_previous(tmp_path, (tmp_path / "far.xlsx").read_bytes(), name="sales.xlsx")
    before = hashes(tmp_path)
    proc = in_child("run", "-c", str(tmp_path / "config.yaml"), "-q")
    assert proc.returncode == EXIT_INPUT, proc.stderr[-2000:]
    assert proc.stderr.startswith(
        "[E207] 文件 sales.xlsx 工作表 Sheet 的单元格 XFD1048576 有内容，数据区域因此达到 1,048,576 行 × 16,384 列"
        "（超过 60,000,000 个单元格的上限），为避免耗尽内存已停止读取。请在 Excel 中删除数据右侧和下方多余的单元格"
        "（选中多余的列或行 → 删除）后保存，再重新运行。\n上一次的输出文件保持不变。\n")
    assert hashes(tmp_path) == before
    assert not list((tmp_path / "output").glob("*.lock"))


def test_history_seed_refuses_far_corner_workbook(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = project(tmp_path)
    _far_corner_xlsx(tmp_path / "old.xlsx", "客户分级管理表")
    before = hashes(tmp_path)
    proc = in_child("history", "seed", str(tmp_path / "old.xlsx"), "--period", "2025H2", "-c", str(cfg))
    assert proc.returncode == EXIT_INPUT, proc.stderr[-2000:]
    assert proc.stderr.startswith("[E207] 文件 old.xlsx 工作表 客户分级管理表 的单元格 XFD1048576 有内容")
    assert hashes(tmp_path) == before


@pytest.mark.parametrize(("body", "detail"), [
    ("<table><tr><td colspan=400000000>单据日期</td></tr></table>", "第 1 行的 colspan=400000000 超过上限 1,000"),
    ("<table><tr><td>a</td></tr><tr><td rowspan=99999999>b</td></tr></table>", "第 2 行的 rowspan=99999999 超过上限 65,534"),
    ("<table><tr>" + "<td colspan=1000>x</td>" * 17 + "</tr></table>", "第 1 行展开后有 17,000 列，超过上限 16,384 列"),
])
def test_html_spans_are_bounded(tmp_path, capsys, body, detail) -> None:  # type: ignore[no-untyped-def]
    with_previous(tmp_path, f"<html><body>{body}</body></html>", name="sales.xls")
    err = refused(tmp_path, capsys, EXIT_INPUT)
    assert err.startswith(f"[E207] 文件 sales.xls 是网页/XML 格式的“Excel”，{detail}，为避免耗尽内存已停止读取。"
                          "请在 ERP 中重新导出（或在 Excel 中打开后另存为 .xlsx）再试。\n")


XML2003 = ('<?xml version="1.0"?><Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet" '
           'xmlns:ss="urn:schemas-microsoft-com:office:spreadsheet"><Worksheet ss:Name="S"><Table>'
           '<Row><Cell><Data ss:Type="String">单据日期</Data></Cell></Row>{row}</Table></Worksheet></Workbook>')


@pytest.mark.parametrize(("row", "detail"), [
    ('<Row ss:Index="999999999"><Cell><Data ss:Type="String">a</Data></Cell></Row>',
     "第 2 行的 ss:Index=999999999 超过上限 1,048,576"),
    ('<Row><Cell ss:Index="400000000"><Data ss:Type="String">a</Data></Cell></Row>',
     "第 2 行的 ss:Index=400000000 超过上限 16,384"),
    ('<Row><Cell ss:MergeAcross="400000000"><Data ss:Type="String">a</Data></Cell></Row>',
     "第 2 行的 ss:MergeAcross=400000000 超过上限 16,383"),
])
def test_xml_2003_indexes_and_merges_are_bounded(tmp_path, capsys, row, detail) -> None:  # type: ignore[no-untyped-def]
    with_previous(tmp_path, XML2003.format(row=row), name="sales.xls")
    err = refused(tmp_path, capsys, EXIT_INPUT)
    assert err.startswith(f"[E207] 文件 sales.xls 是网页/XML 格式的“Excel”，{detail}，为避免耗尽内存已停止读取。")


def test_csv_field_over_128_kb(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    big = '"' + "长" * 70_000 + '"'
    with_previous(tmp_path, HEADER + GOOD_ROWS + f"2026-01-01,X9,C9,{big},1\n")
    err = refused(tmp_path, capsys, EXIT_INPUT)
    assert err.startswith("[E208] 文件 sales.csv 第 37 行长达 205 KB，超过每行 128 KB 的上限（正常的导出每行只有几百字节）。"
                          "文件可能已损坏、换行符丢失或不是数据导出，请检查后重新导出。\n")


def test_csv_multiline_field_over_the_field_limit(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    with_previous(tmp_path, HEADER + GOOD_ROWS + '2026-01-01,X9,C9,"' + "名\n" * 70_000 + '",1\n')
    err = refused(tmp_path, capsys, EXIT_INPUT)
    assert err.startswith("[E208] 文件 sales.csv 从第 37 行开始的一条记录（到第 65573 行）无法按 CSV 读取（field larger than field limit (131072)），"
                          "可能有未配对的引号或超长的内容。请检查后重新导出。\n")


def test_csv_line_of_50_mb(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    with_previous(tmp_path, (HEADER + GOOD_ROWS).encode() + b"9" * (50 << 20) + b"\n")
    err = refused(tmp_path, capsys, EXIT_INPUT)
    assert err.startswith("[E208] 文件 sales.csv 第 37 行长达 50.0 MB，超过每行 128 KB 的上限")


def test_csv_nul_bytes_name_the_line(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    with_previous(tmp_path, (HEADER + GOOD_ROWS * 40).encode() + b"2026-01-01,X\x00\x009,C9,n,1\n")
    err = refused(tmp_path, capsys, EXIT_INPUT)
    assert err.startswith("[E208] 文件 sales.csv 第 1402 行含有空字符（NUL，字节 0x00，共 2 个），文件可能已损坏或不是文本导出。"
                          "请重新导出为 CSV（UTF-8）或 .xlsx 后再试。\n")


@pytest.mark.parametrize(("first", "second", "expected"), [
    ("utf-8", "gbk", "第 1 行是 UTF-8，第 37 行是 GBK/GB18030"),
    ("gbk", "utf-8", "第 1 行是 GBK/GB18030，第 37 行是 UTF-8"),
])
def test_csv_mixed_utf8_and_gbk(tmp_path, capsys, first, second, expected) -> None:  # type: ignore[no-untyped-def]
    data = (HEADER + GOOD_ROWS).encode(first) + GOOD_ROWS.replace("客户", "北京客户").encode(second)
    with_previous(tmp_path, data)
    err = refused(tmp_path, capsys, EXIT_INPUT)
    assert err.startswith(f"[E209] 文件 sales.csv 混用了两种编码：{expected}，按任何一种读取都会有一部分变成乱码，已停止读取。"
                          "请把各部分按同一种编码（建议 UTF-8）重新导出或另存后再合并。\n")


def _config_text(tmp: Path, text: str) -> None:
    project(tmp)
    assert run("-c", str(tmp / "config.yaml"), "-q") == EXIT_OK
    (tmp / "config.yaml").write_text(text, encoding="utf-8")


def test_yaml_billion_laughs_is_refused_before_expanding(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    lol = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
    _config_text(tmp_path, lol + "sources: *i\n")
    err = refused(tmp_path, capsys, EXIT_CONFIG)
    assert err == ("[E100] 配置文件有 1 处错误，请修改后重试：\n  - config.yaml 第 5 行: 别名（*引用）展开后超过 100,000 个值，"
                   "已拒绝读取（可能是恶意构造的文件）；请少用或不用 & 和 * 引用\n")


@pytest.mark.parametrize("deep", ["grading: " + "[" * 3000 + "]" * 3000 + "\n",
                                  "".join("  " * i + f"k{i}:\n" for i in range(2000)) + "  " * 2000 + "v: 1\n"])
def test_yaml_deep_nesting_is_a_config_error(tmp_path, capsys, deep) -> None:  # type: ignore[no-untyped-def]
    _config_text(tmp_path, deep)
    err = refused(tmp_path, capsys, EXIT_CONFIG)
    assert err.startswith("[E100] 配置文件有 1 处错误，请修改后重试：\n  - config.yaml 第 ")
    assert err.endswith(" 行: 嵌套层数超过 50 层，配置文件不需要这么深的结构，请检查缩进或括号是否配对\n")


def test_yaml_duplicate_key_names_both_lines(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    project(tmp_path)
    text = (tmp_path / "config.yaml").read_text(encoding="utf-8")
    _config_text(tmp_path, text + "grading:\n  stages: []\n")
    first = 1 + text.splitlines().index("grading:")
    last = len(text.splitlines()) + 1
    err = refused(tmp_path, capsys, EXIT_CONFIG)
    assert err == ("[E100] 配置文件有 1 处错误，请修改后重试：\n"
                   f"  - config.yaml 第 {last} 行 grading: 键 grading 重复：第 {first} 行和第 {last} 行都写了它（只会用后一个），"
                   "请删除或合并其中一个\n")


@pytest.mark.parametrize(("args", "line"), [(("--as-of", "9999-12-31"), "第 6 行 period.as_of"),
                                            (("--as-of", "0001-01-01"), "第 6 行 period.as_of")])
def test_as_of_out_of_range(tmp_path, capsys, args, line) -> None:  # type: ignore[no-untyped-def]
    project(tmp_path)
    assert run("-c", str(tmp_path / "config.yaml"), "-q") == EXIT_OK
    err = refused(tmp_path, capsys, EXIT_CONFIG, *args)
    assert err == (f"[E100] 配置文件有 1 处错误，请修改后重试：\n  - config.yaml {line}: 截止日期 {args[1]} 超出允许范围 "
                   "1900-01-01 至 2099-12-31\n")


def test_read_only_output_folder_exits_4_naming_it(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    if os.geteuid() == 0:  # root writes anywhere: make the folder a file's child instead
        cfg = project(tmp_path, edit=lambda d: d.update(output={"file": "blocker/out/{period}.xlsx"}))
        (tmp_path / "blocker").write_text("a file where a folder should be", encoding="utf-8")
        folder = tmp_path / "blocker" / "out"
        reason = "Not a directory"
    else:
        cfg = project(tmp_path)
        folder = tmp_path / "output"
        folder.mkdir()
        folder.chmod(0o555)
        reason = "Permission denied"
    before = hashes(tmp_path)
    try:
        assert run("-c", str(cfg), "-q") == EXIT_OUTPUT
    finally:
        folder.chmod(0o755) if folder.is_dir() else None
    err = capsys.readouterr().err
    assert err.startswith(f"[E404] 无法在输出文件夹 {folder} 中创建运行锁文件：{reason}。"
                          "请检查该文件夹是否存在且可写（只读文件夹、权限不足），或把 output.file 改到可写的文件夹。\n")
    assert hashes(tmp_path) == before


def test_unexpected_error_exits_1_with_log_and_releases_lock(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from grading import pipeline

    cfg = project(tmp_path)
    assert run("-c", str(cfg), "-q") == EXIT_OK
    before = hashes(tmp_path)

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("模拟的内部错误")

    monkeypatch.setattr(pipeline, "compute_metrics", boom)
    assert run("-c", str(cfg), "-q") == 1
    err = capsys.readouterr().err
    assert err.startswith("内部错误（请把以下信息和日志发给维护人员）：\nTraceback")
    assert "RuntimeError: 模拟的内部错误" in err and f"日志：{tmp_path / 'logs'}" in err
    assert hashes(tmp_path) == before
    assert not (tmp_path / "output" / (OUTPUT.name + ".lock")).exists()


# ------------------------------------------------------------------ nothing misread silently

def test_amounts_in_other_forms_are_listed_not_guessed(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    odd = ["inf", "nan", "1e308", "1,2345", "1_000", "-inf"]
    rows = "".join(f"2026-03-0{i + 1},Z{i},C9{i},怪客户{i},{v if ',' not in v else chr(34) + v + chr(34)}\n"
                   for i, v in enumerate(odd))
    cfg = project(tmp_path, HEADER + GOOD_ROWS + rows + "2026-03-09,Z9,C001,客户1,—\n"
                  "2026-03-09,Z8,C001,客户1,\"(1,000.00)\"\n2026-03-09,Z7,C001,客户1,\"2,000-\"\n")
    before = hashes(tmp_path)
    assert run("-c", str(cfg)) == EXIT_OK
    out = capsys.readouterr().out
    assert "期间 2025-07-01 至 2026-06-30：7 个客户，期间内明细 38 行（期间外 0 行未计入）。" in out
    assert "  [已跳过] 销售明细 金额不是有效数字：6 行（金额无法读取）\n" in out
    assert "  [已修正] 金额写法特殊（括号负数/货币符号），已按数值读取：3 条\n" in out
    for i, v in enumerate(odd):
        assert f"sales.csv / sales 第 {37 + i} 行 列「价税合计」 值 {v!r}：金额不是有效数字（已跳过）" in out
    assert {k: v for k, v in hashes(tmp_path).items() if k.startswith(("exports", "config", "templates"))} == before
    import openpyxl

    ws = openpyxl.load_workbook(tmp_path / OUTPUT, read_only=True)["客户分级管理表"]
    cells = [v for r in ws.iter_rows(values_only=True) for v in r]
    assert cells.count("C001") == 1 and not [v for v in cells if isinstance(v, str) and v.startswith("C99")]


def test_two_columns_for_one_field_stop_and_name_the_config_key(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    header = "单据日期,单据编号,客户编码,客户名称,价税合计,价税合计\n"
    with_previous(tmp_path, header + GOOD_ROWS.replace("\n", ",1\n"))
    err = refused(tmp_path, capsys, EXIT_INPUT)
    assert err.startswith(
        "[E210] 销售明细：文件 sales.csv 工作表 sales 第 1 行有 2 列的列名都是「价税合计」（第 E 列、第 F 列），都对应字段「价税合计」，"
        "无法确定用哪一列，已停止。请在 config.yaml 的 sources.sales.columns 中指定，例如 amount: [\"价税合计#2\"] "
        "表示用第 2 个「价税合计」列（第 F 列）；或在导出中删除或改名多余的列。\n")


def test_config_pick_of_a_duplicate_column_is_used(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    header = "单据日期,单据编号,客户编码,客户名称,价税合计,价税合计\n"
    cfg = project(tmp_path, header + GOOD_ROWS.replace("\n", ",1\n"),
                  edit=lambda d: d["sources"]["sales"].update(columns={"amount": ["价税合计#2"]}))
    assert run("-c", str(cfg)) == EXIT_OK
    assert "  C 普通客户：7 个客户，净销售额 35.00" in capsys.readouterr().out


# ------------------------------------------------------------------ many problems, bounded

def test_problems_beyond_the_limit_go_to_a_csv_beside(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import csv

    import openpyxl

    from grading import problems

    monkeypatch.setattr(problems, "KEEP_PER_REASON", 5)
    bad = "".join(f"2026-02-0{1 + i % 9},B{i},C{i % 7 + 1:03d},客户{i % 7 + 1},x{i}\n" for i in range(30))
    cfg = project(tmp_path, HEADER + GOOD_ROWS + bad)
    assert run("-c", str(cfg)) == EXIT_OK
    out = capsys.readouterr().out
    assert "  [已跳过] 销售明细 金额不是有效数字：30 行（金额无法读取）\n" in out
    assert "    …… 另有 15 条，见工作表「数据问题」\n" in out
    assert "注意：数据问题共 30 条，工作表「数据问题」每类只列出前 5 条，完整清单见 客户分级管理表_2026H1_数据问题.csv\n" in out
    with open(tmp_path / "output" / "客户分级管理表_2026H1_数据问题.csv", encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["序号", "文件", "工作表", "行号", "列", "值", "问题", "处理"]
    assert rows[1:] == [[str(i + 1), "sales.csv", "sales", str(37 + i), "价税合计", f"x{i}", "金额不是有效数字", "已跳过"]
                        for i in range(30)]
    ws = openpyxl.load_workbook(tmp_path / OUTPUT, read_only=True)["数据问题"]
    values = [v for r in ws.iter_rows(values_only=True) for v in r if isinstance(v, str)]
    assert [v for v in values if v.startswith("x")] == ["x0", "x1", "x2", "x3", "x4"]
    assert ("…… 「金额不是有效数字」共 30 条，此处只列出前 5 条，完整清单见 输出文件旁的「<输出文件名>_数据问题.csv」（grade-etl 运行时生成）"
            in values)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc (Linux)")
def test_200k_bad_rows_stay_within_memory(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rows = "".join(f"2026-02-{1 + i % 28:02d},B{i},C{i % 5000:04d},客户{i % 5000},x{i % 97}\n" for i in range(200_000))
    cfg = project(tmp_path, HEADER + GOOD_ROWS + rows)
    # VmHWM is this process's own peak: ru_maxrss keeps the parent's (pytest's) size across fork + exec
    script = ("import sys; from etl.cli import main; code = main(['run', '-c', sys.argv[1], '-q']); "
              "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM'))); sys.exit(code)")
    proc = subprocess.run([sys.executable, "-c", script, str(cfg)], capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == EXIT_OK, proc.stderr[-2000:]
    peak_mb = int(proc.stdout.split()[-1]) / 1024
    assert peak_mb < 500, f"peak RSS {peak_mb:.0f} MB"  # every problem a Python object: about 1.4 GB
    with open(tmp_path / "output" / "客户分级管理表_2026H1_数据问题.csv", encoding="utf-8-sig") as fh:
        assert sum(1 for _ in fh) == 200_001


# ------------------------------------------------------------------ the README table

TABLE = {  # README class → tests of this module (each parametrised case counts)
    "输出覆盖输入": ("test_output_over_an_input_is_refused_before_reading",
                 "test_output_file_with_period_over_the_config_is_refused",
                 "test_history_database_over_an_input_is_refused",
                 "test_history_export_over_the_config_is_refused"),
    "输出与历史同步": ("test_busy_history_keeps_previous_output_and_history",
                  "test_history_locked_by_a_writer_at_start_is_busy",
                  "test_killed_run_between_move_and_commit_is_undone_next_run",
                  "test_run_killed_after_the_move_is_undone_by_the_next_run",
                  "test_killed_run_after_commit_keeps_its_output"),
    "文件权限": ("test_output_permissions_follow_umask",),
    "自身输出不作输入": ("test_glob_matching_own_outputs_skips_them",),
    "期间名称": ("test_period_name_must_be_a_file_name_part",),
    "空数据": ("test_header_only_export_exits_3", "test_every_row_dropped_exits_3_with_counts_by_reason"),
    "远角单元格": ("test_far_corner_cell_is_refused_before_calamine_allocates",
              "test_history_seed_refuses_far_corner_workbook"),
    "HTML/XML 合并": ("test_html_spans_are_bounded", "test_xml_2003_indexes_and_merges_are_bounded"),
    "CSV": ("test_csv_field_over_128_kb", "test_csv_multiline_field_over_the_field_limit", "test_csv_line_of_50_mb",
            "test_csv_nul_bytes_name_the_line", "test_csv_mixed_utf8_and_gbk"),
    "大量问题": ("test_problems_beyond_the_limit_go_to_a_csv_beside", "test_200k_bad_rows_stay_within_memory"),
    "配置文件": ("test_yaml_billion_laughs_is_refused_before_expanding", "test_yaml_deep_nesting_is_a_config_error",
             "test_yaml_duplicate_key_names_both_lines", "test_as_of_out_of_range"),
    "文件夹与内部错误": ("test_read_only_output_folder_exits_4_naming_it",
                  "test_unexpected_error_exits_1_with_log_and_releases_lock"),
    "金额与重复列": ("test_amounts_in_other_forms_are_listed_not_guessed",
                "test_two_columns_for_one_field_stop_and_name_the_config_key",
                "test_config_pick_of_a_duplicate_column_is_used"),
}


def test_readme_reliability_table_matches_the_tests() -> None:
    """Cases per class = the collected test cases of this module (so the table stays true), handled = cases,
    no crashes, no files lost (each test asserts the exit code, the message and the hashes)."""
    import re

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                           str(Path(__file__))], capture_output=True, text=True, cwd=root, timeout=120, check=False)
    ids = [line.split("::", 1)[1] for line in proc.stdout.splitlines() if "::" in line]
    names = [i.split("[", 1)[0] for i in ids]
    listed = {t for tests in TABLE.values() for t in tests}
    assert set(names) - listed == {"test_readme_reliability_table_matches_the_tests"}
    expected = [(cls, sum(names.count(t) for t in tests)) for cls, tests in TABLE.items()]
    readme = (root / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\S[^|]*?) \| (\d+) \| (\d+) \| (\d+) \| (\d+) \|", readme, re.M)
    assert [(c, int(n)) for c, n, *_ in rows] == expected
    assert all(n == h and c == lost == "0" for _, n, h, c, lost in rows)
    total = sum(n for _, n in expected)
    assert f"| **合计** | **{total}** | **{total}** | **0** | **0** |" in readme
