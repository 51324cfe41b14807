"""Every user-caused error path says what to fix, naming file, sheet, field, row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from grading.config import load_config
from grading.errors import (
    ConfigError,
    EmptySheet,
    HeaderNotFound,
    InputErrors,
    InputFileMissing,
    MissingColumn,
    TemplateError,
    UnreadableFile,
)
from grading.pipeline import grade_data, run_to_file

from .conftest import FIXED_TIME


def _sales_only(files: list[str]):  # type: ignore[no-untyped-def]
    def edit(d: dict[str, Any]) -> None:
        d["sources"] = {"sales": {"files": files}}
    return edit


def _errors(write_config, tmp_path: Path, files: list[str]) -> list[Exception]:  # type: ignore[no-untyped-def]
    config = write_config(tmp_path, _sales_only(files))
    with pytest.raises(InputErrors) as info:
        grade_data(config)
    return info.value.errors


def test_missing_column_names_file_sheet_field_aliases_headers_and_closest(write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "s.csv").write_text("单据编号,单据日期,客户编码,含税金额1\nD1,2026-05-03,C1,100\n", encoding="utf-8")
    [err] = _errors(write_config, tmp_path, ["s.csv"])
    assert isinstance(err, MissingColumn)
    text = str(err)
    assert text.startswith("[E205] 销售明细：文件 s.csv 工作表 s：找不到必需的列「价税合计」（字段 amount）。")
    assert "尝试过的列名：价税合计、本币价税合计、含税金额、销售金额" in text
    assert "表头（第 1 行）中找到的列：单据编号、单据日期、客户编码、含税金额1。" in text
    assert "最接近的是「含税金额1」" in text
    assert "columns.amount" in text


def test_config_alias_fixes_missing_column(write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "s.csv").write_text("单据编号,单据日期,客户编码,含税金额1\nD1,2026-05-03,C1,100\n", encoding="utf-8")

    def edit(d: dict[str, Any]) -> None:
        d["sources"] = {"sales": {"files": ["s.csv"], "columns": {"amount": ["含税金额1"]}}}

    result = grade_data(write_config(tmp_path, edit))
    assert result.graded.loc["C1", "net_sales"] == 100


def test_all_file_errors_are_reported_together(write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "a.csv").write_text("日期,金额\n2026-01-01,1\n", encoding="utf-8")
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "blank.csv").write_text("\n,,\n", encoding="utf-8")
    (tmp_path / "fake.xlsx").write_bytes(b"PK\x03\x04 not really a zip")
    (tmp_path / "title.csv").write_text("销售统计表\n打印日期：2026-07-01\n", encoding="utf-8")
    errors = _errors(write_config, tmp_path, ["a.csv", "empty.csv", "blank.csv", "fake.xlsx", "title.csv"])
    kinds = [type(e) for e in errors]
    assert kinds == [MissingColumn, EmptySheet, EmptySheet, UnreadableFile, HeaderNotFound]
    assert str(errors[1]) == "[E203] 文件 empty.csv 是空文件（0 字节），请重新导出。"
    assert str(errors[2]) == "[E203] 文件 blank.csv 工作表 blank 没有任何数据。请确认导出的文件和工作表正确。"
    assert "文件 fake.xlsx 看起来是 Excel (.xlsx/.xlsm/.xlsb/.ods) 格式，但无法读取" in str(errors[3])
    assert str(errors[4]).startswith("[E204] 销售明细：文件 title.csv 工作表 title：在前 30 行中找不到表头")
    assert "文件开头是：第 1 行：销售统计表；第 2 行：打印日期：2026-07-01" in str(errors[4])


def test_missing_file_names_pattern_and_folder(write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    [err] = _errors(write_config, tmp_path, ["exports/*.xlsx"])
    assert isinstance(err, InputFileMissing)
    assert str(err) == (f"[E201] 销售明细：找不到文件 exports/*.xlsx（在 {tmp_path} 下查找）。"
                        "请检查 config.yaml 中 files 的路径，或先导出数据。")


def test_wrong_sheet_name_lists_sheets(write_config, tmp_path, demo) -> None:  # type: ignore[no-untyped-def]
    folder, _ = demo

    def edit(d: dict[str, Any]) -> None:
        d["sources"] = {"sales": {"files": [str(folder / "demo_data" / "sales_kingdee_2025.xlsx")], "sheet": "Sheet1"}}

    with pytest.raises(InputErrors) as info:
        grade_data(write_config(tmp_path, edit))
    assert "没有名为 'Sheet1' 的工作表；找到的工作表：销售出库单序时簿" in str(info.value)


def test_undecodable_bytes_are_reported_not_fatal(write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    body = "单据编号,单据日期,客户编码,客户名称,价税合计\nD1,2026-05-03,C1,华为".encode("gb18030")
    (tmp_path / "s.csv").write_bytes(body + b"\x80,100\n")
    result = grade_data(write_config(tmp_path, _sales_only(["s.csv"])))
    notes = [p for p in result.problems if "无法识别的字节" in p.reason]
    assert len(notes) == 1 and notes[0].file == "s.csv"
    assert result.graded.loc["C1", "net_sales"] == 100


def test_missing_template_and_missing_sheet(demo, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import openpyxl

    folder, _ = demo

    def gone(d: dict[str, Any]) -> None:
        d["output"]["template"] = "nowhere.xlsx"

    with pytest.raises(TemplateError) as info:
        run_to_file(write_config(folder, gone, name="c1.yaml"), tmp_path / "o.xlsx", generated_at=FIXED_TIME)
    assert str(info.value) == f"[E300] 找不到模板文件 {folder / 'nowhere.xlsx'}。请检查 config.yaml 中 output.template 的路径。"

    wb = openpyxl.Workbook()
    wb.active.title = "客户分级管理表"
    wb.save(tmp_path / "t.xlsx")

    def partial(d: dict[str, Any]) -> None:
        d["output"]["template"] = str(tmp_path / "t.xlsx")

    with pytest.raises(TemplateError) as info:
        run_to_file(write_config(folder, partial, name="c2.yaml"), tmp_path / "o.xlsx", generated_at=FIXED_TIME)
    assert str(info.value) == ("[E300] 模板 t.xlsx 缺少工作表：分级汇总、等级变动、数据问题、分级规则；模板中的工作表：客户分级管理表。"
                               "请使用 templates/ 中的默认模板，或把缺少的工作表加回去。")
    assert not (tmp_path / "o.xlsx").exists()


def test_template_without_header_row(demo, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import openpyxl

    folder, _ = demo
    wb = openpyxl.Workbook()
    wb.active.title = "客户分级管理表"
    for name in ("分级汇总", "等级变动", "数据问题", "分级规则"):
        wb.create_sheet(name)
    wb.save(tmp_path / "t.xlsx")

    def edit(d: dict[str, Any]) -> None:
        d["output"]["template"] = str(tmp_path / "t.xlsx")

    with pytest.raises(TemplateError) as info:
        run_to_file(write_config(folder, edit, name="c3.yaml"), tmp_path / "o.xlsx", generated_at=FIXED_TIME)
    assert str(info.value).startswith("[E300] 模板 t.xlsx 的工作表 客户分级管理表 中找不到表头「客户编码」或「客户名称」或「等级」。")


# ------------------------------------------------------------------ config errors

def _config_error(tmp_path: Path, text: str) -> ConfigError:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value


GOOD = """\
sources:
  sales:
    files: [a.csv]
