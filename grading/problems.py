"""Data problems found while normalising: every dropped or repaired row is one entry."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Action = Literal["已跳过", "已修正", "提示"]


@dataclass(frozen=True)
class Problem:
    """One row-level finding: where it is, what was there, why, and what was done."""

    file: str
    sheet: str
    row: int | None
    column: str
    value: str
    reason: str
    action: Action
    amount: float | None = None  # the line's amount when a sales line is dropped (its value is reported)

    def render(self) -> str:
        where = f"{self.file} / {self.sheet}"
        if self.row is not None:
            where += f" 第 {self.row} 行"
        if self.column:
            where += f" 列「{self.column}」"
        value = f" 值 {self.value!r}" if self.value else ""
        return f"{where}{value}：{self.reason}（{self.action}）"


def summarise(problems: Iterable[Problem]) -> list[tuple[str, str, int]]:
    """(action, reason, count) sorted by action then count, for CLI and alerts."""
    counts = problems.counts() if isinstance(problems, ProblemLog) else Counter((p.action, p.reason) for p in problems)
    order = {"已跳过": 0, "已修正": 1, "提示": 2}
    return sorted(((a, r, n) for (a, r), n in counts.items()), key=lambda t: (order[t[0]], -t[2], t[1]))


@dataclass(frozen=True)
class DropSummary:
    """Dropped lines of one reason: how many, their amount and its share of all amounts read."""

    reason: str
    lines: int
    priced: int             # lines among them whose amount could be read
    amount: float           # sum of the dropped lines' amounts (those that had one)
    share: float | None     # |amount| share of the total |amount| read; None when there is no total
    warning: bool           # share above the configured warning share

    def render(self) -> str:
        if self.share is None or not self.priced:
            return f"{self.reason}：{self.lines:,} 行（金额无法读取）"
        flag = "（超过警戒比例）" if self.warning else ""
        unpriced = f"（另有 {self.lines - self.priced:,} 行金额无法读取）" if self.priced < self.lines else ""
        return (f"{self.reason}：{self.lines:,} 行，金额 {self.amount:,.2f}{unpriced}，"
                f"占全部金额 {self.share:.1%}{flag}")


def drop_summary(problems: Iterable[Problem], total_amount: float, warn_share: float,
                 files: Collection[str] | None = None) -> list[DropSummary]:
    """Per reason of dropped lines (已跳过): count, summed amount and share of `total_amount`
    (the absolute amounts of every sales line read; shares use absolute amounts too, so returns
    count), largest amount first. With `files`, only the lines of those files (the sales exports)."""
    lines: Counter[str] = Counter()
    priced: Counter[str] = Counter()
    amounts: dict[str, float] = {}
    absolute: dict[str, float] = {}
    if isinstance(problems, ProblemLog):
        for file, reason, n, values in problems.skipped():
            if files is not None and file not in files:
                continue
            lines[reason] += n
            known = values[~np.isnan(values)]
            if len(known):
                priced[reason] += len(known)
                amounts[reason] = amounts.get(reason, 0.0) + float(known.sum())
                absolute[reason] = absolute.get(reason, 0.0) + float(np.abs(known).sum())
    else:
        for p in problems:
            if p.action != "已跳过" or (files is not None and p.file not in files):
                continue
            lines[p.reason] += 1
            if p.amount is not None:
                priced[p.reason] += 1
                amounts[p.reason] = amounts.get(p.reason, 0.0) + p.amount
                absolute[p.reason] = absolute.get(p.reason, 0.0) + abs(p.amount)
    out = []
    for reason, n in lines.items():
        share = absolute.get(reason, 0.0) / total_amount if total_amount > 0 else None
        out.append(DropSummary(reason, n, priced[reason], round(amounts.get(reason, 0.0), 2), share,
                               share is not None and share > warn_share))
    return sorted(out, key=lambda d: (-abs(d.amount), -d.lines, d.reason))


# ---------------------------------------------------------------- bounded, columnar store (issue 9)

KEEP_PER_REASON = 1000  # rows per (action, reason) listed in the workbook; all of them go to the CSV


Where = str | np.ndarray  # the file (or sheet) of every row, or of each row (an object array of str)


def _at(where: Where, i: int) -> str:
    return where if isinstance(where, str) else str(where[i])


@dataclass(frozen=True)
class _Rows:
    """Many findings of one kind in one column, in one file/sheet or each in its own: row numbers and raw
    values, not objects."""

    file: Where
    sheet: Where
    rows: np.ndarray                    # int64 row numbers
    column: str
    values: np.ndarray                  # raw cell values (object), shown with `show`
    reason: str
    action: Action
    show: Callable[[object], str]
    amounts: np.ndarray | None = None   # float line amounts (NaN: none), for dropped sales lines

    def problem(self, i: int) -> Problem:
        amount = None
        if self.amounts is not None and not np.isnan(self.amounts[i]):
            amount = float(self.amounts[i])
        return Problem(_at(self.file, i), _at(self.sheet, i), int(self.rows[i]), self.column,
                       self.show(self.values[i]), self.reason, self.action, amount)

    def places(self) -> Iterator[tuple[str, str, slice]]:
        """(file, sheet, rows) of each run of rows in one file and sheet, in order."""
        n = len(self.rows)
        if isinstance(self.file, str) and isinstance(self.sheet, str):
            yield self.file, self.sheet, slice(0, n)
            return
        files = np.full(n, self.file, dtype=object) if isinstance(self.file, str) else self.file
        sheets = np.full(n, self.sheet, dtype=object) if isinstance(self.sheet, str) else self.sheet
        bounds = [0, *(np.flatnonzero((files[1:] != files[:-1]) | (sheets[1:] != sheets[:-1])) + 1).tolist(), n]
        for start, stop in zip(bounds, bounds[1:]):
            yield str(files[start]), str(sheets[start]), slice(start, stop)


class ProblemLog(list[Problem]):
    """All problems of a run, in order, stored compactly: bulk findings as columns (`add_rows`), the few
    others as Problem records (`append`). A list of Problem to every reader (len, iteration), so code that
    appends or iterates is unchanged; `counts` and `examples` never build one object per row."""

    def __init__(self, keep_per_reason: int | None = None) -> None:
        super().__init__()
        self.keep = KEEP_PER_REASON if keep_per_reason is None else keep_per_reason
        self._parts: list[Problem | _Rows] = []
        self._counts: Counter[tuple[Action, str]] = Counter()
        self._total = 0

    def append(self, p: Problem) -> None:
        self._parts.append(p)
        self._counts[(p.action, p.reason)] += 1
        self._total += 1

    def extend(self, items: Iterable[Problem]) -> None:
        for p in items:
            self.append(p)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its parts (a worker process hands its file's problems back), never row by row."""
        return (_restore_log, (self.keep, self._parts, self._counts, self._total))

    def absorb(self, other: ProblemLog) -> None:
        """Append another log's problems after these, in order, without building a Problem per row."""
        self._parts += other._parts
        self._counts.update(other._counts)
        self._total += other._total

    def add_rows(self, file: Where, sheet: Where, rows: np.ndarray, column: str, values: np.ndarray, reason: str,
                 action: Action, show: Callable[[object], str] = str, amounts: np.ndarray | None = None) -> None:
        if not len(rows):
            return
        file, sheet = (w if isinstance(w, str) else np.asarray(w, dtype=object) for w in (file, sheet))
        if any(not isinstance(w, str) and len(w) != len(rows) for w in (file, sheet)):
            raise ValueError("a file and sheet per row: as many as the rows")
        self._parts.append(_Rows(file, sheet, np.asarray(rows, dtype=np.int64), column,
                                 np.asarray(values, dtype=object), reason, action, show,
                                 None if amounts is None else np.asarray(amounts, dtype=float)))
        self._counts[(action, reason)] += len(rows)
        self._total += len(rows)

    def __len__(self) -> int:
        return self._total

    def __bool__(self) -> bool:
        return self._total > 0

    def __iter__(self) -> Iterator[Problem]:
        for part in self._parts:
            if isinstance(part, Problem):
                yield part
            else:
                for i in range(len(part.rows)):
                    yield part.problem(i)

    def __getitem__(self, index: Any) -> Any:
        return list(self)[index]

    def __repr__(self) -> str:
        return f"ProblemLog({self._total} problems)"

    def counts(self) -> Counter[tuple[Action, str]]:
        """(action, reason) → number of problems."""
        return Counter(self._counts)

    @property
    def truncated(self) -> bool:
        return any(n > self.keep for n in self._counts.values())

    def examples(self) -> list[Problem]:
        """The first `keep` problems of each (action, reason), in order."""
        taken: Counter[tuple[Action, str]] = Counter()
        out: list[Problem] = []
        for part in self._parts:
            key = (part.action, part.reason)
            room = self.keep - taken[key]
            if room <= 0:
                continue
            if isinstance(part, Problem):
                out.append(part)
                taken[key] += 1
            else:
                n = min(room, len(part.rows))
                out += [part.problem(i) for i in range(n)]
                taken[key] += n
        return out

    def for_workbook(self, full_list: str) -> list[Problem]:
        """Examples plus, for each kind with more than `keep`, a note row saying how many and where all are."""
        rows = self.examples()
        for (action, reason), n in self._counts.items():
            if n > self.keep:
                rows.append(Problem("", "", None, "", "", f"…… 「{reason}」共 {n:,} 条，此处只列出前 {self.keep:,} 条，"
                                    f"完整清单见 {full_list}", action))
        return rows


    def blocks(self) -> Iterator[tuple[str, str, list[int | None], str, list[str], str, Action]]:
        """Every problem in order, in blocks of one kind: (file, sheet, row numbers, column, shown values,
        reason, action); what iterating gives, without a Problem object per row (the full CSV list)."""
        for part in self._parts:
            if isinstance(part, Problem):
                yield part.file, part.sheet, [part.row], part.column, [part.value], part.reason, part.action
            else:
                rows, shown = part.rows.tolist(), [part.show(v) for v in part.values.tolist()]
                for file, sheet, run in part.places():
                    yield file, sheet, rows[run], part.column, shown[run], part.reason, part.action

    def skipped(self) -> Iterator[tuple[str, str, int, np.ndarray]]:
        """(file, reason, lines, their amounts with NaN for none) of every dropped (已跳过) part, one per run of
        rows in one file, without objects."""
        for part in self._parts:
            if part.action != "已跳过":
                continue
            if isinstance(part, Problem):
                yield part.file, part.reason, 1, np.array([np.nan if part.amount is None else part.amount])
            else:
                amounts = part.amounts if part.amounts is not None else np.full(len(part.rows), np.nan)
                for file, _, run in part.places():
                    yield file, part.reason, run.stop - run.start, amounts[run]


def _restore_log(keep: int, parts: list[Problem | _Rows], counts: Counter[tuple[Action, str]],
                 total: int) -> ProblemLog:
    log = ProblemLog(keep)
    log._parts, log._counts, log._total = parts, counts, total
    return log


def add_problem_rows(problems: list[Problem], file: Where, sheet: Where, rows: np.ndarray, column: str,
                     values: np.ndarray, reason: str, action: Action, show: Callable[[object], str] = str,
                     amounts: np.ndarray | None = None) -> None:
    """Record many findings of one kind: columnar in a ProblemLog, one Problem each in a plain list."""
    if isinstance(problems, ProblemLog):
        problems.add_rows(file, sheet, rows, column, values, reason, action, show, amounts)
        return
    for i, (r, v) in enumerate(zip(rows.tolist(), values)):
        amount = None if amounts is None or np.isnan(amounts[i]) else float(amounts[i])
        problems.append(Problem(_at(file, i), _at(sheet, i), int(r), column, show(v), reason, action, amount))
