"""The run's own files on disk: which paths are outputs, refusing an output that
is also an input, and replacing the output together with the history commit.

Publishing keeps the previous output aside (`.~<name>~previous`) until the
history transaction has committed, and puts it back if the commit fails. A
marker (`.~<name>~pending.json`) written before the swap lets the next run
reconcile what a killed run left: the swap is kept if its history run is in the
database, undone otherwise. Every temp file of a run starts with `.~<name>~`.
"""

from __future__ import annotations

import csv
import fnmatch
import glob
import json
import os
import signal
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from .config_model import Config
from .safe_text import xml_escape as escape
from .errors import OutputFolderNotWritable, OutputIsFolder, OutputLocked, OutputOverInput
from . import problems_csv
from .problems import Problem, ProblemLog

OUTPUT_SHEETS = ("客户分级管理表", "数据问题", "等级变动", "分级汇总", "分级规则")


def temp_prefix(output: Path) -> str:
    return f".~{output.name}~"


def _backup(output: Path) -> Path:
    return output.with_name(temp_prefix(output) + "previous")


def _marker(output: Path) -> Path:
    return output.with_name(temp_prefix(output) + "pending.json")


def file_mode() -> int:
    """The mode of a file the user creates (0666 less the umask)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def side_files(output: Path) -> list[Path]:
    """Files written beside the workbook: full CSV lists (<stem>_<sheet>.csv)."""
    return [output.with_name(f"{output.stem}_{s}.csv") for s in OUTPUT_SHEETS]


def _real(path: Path) -> str:
    return os.path.normcase(os.path.realpath(path))


def _same(a: Path, b: Path) -> bool:
    if _real(a) == _real(b):
        return True
    try:
        return os.path.samefile(a, b)  # hard links, case-insensitive folders
    except OSError:
        return False


def _inputs(config: Config, own: Callable[[Path], bool]) -> list[tuple[str, Path]]:
    """(config key, path) of every file a run reads: exports, overrides, config, template."""
    found: list[tuple[str, Path]] = []
    for name in ("sales", "receivables", "customers", "overrides"):
        source = getattr(config.sources, name)
        if source is None:
            continue
        for pattern in source.files:
            full = pattern if Path(pattern).is_absolute() else str(config.base_dir / pattern)
            found += [(f"sources.{name}.files", Path(p)) for p in glob.glob(full, recursive=True)
                      if not own(Path(p))]
    found.append(("配置文件", config.base_dir / config.source_file))
    found.append(("output.template", config.resolve(config.output.template)))
    return found


def check_targets(config: Config, output: Path) -> None:
    """Refuse (before anything is read) an output or history database that is one of the run's inputs,
    and an output that is an existing folder (it would be moved aside as the previous output)."""
    if output.is_dir():
        raise OutputIsFolder(f"输出路径 {output} 是一个文件夹，不能写成工作簿；未读取也未修改任何文件。"
                             "请把 output.file（或命令行 -o）改成文件名，例如 output/客户分级管理表_{period}.xlsx。")
    protected = _inputs(config, own_output_check(config, output))
    db = config.history_path(output)
    targets: list[tuple[str, Path]] = [("output.file（或 -o）", output)]
    targets += [("output.file（或 -o）", p) for p in side_files(output)]
    if db is not None:
        targets.append(("history.database", db))
    for key, target in targets:
        for what, source in protected:
            if not _same(target, source):
                continue
            raise OutputOverInput(
                config.source_file, key,
                f"输出路径 {target} 与本次运行要读取的文件相同（{what}：{source}），写入会覆盖它，已停止，未读取也未修改任何文件。"
                "请把 output.file（或命令行 -o）改到另一个文件，例如 output/客户分级管理表_{period}.xlsx。")


def check_export_target(config: Config, target: Path) -> None:
    """An exported file (history customer -o) must not replace an input, the config, the template, the
    output workbook or the history database."""
    protected = _inputs(config, own_output_check(config, target))
    protected.append(("output.file", config.output_path()))
    db = config.history_path()
    if db is not None:
        protected.append(("history.database", db))
    for what, source in protected:
        if _same(target, source):
            raise OutputOverInput(
                config.source_file, "-o",
                f"输出路径 {target} 是要保留的文件（{what}：{source}），写入会覆盖它，已停止，未修改任何文件。"
                "请用 -o 指定另一个文件名，例如 C00001.csv。")


def write_csv_atomically(target: Path, rows: Iterable[Sequence[object]]) -> None:
    """A CSV (UTF-8 with BOM) written to a temp file beside `target` and moved into place."""
    if not target.parent.is_dir():
        raise OutputFolderNotWritable(f"无法写入文件夹 {target.parent}（文件夹不存在）。"
                                      "请先创建该文件夹，或把 -o 改到已有的文件夹。")
    if target.is_dir():
        raise OutputIsFolder(f"输出路径 {target} 是一个文件夹，请把 -o 改成文件名。")
    try:
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(target), suffix=".csv.tmp", dir=target.parent)
    except OSError as exc:
        raise OutputFolderNotWritable(f"无法在文件夹 {target.parent} 中创建文件：{exc.strerror}。"
                                      "请检查文件夹是否可写。") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8-sig", newline="") as fh:
            csv.writer(fh).writerows(rows)
        os.chmod(tmp, file_mode())
        _replace(tmp, target)
    except BaseException:
        _unlink(Path(tmp))
        raise


def is_our_workbook(path: Path) -> bool:
    """A workbook this tool wrote: an xlsx package whose sheets include 客户分级管理表 and 数据问题."""
    try:
        with zipfile.ZipFile(path) as zf:
            with zf.open("xl/workbook.xml") as fh:
                head = fh.read(1 << 20).decode("utf-8", errors="replace")
    except (OSError, KeyError, zipfile.BadZipFile, ValueError):
        return False
    return all(f'name="{escape(s)}"' in head for s in ("客户分级管理表", "数据问题"))


def _is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


def own_output_check(config: Config, output: Path) -> Callable[[Path], bool]:
    """A test for a path matched by a `files:` glob: is it one of this tool's own outputs (the workbook of
    this or another period, the CSV lists beside it, temp files, backups, run locks, the history database)?
    Workbooks count only if their sheets are this tool's, so an export is never mistaken for one."""
    outputs = {_real(output), _real(config.resolve(config.output.file.replace("{period}", "*")))}
    db = config.history_path(output)

    def own(path: Path) -> bool:
        name = path.name
        if name.startswith(".~") or name.endswith(".lock"):
            return True  # temp files, backups, markers and run locks of this tool
        real = _real(path)
        if db is not None and real == _real(db):
            return _is_sqlite(path)
        for out in outputs:
            stem, _ = os.path.splitext(out)
            if any(fnmatch.fnmatchcase(real, f"{stem}_{sheet}.csv") for sheet in OUTPUT_SHEETS):
                return True
            if fnmatch.fnmatchcase(real, out) and is_our_workbook(path):
                return True
        return False
    return own


