"""Grade history in an embedded SQLite database: every run's period, as-of
date, config hash, inputs, and per customer the metrics, score, grade, pin
and explanation. Re-running a period replaces that period in one
transaction; a failed run leaves the database as it was.

The schema is versioned with PRAGMA user_version and upgraded by MIGRATIONS.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import GradingError, HistoryBusy
from .sqlite_text import reason as sqlite_reason

MIGRATIONS: tuple[str, ...] = (
    # 1: runs, their inputs and per-customer results
    """
    CREATE TABLE runs (
        run_id INTEGER PRIMARY KEY AUTOINCREMENT,
        period TEXT NOT NULL UNIQUE,
        as_of TEXT NOT NULL,
        started_at TEXT NOT NULL,
        config_hash TEXT NOT NULL,
        customers INTEGER NOT NULL,
        output TEXT NOT NULL,
        source TEXT NOT NULL DEFAULT 'run'
    );
    CREATE TABLE run_inputs (
        run_id INTEGER NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
        path TEXT NOT NULL,
        size INTEGER NOT NULL,
        sha256 TEXT NOT NULL
    );
    CREATE TABLE customer_grades (
        run_id INTEGER NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
        customer_code TEXT NOT NULL,
        customer_name TEXT NOT NULL,
        rule_grade TEXT NOT NULL,
        grade TEXT NOT NULL,
        score REAL,
        net_sales REAL,
        pinned INTEGER NOT NULL,
        below_streak INTEGER NOT NULL DEFAULT 0,
        explanation TEXT NOT NULL,
        metrics TEXT NOT NULL,
        PRIMARY KEY (run_id, customer_code)
    );
    CREATE INDEX customer_grades_code ON customer_grades(customer_code);
    """,
    # 2 (issue 13): the config text of each run (rule previews against the last run), each customer's
    # salesperson (visit load per salesperson), and who/when/why of every pin that decided a grade
    """
    ALTER TABLE runs ADD COLUMN config_text TEXT;
    ALTER TABLE customer_grades ADD COLUMN salesperson TEXT;
    CREATE TABLE pin_audit (
        run_id INTEGER NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
        customer_code TEXT NOT NULL,
        grade TEXT NOT NULL,
        rule_grade TEXT NOT NULL,
        approved_by TEXT NOT NULL,
        approved_on TEXT,
        reason TEXT NOT NULL,
        valid_until TEXT,
        origin TEXT NOT NULL,
        source TEXT NOT NULL,
        PRIMARY KEY (run_id, customer_code)
    );
    """,
)

METRIC_COLUMNS = ("net_sales", "order_count", "active_months", "recency_days", "tenure_months",
                  "gross_profit", "margin", "collection_rate", "closing", "overdue_days")


class HistoryError(GradingError):
    """The history database cannot be opened, is newer than this program, or the seed file is unusable."""

    code = "E500"


@dataclass(frozen=True)
class RunRecord:
    """One finished run to store."""

    period: str
    as_of: dt.date
    started_at: dt.datetime
    config_hash: str
    output: str
    inputs: Sequence[Path]
    source: str = "run"
    config_text: str = ""
    digests: Mapping[Path, tuple[int, str]] | None = None  # (size, sha256) per input, hashed during the run
    sheets: Sequence[tuple[str, int, str]] = ()  # inputs pasted into the workbook: (file!sheet, size, sha256)


@dataclass(frozen=True)
class PreviousPeriod:
    """Last period before the current as-of date: grades, streaks and metrics per customer."""

    period: str
    as_of: dt.date
    table: pd.DataFrame  # index customer_code: customer_name, grade, rule_grade, score, net_sales, below_streak
    how: str = ""  # why this stored period was chosen (shown in the CLI and the workbook)

    @property
    def description(self) -> str:
        return f"{self.period}（截止 {self.as_of:%Y-%m-%d}；{self.how}）" if self.how else self.period


BUSY_TIMEOUT = 30.0  # seconds to wait for another program's lock on the database


def is_busy(exc: BaseException) -> bool:
    """SQLite's 'database is locked' / 'busy': another program holds the database, nothing is damaged."""
    text = str(exc).lower()
    return isinstance(exc, (sqlite3.OperationalError, pd.errors.DatabaseError)) and ("locked" in text or "busy" in text)


