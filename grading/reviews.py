"""The review meeting's round trip: the main table of the output ends with 评审 columns
(建议等级, 理由, 审批人, 审批日期, 有效至, 状态); a manager fills them in Excel, and the next run,
given that workbook as the `reviews` source, turns the approved rows (状态 = 通过) into pins.

Rows that are not a decision (状态 empty, 待审 or 驳回) are ignored; approved rows without an
approver, a reason or a grade, with an undefined grade or an unknown 状态 are listed in 数据问题
and ignored (unknown customers and expired rows are reported by the pins stage itself).
Every pin that decided a grade is audited: who, when, why, until and where it came from.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .config_model import Config
from .rules.pins import Pin, PinRow
from .problems import Problem

PENDING, APPROVED, REJECTED = "待审", "通过", "驳回"
STATES = (PENDING, APPROVED, REJECTED)
REVIEW_HEADERS = ("建议等级", "理由", "审批人", "审批日期", "有效至", "状态")
AUDIT_COLUMNS = ("pin_by", "pin_on", "pin_reason", "pin_until", "pin_origin", "pin_source")
ORIGIN_REVIEW, ORIGIN_OVERRIDES, ORIGIN_CONFIG = "评审", "人工指定等级表", "config.yaml"


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    return str(value).strip()


def _date(value: object) -> dt.date | None:
    if value is None or pd.isna(value):  # type: ignore[call-overload]
        return None
    return pd.Timestamp(value).date()  # type: ignore[arg-type]


def pins_from_reviews(frame: pd.DataFrame | None, config: Config, problems: list[Problem],
                      today: dt.date) -> list[PinRow]:
    """Approved review rows as pins; every unusable approved row is listed and skipped."""
    if frame is None or not len(frame):
        return []
    out: list[PinRow] = []
    for rec in frame.to_dict("records"):
        file, sheet, row = str(rec["_file"]), str(rec["_sheet"]), int(rec["_row"])
        code = _text(rec.get("customer_code"))
        status = _text(rec.get("status"))

        def skip(column: str, value: str, reason: str) -> None:
            problems.append(Problem(file, sheet, row, column, value, f"客户 {code} 的评审{reason}，已忽略", "已跳过"))

        if status in ("", PENDING, REJECTED):
            continue
        if status not in STATES:
            skip("状态", status, f"状态应为 {'、'.join(STATES)} 之一")
            continue
        grade, reason, by = _text(rec.get("grade")), _text(rec.get("reason")), _text(rec.get("by"))
        if not by:
            skip("审批人", "", "已通过但没有审批人（请填写审批人）")
            continue
        if not grade:
            skip("建议等级", "", "已通过但没有建议等级")
            continue
        if config.policy_key(grade) is None:
            skip("建议等级", grade, f"的建议等级未在 grades 中定义（已定义：{'、'.join(config.grades)}）")
            continue
        if not reason:
            skip("理由", "", "已通过但没有理由（请填写理由）")
            continue
        approved_on = _date(rec.get("approved_on"))
        if approved_on is None:
            approved_on = today
            problems.append(Problem(file, sheet, row, "审批日期", "",
                                    f"客户 {code} 的评审没有审批日期，按本次运行日期 {today:%Y-%m-%d} 记录", "提示"))
        pin = Pin(customer=code, grade=grade, reason=reason, by=by, until=_date(rec.get("until")))
        out.append(PinRow(pin, file, sheet, row, approved_on))
    return out


def config_pins(config: Config) -> list[PinRow]:
    """The pins written in config.yaml, as the grading stage sees them (they come first)."""
    return [PinRow(p, config.source_file, "grading.pins", None) for p in config.grading.pins]


def with_pin_audit(config: Config, graded: pd.DataFrame, pins: Sequence[PinRow]) -> pd.DataFrame:
    """Add who/when/why of the pin that decided each pinned customer's grade (the last valid one)."""
    as_of = config.period.as_of
    winner: dict[str, PinRow] = {}
    for row in [*config_pins(config), *pins]:
        pin = row.pin
        if (pin.until is None or pin.until >= as_of) and config.policy_key(pin.grade) is not None:
            winner[pin.customer] = row
    n = len(graded)
    columns = {c: np.full(n, "", dtype=object) for c in AUDIT_COLUMNS}  # "" for every customer not pinned
    pinned = graded["pinned"].astype(bool).to_numpy() if "pinned" in graded else np.zeros(n, dtype=bool)
    codes = graded.index
    for i in np.flatnonzero(pinned).tolist():
        p = winner.get(str(codes[i]))
        if p is None:
            continue
        origin = ORIGIN_REVIEW if p.approved_on is not None else (
            ORIGIN_CONFIG if p.sheet == "grading.pins" and p.row is None else ORIGIN_OVERRIDES)
        columns["pin_by"][i] = p.pin.by
        columns["pin_on"][i] = p.approved_on.isoformat() if p.approved_on else ""
        columns["pin_reason"][i] = p.pin.reason
        columns["pin_until"][i] = p.pin.until.isoformat() if p.pin.until else ""
        columns["pin_origin"][i] = origin
        columns["pin_source"][i] = f"{p.source} / {p.sheet}" + (f" 第 {p.row} 行" if p.row is not None else "")
    # text columns, as pandas makes them of lists of str
    return graded.assign(**{c: pd.Series(v, index=graded.index, dtype="str") for c, v in columns.items()})


