"""The ribbon's 预览 button: grade the data with the workbook's rules (its config.yaml sheet, or
the config file found as for 分级) and with the rules of the last stored run (the config text in
the history database), and write the comparison into a 规则预览 sheet of the open workbook.
Nothing is stored in the history and no other sheet is touched."""

from __future__ import annotations

from pathlib import Path

import xlwings as xw

from grading.errors import GradingError, NoStoredRun
from grading.preview import Preview, preview_last_run
from grading.preview_layout import SHEET, rows

from .addin import TITLE, RunOutcome, _status, find_config, quiet_excel
from .book_io import cell_value, read_sheet, sheet_names


def write_preview_sheet(book: xw.Book, preview: Preview) -> int:
    """Replace the contents of the 规则预览 sheet (added at the end if missing) in one write."""
    table = [list(r.values) for r in rows(preview)]
    width = max((len(r) for r in table), default=1)
    data = [[cell_value(v) for v in r] + [None] * (width - len(r)) for r in table]
    if SHEET in sheet_names(book):
        sheet = book.sheets[SHEET]
        sheet.used_range.clear_contents()
    else:
        sheet = book.sheets.add(SHEET, after=book.sheets[len(book.sheets) - 1])
    sheet.range((1, 1), (len(data), width)).value = data
    return len(data)


def summary(preview: Preview) -> str:
    kinds = preview.movers["change"].value_counts()
    moves = "，".join(f"{k} {n}" for k, n in kinds.items())
    return (f"规则预览已写入工作表「{SHEET}」：\n{preview.before}\n{preview.after}\n"
            f"等级变动的客户 {len(preview.movers)} 个" + (f"（{moves}）" if moves else "") +
            f"；服务政策变化的客户 {len(preview.policy)} 个。\n历史记录未改动。")


def preview(book: xw.Book, config_path: str | Path | None = None) -> RunOutcome:
    """The 预览 button's seam (tested with autospec fakes); user-fixable errors become an alert."""
    app = book.app
    with quiet_excel(app):
        try:
            config, _ = find_config(book, config_path)
            db = config.history_path()
            if db is None:
                raise NoStoredRun("config.yaml 中 history.enabled 为 false，没有上次运行的规则可比较。")
            result = preview_last_run(config, db, _status(app), sheet_reader=lambda name: read_sheet(book, name))
            write_preview_sheet(book, result)
            message = summary(result)
            app.alert(message, title=TITLE, mode="info")
            return RunOutcome(None, message, True)
        except GradingError as exc:
            message = f"{exc}\n\n没有写入规则预览。"
            app.alert(message, title=f"{TITLE} - 需要处理", mode="critical")
            return RunOutcome(None, message, False)


def main_preview() -> None:
    """Entry point of the ribbon's 预览 button (RunPython "import xlplugin; xlplugin.main_preview()")."""
    preview(xw.Book.caller())