def busy_error(path: Path) -> HistoryBusy:
    return HistoryBusy(f"历史数据库 {path} 正被另一个程序占用（数据库忙），等待 {BUSY_TIMEOUT:g} 秒后仍未释放。"
                       "数据库没有损坏：请关闭正在打开它的程序（如 DB Browser）后重试；上一次的输出文件和历史记录保持不变。")


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) and migrate the database."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT)
    except (OSError, sqlite3.Error) as exc:
        raise HistoryError(f"无法打开历史数据库 {path}：{sqlite_reason(exc)}。请检查 history.database 的路径是否可写。") from None
    conn.execute("PRAGMA foreign_keys = ON")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            conn.close()
            raise HistoryError(f"历史数据库 {path} 由更新版本的程序创建（结构版本 {version}），请升级本程序。")
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        if version == 0 and tables:
            conn.close()
            raise HistoryError(
                f"历史数据库 {path} 是另一个程序的 SQLite 数据库（已有表：{'、'.join(tables[:5])}），不是本程序的历史记录，"
                "未做任何修改。请在 config.yaml 的 history.database 改用一个新的文件名（如 output/客户分级历史.sqlite）。")
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            with conn:
                conn.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
    except sqlite3.DatabaseError as exc:
        conn.close()
        if is_busy(exc):
            raise busy_error(path) from None
        raise HistoryError(f"历史数据库 {path} 已损坏或不是数据库文件（{sqlite_reason(exc)}）。请恢复备份或改用新的路径。") from None
    return conn


def stamp(started_at: dt.datetime) -> str:
    """A run's start as stored (to the microsecond: with period and config checksum it identifies the run)."""
    return started_at.isoformat(timespec="microseconds")


def run_committed(path: Path, period: str, started_at: str, config_hash: str) -> bool:
    """Is this run (period, start time to the microsecond, config checksum) stored? Used to reconcile a
    killed run; two runs of one period and config within the same second are told apart."""
    if not path.exists():
        return False
    with closing(connect(path)) as conn:
        try:
            row = conn.execute("SELECT 1 FROM runs WHERE period = ? AND started_at = ? AND config_hash = ?",
                               (period, started_at, config_hash)).fetchone()
        except sqlite3.OperationalError as exc:
            if is_busy(exc):
                raise busy_error(path) from None
            raise
    return row is not None


def file_digest(path: Path) -> tuple[int, str]:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return path.stat().st_size, h.hexdigest()


def _canonical(value: object) -> list[str]:
    """A cell as (type, text): numbers by their float value (Excel has no integers), text as is."""
    if value is None or value == "":
        return ["", ""]
    if isinstance(value, bool):
        return ["b", str(int(value))]
    if isinstance(value, (int, float)):
        return ["n", repr(float(value))]
    if isinstance(value, dt.datetime):
        return ["d", value.replace(tzinfo=None).isoformat()]
    if isinstance(value, dt.date):
        return ["d", dt.datetime.combine(value, dt.time()).isoformat()]
    if isinstance(value, dt.time):
        return ["t", value.isoformat()]
    return ["s" if isinstance(value, str) else type(value).__name__, str(value)]


