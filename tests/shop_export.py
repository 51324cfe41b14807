"""A generated export shaped like a public online-shop export: English headers
(InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice, CustomerID, Country),
no amount column, customer IDs written as floats (17850.0), US-order text dates
(`10/30/2011 16:17`), cancellations as negative quantities on `C` invoices, and about a
quarter of the lines without a customer."""

from __future__ import annotations

import csv
import datetime as dt
import random
from pathlib import Path
from typing import Any

import yaml

HEADERS = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"]
AS_OF = dt.date(2011, 12, 9)
FIRST = dt.datetime(2010, 12, 1, 8, 0)


def write_shop_csv(path: Path, lines: int = 3000, customers: int = 120, seed: int = 12) -> Path:
    rng = random.Random(seed)
    ids = rng.sample(range(12346, 18288), customers)
    weights = [rng.paretovariate(1.2) for _ in ids]
    items = [(f"{rng.randint(10000, 99999)}{rng.choice(['', 'A', 'B'])}", f"ITEM {k}", round(rng.uniform(0.3, 15), 2))
             for k in range(60)]
    countries = ["United Kingdom", "France", "Germany", "EIRE", "Spain"]
    rows: list[list[Any]] = []
    invoice = 536365
    span = (dt.datetime.combine(AS_OF, dt.time(17, 0)) - FIRST).total_seconds()
    while len(rows) < lines:
        when = FIRST + dt.timedelta(seconds=rng.randrange(int(span)))
        anonymous = rng.random() < 0.25
        customer = "" if anonymous else f"{float(rng.choices(ids, weights)[0]):.1f}"  # 17850.0
        country = rng.choice(countries)
        cancel = not anonymous and rng.random() < 0.05
        invoice += 1
        for _ in range(rng.randint(1, 6)):
            code, name, price = rng.choice(items)
            qty = rng.choice([1, 2, 3, 4, 6, 12, 24]) * (-1 if cancel else 1)
            stamp = f"{when.month}/{when.day}/{when.year} {when.hour}:{when.minute:02d}"
            rows.append([f"C{invoice}" if cancel else str(invoice), code, name, qty, stamp, price, customer, country])
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(HEADERS)
        w.writerows(rows[:lines])
    return path


def shop_config(folder: Path, template: Path, files: list[str], **sales: Any) -> Path:
    """A config with no aliases and no amount settings: Pareto 70/90 on net sales."""
    data = {
        "sources": {"sales": {"files": files, **sales}},
        "period": {"as_of": AS_OF.isoformat(), "months": 12, "name": "shop"},
        "grading": {"stages": [{"type": "pareto", "metric": "净销售额",
                                "bands": [{"grade": "A", "share": "70%"}, {"grade": "B", "share": "90%"}],
                                "else": "C"}]},
        "grades": {"A": {"label": "核心"}, "B": {"label": "重要"}, "C": {"label": "一般"}},
        "output": {"template": str(template), "file": "out/shop_{period}.xlsx"},
        "history": {"enabled": False},
    }
    path = folder / "shop.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path
