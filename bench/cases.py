"""Benchmark cases and their inputs (generated once into bench/out/<case>/, never timed).

- mixed: 金蝶 xlsx + 用友 GBK CSV + SAP xls/xlsx + receivables + HTML master + overrides (grading.demo_data).
  Beyond the generator's 84,000-name pool, or when the 金蝶 sheet would pass Excel's row limit, the
  bench writes the same exports itself: extra customers get numbered names, and the 金蝶 part is split
  into several files (whole customers per file, each with its 小计 rows and a 合计 row).
- csv: one large 用友 GBK CSV holding every sales line (plus the receivables/master/overrides exports).
- bad: the csv layout whose sales lines are mostly unusable (bad amounts and dates): the memory figure
  for many problems.
- history: the inputs of another case plus a stored previous period (as of 2025-12-31), seeded by one
  untimed run of each pipeline before the timed runs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
EXCEL_ROWS = 1_048_576
SEED_AS_OF = "2025-12-31"


@dataclass(frozen=True)
class Case:
    name: str
    lines: int
    customers: int
    layout: str = "mixed"          # mixed | csv | bad
    bad_rows: int = 0
    history_of: str | None = None  # inputs of that case, plus a stored previous period


CASES: dict[str, Case] = {c.name: c for c in (
    Case("200k", 200_000, 10_000),
    Case("200k-hist", 200_000, 10_000, history_of="200k"),
    Case("200k-bad", 20_000, 2_000, "bad", bad_rows=200_000),
    Case("1M", 1_000_000, 50_000),
    Case("1M-csv", 1_000_000, 50_000, "csv"),
    Case("1M-hist", 1_000_000, 50_000, history_of="1M"),
    Case("1M-bad", 100_000, 5_000, "bad", bad_rows=1_000_000),
    Case("3M", 3_000_000, 150_000),
    Case("3M-csv", 3_000_000, 150_000, "csv"),
)}


def folder_of(case: Case) -> Path:
    return OUT / case.name


def _config(template_config: dict[str, Any], sources: dict[str, Any] | None) -> dict[str, Any]:
    data = dict(template_config)
    data["output"] = {**data["output"], "template": str(ROOT / "templates" / "客户分级管理表.xlsx")}
    if sources is not None:
        data["sources"] = sources
    else:
        data["sources"] = {**data["sources"], "sales": {**data["sources"]["sales"], "files": ["demo_data/sales_*"]}}
    return data


def prepare(case: Case) -> Path:
    """Generate the case's inputs and config.yaml (and config_seed.yaml for a history case) if missing."""
    folder = folder_of(case)
    if (folder / "config.yaml").exists():
        return folder
    base = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    sources: dict[str, Any] | None = None
    if case.history_of is not None:
        data_folder = prepare(CASES[case.history_of]) / "demo_data"
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / "demo_data").exists():
            (folder / "demo_data").symlink_to(data_folder, target_is_directory=True)
        sources = yaml.safe_load((data_folder.parent / "config.yaml").read_text(encoding="utf-8"))["sources"]
        seed = _config(base, sources)
        seed["period"] = {**seed["period"], "as_of": SEED_AS_OF, "name": "2025H2"}
        (folder / "config_seed.yaml").write_text(yaml.safe_dump(seed, allow_unicode=True), encoding="utf-8")
    elif case.layout == "csv":
        generate_csv_case(folder / "demo_data", case.customers, case.lines)
    elif case.layout == "bad":
        write_bad_csv(folder / "demo_data", case.customers, case.lines, case.bad_rows)
    else:
        generate_mixed(folder / "demo_data", case.customers, case.lines)
    (folder / "config.yaml").write_text(yaml.safe_dump(_config(base, sources), allow_unicode=True), encoding="utf-8")
    return folder


def kingdee_rows(lines: int, customers: int) -> int:
    """Rows the 金蝶 sheet would get: 2025's lines (365 of the generator's 560 days), 小计 rows, titles."""
    return int(lines * 365 / 560 * 1.02) + customers + 6


def generate_mixed(folder: Path, customers: int, lines: int, row_limit: int = EXCEL_ROWS,
                   name_pool: int = 84_000) -> None:
    from grading import demo_data

    if customers <= name_pool and kingdee_rows(lines, customers) < row_limit:
        demo_data.generate(folder, customers=customers, lines=lines)
        return
    generate_large(folder, customers, lines, row_limit)


def generate_csv_case(folder: Path, customers: int, lines: int, name_pool: int = 84_000) -> Path:
    """Every sales line in one 用友 GBK CSV (as grading.demo_data.generate_csv writes it, at any customer
    count), plus the receivables, master and overrides exports of the same customers: the default rules
    need 回款率 and 逾期天数."""
    from grading import demo_data as d

    rng = random.Random(20260630)
    folder.mkdir(parents=True, exist_ok=True)
    cust = d._customers(rng, customers) if customers <= name_pool else customer_frame(rng, customers)
    lines_df = d._order_lines(rng, cust, lines)
    path = d._u8_csv(folder / "sales_u8.csv", lines_df, dict(zip(cust["customer_code"], cust["customer_name"])),
                     dict(zip(cust["customer_code"], cust["salesperson"])), rng)
    _side_files(folder, cust, lines_df, rng)
    return path


