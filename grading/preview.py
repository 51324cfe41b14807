"""Rule-change preview and period diff: compare two gradings of customers ("before" and
"after") — per grade customers and sales, the migration matrix, every customer that moves with
both explanations, customers whose service policy changes, and each salesperson's visit load.

Sides come from grading the data with a config (`grading.pipeline.grade_data`, nothing stored)
or from a stored period of the history (read-only). Nothing here writes anything.
"""

from __future__ import annotations

import glob
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .config import parse_config
from .config_model import Config
from .errors import ConfigError
from .history_read import StoredPeriod, load_period
from .load import SheetReader
from .outputs import own_output_check
from .pipeline import Progress, grade_data

UP, DOWN, CHANGED, NEW, GONE = "升级", "降级", "改变", "新增", "流失"
NO_SALESPERSON = "（未指定）"
POLICY_FIELDS = (("visits_per_month", "拜访频率(次/月)"), ("credit_terms", "信用政策"), ("discount", "折扣"))
_VISITS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:(?:-|~|–|—|－|～|至|到)\s*(\d+(?:\.\d+)?))?\s*(?:次)?(?:/月|每月)?\s*$")


def _silent(message: str, fraction: float) -> None:
    return None


@dataclass(frozen=True)
class Side:
    """One grading of the customers: index customer_code; customer_name, salesperson, net_sales,
    grade, reason and the policy columns of POLICY_FIELDS."""

    label: str
    table: pd.DataFrame
    order: tuple[str, ...]  # grades best first


@dataclass(frozen=True)
class Preview:
    """The comparison, ready to lay out (before → after)."""

    title: str
    before: str
    after: str
    summary: pd.DataFrame
    matrix: pd.DataFrame
    movers: pd.DataFrame
    policy: pd.DataFrame
    load: pd.DataFrame
    notes: tuple[str, ...] = ()

    @property
    def moved_codes(self) -> list[str]:
        return self.movers["customer_code"].tolist()


def _policy_table(config: Config, grades: pd.Series) -> pd.DataFrame:
    policies = {g: config.policy(str(g)) for g in set(grades.astype(str))}
    return pd.DataFrame({key: [str(getattr(policies[str(g)], key)) for g in grades] for key, _ in POLICY_FIELDS},
                        index=grades.index)


def side_from_graded(label: str, config: Config, graded: pd.DataFrame) -> Side:
    table = pd.DataFrame({
        "customer_name": graded["customer_name"].astype(str),
        "salesperson": graded["salesperson"] if "salesperson" in graded else "",
        "net_sales": graded["net_sales"].astype(float),
        "grade": graded["grade"].astype(str),
        "reason": graded["reason"].astype(str),
    }, index=graded.index.astype(str))
    table = table.join(_policy_table(config, table["grade"]))
    return Side(label, table, tuple(config.ordered_grades))


def side_from_stored(stored: StoredPeriod, fallback: Config, notes: list[str]) -> Side:
    """A stored period; its own rules (stored config text) give the policies where available."""
    config = fallback
    if stored.config_text is not None:
        try:
            config = parse_config(stored.config_text, fallback.base_dir, f"{stored.period} 的 config.yaml")
        except ConfigError:
            notes.append(f"期间 {stored.period} 保存的规则无法按当前版本解析，服务政策按当前 config.yaml 的等级定义显示。")
    else:
        notes.append(f"期间 {stored.period} 没有保存规则文本（旧版本或导入的历史），服务政策按当前 config.yaml 的等级定义显示。")
    table = stored.table.copy()
    table["salesperson"] = table["salesperson"].where(table["salesperson"].notna(), "")
    table["net_sales"] = table["net_sales"].astype(float)
    table["grade"] = table["grade"].astype(str)
    table = table.join(_policy_table(config, table["grade"]))
    return Side(f"{stored.period}（截止 {stored.as_of:%Y-%m-%d}，已保存）", table, tuple(config.ordered_grades))


