"""Read and normalise every file of every configured source.

Input errors of all files are collected and raised together (InputErrors),
so one run tells the user everything that needs fixing.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .codes import CodeUse, code_findings
from .config_model import Config, SourceConfig
from .errors import EmptyData, InputError, InputErrors, InputFileMissing
from .fields import REQUIRED_FIELDS, InputField, SOURCE_FIELDS, SOURCE_LABELS
from .crosscheck import PeriodLine, period_line
from .derive import derive_amount
from .header import detect_layout
from .normalise import drop_invalid, fast_categorical, normalise
from .problems import Problem, ProblemLog
from .read import RawSheet, expand_globs, read_file
from .read_pool import ReadPool


@dataclass
class SourceData:
    """All rows of one source after normalisation, plus what was read."""

    name: str
    frame: pd.DataFrame
    files: list[str] = field(default_factory=list)
    rows_read: int = 0
    read_seconds: float = 0.0
    normalise_seconds: float = 0.0
    amount_total: float = 0.0     # sales: sum of |amount| of every data line read (dropped ones included)
    notes: list[str] = field(default_factory=list)        # said once, on the first screen
    names_as_codes: bool = False  # no customer-code column: names stand in as codes
    periods: list[PeriodLine] = field(default_factory=list)  # 期间 lines above the header, per sheet


Progress = Callable[[str, float], None]
SheetReader = Callable[[str], "RawSheet | None"]
"""Excel add-in hook: rows of a sheet of the open workbook by name, or None if there is no such sheet."""


def concat_frames(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate per-file frames keeping categorical columns categorical (categories unioned)."""
    if len(frames) == 1:
        return frames[0]
    columns = list(dict.fromkeys(c for f in frames for c in f.columns))
    out: dict[str, object] = {}
    for col in columns:
        parts = [f[col] if col in f else pd.Series([None] * len(f)) for f in frames]
        if all(isinstance(p.dtype, pd.CategoricalDtype) for p in parts):
            out[col] = _union_categoricals(parts)
        else:
            out[col] = pd.concat([p.astype(object) if isinstance(p.dtype, pd.CategoricalDtype) else p
                                  for p in parts], ignore_index=True)
    return pd.DataFrame(out, copy=False)  # the new columns as they are (no consolidating copy)


def _union_categoricals(parts: list[pd.Series]) -> pd.Categorical:
    """The parts one after the other as one categorical with object categories in order of first
    appearance (what union_categoricals(ignore_order=True) gives), hashing every category once:
    the union's ids of each part's categories come from one factorize of all categories."""
    cats = [np.asarray(p.cat.categories, dtype=object) for p in parts]
    ids, union = pd.factorize(np.concatenate(cats), use_na_sentinel=True)
    codes: list[np.ndarray] = []
    offset = 0
    for part, part_cats in zip(parts, cats):
        to_union = np.append(ids[offset: offset + len(part_cats)], -1)  # code -1 (missing) stays -1
        codes.append(to_union[part.cat.codes.to_numpy()])
        offset += len(part_cats)
    return fast_categorical(np.concatenate(codes), union)  # factorize's uniques: distinct, codes in range


def amount_field(config: Config) -> str:
    """The sales field that holds the amount of the configured basis (含税 / 不含税)."""
    return "amount" if config.metrics.amount_basis == "含税" else "amount_excl_tax"


REVIEW_SHEET = "客户分级管理表"  # an output opens on 总览: its 评审 columns are on the main sheet


def _read_source_file(path: Path, name: str, sheet: str | None) -> list[RawSheet]:
    """The configured sheet; for 评审 without one, the output's main sheet when the workbook has it."""
    if name == "reviews" and sheet is None:
        try:
            return read_file(path, REVIEW_SHEET)
        except InputError:
            pass  # another workbook: its first visible sheet, as for every source
    return read_file(path, sheet)


def required_fields(source: str, config: Config) -> tuple[str, ...]:
    req = REQUIRED_FIELDS[source]
    if source == "sales":
        req = tuple(amount_field(config) if k == "amount" else k for k in req)
    return req