# ------------------------------------------------------------ output + history in step

@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Ctrl-C ignored inside the block (in the main thread; no other thread receives it): used from the
    moment the output is in place until the run's history has committed and the previous output is
    removed, so the run ends as a finished run (an interrupt there would put the previous output back
    beside a committed history)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def publish(tmp: str, output: Path, around: Callable[[], AbstractContextManager[object]],
            tag: Mapping[str, str] | None) -> None:
    """Move `tmp` into place as `output` inside `around()` (the history transaction, committed when it
    exits). With a `tag`, the previous output is kept aside until that commit succeeds, and restored if
    the commit (or anything inside) fails."""
    if tag is None:
        with around():
            _replace(tmp, output)
        return
    backup, marker = _backup(output), _marker(output)
    had_previous = output.exists()
    _write_marker(marker, {**tag, "had_previous": "1" if had_previous else ""})
    swapped = False
    with ExitStack() as finishing:
        try:
            with around():
                if had_previous:
                    _replace(str(output), backup)
                swapped = True
                try:
                    _replace(tmp, output)
                except BaseException:
                    if had_previous:
                        os.replace(backup, output)
                    swapped = False
                    raise
                # in place: Ctrl-C from here on would undo the output after the history's commit
                finishing.enter_context(interrupts_deferred())
        except BaseException:
            if swapped:
                _undo(output, backup, had_previous)
            _unlink(marker)
            raise
        _unlink(backup)
        _unlink(marker)