def grade_with(config: Config, label: str, progress: Progress = _silent,
               sheet_reader: SheetReader | None = None) -> Side:
    """Grade the configured data with `config` (no history: rules only); nothing is stored."""
    result = grade_data(config, progress, sheet_reader=sheet_reader,
                        own_output=own_output_check(config, config.output_path()))  # as a run would read
    return side_from_graded(label, config, result.graded)


def same_data(base: Config, new: Config) -> Config:
    """`base`'s rules over `new`'s data: its sources, period and folder (the rules, metrics
    definitions, pins and grades stay `base`'s)."""
    return base.model_copy(update={"sources": new.sources, "period": new.period, "base_dir": new.base_dir})


def config_label(config: Config, what: str) -> str:
    return f"{what}：{config.source_file}（校验码 {config.digest}）"


def preview_configs(new: Config, base: Config, progress: Progress = _silent,
                    sheet_reader: SheetReader | None = None, base_label: str | None = None) -> Preview:
    """The same data graded with `base`'s rules (before) and `new`'s rules (after)."""
    notes: list[str] = [f"数据：{new.source_file} 中的数据来源，统计期间 {new.period.start:%Y-%m-%d} 至 "
                        f"{new.period.as_of:%Y-%m-%d}；两套规则对同一份数据分级。"]
    if new.history.downgrade_after or base.history.downgrade_after:
        notes.append("预览只按规则分级，不考虑等级稳定规则（history.downgrade_after）。")
    before = grade_with(same_data(base, new), base_label or config_label(base, "原规则"),
                        lambda m, f: progress(f"原规则：{m}", 0.49 * f), sheet_reader)
    after = grade_with(new, config_label(new, "新规则"), lambda m, f: progress(f"新规则：{m}", 0.5 + 0.49 * f),
                       sheet_reader)
    progress("比较", 1.0)
    return compare(before, after, "规则预览", notes)


def preview_period(new: Config, stored: StoredPeriod, progress: Progress = _silent,
                   sheet_reader: SheetReader | None = None) -> Preview:
    """`new`'s rules on the configured data against the grades stored for a period."""
    notes: list[str] = [f"原：期间 {stored.period} 保存在历史中的等级；新：{new.source_file} 的规则对当前数据"
                        f"（{new.period.start:%Y-%m-%d} 至 {new.period.as_of:%Y-%m-%d}）分级。"]
    before = side_from_stored(stored, new, notes)
    after = grade_with(new, config_label(new, "新规则"), lambda m, f: progress(m, 0.99 * f), sheet_reader)
    progress("比较", 1.0)
    return compare(before, after, "规则预览", notes)


def preview_last_run(new: Config, db: Path, progress: Progress = _silent,
                     sheet_reader: SheetReader | None = None) -> Preview:
    """`new`'s rules against the rules of the last stored run (its config text), both on the
    configured data; runs stored without their rules are compared by their stored grades."""
    stored = load_period(db)
    if stored.config_text is None:
        return preview_period(new, stored, progress, sheet_reader)
    base = parse_config(stored.config_text, new.base_dir, f"{stored.period} 保存的 config.yaml")
    label = f"原规则：上次运行（期间 {stored.period}，截止 {stored.as_of:%Y-%m-%d}）的规则（校验码 {base.digest}）"
    return preview_configs(new, base, progress, sheet_reader, label)


def diff_periods(first: StoredPeriod, second: StoredPeriod, config: Config) -> Preview:
    """Migration between two stored periods, in the layout of the preview."""
    notes: list[str] = []
    before = side_from_stored(first, config, notes)
    after = side_from_stored(second, config, notes)
    return compare(before, after, f"等级迁移：{first.period} → {second.period}", list(dict.fromkeys(notes)))


# ------------------------------------------------------------------ the comparison

def _grade_order(before: Side, after: Side) -> list[str]:
    present = set(before.table["grade"]) | set(after.table["grade"])
    listed = list(dict.fromkeys([*after.order, *before.order]))
    return [g for g in listed if g in present] + sorted(present - set(listed))


