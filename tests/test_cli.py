"""grade-etl: exit codes and the exact text users see."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from etl.cli import EXIT_CONFIG, EXIT_INPUT, EXIT_OK, EXIT_OUTPUT, main


def test_demo_generates_data_and_workbook(write_config, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    config = write_config(tmp_path)
    code = main(["demo", "--config", str(tmp_path / "config.yaml")])
    out = capsys.readouterr().out
    assert code == EXIT_OK, out
    assert (tmp_path / "demo_data" / "sales_u8_2026Q1.csv").exists()
    target = config.output_path()
    assert target == tmp_path / "output" / "客户分级管理表_2026H1.xlsx" and target.exists()
    assert f"已生成：{target}" in out
    assert "期间 2025-07-01 至 2026-06-30：300 个客户" in out
    assert "[已跳过] 销售明细 金额不是有效数字：1 行（金额无法读取）" in out
    assert ("[已跳过] 销售明细 日期无法识别（支持 2026-05-03、2026/5/3、2026年5月3日、Excel 日期）：1 行，金额 100.00，"
            "占全部金额 0.0%") in out
    assert "请注意（1 条）：\n  ！238 个客户只有部分明细有成本" in out
    assert "sales_u8_2026Q1.csv / sales_u8_2026Q1 第" in out


def test_run_with_as_of_and_output(write_config, tmp_path, demo, capsys) -> None:  # type: ignore[no-untyped-def]
    folder, _ = demo
    write_config(folder, name="cli.yaml")
    out_file = tmp_path / "x.xlsx"
    code = main(["run", "-c", str(folder / "cli.yaml"), "--as-of", "2026-03-31", "-o", str(out_file), "-q"])
    assert code == EXIT_OK and out_file.exists()
    assert capsys.readouterr().out == ""


def test_config_error_exit_code_and_message(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "config.yaml").write_text("sources: {}\n", encoding="utf-8")
    assert main(["run", "-c", str(tmp_path / "config.yaml")]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert err.startswith("[E100] 配置文件有 4 处错误，请修改后重试：\n")
    assert "  - config.yaml grading: 缺少必填项\n" in err
    assert "  - config.yaml 第 1 行 sources.sales: 缺少必填项\n" in err


def test_input_error_exit_code_and_message(write_config, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    def edit(d: dict[str, Any]) -> None:
        d["sources"] = {"sales": {"files": ["missing/*.csv"]}}

    write_config(tmp_path, edit)
    assert main(["run", "-c", str(tmp_path / "config.yaml")]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert (f"[E201] 销售明细：找不到文件 missing/*.csv（在 {tmp_path} 下查找）。"
            "请检查 config.yaml 中 files 的路径，或先导出数据。\n上一次的输出文件保持不变。\n日志：") in err
    [log] = (tmp_path / "logs").glob("grade-etl_*.log")
    assert "失败（退出码 3）：[E201] 销售明细：找不到文件 missing/*.csv" in log.read_text(encoding="utf-8")


def test_template_error_exit_code(write_config, tmp_path, demo, capsys) -> None:  # type: ignore[no-untyped-def]
    folder, _ = demo

    def edit(d: dict[str, Any]) -> None:
        d["output"]["template"] = "none.xlsx"

    write_config(folder, edit, name="cli_t.yaml")
    assert main(["run", "-c", str(folder / "cli_t.yaml"), "-o", str(tmp_path / "o.xlsx")]) == EXIT_OUTPUT
    assert "[E300] 找不到模板文件" in capsys.readouterr().err


def test_check_config_prints_rules(capsys) -> None:  # type: ignore[no-untyped-def]
    root = Path(__file__).resolve().parents[1]
    assert main(["check-config", "-c", str(root / "config.yaml")]) == EXIT_OK
    out = capsys.readouterr().out
    assert "配置文件" in out and "检查通过" in out
    assert "阶段1 综合评分（加权评分）：净销售额（权重 0.5）：≥500万 得 9 分" in out
    assert "等级 A：关键客户：拜访 4-6 次/月" in out


def test_python_dash_m_entry_point() -> None:
    proc = subprocess.run([sys.executable, "-m", "etl", "--help"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and "客户分级" in proc.stdout


def test_init_writes_starter_files_and_never_overwrites(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    root = Path(__file__).resolve().parents[1]
    folder = tmp_path / "新项目"
    assert main(["init", str(folder)]) == EXIT_OK
    out = capsys.readouterr().out
    for name in ("config.yaml", "config.schema.json", "templates/客户分级管理表.xlsx"):
        assert f"已创建：{folder / name}\n" in out
        assert (folder / name).read_bytes() == (root / name).read_bytes()
    assert "下一步：按注释修改 config.yaml" in out
    (folder / "config.yaml").write_text("# 我改过的配置\n", encoding="utf-8")
    assert main(["init", str(folder)]) == EXIT_OK
    out = capsys.readouterr().out
    assert f"已存在，未覆盖：{folder / 'config.yaml'}\n" in out and "已创建" not in out
    assert (folder / "config.yaml").read_text(encoding="utf-8") == "# 我改过的配置\n"


def test_missing_config_points_at_init(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["run", "-c", str(tmp_path / "config.yaml")]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert f"找不到配置文件 config.yaml（在文件夹 {tmp_path.resolve()} 中查找）。" in err
    assert "；新建一份带注释的配置：grade-etl init" in err


def test_check_config_checks_the_template(write_config, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    import openpyxl

    write_config(tmp_path)
    assert main(["check-config", "-c", str(tmp_path / "config.yaml")]) == EXIT_OK
    assert (f"模板 {tmp_path / 'templates' / '客户分级管理表.xlsx'} 检查通过（工作表：总览、客户分级管理表、分级汇总、"
            "业务员与地区、应收与信用、等级变动、数据问题、分级规则）。") in capsys.readouterr().out
    template = tmp_path / "templates" / "客户分级管理表.xlsx"
    wb = openpyxl.load_workbook(template)
    del wb["等级变动"]
    wb["数据问题"]["G4"] = "说明"
    wb.save(template)
    assert main(["check-config", "-c", str(tmp_path / "config.yaml")]) == EXIT_OUTPUT
    assert capsys.readouterr().err == (
        f"[E310] 模板 {template} 不能用于本配置：\n"
        "  - 缺少工作表「等级变动」\n"
        "  - 工作表「数据问题」中找不到表头「问题」\n"
        "请使用默认模板（grade-etl init 可复制一份），或把缺少的工作表和表头加回去（列的顺序可以调整，不需要的列可以删除）。\n")


def test_default_template_is_used_when_the_configured_default_is_absent(write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from grading.defaults import default_template

    config = write_config(tmp_path)
    (tmp_path / "templates" / "客户分级管理表.xlsx").unlink()
    assert config.template_path() == default_template()
    root = Path(__file__).resolve().parents[1]
    assert default_template() == root / "templates" / "客户分级管理表.xlsx"  # a checkout uses the original


def test_demo_refuses_a_config_that_reads_real_exports(write_config, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """`grade-etl demo` in a folder whose config.yaml reads the user's own exports would grade those and
    record the demo's period in the user's history: it stops before writing anything."""
    def own_exports(data: dict[str, Any]) -> None:
        data["sources"]["sales"]["files"] = ["exports/*.xlsx"]

    write_config(tmp_path, own_exports)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    code = main(["demo", "--config", str(tmp_path / "config.yaml")])
    err = capsys.readouterr().err
    assert code == EXIT_CONFIG
    assert err.startswith("[E107] grade-etl demo 只用演示数据运行，但 ")
    assert "sources.sales.files 读取 exports/*.xlsx（不在演示数据文件夹 " in err
    assert "grade-etl init" in err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("argv, said", [
    (["run", "--as-of", "2026-13-01"], "grade-etl run：错误：参数 --as-of：日期格式应为 YYYY-MM-DD，发现 '2026-13-01'"),
    (["rnu"], "grade-etl：错误：「rnu」不是可用的命令，可选：run, demo, check-config, init, history, preview"),
    (["run", "--bogus"], "grade-etl：错误：无法识别的参数：--bogus（用 -h 查看可用参数）"),
    (["history", "seed", "old.xlsx"], "grade-etl history seed：错误：缺少必需的参数：--period"),
    (["run", "-o"], "grade-etl run：错误：参数 -o/--output 后面需要一个值"),
])
def test_a_mistyped_command_line_is_answered_in_chinese(argv, said, capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("用法：grade-etl") and err.rstrip("\n").endswith("\n" + said), err
    assert "usage" not in err and "error" not in err


def test_help_headings_are_chinese(capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit):
        main(["run", "-h"])
    out = capsys.readouterr().out
    assert out.startswith("用法：grade-etl run") and "\n选项：\n" in out and "显示本帮助并退出" in out
    assert "usage" not in out and "options" not in out


def test_ctrl_c_after_the_output_is_in_place_says_the_run_finished(write_config, tmp_path, demo, capsys,  # type: ignore[no-untyped-def]
                                                                     monkeypatch) -> None:
    import etl.cli as cli

    folder, _ = demo
    write_config(folder, name="cli_c.yaml")
    out_file = tmp_path / "c.xlsx"

    def interrupted(*args: object) -> None:  # Ctrl-C while the finished run is being reported
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_report", interrupted)
    assert main(["run", "-c", str(folder / "cli_c.yaml"), "-o", str(out_file), "-q"]) == EXIT_OK
    assert "已中断，但本次运行已经完成：输出文件和历史记录都已更新。" in capsys.readouterr().err
    assert out_file.exists()


def test_ctrl_c_before_the_output_is_in_place_keeps_the_previous_one(write_config, tmp_path, demo, capsys,  # type: ignore[no-untyped-def]
                                                                       monkeypatch) -> None:
    import grading.pipeline as pipeline
    from etl.cli import EXIT_INTERNAL

    folder, _ = demo
    write_config(folder, name="cli_k.yaml")
    out_file = tmp_path / "k.xlsx"
    assert main(["run", "-c", str(folder / "cli_k.yaml"), "-o", str(out_file), "-q"]) == EXIT_OK
    previous = out_file.read_bytes()

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "build_plan", interrupted)
    assert main(["run", "-c", str(folder / "cli_k.yaml"), "-o", str(out_file), "-q"]) == EXIT_INTERNAL
    assert "已取消，上一次的输出文件保持不变。" in capsys.readouterr().err
    assert out_file.read_bytes() == previous
