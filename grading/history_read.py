"""Read-only access to the history database for previews and period diffs: the database is
opened with SQLite's read-only mode and never created, migrated or written (a preview must leave
the history byte for byte as it was)."""

from __future__ import annotations

import datetime as dt
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .errors import NoStoredRun, PeriodNotFound
from .sqlite_text import reason as sqlite_reason


@dataclass(frozen=True)
class StoredPeriod:
    """One stored run: its period, as-of date, config text (None before schema 2 or for seeded
    periods) and per customer the grade, explanation, sales and salesperson."""

    period: str
    as_of: dt.date
    config_text: str | None
    output: str
    table: pd.DataFrame  # index customer_code: customer_name, salesperson, net_sales, grade, reason


def _open(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise NoStoredRun(f"没有找到历史数据库 {path}。请先用 grade-etl run 运行一次，或检查 config.yaml 中的 history.database。")
    try:
        return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error as exc:
        raise NoStoredRun(f"无法以只读方式打开历史数据库 {path}：{sqlite_reason(exc)}。") from None


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {str(r[1]) for r in conn.execute(f"PRAGMA table_info({table})")}


def stored_periods(path: Path) -> list[str]:
    """Stored period names, oldest first."""
    with closing(_open(path)) as conn:
        if "period" not in _columns(conn, "runs"):
            return []
        return [str(r[0]) for r in conn.execute("SELECT period FROM runs ORDER BY as_of, run_id")]


def load_period(path: Path, period: str | None = None) -> StoredPeriod:
    """A stored period by name, or the latest one (by as-of date, then run) when `period` is None."""
    try:
        with closing(_open(path)) as conn:
            runs = _columns(conn, "runs")
            if not runs:
                raise NoStoredRun(f"历史数据库 {path} 中还没有任何运行记录。请先用 grade-etl run 运行一次。")
            text = "config_text" if "config_text" in runs else "NULL"
            where, params = ("WHERE period = ?", (period,)) if period is not None else ("", ())
            row = conn.execute(f"SELECT run_id, period, as_of, {text}, output FROM runs {where} "
                               "ORDER BY as_of DESC, run_id DESC LIMIT 1", params).fetchone()
            if row is None:
                known = [str(r[0]) for r in conn.execute("SELECT period FROM runs ORDER BY as_of, run_id")]
                if period is None or not known:
                    raise NoStoredRun(f"历史数据库 {path} 中还没有任何运行记录。请先用 grade-etl run 运行一次。")
                raise PeriodNotFound(f"历史数据库 {path} 中没有期间 {period!r}。已保存的期间：{'、'.join(known)}"
                                     "（可用 grade-etl history list 查看）。")
            salesperson = "salesperson" if "salesperson" in _columns(conn, "customer_grades") else "NULL"
            frame = pd.read_sql_query(
                f"SELECT customer_code, customer_name, {salesperson} AS salesperson, net_sales, grade, "
                "explanation AS reason FROM customer_grades WHERE run_id = ?", conn, params=(row[0],))
    except sqlite3.DatabaseError as exc:
        raise NoStoredRun(f"历史数据库 {path} 无法读取（{sqlite_reason(exc)}）。请恢复备份或检查 history.database。") from None
    frame["customer_code"] = frame["customer_code"].astype(str)
    return StoredPeriod(str(row[1]), dt.date.fromisoformat(str(row[2])), None if row[3] is None else str(row[3]),
                        str(row[4]), frame.set_index("customer_code"))


def stored_outputs(path: Path) -> list[Path]:
    """Output files of every stored run (a preview never writes over them)."""
    if not path.is_file():
        return []
    try:
        with closing(_open(path)) as conn:
            return [Path(str(r[0])) for r in conn.execute("SELECT output FROM runs") if r[0]]
    except sqlite3.DatabaseError:
        return []