def _texts(values: pd.Series) -> pd.Series:
    """Text with missing values (customers on one side only) as empty text."""
    return values.astype(object).where(values.notna(), "").astype(str)


def _cents(value: float) -> float:
    return round(float(value), 2)


def compare(before: Side, after: Side, title: str, notes: Sequence[str] = ()) -> Preview:
    order = _grade_order(before, after)
    rank = {g: i for i, g in enumerate(order)}
    codes = after.table.index.union(before.table.index)
    b = before.table.reindex(codes)
    a = after.table.reindex(codes)
    g_before, g_after = _texts(b["grade"]), _texts(a["grade"])

    def kind(old: str, new: str) -> str:
        if not old:
            return NEW
        if not new:
            return GONE
        if old in before.order and new in after.order and old in rank and new in rank:
            return UP if rank[new] < rank[old] else DOWN
        return CHANGED

    moved = g_before != g_after
    sales = a["net_sales"].where(a["net_sales"].notna(), b["net_sales"]).fillna(0.0).astype(float)
    movers = pd.DataFrame({
        "customer_code": codes.astype(str),
        "customer_name": _texts(a["customer_name"].where(a["customer_name"].notna(), b["customer_name"])),
        "salesperson": _texts(a["salesperson"].where(a["salesperson"].notna(), b["salesperson"])),
        "sales": sales.round(2).to_numpy(),
        "before_sales": b["net_sales"].round(2).to_numpy(dtype=float),
        "after_sales": a["net_sales"].round(2).to_numpy(dtype=float),
        "before": g_before.to_numpy(), "after": g_after.to_numpy(),
        "change": [kind(o, n) for o, n in zip(g_before, g_after)],
        "before_reason": _texts(b["reason"]).to_numpy(), "after_reason": _texts(a["reason"]).to_numpy(),
    })[moved.to_numpy()].reset_index(drop=True)
    movers = movers.sort_values(["sales", "customer_code"], ascending=[False, True], kind="stable")

    both = codes[(g_before != "").to_numpy() & (g_after != "").to_numpy()]
    differs = np.zeros(len(both), dtype=bool)
    for key, _ in POLICY_FIELDS:
        differs |= (before.table.loc[both, key].to_numpy() != after.table.loc[both, key].to_numpy())
    pc = both[differs]
    policy = pd.DataFrame({
        "customer_code": pc.astype(str),
        "customer_name": after.table.loc[pc, "customer_name"].to_numpy(),
        "salesperson": after.table.loc[pc, "salesperson"].to_numpy(),
        "sales": after.table.loc[pc, "net_sales"].round(2).to_numpy(dtype=float),
        "before": before.table.loc[pc, "grade"].to_numpy(), "after": after.table.loc[pc, "grade"].to_numpy(),
        **{f"{side}_{key}": t.loc[pc, key].to_numpy() for key, _ in POLICY_FIELDS
           for side, t in (("before", before.table), ("after", after.table))},
    }).sort_values(["sales", "customer_code"], ascending=[False, True], kind="stable")

    load, unknown = _visit_load(before, after)
    all_notes = list(notes) + [f"拜访频率“{v}”（{n} 个客户）不是次数，未计入业务员拜访负荷。" for v, n in unknown.items()]
    return Preview(title, before.label, after.label, _summary(before, after, order),
                   _matrix(g_before, g_after, order), movers.reset_index(drop=True), policy.reset_index(drop=True),
                   load, tuple(all_notes))