def sheet_digest(rows: Sequence[Sequence[object]]) -> tuple[int, str]:
    """Size and SHA-256 of a sheet's values as a file's digest stands for its bytes: the rows as
    canonical JSON of (type, text) per cell, empty cells trailing a row and empty rows trailing the
    sheet left out (formatting that widens the used range does not change it)."""
    cells = [[_canonical(v) for v in row] for row in rows]
    for row in cells:
        while row and row[-1] == ["", ""]:
            row.pop()
    while cells and not cells[-1]:
        cells.pop()
    data = json.dumps(cells, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return len(data), hashlib.sha256(data).hexdigest()


def previous_period(path: Path, as_of: dt.date, period: str, config_hash: str = "") -> PreviousPeriod | None:
    """The stored period this run compares with, by a stated rule: the latest as-of date earlier than
    this run's (a run with the same period name is replaced, never compared with); among several stored
    periods with that as-of date, the one made with the same config (checksum), else the last stored."""
    if not path.exists():
        return None
    with closing(connect(path)) as conn:
        rows = conn.execute(
            "SELECT run_id, period, as_of, config_hash FROM runs WHERE as_of = (SELECT MAX(as_of) FROM runs "
            "WHERE as_of < ? AND period != ?) AND period != ? ORDER BY (config_hash = ?) DESC, run_id DESC",
            (as_of.isoformat(), period, period, config_hash)).fetchall()
        if not rows:
            return None
        row = rows[0]
        frame = _stored_grades(conn, row[0])
    how = "截止日期早于本期的最近一期"
    if len(rows) > 1:
        same = "规则相同（配置校验码一致）的一期" if config_hash and row[3] == config_hash else "最后保存的一期"
        how += f"；该日期有 {len(rows)} 期（{'、'.join(r[1] for r in rows)}），取{same}"
    elif config_hash and row[3] != config_hash:
        how += "；注意：该期使用的规则与本期不同（配置校验码不一致）"
    return PreviousPeriod(row[1], dt.date.fromisoformat(row[2]), frame.set_index("customer_code"), how)


def year_before(path: Path, as_of: dt.date, tolerance_days: int = 7) -> PreviousPeriod | None:
    """The stored period whose as-of date is one year before `as_of` (± a few days), for 同比."""
    if not path.exists():
        return None
    try:
        target = as_of.replace(year=as_of.year - 1)
    except ValueError:  # 29 February
        target = as_of.replace(year=as_of.year - 1, day=28)
    low, high = target - dt.timedelta(days=tolerance_days), target + dt.timedelta(days=tolerance_days)
    with closing(connect(path)) as conn:
        row = conn.execute("SELECT run_id, period, as_of FROM runs WHERE as_of BETWEEN ? AND ? "
                           "ORDER BY abs(julianday(as_of) - julianday(?)), run_id DESC LIMIT 1",
                           (low.isoformat(), high.isoformat(), target.isoformat())).fetchone()
        if row is None:
            return None
        frame = _stored_grades(conn, row[0])
    return PreviousPeriod(row[1], dt.date.fromisoformat(row[2]), frame.set_index("customer_code"))


def _stored_grades(conn: sqlite3.Connection, run_id: int) -> pd.DataFrame:
    """A stored run's customers, by customer code (the order of its primary key). A run's rows were inserted
    together, so they are neighbours in the table: read in that order (between the run's first and last rowid),
    not looked up one by one through the key's index, which visits the table's pages at random (50,000
    customers: 0.17 → 0.12 s)."""
    first, last = conn.execute("SELECT min(rowid), max(rowid) FROM customer_grades WHERE run_id = ?",
                               (run_id,)).fetchone()
    return pd.read_sql_query(
        "SELECT customer_code, customer_name, grade, rule_grade, score, net_sales, below_streak "
        "FROM customer_grades NOT INDEXED WHERE rowid BETWEEN ? AND ? AND run_id = ? ORDER BY customer_code",
        conn, params=(first if first is not None else 0, last if last is not None else -1, run_id))


def _clean(v: object) -> object:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, (pd.Timestamp, dt.date)):
        return v.isoformat()
    if hasattr(v, "item"):
        return v.item()  # numpy scalar
    return v


def column_values(column: pd.Series) -> list[object]:
    """[_clean(v) for v in column.tolist()], in bulk for numpy number and bool columns: their tolist()
    gives Python floats, ints and bools, which _clean keeps, except NaN, which becomes None."""
    dtype = column.dtype
    if isinstance(dtype, pd.StringDtype):  # Python str, missing → None (what _clean does to each)
        texts: list[object] = column.tolist()
        for i in np.flatnonzero(column.isna().to_numpy()).tolist():
            texts[i] = None
        return texts
    if not isinstance(dtype, np.dtype) or dtype.kind not in "fiub":
        return [_clean(v) for v in column.tolist()]
    values: list[object] = column.tolist()
    if dtype.kind == "f":
        for i in np.flatnonzero(np.isnan(column.to_numpy())).tolist():
            values[i] = None
    return values