REVIEW_KEYS = ("grade", "reason", "by", "approved_on", "until", "status")  # REVIEW_HEADERS' fields
CARRIED = [f"review_{k}" for k in REVIEW_KEYS]


def with_carried_reviews(graded: pd.DataFrame, frame: pd.DataFrame | None, as_of: dt.date) -> pd.DataFrame:
    """Keep what the meeting wrote for each customer (pending, rejected or unusable rows too), so
    the next output's 评审 columns show it again; approvals that have expired are not carried."""
    if frame is None or not len(frame):
        return graded
    carried: dict[str, list[object]] = {}
    for rec in frame.to_dict("records"):
        values = [rec.get(k) for k in REVIEW_KEYS]
        values = [None if v is None or (not isinstance(v, str) and pd.isna(v)) or v == "" else v  # type: ignore[call-overload]
                  for v in values]
        until = _date(values[4])
        if all(v is None for v in values) or (until is not None and until < as_of):
            continue
        carried[_text(rec.get("customer_code"))] = [
            pd.Timestamp(v).to_pydatetime() if k in ("approved_on", "until") and v is not None else v  # type: ignore[arg-type]
            for k, v in zip(REVIEW_KEYS, values)]
    codes = graded.index.astype(str)
    return graded.assign(**{c: pd.Series([carried.get(code, [None] * len(CARRIED))[j] for code in codes],
                                         index=graded.index, dtype=object) for j, c in enumerate(CARRIED)})


def review_columns(graded: pd.DataFrame) -> dict[str, list[object]]:
    """Values of the 评审 columns of the main table: empty for a manager to fill, what the last
    meeting wrote (carried from the reviews source), and for customers pinned by an approved review
    the approval as applied (so the next run keeps the pin until 有效至)."""
    n = len(graded)
    out: dict[str, list[object]] = {h: [None] * n for h in REVIEW_HEADERS}
    if CARRIED[0] in graded:
        for header, column in zip(REVIEW_HEADERS, CARRIED):
            out[header] = graded[column].tolist()
    if "pin_origin" not in graded:
        return out
    rows = zip(*(graded[c].tolist() for c in ("pin_origin", "grade", "pin_reason", "pin_by", "pin_on", "pin_until")))
    for i, (origin, grade, reason, by, on, until) in enumerate(rows):
        if origin != ORIGIN_REVIEW:
            continue
        for header, value in zip(REVIEW_HEADERS, (
                grade, reason, by, dt.datetime.fromisoformat(on) if on else None,
                dt.datetime.fromisoformat(until) if until else None, APPROVED)):
            out[header][i] = value
    return out