def _summary(before: Side, after: Side, order: list[str]) -> pd.DataFrame:
    rows = []
    totals = {s: (len(t.table), _cents(t.table["net_sales"].sum())) for s, t in (("before", before), ("after", after))}
    for g in [*order, "合计"]:
        row: dict[str, object] = {"grade": g}
        for s, t in (("before", before), ("after", after)):
            sel = t.table if g == "合计" else t.table[t.table["grade"] == g]
            n, total_sales = totals[s]
            sales = _cents(sel["net_sales"].sum())
            row.update({f"{s}_customers": len(sel), f"{s}_share": len(sel) / n if n else 0.0,
                        f"{s}_sales": sales, f"{s}_sales_share": sales / total_sales if total_sales else 0.0})
        row["customer_change"] = int(row["after_customers"]) - int(row["before_customers"])  # type: ignore[call-overload]
        row["sales_change"] = _cents(float(row["after_sales"]) - float(row["before_sales"]))  # type: ignore[arg-type]
        rows.append(row)
    return pd.DataFrame(rows)


def _matrix(g_before: pd.Series, g_after: pd.Series, order: list[str]) -> pd.DataFrame:
    counts = Counter((o or NEW, n or GONE) for o, n in zip(g_before, g_after))
    rows = [g for g in order if g in set(g_before)] + ([NEW] if (g_before == "").any() else [])
    cols = [g for g in order if g in set(g_after)] + ([GONE] if (g_after == "").any() else [])
    return pd.DataFrame([[counts[(r, c)] for c in cols] for r in rows], index=rows, columns=cols, dtype=np.int64)


def visits_range(text: str) -> tuple[float, float] | None:
    """'4-6' → (4, 6); '2' → (2, 2); '' → (0, 0); anything else → None (not a number of visits)."""
    if not text.strip():
        return 0.0, 0.0
    m = _VISITS.match(text)
    if m is None:
        return None
    low = float(m.group(1))
    high = float(m.group(2)) if m.group(2) else low
    return min(low, high), max(low, high)


@dataclass
class _Load:
    customers: int = 0
    low: float = 0.0
    high: float = 0.0


def _visit_load(before: Side, after: Side) -> tuple[pd.DataFrame, Counter[str]]:
    unknown: Counter[str] = Counter()
    sides: dict[str, dict[str, _Load]] = {}
    for name, side in (("before", before), ("after", after)):
        loads: dict[str, _Load] = {}
        for person, visits in zip(side.table["salesperson"].astype(str), side.table["visits_per_month"].astype(str)):
            entry = loads.setdefault(person.strip() or NO_SALESPERSON, _Load())
            entry.customers += 1
            rng = visits_range(visits)
            if rng is None:
                unknown[visits] += 1
                continue
            entry.low += rng[0]
            entry.high += rng[1]
        sides[name] = loads
    people = sorted(set(sides["before"]) | set(sides["after"]), key=lambda p: (p == NO_SALESPERSON, p))
    rows = []
    for p in people:
        b, a = sides["before"].get(p, _Load()), sides["after"].get(p, _Load())
        rows.append({"salesperson": p, "before_customers": b.customers, "after_customers": a.customers,
                     "before_low": b.low, "before_high": b.high, "after_low": a.low, "after_high": a.high,
                     "change_low": a.low - b.low, "change_high": a.high - b.high})
    return pd.DataFrame(rows, columns=["salesperson", "before_customers", "after_customers", "before_low",
                                       "before_high", "after_low", "after_high", "change_low", "change_high"]), unknown


def protected_paths(*configs: Config, extra: Sequence[Path] = ()) -> set[Path]:
    """Files a preview must never write over: each config's output, history, template, config and
    every file its sources match."""
    out: set[Path] = set()
    for c in configs:
        for name in ("sales", "receivables", "customers", "overrides", "reviews"):
            source = getattr(c.sources, name)
            for pattern in source.files if source is not None else []:
                out.update(Path(p) for p in glob.glob(str(c.resolve(pattern)), recursive=True))
        output = c.output_path()
        out.add(output)
        out.add(c.resolve(c.output.template))
        out.add(c.base_dir / c.source_file)
        db = c.history_path(output)
        if db is not None:
            out.add(db)
    out.update(extra)
    return {p.resolve() for p in out}