def load_sources(config: Config, problems: list[Problem], progress: Progress,
                 sheet_reader: SheetReader | None = None,
                 own_output: Callable[[Path], bool] | None = None, parallel: bool = False) -> dict[str, SourceData]:
    """Every configured source; files the tool wrote itself (`own_output`) are skipped with a note.
    With `parallel` (grade-etl), large inputs are read and normalised in worker processes, two files at a
    time (see grading.read_pool); what the run reports is the same, in the same order, as without."""
    errors: list[InputError] = []
    out: dict[str, SourceData] = {}
    configured = [(n, getattr(config.sources, n)) for n in ("sales", "receivables", "customers", "overrides", "reviews")]
    active = [(n, s) for n, s in configured if s is not None]
    with ReadPool(config, active, load_file, source_paths, sheet_reader, own_output, enabled=parallel) as pool:
        for i, (name, source) in enumerate(active):
            progress(f"读取{SOURCE_LABELS[name]}", i / len(active))
            errors_before = len(errors)
            counts_before = _dropped(problems)
            try:
                out[name] = _load_one(name, source, config, problems, errors, sheet_reader, own_output, pool)
            except InputError as exc:
                errors.append(exc)
                continue
            if name not in ("overrides", "reviews") and len(errors) == errors_before and len(out[name].frame) == 0:
                errors.append(_empty(out[name], _dropped(problems) - counts_before))
    if errors:
        raise InputErrors(errors)
    problems.extend(code_findings(
        (CodeUse(SOURCE_LABELS[n], d.frame) for n, d in out.items() if n not in ("overrides", "reviews")),
        frozenset(SOURCE_LABELS[n] for n, d in out.items() if d.names_as_codes)))
    return out


def _dropped(problems: list[Problem]) -> Counter[str]:
    """Rows dropped so far by reason (skipped rows and 合计/小计 rows), without building a Problem per row."""
    counts = problems.counts() if isinstance(problems, ProblemLog) else Counter((p.action, p.reason) for p in problems)
    out: Counter[str] = Counter()
    for (action, reason), n in counts.items():
        if action == "已跳过" or reason.startswith("合计/小计行"):
            out[reason] += n
    return out


def _empty(data: SourceData, dropped: Counter[str]) -> EmptyData:
    """No usable row in any file of a source: which files, how many rows, and why each row was dropped."""
    files = "、".join(Path(f).name for f in data.files) or "（无）"
    why = "；".join(f"{reason} {n} 行" for reason, n in dropped.most_common()) if dropped else \
        "文件只有表头（或标题），没有数据行"
    return EmptyData(
        f"{SOURCE_LABELS[data.name]}没有可用的数据行（文件：{files}，共读取 {data.rows_read} 行）。"
        f"跳过的行：{why}。请确认导出的期间和筛选条件，或修正上述问题后重试。")


def _load_one(name: str, source: SourceConfig, config: Config, problems: list[Problem],
              errors: list[InputError], sheet_reader: SheetReader | None,
              own_output: Callable[[Path], bool] | None, pool: ReadPool) -> SourceData:
    label = f"{SOURCE_LABELS[name]}："
    fields = SOURCE_FIELDS[name]
    required = required_fields(name, config)
    frames: list[pd.DataFrame] = []
    data = SourceData(name, pd.DataFrame())
    pasted = sheet_reader(source.workbook_sheet) if sheet_reader and source.workbook_sheet else None
    if pasted is not None:  # an export pasted into the open workbook wins over files
        try:
            frames.append(_sheet_frame(pasted, name, source, config, fields, required, label, problems, data))
            data.files.append(f"{pasted.file.name}!{pasted.sheet}")
            data.rows_read += pasted.n_rows
        except InputError as exc:
            errors.append(exc)
        if frames:
            data.frame = frames[0]
        return data
    if not source.files:
        raise InputFileMissing(
            f"{SOURCE_LABELS[name]}：只配置了 workbook_sheet「{source.workbook_sheet}」，但当前工作簿中没有这个工作表"
            "（或在无 Excel 的命令行中运行）。请把导出数据粘贴到该工作表，或在 config.yaml 中配置 files。"
        )
    paths, skipped = pool.paths(name) if pool.has(name) else source_paths(name, source, config, own_output)
    for path in paths:
        part = pool.result(name, path) if pool.has(name) else load_file(name, source, config, path)
        merge_file(data, part, problems, errors, frames)
    for path in skipped:
        problems.append(Problem(path.name, "", None, "", "", f"是本程序自己的输出或临时文件，不作为{SOURCE_LABELS[name]}读取"
                                "（config.yaml 中 files 的通配符也匹配到了输出文件夹，建议把导出文件放到单独的文件夹）", "提示"))
    if frames:
        started = time.perf_counter()
        data.frame = concat_frames(frames)
        data.normalise_seconds += time.perf_counter() - started
    return data


@dataclass
class FileLoad:
    """What one input file gave: its sheets' frames, problems, errors and counts (in `data`), made in a
    worker process or in line; `merge_file` adds it to its source in file order."""

    frames: list[pd.DataFrame]
    problems: ProblemLog
    errors: list[InputError]
    data: SourceData


def source_paths(name: str, source: SourceConfig, config: Config,
                 own_output: Callable[[Path], bool] | None) -> tuple[list[Path], list[Path]]:
    """The files of a source, and the tool's own outputs its globs matched (skipped, listed as 提示)."""
    skipped: list[Path] = []
    skip = None if name == "reviews" else own_output  # reviews are read from this tool's own workbooks
    return expand_globs(source.files, config.base_dir, SOURCE_LABELS[name], skip, skipped), skipped


