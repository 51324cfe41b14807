"""Check a template before any data is read: it exists, is an .xlsx package, and has every
sheet and header text the fill plan needs (the plan of a run with no customers, so the check
follows the plan as it grows). All problems are reported together."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pandas as pd

from .config_model import Config
from .errors import TemplateError, TemplateMismatch
from .fill_plan import FillPlan, build_plan
from .layout_match import match_block
from .xlsx_template import load_sheet, shared_strings, workbook_sheets

_MAX_COLUMNS = 200  # bound on the columns an empty plan may ask for


def empty_plan(config: Config) -> FillPlan:
    """The fill plan of a run with no customers and no problems (same sheets and blocks as any run)."""
    graded = pd.DataFrame({"grade": pd.Series([], dtype=object)})
    for _ in range(_MAX_COLUMNS):
        try:
            return build_plan(config, graded, [], dt.datetime(2000, 1, 1))
        except KeyError as exc:  # a column the plan reads: add it, empty
            graded[str(exc.args[0])] = pd.Series([], dtype=object)
    raise RuntimeError("fill plan keeps asking for columns")


def not_a_workbook(path: Path) -> str:
    return (f"模板文件 {path.name} 不是有效的 Excel 工作簿（.xlsx），可能已损坏或是改了扩展名的其他文件。"
            f"请在 Excel 中打开后另存为 .xlsx，或运行 grade-etl init 新文件夹 取得默认模板，再把它复制到 {path}。")


def check_template(config: Config, template: Path | None = None) -> tuple[Path, list[str]]:
    """The template used and its sheet names; raises TemplateError / TemplateMismatch listing every gap."""
    path = template or config.template_path()
    if not path.is_file():
        raise TemplateError(f"找不到模板文件 {path}。请检查 config.yaml 中 output.template 的路径，"
                            "或运行 grade-etl init 复制默认模板。")
    plan = empty_plan(config)
    try:
        return _check_package(plan, path)
    except (zipfile.BadZipFile, OSError, KeyError, ValueError, ET.ParseError):
        raise TemplateError(not_a_workbook(path)) from None


def _check_package(plan: FillPlan, path: Path) -> tuple[Path, list[str]]:
    problems: list[str] = []
    with zipfile.ZipFile(path) as zf:
        sheets = workbook_sheets(zf)
        strings = shared_strings(zf)
        index = dict(sheets)
        for sp in plan.sheets:
            if sp.name not in index:
                if not sp.optional:  # the views' sheets may be deleted: they are skipped
                    problems.append(f"缺少工作表「{sp.name}」")
                continue
            ts = load_sheet(zf, sp.name, index[sp.name], strings)
            cells = {k: c.text for k, c in ts.cells.items()}
            for block in sp.blocks:
                if block.optional:  # a deleted view table is skipped, not an error
                    continue
                try:
                    match_block(cells, block, sp.name, path.name)
                except TemplateError:
                    problems.append(f"工作表「{sp.name}」中找不到表头「{'」或「'.join(block.anchors)}」")
    if problems:
        raise TemplateMismatch(f"模板 {path} 不能用于本配置：\n" + "\n".join(f"  - {p}" for p in problems)
                               + "\n请使用默认模板（grade-etl init 可复制一份），或把缺少的工作表和表头加回去"
                               "（列的顺序可以调整，不需要的列可以删除）。")
    return path, [name for name, _ in sheets]
