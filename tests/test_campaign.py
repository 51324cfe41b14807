"""Cases found by trying the product as a new user and as a hostile file would (after issues 9–12):
each asserts the exit code, the exact message and that no input, config, template, history or
previous output changed."""

from __future__ import annotations

from pathlib import Path

from etl.cli import EXIT_CONFIG, EXIT_OK, EXIT_OUTPUT, main

from .test_reliability import DB, OUTPUT, hashes, project, run


# ------------------------------------------------------------ history customer -o

def test_history_customer_csv_over_the_config_is_refused(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg = project(tmp_path)
    assert run("-c", str(cfg), "-q") == EXIT_OK
    capsys.readouterr()
    before = hashes(tmp_path)
    for target in ("config.yaml", "exports/sales.csv", "templates/客户分级管理表.xlsx", str(DB), str(OUTPUT)):
        assert main(["history", "-c", str(cfg), "customer", "C001", "-o", str(tmp_path / target)]) == EXIT_CONFIG
        err = capsys.readouterr().err
        assert err.startswith(f"[E106] 配置文件有 1 处错误，请修改后重试：\n  - config.yaml history customer -o: 输出路径 "
                              f"{tmp_path / target} 与本次运行要读取的文件相同（"), err
        assert "写入会覆盖它，已停止，未修改任何文件。请把 -o 改到另一个文件，例如 C001.csv。" in err
    assert hashes(tmp_path) == before


def test_history_customer_csv_into_a_missing_folder_is_an_output_error(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg = project(tmp_path)
    assert run("-c", str(cfg), "-q") == EXIT_OK
    capsys.readouterr()
    before = hashes(tmp_path)
    target = tmp_path / "没有 这个" / "C001.csv"
    assert main(["history", "-c", str(cfg), "customer", "C001", "-o", str(target)]) == EXIT_OUTPUT
    assert capsys.readouterr().err.startswith(
        f"[E404] 无法写入文件夹 {target.parent}（文件夹不存在）。请先创建该文件夹，或把 -o 改到已有的文件夹。\n")
    assert hashes(tmp_path) == before


def test_history_customer_csv_is_written_and_rewritten(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg = project(tmp_path)
    assert run("-c", str(cfg), "-q") == EXIT_OK
    target = tmp_path / "C001.csv"
    for _ in range(2):  # a second export replaces the first one (it is the tool's own CSV)
        assert main(["history", "-c", str(cfg), "customer", "C001", "-o", str(target)]) == EXIT_OK
    text = target.read_text(encoding="utf-8-sig")
    assert text.splitlines()[0] == "期间,截止日期,等级,规则等级,综合得分,净销售额,人工指定,分级依据"
    assert text.splitlines()[1].startswith("2026H1,2026-06-30,C,C,,")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".~")] == []


# ------------------------------------------------------------ output path is a folder

def test_output_that_is_a_folder_is_refused_before_reading(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg = project(tmp_path)
    folder = tmp_path / "结果.xlsx"
    folder.mkdir()
    (folder / "keep.txt").write_text("别动", encoding="utf-8")
    before = hashes(tmp_path)
    assert run("-c", str(cfg), "-o", str(folder), "-q") == EXIT_OUTPUT
    assert capsys.readouterr().err.startswith(
        f"[E405] 输出路径 {folder} 是一个文件夹，不能写成工作簿；未读取也未修改任何文件。"
        "请把 output.file（或命令行 -o）改成文件名，例如 output/客户分级管理表_{period}.xlsx。\n")
    assert hashes(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "logs") == ["config.yaml", "exports", "templates", "结果.xlsx"]