def _metrics_json(graded: pd.DataFrame, names: list[str]) -> list[str]:
    """Per row json.dumps({name: value}, ensure_ascii=False) of the cleaned values (column_values), built
    column-wise: a number column's values are encoded by one json.dumps of the whole column (numbers, null,
    true/false never contain ", "), every other value by json.dumps on its own; each row is then one
    %-format of a template, instead of one dict and one encoder call per row."""
    n = len(graded)
    if not names or not n:
        return ["{}"] * n
    columns: list[list[str]] = []
    for name in names:
        values = column_values(graded[name])
        dtype = graded[name].dtype
        if isinstance(dtype, np.dtype) and dtype.kind in "fiub":
            columns.append(json.dumps(values, ensure_ascii=False)[1:-1].split(", "))
        else:
            columns.append([json.dumps(v, ensure_ascii=False) for v in values])
    template = "{" + ", ".join(json.dumps(name, ensure_ascii=False).replace("%", "%%") + ": %s"
                               for name in names) + "}"
    return [template % texts for texts in zip(*columns)]


def record_run(conn: sqlite3.Connection, run: RunRecord, graded: pd.DataFrame) -> int:
    """Replace the run's period with this run; call inside `with conn:` (one transaction)."""
    conn.execute("DELETE FROM runs WHERE period = ?", (run.period,))
    cur = conn.execute(
        "INSERT INTO runs (period, as_of, started_at, config_hash, customers, output, source, config_text) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (run.period, run.as_of.isoformat(), stamp(run.started_at), run.config_hash,
         len(graded), run.output, run.source, run.config_text or None))
    run_id = int(cur.lastrowid or 0)
    n = len(graded)

    def col(name: str, default: object = None) -> list[object]:
        return column_values(graded[name]) if name in graded else [default] * n

    metrics = _metrics_json(graded, [c for c in METRIC_COLUMNS if c in graded])
    names = [str(v or "") for v in col("customer_name", "")]
    grades = [str(v) for v in graded["grade"].tolist()]
    rule_grades = [str(v) for v in graded["rule_grade"].tolist()] if "rule_grade" in graded else grades
    pinned = [int(bool(v)) for v in col("pinned", "")]
    streaks = [int(v) if isinstance(v, (int, float)) else 0 for v in col("below_streak", 0)]
    reasons = [str(v or "") for v in col("reason", "")]
    codes = [str(c) for c in graded.index.tolist()]
    salespeople = [None if v is None else str(v) for v in col("salesperson")]
    rows = list(zip([run_id] * n, codes, names, rule_grades, grades,
                    col("score"), col("net_sales"), pinned, streaks, reasons, metrics, salespeople))
    conn.executemany(
        "INSERT INTO customer_grades (run_id, customer_code, customer_name, rule_grade, grade, score, net_sales, "
        "pinned, below_streak, explanation, metrics, salesperson) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    if "pin_by" in graded:
        audit = [(run_id, code, grade, rule, by, on or None, why, until or None, origin, where)
                 for code, grade, rule, by, on, why, until, origin, where in zip(
                     codes, grades, col("pin_rule_grade", ""), *(col(c, "") for c in (
                         "pin_by", "pin_on", "pin_reason", "pin_until", "pin_origin", "pin_source")))
                 if by]
        conn.executemany(
            "INSERT INTO pin_audit (run_id, customer_code, grade, rule_grade, approved_by, approved_on, reason, "
            "valid_until, origin, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", audit)
    # the inputs last: their digests may still be in the making (grading.record_behind.PendingDigests)
    conn.executemany("INSERT INTO run_inputs (run_id, path, size, sha256) VALUES (?, ?, ?, ?)",
                     [(run_id, str(p), *((run.digests or {}).get(p) or file_digest(p))) for p in run.inputs]
                     + [(run_id, *s) for s in run.sheets])
    return run_id


def list_runs(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    with closing(connect(path)) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(
            "SELECT run_id, period, as_of, started_at, customers, config_hash, source, output FROM runs "
            "ORDER BY as_of, run_id")]


def customer_timeline(path: Path, code: str) -> list[dict[str, object]]:
    if not path.exists():
        return []
    with closing(connect(path)) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(
            "SELECT r.period, r.as_of, g.grade, g.rule_grade, g.score, g.net_sales, g.pinned, g.explanation "
            "FROM customer_grades g JOIN runs r USING (run_id) WHERE g.customer_code = ? ORDER BY r.as_of",
            (code,))]


def stored_inputs(path: Path, period: str) -> Iterable[tuple[str, int, str]]:
    with closing(connect(path)) as conn:
        return list(conn.execute("SELECT i.path, i.size, i.sha256 FROM run_inputs i JOIN runs r USING (run_id) "
                                 "WHERE r.period = ? ORDER BY i.path", (period,)))
