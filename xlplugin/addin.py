"""The Excel add-in: the ribbon's Grade button runs `main()`, which hands the
calling workbook to `run(book)`, the seam that holds all logic and is tested
with autospec fakes of xlwings' Book on machines without Excel.

Config is found in this order:
  1. the workbook: a sheet named `config.yaml` (YAML text in column A), or a
     defined name GRADING_CONFIG pointing at a cell that holds a path;
  2. `config.yaml` beside the workbook;
  3. the environment variable KEHU_FENJI_CONFIG;
  4. the starter config shipped with the package (paths relative to the workbook's folder).

A Grade click runs the same pipeline as `grade-etl run` (previous period from the
same history database, stability rule, 上期等级/变动, 等级变动) and records its
period there too (a re-click replaces it) unless `history.record_excel: false`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import xlwings as xw

from grading.config import Config, load_config, parse_config
from grading.defaults import starter_config
from grading.errors import ConfigError, ConfigIssue, GradingError
from grading.pipeline import GradingResult, run_pipeline
from grading.problems import summarise

from .book_io import BookSink, read_sheet, sheet_names

CONFIG_SHEET = "config.yaml"
CONFIG_NAME = "GRADING_CONFIG"
CONFIG_ENV = "KEHU_FENJI_CONFIG"
PROJECT_CONFIG = starter_config()  # the shipped starter config (the wheel's copy, or the checkout's config.yaml)
TITLE = "客户分级"


@dataclass(frozen=True)
class ConfigSource:
    """Where the config came from, for messages and `doctor`."""

    kind: str  # explicit, workbook-sheet, workbook-name, beside-workbook, environment, default
    where: str


def book_folder(book: xw.Book) -> Path | None:
    """The workbook's folder, or None for unsaved books and OneDrive/SharePoint URLs."""
    full = str(book.fullname)
    if full.startswith(("http://", "https://")) or not os.path.isabs(full):
        return None
    return Path(full).parent


def find_config(book: xw.Book, explicit: str | Path | None = None) -> tuple[Config, ConfigSource]:
    if explicit is not None:
        return load_config(explicit), ConfigSource("explicit", str(explicit))
    folder = book_folder(book)
    if CONFIG_SHEET in sheet_names(book):
        rows = book.sheets[CONFIG_SHEET].used_range.options(ndim=2).value or []
        text = "\n".join("" if r[0] is None else str(r[0]) for r in rows)
        base = folder or Path.cwd()
        return parse_config(text, base, f"{book.name}!{CONFIG_SHEET}"), ConfigSource("workbook-sheet", CONFIG_SHEET)
    for name in book.names:
        if name.name.split("!")[-1].upper() == CONFIG_NAME:
            value = name.refers_to_range.value
            if value:
                path = Path(str(value))
                if not path.is_absolute() and folder is not None:
                    path = folder / path
                return load_config(path), ConfigSource("workbook-name", str(path))
    if folder is not None and (folder / "config.yaml").is_file():
        path = folder / "config.yaml"
        return load_config(path), ConfigSource("beside-workbook", str(path))
    env = os.environ.get(CONFIG_ENV)
    if env:
        return load_config(env), ConfigSource("environment", env)
    if PROJECT_CONFIG.is_file() and folder is not None:
        text = PROJECT_CONFIG.read_text(encoding="utf-8-sig")
        return (parse_config(text, folder, PROJECT_CONFIG.name),
                ConfigSource("default", str(PROJECT_CONFIG)))
    raise ConfigError("config.yaml", [ConfigIssue("", None, (
        f"找不到配置文件。请先保存工作簿，把 config.yaml 放在工作簿旁边（grade-etl init 可生成一份），"
        f"或设置环境变量 {CONFIG_ENV}，或在工作簿中加入名为 {CONFIG_SHEET} 的工作表。"))])


@dataclass(frozen=True)
class RunOutcome:
    """What a Grade click did (for tests and the alert)."""

    result: GradingResult | None
    message: str
    ok: bool
    copied_sheets: tuple[str, ...] = ()


def _status(app: xw.App) -> Callable[[str, float], None]:
    def show(message: str, fraction: float) -> None:
        app.status_bar = f"{TITLE}：{message}（{fraction:.0%}）"
    return show


def success_message(result: GradingResult, config: Config) -> str:
    lines = [f"分级完成：{len(result.graded)} 个客户（{config.period.start:%Y-%m-%d} 至 {config.period.as_of:%Y-%m-%d}）"]
    for grade, n in result.grade_counts.items():
        lines.append(f"  {grade} {config.policy(grade).label}：{n} 个")
    comparison = result.comparison
    if comparison is not None and comparison.previous is not None:
        changes = comparison.changes["change"].tolist() if len(comparison.changes) else []
        moves = "，".join(f"{k} {changes.count(k)}" for k in ("升级", "降级", "新增", "流失"))
        lines.append(f"与上期 {comparison.previous} 比较：{moves}（详见工作表「等级变动」）")
    if result.warnings:
        lines.append(f"请注意（{len(result.warnings)} 条）：")
        lines += [f"  ！{text}" for text in result.warnings[:6]]
    if result.problems:
        lines.append(f"数据问题 {len(result.problems)} 条，详见工作表「数据问题」：")
        drops = {d.reason: d for d in result.drops}
        for a, r, n in summarise(result.problems)[:6]:
            drop = drops.get(r) if a == "已跳过" else None
            lines.append(f"  [{a}] 销售明细 {drop.render()}" if drop is not None and drop.lines == n
                         else f"  [{a}] {r}：{n} 条")
    else:
        lines.append("没有数据问题。")
    lines += [f"注意：{note}" for note in result.overflows]
    if result.history is not None:
        lines.append(f"已记录到历史：{result.history}（期间 {config.period.label}）")
    return "\n".join(lines)


def run(book: xw.Book, config_path: str | Path | None = None) -> RunOutcome:
    """Grade into the open workbook. User-fixable errors become a Chinese alert; others propagate
    (xlwings then shows the traceback). Screen updating and calculation are restored in every case."""
    app = book.app
    with quiet_excel(app):
        try:
            config, _ = find_config(book, config_path)
            folder = book_folder(book)
            sink = BookSink(book, config.template_path(), folder / book.name if folder else config.output_path())
            result = run_pipeline(config, sink, config.history_path(), _status(app),
                                  sheet_reader=lambda name: read_sheet(book, name),
                                  record=config.history.record_excel)
            message = success_message(result, config)
            app.alert(message, title=TITLE, mode="info")
            return RunOutcome(result, message, True, tuple(sink.copied))
        except GradingError as exc:
            message = f"{exc}\n\n工作簿未做修改（或只更新了部分工作表），修正后请再点一次「分级」。"
            app.alert(message, title=f"{TITLE} - 需要处理", mode="critical")
            return RunOutcome(None, message, False)


@contextmanager
def quiet_excel(app: xw.App) -> Iterator[None]:
    """Screen updating and calculation off while a button works; both and the status bar restored
    afterwards, also on error."""
    screen, calculation = app.screen_updating, app.calculation
    app.screen_updating = False
    app.calculation = "manual"
    try:
        yield
    finally:
        app.status_bar = False
        app.calculation = calculation
        app.screen_updating = screen


def main() -> None:
    """Entry point of the ribbon button (RunPython "import xlplugin; xlplugin.main()")."""
    run(xw.Book.caller())