def load_file(name: str, source: SourceConfig, config: Config, path: Path) -> FileLoad:
    """Read and normalise one file of a source (module level: it runs in worker processes too)."""
    part = FileLoad([], ProblemLog(), [], SourceData(name, pd.DataFrame()))
    data = part.data
    started = time.perf_counter()
    try:
        sheets = _read_source_file(path, name, source.sheet)
    except InputError as exc:
        part.errors.append(exc)
        sheets = []
    data.read_seconds += time.perf_counter() - started
    fields, required, label = SOURCE_FIELDS[name], required_fields(name, config), f"{SOURCE_LABELS[name]}："
    for sheet in sheets:
        started = time.perf_counter()
        try:
            part.frames.append(_sheet_frame(sheet, name, source, config, fields, required, label, part.problems,
                                            data))
        except InputError as exc:
            part.errors.append(exc)
            continue
        finally:
            data.normalise_seconds += time.perf_counter() - started
        data.files.append(str(path))
        data.rows_read += sheet.n_rows
    return part


def merge_file(data: SourceData, part: FileLoad, problems: list[Problem], errors: list[InputError],
               frames: list[pd.DataFrame]) -> None:
    """Add one file's results to its source, as if it had been loaded in line after the files before it."""
    if isinstance(problems, ProblemLog):
        problems.absorb(part.problems)
    else:
        problems.extend(part.problems)
    errors += part.errors
    frames += part.frames
    got = part.data
    data.files += got.files
    data.rows_read += got.rows_read
    data.read_seconds += got.read_seconds
    data.normalise_seconds += got.normalise_seconds
    data.amount_total += got.amount_total
    data.periods += got.periods
    data.names_as_codes |= got.names_as_codes
    for note in got.notes:  # the no-code-column note is said once per source
        text = note.split("：", 1)[-1]
        if text.startswith(_NO_CODE_COLUMN.format(label=SOURCE_LABELS[data.name])) and \
                text in (n.split("：", 1)[-1] for n in data.notes):
            continue
        data.notes.append(note)


_NO_CODE_COLUMN = "{label}没有客户编码列"


def _sheet_frame(sheet: RawSheet, name: str, source: SourceConfig, config: Config,
                 fields: tuple[InputField, ...], required: tuple[str, ...], label: str,
                 problems: list[Problem], data: SourceData) -> pd.DataFrame:
    for note in sheet.notes:
        problems.append(Problem(sheet.file.name, sheet.sheet, None, "", "", note, "提示"))
    target = amount_field(config) if name == "sales" else None
    layout = detect_layout(sheet, fields, source.columns, required, source.header_row, source.unit, label,
                           amount_target=target, amount_from=source.amount_from,
                           columns_key=f"sources.{name}.columns")
    where = f"{sheet.file.name} / {sheet.sheet}"
    if "customer_code" in required and layout.columns.get("customer_code") == layout.columns.get("customer_name"):
        header = layout.headers[layout.columns["customer_name"]]
        text = (_NO_CODE_COLUMN.format(label=SOURCE_LABELS[name]) + f"，以「{header}」列的客户名称作为客户编码："
                "名称写法不同会算作不同客户，同名的不同客户会被合并。"
                f"如有编码列，请在 config.yaml 的 sources.{name}.columns.customer_code 中写上列名")
        problems.append(Problem(sheet.file.name, sheet.sheet, None, header, "", text, "提示"))
        data.names_as_codes = True
        if text not in (n.split("：", 1)[-1] for n in data.notes):
            data.notes.append(f"{where}：{text}")
    frame = normalise(sheet, layout, fields, problems, keep_extra=name == "customers",
                      date_format=source.parsed_date_format, source_key=name, notes=data.notes)
    plan = layout.amount_plan
    if plan is not None and plan.formula is not None:
        headers = {k: layout.headers[c] for k, c in layout.columns.items()}
        derive_amount(frame, plan, headers, problems, sheet.file.name, sheet.sheet)
        if not plan.declared:
            data.notes.append(f"{where}：没有金额列，金额按 数量 × 单价 计算")
    if target is not None and target in frame:
        amounts = frame[target].to_numpy(dtype=float)[frame["_keep"].to_numpy(dtype=bool)]
        data.amount_total += float(np.nansum(np.abs(amounts)))
    if name == "receivables":
        line = period_line(sheet.rows[: max(0, layout.header_index - layout.header_rows + 1)])
        if line is not None:
            data.periods.append(PeriodLine(where, *line))
    optional_dates = {"overrides": ("until",), "receivables": ("date",), "reviews": ("until", "approved_on")}.get(name, ())
    return drop_invalid(frame, layout, required, problems, optional_dates, amount_key=target)
