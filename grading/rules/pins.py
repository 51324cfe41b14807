"""Managers' pins (config grading.pins and the overrides workbook): a fixed grade
for one customer that wins over every rule until it expires."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import pandas as pd
from pydantic import BeforeValidator, Field, WithJsonSchema

from ..codes import normalise_code
from ..problems import Problem
from .base import Change
from .spec import Grade, Model

if TYPE_CHECKING:
    from ..config_model import Config


def _as_code(value: object) -> object:
    """Customer codes by the one code rule: 1234567 → "1234567" (not 1.23457e+06), " C1 " → "C1"."""
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        return normalise_code(value)[0]
    return value


Code = Annotated[str, BeforeValidator(_as_code), Field(min_length=1),
                 WithJsonSchema({"anyOf": [{"type": "string", "minLength": 1}, {"type": "number"}],
                                 "description": "客户编码（有前导零的编码请加引号，如 \"00123\"）"})]


class Pin(Model):
    """A manager's fixed grade for one customer; wins over rules until it expires."""

    customer: Code
    grade: Grade
    reason: str = Field(min_length=1)
    by: str = Field(min_length=1)
    until: dt.date | None = None


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
