"""Data problems found while normalising: every dropped or repaired row is one entry."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
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


# ---------------------------------------------------------------- bounded, columnar store (issue 9)

KEEP_PER_REASON = 1000  # rows per (action, reason) listed in the workbook; all of them go to the CSV


@dataclass(frozen=True)
class _Rows:
    """Many findings of one kind in one file/sheet/column: row numbers and raw values, not objects."""

    file: str
    sheet: str
    rows: np.ndarray                    # int64 row numbers
    column: str
    values: np.ndarray                  # raw cell values (object), shown with `show`
    reason: str
    action: Action
    show: Callable[[object], str]

    def problem(self, i: int) -> Problem:
        return Problem(self.file, self.sheet, int(self.rows[i]), self.column, self.show(self.values[i]),
                       self.reason, self.action)


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

    def add_rows(self, file: str, sheet: str, rows: np.ndarray, column: str, values: np.ndarray, reason: str,
                 action: Action, show: Callable[[object], str] = str) -> None:
        if not len(rows):
            return
        self._parts.append(_Rows(file, sheet, np.asarray(rows, dtype=np.int64), column,
                                 np.asarray(values, dtype=object), reason, action, show))
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


def add_problem_rows(problems: list[Problem], file: str, sheet: str, rows: np.ndarray, column: str,
                     values: np.ndarray, reason: str, action: Action, show: Callable[[object], str] = str) -> None:
    """Record many findings of one kind: columnar in a ProblemLog, one Problem each in a plain list."""
    if isinstance(problems, ProblemLog):
        problems.add_rows(file, sheet, rows, column, values, reason, action, show)
        return
    problems.extend(Problem(file, sheet, int(r), column, show(v), reason, action)
                    for r, v in zip(rows.tolist(), values))
