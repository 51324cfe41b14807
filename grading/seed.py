"""Seed the history database from a previous 客户分级管理表 workbook, for users
who start with no database: the sheet is read like any export (header found
by text), and the period's as-of date is taken from "统计期间：… 至 …" unless given."""

from __future__ import annotations

import datetime as dt
import re
from contextlib import closing
from pathlib import Path

import pandas as pd

from .fields import InputField
from .header import detect_layout
from .history import HistoryError, RunRecord, connect, record_run
from .normalise import drop_invalid, normalise
from .problems import Problem
from .read import read_file

SEED_FIELDS: tuple[InputField, ...] = (
    InputField("customer_code", "客户编码", "code", ("客户编码", "客户代码")),
    InputField("customer_name", "客户名称", "text", ("客户名称", "客户")),
    InputField("grade", "等级", "code", ("等级", "客户等级", "分级")),
    InputField("score", "综合得分", "number", ("综合得分", "得分")),
    InputField("net_sales", "净销售额", "number", ("净销售额", "销售额")),
    InputField("reason", "分级依据", "text", ("分级依据",)),
)
_PERIOD = re.compile(r"(\d{4})-(\d{2})-(\d{2})\s*至\s*(\d{4})-(\d{2})-(\d{2})")


def seed_from_workbook(db: Path, workbook: Path, period: str, as_of: dt.date | None = None,
                       sheet: str = "客户分级管理表") -> tuple[int, dt.date]:
    """Store the workbook's grades as period `period`; returns (customers, as_of)."""
    [raw] = read_file(workbook, sheet)
    layout = detect_layout(raw, SEED_FIELDS, {}, ("customer_code", "grade"), source_label="历史工作簿：")
    if as_of is None:
        for row in raw.rows[: layout.header_index]:
            for v in row:
                m = _PERIOD.search(str(v)) if v is not None else None
                if m:
                    as_of = dt.date(int(m.group(4)), int(m.group(5)), int(m.group(6)))
        if as_of is None:
            raise HistoryError(f"无法从 {workbook.name} 的标题行中找到“统计期间：… 至 …”，请用 --as-of 指定该期的截止日期。")
    problems: list[Problem] = []
    frame = drop_invalid(normalise(raw, layout, SEED_FIELDS, problems), layout, ("customer_code",), problems)
    frame = frame[frame["grade"] != ""].drop_duplicates("customer_code", keep="last")
    graded = pd.DataFrame({
        "customer_name": frame.get("customer_name", pd.Series("", index=frame.index)).to_numpy(),
        "grade": frame["grade"].to_numpy(),
        "score": frame["score"].to_numpy() if "score" in frame else None,
        "net_sales": frame["net_sales"].to_numpy() if "net_sales" in frame else None,
        "reason": frame["reason"].to_numpy() if "reason" in frame else f"由 {workbook.name} 导入",
        "pinned": "",
    }, index=pd.Index(frame["customer_code"].to_numpy(), name="customer_code"))
    run = RunRecord(period, as_of, dt.datetime.now().replace(microsecond=0), "seed", str(workbook), [workbook],
                    source="seed")
    with closing(connect(db)) as conn, conn:
        record_run(conn, run, graded)
    return len(graded), as_of
