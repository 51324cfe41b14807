"""Write the 规则预览 rows as a new workbook (XlsxWriter, no template): Chinese headers, text always
written as text (never a formula), numbers with formats, written to a temp file beside the target
and moved into place, so an earlier file stays as it was if anything fails."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import xlsxwriter

from .errors import OutputError, OutputLocked, PreviewTargetError
from .preview import Preview
from .preview_layout import SHEET, Row, rows
from .write_xlsx import temp_beside

MAX_CHARS = 32767
_NUM_FORMATS = {"int": "#,##0", "money": "#,##0.00;[Red]-#,##0.00", "pct": "0.0%", "num": "#,##0.##"}


def check_target(target: Path, protected: set[Path]) -> None:
    if target.resolve() in protected:
        raise PreviewTargetError(
            f"预览不会覆盖运行的输出、历史数据库、模板、配置或输入文件：{target}。请用 -o 指定另一个文件名。")


def write_preview(target: Path, preview: Preview, generated_at: dt.datetime | None = None) -> Path:
    """Write the preview workbook atomically; returns `target`."""
    with temp_beside(target, ".xlsx.tmp") as (fd, tmp):
        os.close(fd)
        _build(Path(tmp), rows(preview), generated_at or dt.datetime.now().replace(microsecond=0))
        try:
            os.replace(tmp, target)
        except PermissionError:
            raise OutputLocked(f"无法写入 {target}：文件可能正在 Excel 中打开。请关闭后重试。") from None
        except OSError as exc:
            raise OutputError(f"无法写入 {target}：{exc.strerror}。") from None
    return target


def _build(path: Path, sheet_rows: list[Row], generated_at: dt.datetime) -> None:
    wb = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_urls": False,
                                         "strings_to_numbers": False})
    wb.set_properties({"title": SHEET, "subject": "客户分级", "created": generated_at})
    base = {"font_name": "微软雅黑", "font_size": 10, "valign": "vcenter"}
    cell = {**base, "border": 1, "border_color": "#BFBFBF"}
    fmt = {
        "title": wb.add_format({**base, "bold": True, "font_size": 16, "font_color": "#1F3864"}),
        "note": wb.add_format({**base, "font_color": "#595959"}),
        "section": wb.add_format({**base, "bold": True, "font_size": 12, "font_color": "#1F3864"}),
        "header": wb.add_format({**cell, "bold": True, "bg_color": "#1F3864", "font_color": "#FFFFFF",
                                 "align": "center", "text_wrap": True}),
        "text": wb.add_format(cell),
        **{k: wb.add_format({**cell, "num_format": v}) for k, v in _NUM_FORMATS.items()},
    }
    ws = wb.add_worksheet(SHEET)
    ws.hide_gridlines(2)
    ws.set_column(0, 0, 14)
    ws.set_column(1, 3, 12)
    ws.set_column(4, 8, 13)
    ws.set_column(9, 12, 40)
    for r, row in enumerate(sheet_rows):
        for c, value in enumerate(row.values):
            style = fmt[row.formats[c]] if row.kind == "data" and c < len(row.formats) else fmt.get(row.kind, fmt["text"])
            if value is None:
                if row.kind in ("data", "header"):
                    ws.write_blank(r, c, None, style)
            elif isinstance(value, bool):
                ws.write_string(r, c, "是" if value else "", style)
            elif isinstance(value, (int, float)):
                ws.write_number(r, c, value, style)
            else:
                ws.write_string(r, c, str(value)[:MAX_CHARS], style)
    ws.write_string(len(sheet_rows) + 1, 0, f"生成时间：{generated_at:%Y-%m-%d %H:%M}；本文件只是预览，没有写入历史记录。",
                    fmt["note"])
    ws.freeze_panes(3, 0)
    ws.activate()
    wb.close()