period:
  as_of: 2026-06-30
grading:
  stages:
    - type: thresholds
      metric: 净销售额
      bands:
        - {grade: A, min: 500万}
        - {grade: B, min: 100万}
      else: C
grades:
  A: {label: 关键客户}
  B: {label: 主要客户}
  C: {label: 普通客户}
"""


def test_good_config_loads_with_units() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "config.yaml"
        p.write_text(GOOD, encoding="utf-8")
        config = load_config(p)
    stage = config.grading.stages[0]
    assert [b.min for b in stage.bands] == [5_000_000, 1_000_000]  # type: ignore[union-attr]


def test_config_bands_out_of_order_names_line_and_path(tmp_path) -> None:  # type: ignore[no-untyped-def]
    err = _config_error(tmp_path, GOOD.replace("{grade: A, min: 500万}", "{grade: A, min: 100万}")
                        .replace("{grade: B, min: 100万}", "{grade: B, min: 500万}"))
    assert str(err) == ("[E100] 配置文件有 1 处错误，请修改后重试：\n"
                        "  - config.yaml 第 10 行 grading.stages[0].bands: 分段必须从高到低排列，发现 100万 在 500万 之前")


def test_config_errors_are_all_reported_together(tmp_path) -> None:  # type: ignore[no-untyped-def]
    text = (GOOD.replace("metric: 净销售额", "metric: 销量")
            .replace("as_of: 2026-06-30", "as_of: 2026-13-01\n  mnths: 12")
            .replace("{grade: B, min: 100万}", "{grade: B, min: 100千}"))
    err = _config_error(tmp_path, text)
    lines = str(err).splitlines()
    assert lines[0] == "[E100] 配置文件有 4 处错误，请修改后重试："
    assert lines[1] == "  - config.yaml 第 5 行 period.as_of: 应为日期，格式 YYYY-MM-DD，发现 '2026-13-01'"
    assert lines[2] == "  - config.yaml 第 6 行 period.mnths: 不认识的键"
    assert lines[3].startswith("  - config.yaml 第 10 行 grading.stages[0].metric: 不认识的指标 '销量'，可用的指标：净销售额(net_sales)")
    assert lines[4] == ("  - config.yaml 第 13 行 grading.stages[0].bands[1].min: "
                        "应为数字或带单位的金额（如 500万、1.2亿、3000元、80%），发现 '100千'")


def test_config_undefined_grade_and_bad_type(tmp_path) -> None:  # type: ignore[no-untyped-def]
    err = _config_error(tmp_path, GOOD.replace("else: C", "else: D"))
    assert "config.yaml 第 13 行 grading.stages[0].else: 用到的等级 'D' 没有在 grades 中定义，已定义：A、B、C" in str(err)
    err = _config_error(tmp_path, GOOD.replace("type: thresholds", "type: median"))
    assert ("config.yaml 第 8 行 grading.stages[0]: type 只能是 'thresholds', 'quantile', 'pareto', 'score', "
            "'grid', 'rfm', 'adjust', 'provisional', 'lapsed'") in str(err)


def test_config_yaml_syntax_error_and_missing_section(tmp_path) -> None:  # type: ignore[no-untyped-def]
    err = _config_error(tmp_path, GOOD.replace("  sales:\n", "  sales\n"))
    assert str(err).startswith("[E100] 配置文件有 1 处错误，请修改后重试：\n  - config.yaml 第 3 行: YAML 格式错误")
    err = _config_error(tmp_path, GOOD.split("grading:")[0])
    assert "config.yaml grading: 缺少必填项" in str(err) and "config.yaml grades: 缺少必填项" in str(err)


def test_config_never_executes_code(tmp_path) -> None:  # type: ignore[no-untyped-def]
    err = _config_error(tmp_path, "!!python/object/apply:os.system ['echo hacked']\n")
    assert "YAML 格式错误" in str(err)


def test_binary_file_with_csv_name(write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "s.csv").write_bytes(b"\x00\x01\x02binary\x00" * 50)
    [err] = _errors(write_config, tmp_path, ["s.csv"])
    assert str(err) == ("[E202] 文件 s.csv 不是文本（CSV）也不是可识别的 Excel 文件。"
                        "请确认导出格式为 .xlsx、.xls 或 .csv。")


# ------------------------------------------------------------------ config errors of every rule type

def _stage_error(tmp_path: Path, stage_yaml: str, grades_yaml: str = "") -> str:
    text = GOOD.split("grading:")[0] + "grading:\n  stages:\n" + stage_yaml + \
        "grades:\n  A: {label: 关键客户}\n  B: {label: 主要客户}\n  C: {label: 普通客户}\n" + grades_yaml
    return str(_config_error(tmp_path, text))


def test_config_quantile_and_pareto_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    err = _stage_error(tmp_path, "    - type: quantile\n      metric: 净销售额\n"
                       "      bands: [{grade: A, top: 50%}, {grade: B, top: 20%}]\n      else: C\n")
    assert "config.yaml 第 8 行 grading.stages[0]: top（累计）必须从小到大（累计）排列，发现 0.5 在 0.2 之前" in err
    err = _stage_error(tmp_path, "    - type: pareto\n      metric: 净销售额\n"
                       "      bands: [{grade: A, share: 70%}, {grade: B, share: 120%}]\n      else: C\n")
    assert "config.yaml 第 10 行 grading.stages[0].bands: share 应在 0% 到 100% 之间（如 70%、90%）" in err
    err = _stage_error(tmp_path, "    - type: pareto\n      bands: [{grade: A, share: 70%}]\n      else: C\n")
    assert "grading.stages[0]: 必须二选一：metric（计算出的指标）或 column（客户档案中的列名）" in err


def test_config_adjust_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    first = "    - {type: thresholds, metric: 净销售额, bands: [{grade: A, min: 500万}], else: C}\n"
    err = _stage_error(tmp_path, first + "    - type: adjust\n      when: 回款率 低于 80%\n      down: 1\n")
    assert ("config.yaml 第 10 行 grading.stages[1].when: 条件应写成“指标 运算符 值”，如 回款率 < 80%、潜力 = 高，"
            "发现 '回款率 低于 80%'") in err
    err = _stage_error(tmp_path, first + "    - type: adjust\n      when: 回款率 < 80%\n      down: 1\n      up: 1\n")
    assert "grading.stages[1]: 调整必须且只能有一个动作：up（升 N 级）、down（降 N 级）、at_most（最高为）、at_least（最低为）" in err
    err = _stage_error(tmp_path, first + "    - type: adjust\n      when: 回款率 < 80%\n      at_most: B\n")
    assert ("config.yaml 第 11 行 grading.stages[1].at_most: 等级 'B' 不在前一个分级阶段的等级中：A、C"
            "（调整只在这些等级之间升降）") in err
    err = _stage_error(tmp_path, "    - type: adjust\n      when: 回款率 < 80%\n      down: 1\n")
    assert "第一个阶段必须是分级类型" in err


def test_config_grid_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    grid = ("    - type: grid\n      axes:\n"
            "        - {name: 潜力, column: 潜力, map: {高: A, 中: B}, else: C}\n"
            "        - name: 贡献\n          rule: {type: thresholds, metric: 净销售额, bands: [{grade: 1, min: 100万}],"
            " else: 2}\n")
    err = _stage_error(tmp_path, grid)
    assert ("config.yaml 第 9 行 grading.stages[0].axes: 组合出的等级代码 A1、A2、B1、B2、C1、C2 没有在 grades 中定义"
            "（可逐个定义，或用通配符如 A*、*1），已定义：A、B、C") in err
    err = _stage_error(tmp_path, grid.replace("map: {高: A, 中: B}, ", ""))
    assert "config.yaml 第 10 行 grading.stages[0].axes[0]: 按列分级的轴需要 map（列值 → 级别）和 else（其余值的级别）" in err


def test_config_pins_and_provisional_grades_must_exist(tmp_path) -> None:  # type: ignore[no-untyped-def]
    first = "    - {type: thresholds, metric: 净销售额, bands: [{grade: A, min: 500万}], else: C}\n"
    err = _stage_error(tmp_path, first + "    - {type: provisional, tenure_below_months: 6, grade: 暂定}\n"
                       "  pins:\n    - {customer: C001, grade: Z, reason: 测试, by: 张}\n")
    assert "config.yaml 第 9 行 grading.stages[1].grade: 用到的等级 '暂定' 没有在 grades 中定义，已定义：A、B、C" in err
    assert "config.yaml 第 11 行 grading.pins[0].grade: 用到的等级 'Z' 没有在 grades 中定义，已定义：A、B、C" in err


def test_config_score_grid_and_policy_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    score = ("    - type: score\n      indicators:\n"
             "        - {metric: 净销售额, weight: 1, bands: [{min: 0, points: 1}], linear: {low: 0, high: 1, points_high: 9}}\n"
             "        - {metric: 回款率, weight: 0, linear: {low: 50%, high: 50%, points_high: 9}}\n"
             "      grades: [{grade: B, min: 3}, {grade: A, min: 7}]\n      else: C\n")
    err = _stage_error(tmp_path, score)
    assert "第 10 行 grading.stages[0].indicators[0]: 每个指标必须三选一：bands（分段给分）、linear（线性给分）或 map（文字列按值给分" in err
    assert "第 11 行 grading.stages[0].indicators[1].weight: 必须大于 0，发现 0" in err
    assert "第 11 行 grading.stages[0].indicators[1].linear: linear 的 low 和 high 不能相等" in err
    assert "第 12 行 grading.stages[0].grades: 分数段必须从高到低排列，发现 3 在 7 之前" in err
    one_axis = "    - type: grid\n      axes:\n        - {name: 潜力, column: 潜力, map: {高: A}, else: C}\n"
    assert "config.yaml 第 9 行 grading.stages[0].axes: 至少需要 2 项" in _stage_error(tmp_path, one_axis)
    first = "    - {type: thresholds, metric: 净销售额, bands: [{grade: A, min: 500万}], else: C}\n"
    err = _stage_error(tmp_path, first, "  D: {label: 小客户, colour: red}\n")
    assert "grades.D.colour: 格式不对（颜色写作 #RRGGBB），发现 'red'" in err
