"""Stages that change an existing grade: adjustments (up/down/at most/at least
when a condition holds), provisional grades for new customers, lapsed
customers, and managers' pins. Each returns the new grades and the text to
append to the explanation of every customer it changed."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .config_model import AdjustStage, Condition, Config, LapsedStage, Pin, ProvisionalStage
from .problems import Problem
from .rules import column_values, format_value, label_of, numeric_values


@dataclass(frozen=True)
class Change:
    """New grades and, per changed customer, the text for 分级依据."""

    grade: pd.Series
    notes: dict[str, str]


def condition_mask(cond: Condition, table: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Where the condition holds (missing values never match), and the shown values."""
    ref = cond.ref
    if isinstance(cond.value, float):
        values = numeric_values(table, ref)
        ops = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
               "=": np.equal, "!=": np.not_equal}
        with np.errstate(invalid="ignore"):
            mask = ops[cond.op](values, cond.value) & ~np.isnan(values)
        return mask, [format_value(ref, v) for v in values.tolist()]
    raw = column_values(table, ref).tolist()
    texts = ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v).strip() for v in raw]
    hit = np.array([t == cond.value for t in texts], dtype=bool)
    return (hit if cond.op == "=" else ~hit & np.array([t != "" for t in texts], dtype=bool)), texts


def apply_adjust(stage: AdjustStage, grades: pd.Series, table: pd.DataFrame, order: Sequence[str]) -> Change:
    rank = {g: i for i, g in enumerate(order)}
    mask, shown = condition_mask(stage.when, table)
    label = label_of(stage.when.ref)
    new = grades.copy()
    notes: dict[str, str] = {}
    for i in np.flatnonzero(mask).tolist():
        code = grades.index[i]
        old = str(grades.iat[i])
        why = f"{stage.name}：{label} {shown[i]} 满足“{stage.when.text}”"
        if old not in rank:
            notes[code] = f"{why}，但等级 {old} 不在可调整的等级（{'、'.join(order)}）中，未调整"
            continue
        r = rank[old]
        if stage.up is not None:
            target, act = max(0, r - stage.up), f"升 {stage.up} 级"
        elif stage.down is not None:
            target, act = min(len(order) - 1, r + stage.down), f"降 {stage.down} 级"
        elif stage.at_most is not None:
            target, act = max(r, rank[stage.at_most]), f"最高为 {stage.at_most}"
        else:
            assert stage.at_least is not None
            target, act = min(r, rank[stage.at_least]), f"最低为 {stage.at_least}"
        if order[target] != old:
            new.iat[i] = order[target]
            notes[code] = f"{why} → {act}：{old} → {order[target]}"
        else:
            notes[code] = f"{why} → {act}：保持 {old}"
    return Change(new, notes)


def apply_provisional(stage: ProvisionalStage, grades: pd.Series, table: pd.DataFrame) -> Change:
    tenure = table["tenure_months"].astype(float).to_numpy()
    with np.errstate(invalid="ignore"):
        mask = tenure < stage.tenure_below_months
    new = grades.copy()
    notes: dict[str, str] = {}
    for i in np.flatnonzero(mask).tolist():
        code = grades.index[i]
        notes[code] = (f"{stage.name}：合作 {tenure[i]:g} 个月 < {stage.tenure_below_months} 个月"
                       f" → {stage.grade}（按规则为 {grades.iat[i]}）")
        new.iat[i] = stage.grade
    return Change(new, notes)


def apply_lapsed(stage: LapsedStage, grades: pd.Series, table: pd.DataFrame) -> Change:
    recency = table["recency_days"].astype(float).to_numpy()
    with np.errstate(invalid="ignore"):
        mask = np.isnan(recency) | (recency > stage.no_order_days)
    new = grades.copy()
    notes: dict[str, str] = {}
    for i in np.flatnonzero(mask).tolist():
        code = grades.index[i]
        since = "从未下单" if np.isnan(recency[i]) else f"{recency[i]:g} 天未下单"
        notes[code] = f"{stage.name}：{since}（超过 {stage.no_order_days} 天）→ {stage.grade}"
        new.iat[i] = stage.grade
    return Change(new, notes)


@dataclass(frozen=True)
class PinRow:
    """A pin with where it came from (config or a row of the overrides workbook)."""

    pin: Pin
    source: str
    sheet: str
    row: int | None
    approved_on: dt.date | None = None  # a review meeting's approval (评审): shown as who/when/why


def apply_pins(pins: Sequence[PinRow], grades: pd.Series, as_of: dt.date, config: Config,
               problems: list[Problem]) -> tuple[Change, set[str]]:
    new = grades.copy()
    notes: dict[str, str] = {}
    pinned: set[str] = set()
    for p in pins:
        pin = p.pin
        if pin.customer not in grades.index:
            problems.append(Problem(p.source, p.sheet, p.row, "客户编码", pin.customer,
                                    "人工指定的客户不在本期客户中，已忽略", "提示"))
            continue
        if pin.until is not None and pin.until < as_of:
            problems.append(Problem(p.source, p.sheet, p.row, "有效期至", f"{pin.until:%Y-%m-%d}",
                                    f"客户 {pin.customer} 的人工指定已过期，按规则分级", "提示"))
            continue
        if config.policy_key(pin.grade) is None:
            problems.append(Problem(p.source, p.sheet, p.row, "指定等级", pin.grade,
                                    f"等级未在 grades 中定义（已定义：{'、'.join(config.grades)}），已忽略", "已跳过"))
            continue
        if pin.customer in pinned:
            problems.append(Problem(p.source, p.sheet, p.row, "客户编码", pin.customer,
                                    "同一客户有多条人工指定，以最后一条为准", "提示"))
        until = f"，有效期至 {pin.until:%Y-%m-%d}" if pin.until else ""
        notes[pin.customer] = (f"人工指定 {pin.grade}（{pin.by}：{pin.reason}{until}；"
                               f"按规则为 {grades.at[pin.customer]}）") if p.approved_on is None else (
            f"人工指定：{pin.by} {p.approved_on:%Y-%m-%d} 通过，理由 {pin.reason} → {pin.grade}"
            f"（评审{until}；按规则为 {grades.at[pin.customer]}）")
        new.at[pin.customer] = pin.grade
        pinned.add(pin.customer)
    return Change(new, notes), pinned


def pins_from_frame(frame: pd.DataFrame | None, problems: list[Problem]) -> list[PinRow]:
    """Rows of the overrides workbook as pins (bad rows were already dropped and listed)."""
    if frame is None or not len(frame):
        return []
    out: list[PinRow] = []
    for rec in frame.to_dict("records"):
        until = rec.get("until")
        out.append(PinRow(
            Pin(customer=str(rec["customer_code"]), grade=str(rec["grade"]), reason=str(rec["reason"]),
                by=str(rec["by"]), until=None if until is None or pd.isna(until) else pd.Timestamp(until).date()),
            str(rec["_file"]), str(rec["_sheet"]), int(rec["_row"])))
    return out