def _side_files(folder: Path, cust: pd.DataFrame, lines_df: pd.DataFrame, rng: random.Random) -> list[Path]:
    """Receivables (xlsx, two-level header), customer master (HTML "xls") and overrides, as demo_data does."""
    from grading import demo_data as d

    names = dict(zip(cust["customer_code"], cust["customer_name"]))
    receivables = d._receivables(cust, lines_df, rng)
    extra = random.Random(20260631)
    receivables["overdue_days"] = [extra.choices([0, 15, 45, 75, 120, 200], [40, 20, 15, 10, 10, 5])[0]
                                   for _ in range(len(receivables))]
    cust = cust.copy()
    cust["points"] = [int(extra.paretovariate(1.5) * 800) for _ in range(len(cust))]
    for col, options in (("recognition", ["高", "低"]), ("pain", ["明确", "模糊"]), ("deal", ["已成交", "洽谈中"])):
        cust[col] = [extra.choice(options) for _ in range(len(cust))]
    return [d._receivables_xlsx(folder / "receivables_u8.xlsx", receivables, names),
            d._customers_html(folder / "customers_web.xls", cust),
            d._overrides_xlsx(folder / "overrides_人工指定等级.xlsx", cust)]


def customer_frame(rng: random.Random, n: int, tries: int = 20) -> pd.DataFrame:
    """Like the demo generator's customers, for any count: after `tries` taken names in a row (the
    84,000-name pool is running out) the name gets a number, so every name stays distinct."""
    from grading import demo_data as d

    names: set[str] = set()
    rows = []
    for i in range(1, n + 1):
        for _ in range(tries):
            name = f"{rng.choice(d._CITIES)}{rng.choice(d._SURNAMES)}{rng.choice(d._SURNAMES)}{rng.choice(d._WORDS)}有限公司"
            if name not in names:
                break
        else:
            name = f"{rng.choice(d._CITIES)}{rng.choice(d._WORDS)}{i}号有限公司"
        names.add(name)
        rows.append({"customer_code": f"C{i:06d}" if n >= 100_000 else f"C{i:05d}", "customer_name": name,
                     "salesperson": d._SALES[i % len(d._SALES)], "region": d._REGIONS[i % len(d._REGIONS)],
                     "potential": rng.choice(["高", "中", "低"]), "scale": rng.paretovariate(1.16)})
    return pd.DataFrame(rows)


def generate_large(folder: Path, customers: int, lines: int, row_limit: int = EXCEL_ROWS) -> list[Path]:
    """The demo exports at any size: 金蝶 split into files under `row_limit` rows, SAP as .xlsx."""
    from grading import demo_data as d

    rng = random.Random(20260630)
    folder.mkdir(parents=True, exist_ok=True)
    cust = customer_frame(rng, customers)
    lines_df = d._order_lines(rng, cust, lines)
    names = dict(zip(cust["customer_code"], cust["customer_name"]))
    sales_of = dict(zip(cust["customer_code"], cust["salesperson"]))
    kingdee = lines_df[lines_df["date"] < pd.Timestamp(2026, 1, 1)]
    u8 = lines_df[(lines_df["date"] >= pd.Timestamp(2026, 1, 1)) & (lines_df["date"] < pd.Timestamp(2026, 4, 1))]
    sap = lines_df[lines_df["date"] >= pd.Timestamp(2026, 4, 1)]
    files = []
    for k, part in enumerate(split_by_customer(kingdee, row_limit - 10), 1):
        files.append(d._kingdee(folder / f"sales_kingdee_2025_{k}.xlsx", part, names, sales_of, rng))
    files.append(d._u8_csv(folder / "sales_u8_2026Q1.csv", u8, names, sales_of, rng))
    files.append(d._sap_xlsx(folder / "sales_sap_2026Q2.xlsx", sap, names))
    return files + _side_files(folder, cust, lines_df, rng)


def split_by_customer(lines: pd.DataFrame, max_rows: int) -> list[pd.DataFrame]:
    """Whole customers per part, each part's lines + one 小计 row per customer within `max_rows`."""
    counts = lines.groupby("customer_code", sort=True).size()
    parts: list[list[str]] = [[]]
    used = 0
    for code, n in counts.items():
        if used + n + 1 > max_rows and parts[-1]:
            parts.append([])
            used = 0
        parts[-1].append(str(code))
        used += int(n) + 1
    return [lines[lines["customer_code"].isin(codes)] for codes in parts]


def write_bad_csv(folder: Path, customers: int, good: int, bad: int) -> Path:
    """The CSV case with `good` valid lines, then `bad` unusable ones (bad amount / bad date alternately)."""
    path = generate_csv_case(folder, customers, good)
    rows = []
    for k in range(bad):
        amount, date = ("N/A", "2026/3/1") if k % 2 else ("100.00", "2026/13/45")
        rows.append(f"FH-BAD-{k},{date},C{k % customers + 1:05d},坏数据公司,M0001,1,{amount},88.50,50,张伟,销售二部\r\n")
    with path.open("ab") as fh:
        fh.write("".join(rows).encode("gb18030"))
    return path
