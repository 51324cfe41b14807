"""Data problems found while normalising: every dropped or repaired row is one entry."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

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
    counts = Counter((p.action, p.reason) for p in problems)
    order = {"已跳过": 0, "已修正": 1, "提示": 2}
    return sorted(((a, r, n) for (a, r), n in counts.items()), key=lambda t: (order[t[0]], -t[2], t[1]))
