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
    counts = Counter((p.action, p.reason) for p in problems)
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


def drop_summary(problems: Iterable[Problem], total_amount: float, warn_share: float) -> list[DropSummary]:
    """Per reason of dropped lines (已跳过): count, summed amount and share of `total_amount`
    (the absolute amounts of every sales line read; shares use absolute amounts too, so returns
    count), largest amount first."""
    lines: Counter[str] = Counter()
    priced: Counter[str] = Counter()
    amounts: dict[str, float] = {}
    absolute: dict[str, float] = {}
    for p in problems:
        if p.action != "已跳过":
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