def _replace(src: str, dst: Path) -> None:
    try:
        os.replace(src, dst)
    except PermissionError:
        raise OutputLocked(
            f"无法替换输出文件 {dst}：文件可能正在 Excel 中打开。请关闭该文件后重试；上一次的输出文件保持不变。"
        ) from None


def _undo(output: Path, backup: Path, had_previous: bool) -> None:
    if had_previous and backup.exists():
        os.replace(backup, output)
    elif not had_previous:
        _unlink(output)


def _write_marker(marker: Path, data: Mapping[str, str]) -> None:
    tmp = marker.with_name(marker.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(dict(data), fh, ensure_ascii=False)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, marker)


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def reconcile(output: Path, committed: Callable[[Mapping[str, str]], bool]) -> list[str]:
    """Finish or undo what a killed run left beside `output`, and remove its temp files; returns notes.
    Call while holding the run lock of `output`."""
    notes: list[str] = []
    marker, backup = _marker(output), _backup(output)
    if marker.exists():
        try:
            tag: Mapping[str, str] = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            tag = {}
        if tag and committed(tag):
            _unlink(backup)
            notes.append(f"上次运行在记录历史后中断，已保留其输出 {output.name}。")
        elif tag:
            _undo(output, backup, bool(tag.get("had_previous")))
            notes.append(f"上次运行在写入输出后、记录历史前中断，已恢复之前的输出 {output.name}（与历史记录一致）。")
        _unlink(marker)
    elif backup.exists():  # the run died after committing and restoring is not needed
        _unlink(backup)
    removed = list(_leftovers(output))
    for path in removed:
        _unlink(path)
    if removed:
        notes.append(f"已清除上次中断的运行留下的 {len(removed)} 个临时文件。")
    return notes


def _leftovers(output: Path) -> Iterable[Path]:
    prefix = temp_prefix(output)
    if not output.parent.is_dir():
        return []
    return [p for p in output.parent.iterdir() if p.name.startswith(prefix) and p.name.endswith(".tmp")]


def write_problems_csv(problems: Sequence[Problem], output: Path) -> list[str]:
    """When the workbook lists only the first problems of a kind, all of them go to
    `<output>_数据问题.csv` (UTF-8 with BOM, formula-safe), streamed; returns the note for the user."""
    draft = draft_problems_csv(problems, output)
    return [] if draft is None else place_problems_csv(draft)


@dataclass(frozen=True)
class ProblemsCsvDraft:
    """The full problem list written to a temporary file beside the output, not yet in place."""

    temp: Path
    target: Path
    notes: list[str]


def draft_problems_csv(problems: Sequence[Problem], output: Path) -> ProblemsCsvDraft | None:
    """The full list in a temporary file (None when the workbook lists every problem); see write_problems_csv."""
    if not isinstance(problems, ProblemLog) or not problems.truncated:
        return None
    target = output.with_name(f"{output.stem}_数据问题.csv")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(output), suffix=".csv.tmp", dir=output.parent)
    except OSError as exc:
        raise OutputFolderNotWritable(f"无法在文件夹 {output.parent} 中创建输出文件：{exc.strerror}。"
                                      "请检查文件夹是否存在且可写。") from None
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, file_mode())
        with os.fdopen(fd, "wb") as fh:
            fh.write(b"\xef\xbb\xbf")  # UTF-8 with BOM: Excel opens it as UTF-8
            for block in problems_csv.lines(problems.blocks()):
                fh.write(block)
    except BaseException:
        _unlink(Path(tmp))
        raise
    note = (f"数据问题共 {len(problems):,} 条，工作表「数据问题」每类只列出前 {problems.keep:,} 条，"
            f"完整清单见 {target.name}")
    return ProblemsCsvDraft(Path(tmp), target, [note])


def place_problems_csv(draft: ProblemsCsvDraft) -> list[str]:
    """Move the drafted list into place; returns its note for the user."""
    try:
        os.replace(draft.temp, draft.target)
    except BaseException:
        _unlink(draft.temp)
        raise
    return draft.notes


