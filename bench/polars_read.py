"""Reading and cleaning for the polars reference pipeline (bench/polars_ref.py).

Hand-written for the demo generator's exports, as a strong user would write it: fastexcel
(python-calamine's Rust core, straight into Arrow) for xlsx/xls, polars' CSV reader after one
transcoding pass for GBK CSV, the project's markup parser for HTML "xls"; then polars expressions for
codes (NFKC + strip), text amounts ("1,234.50", "(1,234.50)", "¥"), text dates ("2026/5/3",
"2026年5月3日", Excel serials), 合计/小计 rows and unusable rows, every one listed as a problem row.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import polars as pl

HEADERS = {  # the demo exports' headers (金蝶 / 用友 / SAP / receivables / master / overrides) → field
    "单据编号": "doc_no", "发货单号": "doc_no", "销售凭证": "doc_no",
    "日期": "date", "发货日期": "date", "凭证日期": "date",
    "客户编码": "customer_code", "售达方": "customer_code", "客户编号": "customer_code",
    "客户": "customer_name", "客户名称": "customer_name", "名称 1": "customer_name",
    "价税合计": "amount", "本币价税合计": "amount", "含税金额": "amount",
    "金额": "amount_excl_tax", "本币无税金额": "amount_excl_tax", "净价值": "amount_excl_tax",
    "成本": "cost", "销售员": "salesperson", "业务员": "salesperson", "销售部门": "department", "部门": "department",
    "期初余额": "opening", "本期发生/本期应收": "billed", "本期应收": "billed", "本期发生/本期收回": "received",
    "本期收回": "received", "期末余额": "closing", "最长逾期天数": "overdue_days", "地区": "region",
    "客户分类": "category", "指定等级": "grade", "原因": "reason", "指定人": "by", "有效期至": "until",
}
MONEY = ("amount", "amount_excl_tax", "cost", "opening", "billed", "received", "closing")
REQUIRED = {"sales": ("customer_code", "date", "amount"), "receivables": ("customer_code",),
            "customers": ("customer_code",), "overrides": ("customer_code", "grade", "reason", "by")}
TEXT = ("doc_no", "customer_code", "customer_name", "salesperson", "department", "region", "category", "grade",
        "reason", "by")
_TOTAL_EXACT = r"^\s*(本页|本期|总|全部)?\s*(合\s*计|小\s*计|总\s*计|累\s*计)\s*([:：].*)?$"
_TOTAL_SUFFIX = r"^.{1,40}?\s*(小计|合计)\s*[:：]?\s*$"
_EPOCH = pl.datetime(1899, 12, 30, time_unit="ms")
PROBLEM_SCHEMA = {"file": pl.String, "sheet": pl.String, "row": pl.Int64, "column": pl.String, "value": pl.String,
                  "reason": pl.String, "action": pl.String, "amount": pl.Float64}
DATE_HELP = "日期无法识别（支持 2026-05-03、2026/5/3、2026年5月3日、Excel 日期）"


def as_problems(frame: pl.DataFrame) -> pl.DataFrame:
    """The problem columns in their order and types (an absent amount is empty)."""
    if "amount" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, dtype=pl.Float64).alias("amount"))
    return frame.select(list(PROBLEM_SCHEMA)).cast(PROBLEM_SCHEMA)  # type: ignore[arg-type]


@dataclass
class RawTable:
    file: str
    sheet: str
    frame: pl.DataFrame       # columns named by field (unmapped columns dropped), plus _row and _first
    headers: dict[str, str]   # field → header text
    multiplier: float         # 1e4 where a title row says 单位：万元


def _sniff(head: bytes) -> str:
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "xls"
    if head.startswith(b"PK"):
        return "zip"
    return "markup" if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<") else "text"


def _decode(raw: bytes) -> str:
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("gb18030")


def _header_index(rows: list[list[object]]) -> int:
    hits = [sum(1 for v in row if isinstance(v, str) and v.strip() in HEADERS) for row in rows]
    return max(range(len(hits)), key=lambda i: (hits[i], -i))


def _merged(upper: list[object], lower: list[object]) -> list[str]:
    out, parent = [], ""
    for u, lo in zip(upper, lower):
        u_s = str(u).strip() if u not in (None, "") else ""
        lo_s = str(lo).strip() if lo not in (None, "") else ""
        parent = u_s or parent
        out.append(f"{parent}/{lo_s}" if lo_s else u_s)
    return out


def _mapped(frame: pl.DataFrame, names: list[str], first: int, file: str, sheet: str, titles: list[str]) -> RawTable:
    keep: dict[str, str] = {}
    headers: dict[str, str] = {}
    for col, name in zip(frame.columns, names):
        field = HEADERS.get(name) or HEADERS.get(name.split("/")[-1])
        if field and field not in headers:
            keep[col] = field
            headers[field] = name.split("/")[-1] if "/" in name else name
    out = frame.select([pl.col(c).alias(f) for c, f in keep.items()] + [pl.col(frame.columns[0]).alias("_first")])
    out = out.with_columns(pl.int_range(first, first + out.height, dtype=pl.Int64).alias("_row"))
    multiplier = 1e4 if any("单位：万元" in t or "单位:万元" in t for t in titles) else 1.0
    return RawTable(file, sheet, out, headers, multiplier)


def read_excel(path: Path) -> RawTable:
    """One parse of the sheet (fastexcel, every cell; mixed columns come as text), header found in it."""
    import fastexcel

    reader = fastexcel.read_excel(str(path))
    sheet = reader.sheet_names[0]
    full = reader.load_sheet(0, header_row=None).to_polars()
    head_rows = full.head(30).rows()
    h = _header_index([list(r) for r in head_rows])
    names = [str(v).strip() if v is not None else "" for v in head_rows[h]]
    last = h
    if h + 1 < len(head_rows) and any(isinstance(v, str) and v.strip() in ("本期应收", "本期收回") for v in head_rows[h + 1]):
        names, last = _merged(list(head_rows[h]), list(head_rows[h + 1])), h + 1
    titles = [str(v) for row in head_rows[:h] for v in row if isinstance(v, str)]
    return _mapped(full.slice(last + 1), names, last + 2, path.name, sheet, titles)


def read_csv(path: Path) -> RawTable:
    raw = path.read_bytes()
    data = raw if _is_utf8(raw) else raw.decode("gb18030").encode("utf-8")
    import csv

    head = list(csv.reader(io.StringIO(data[:200_000].decode("utf-8", errors="ignore"), newline="")))[:30]
    h = _header_index([list(r) for r in head])
    frame = pl.read_csv(data, has_header=True, skip_lines=h, infer_schema=False, truncate_ragged_lines=True)
    titles = [v for row in head[:h] for v in row]
    return _mapped(frame, [c.strip() for c in frame.columns], h + 2, path.name, path.stem, titles)


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def read_markup(path: Path) -> RawTable:
    from grading.read_markup import read_html_tables

    name, rows = max(read_html_tables(_decode(path.read_bytes())), key=lambda t: len(t[1]))
    h = _header_index(rows[:30])
    width = max(len(r) for r in rows)
    body = [[None if v in ("", None) else str(v) for v in r] + [None] * (width - len(r)) for r in rows[h + 1:]]
    names = [str(v).strip() for v in rows[h]] + [f"_{i}" for i in range(len(rows[h]), width)]
    frame = pl.DataFrame(body, schema={f"c{i}": pl.String for i in range(width)}, orient="row")
    return _mapped(frame, names, h + 2, path.name, name, [])


def read_any(path: Path) -> RawTable:
    with path.open("rb") as fh:
        kind = _sniff(fh.read(512))
    if kind in ("xls", "zip"):
        return read_excel(path)
    return read_markup(path) if kind == "markup" else read_csv(path)


def _text_of(name: str, dtype: pl.DataType) -> pl.Expr:
    col = pl.col(name)
    if dtype == pl.String:
        return col
    if dtype.is_float():  # a number typed into a code/name cell: 1001.0 → "1001"
        return pl.when(col == col.floor()).then(col.cast(pl.Int64).cast(pl.String)).otherwise(col.cast(pl.String))
    return col.cast(pl.String)


def _per_distinct(frame: pl.DataFrame, name: str, fn: pl.Expr, dtype: pl.DataType | type[pl.DataType]) -> pl.Series:
    """fn (an expression on pl.col(name)) evaluated once per distinct value, mapped back to every row."""
    uniq = frame.select(pl.col(name).unique().drop_nulls())
    mapped = uniq.with_columns(fn.alias("_v"))
    return frame[name].replace_strict(mapped[name], mapped["_v"], default=None, return_dtype=dtype)


def _slow_amount(text: pl.Expr) -> pl.Expr:
    t = text.str.normalize("NFKC").str.replace_all(r"[,\s¥￥$元]", "")
    neg = t.str.starts_with("(") & t.str.ends_with(")")
    inner = t.str.strip_prefix("(").str.strip_suffix(")").cast(pl.Float64, strict=False)
    return pl.when(neg).then(-inner).otherwise(inner)


def _money(frame: pl.DataFrame, name: str, multiplier: float) -> pl.DataFrame:
    """Columns name (float), _name_bad, _name_fixed, _name_empty, _name_raw for one amount column:
    plain numbers in one vectorised cast, the rest ("(1,234.50)", "¥12") only where that cast failed."""
    dtype = frame.schema[name]
    col = pl.col(name)
    if dtype.is_numeric():
        value = col.cast(pl.Float64) * multiplier
        return frame.select(value.alias(name), pl.lit(False).alias(f"_{name}_bad"), pl.lit(False).alias(f"_{name}_fixed"),
                            value.is_null().alias(f"_{name}_empty"), _text_of(name, dtype).alias(f"_{name}_raw"))
    s = col.str.strip_chars()
    out = frame.select(s.str.replace_all(",", "", literal=True).cast(pl.Float64, strict=False).alias(name),
                       (s.is_null() | s.is_in(["", "-", "—"])).alias(f"_{name}_empty"), col.alias(f"_{name}_raw"))
    retry = out.select(pl.arg_where(pl.col(name).is_null() & ~pl.col(f"_{name}_empty"))).to_series()
    values, fixed = out[name], pl.Series(f"_{name}_fixed", [False] * out.height)
    if retry.len():
        slow = out[retry].select(_slow_amount(pl.col(f"_{name}_raw"))).to_series()
        values = values.scatter(retry, slow)
        fixed = fixed.scatter(retry, slow.is_not_null())
    return out.with_columns((values * multiplier).alias(name), fixed,
                            (values.is_null() & ~out[f"_{name}_empty"]).alias(f"_{name}_bad"))


def _date_text(text: pl.Expr) -> pl.Expr:
    t = (text.str.normalize("NFKC").str.strip_chars().str.split_exact(" ", 1).struct.field("field_0")
         .str.replace_all(r"[年月/.]", "-").str.strip_chars_end("日-"))
    serial = text.cast(pl.Float64, strict=False)
    from_serial = pl.when((serial >= 1) & (serial < 2958466)).then(
        _EPOCH + pl.duration(milliseconds=(serial * 86_400_000).round(0).cast(pl.Int64)))
    return pl.coalesce(t.str.strptime(pl.Datetime("ms"), "%Y-%m-%d", strict=False),
                       t.str.strptime(pl.Datetime("ms"), "%Y%m%d", strict=False), from_serial)


def _date(frame: pl.DataFrame, name: str) -> pl.Series:
    dtype = frame.schema[name]
    col = pl.col(name)
    if dtype.is_temporal():
        return frame.select(col.cast(pl.Datetime("ms"))).to_series()
    if dtype.is_numeric():
        return frame.select(_date_text(col.cast(pl.String))).to_series()
    return _per_distinct(frame, name, _date_text(col), pl.Datetime("ms"))  # few distinct dates: parse each once


def _problems(frame: pl.DataFrame, mask: str, table: RawTable, column: str, value: pl.Expr, reason: str,
              action: str) -> pl.DataFrame:
    hit = frame.filter(pl.col(mask))
    amount = pl.col("amount") if action == "已跳过" and "amount" in frame.columns else pl.lit(None, dtype=pl.Float64)
    return hit.select(pl.lit(table.file).alias("file"), pl.lit(table.sheet).alias("sheet"), pl.col("_row").alias("row"),
                      pl.lit(column).alias("column"), value.cast(pl.String).fill_null("").alias("value"),
                      pl.lit(reason).alias("reason"), pl.lit(action).alias("action"), amount.alias("amount"))


def clean(table: RawTable, source: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Typed rows of one file (fields + _file, _row) and its problem rows."""
    f, schema = table.frame, table.frame.schema
    fields = [c for c in f.columns if not c.startswith("_")]
    parts: list[pl.DataFrame | pl.Series] = []
    for name in fields:
        if name in MONEY or name == "overdue_days":
            parts.append(_money(f, name, table.multiplier if name in MONEY else 1.0))
        elif name in ("date", "until"):
            parts += [_date(f, name).alias(name), f.select(_text_of(name, schema[name]).alias(f"_{name}_raw")).to_series()]
        else:
            raw = f.select(_text_of(name, schema[name])).to_series()
            if name == "customer_code":  # NFKC (full-width codes) once per distinct code
                text = _per_distinct(raw.to_frame(name), name, pl.col(name).str.normalize("NFKC").str.strip_chars(), pl.String)
            else:
                text = raw.str.strip_chars()
            parts += [text.fill_null("").alias(name), raw.alias(f"_{name}_raw")]
    typed = pl.concat([p.to_frame() if isinstance(p, pl.Series) else p for p in parts], how="horizontal")
    typed = typed.with_columns(f.select(_text_of("_first", schema["_first"])).to_series().alias("_first"), f["_row"])
    blank = pl.all_horizontal([pl.col(f"_{n}_raw").is_null() | (pl.col(f"_{n}_raw").str.strip_chars() == "")
                               for n in fields])
    labels = [pl.col("_first")] + [pl.col(f"_{k}_raw") for k in ("customer_code", "customer_name") if k in fields]
    code = pl.col("_customer_code_raw").str.strip_chars() if "customer_code" in fields else pl.lit("")
    total = (pl.any_horizontal([lab.str.contains(_TOTAL_EXACT).fill_null(False) for lab in labels])
             | (code.str.contains(_TOTAL_SUFFIX) & ~code.str.contains(r"^[A-Za-z0-9._-]+$")).fill_null(False))
    typed = typed.with_columns(blank.alias("_blank"), (total & ~blank).alias("_total"))
    problems = [_problems(typed, "_total", table, "", pl.coalesce(pl.col("_first"), code), "合计/小计行，不计入客户数据", "提示")]
    typed = typed.filter(~pl.col("_blank") & ~pl.col("_total"))
    if "customer_code" in fields:
        typed = typed.with_columns(((pl.col("customer_code") != pl.col("_customer_code_raw"))
                                    & (pl.col("_customer_code_raw").str.strip_chars() != "")).alias("_code_fixed"))
        problems.append(_problems(typed, "_code_fixed", table, table.headers["customer_code"],
                                  pl.col("_customer_code_raw"), "编码含空格或全角字符，已规范化", "已修正"))
    drop = pl.lit(False)
    required = REQUIRED[source]
    for name in fields:
        if name in MONEY or name == "overdue_days":
            problems.append(_problems(typed, f"_{name}_fixed", table, table.headers[name], pl.col(f"_{name}_raw"),
                                      "金额写法特殊（括号负数/货币符号），已按数值读取", "已修正"))
            if name in required:
                for mask, reason in ((f"_{name}_bad", "金额不是有效数字"), (f"_{name}_empty", "金额为空")):
                    problems.append(_problems(typed.filter(~drop), mask, table, table.headers[name],
                                              pl.col(f"_{name}_raw"), reason, "已跳过"))
                    drop = drop | pl.col(mask)
            elif name not in ("amount_excl_tax", "opening", "billed", "received", "closing"):
                problems.append(_problems(typed, f"_{name}_bad", table, table.headers[name], pl.col(f"_{name}_raw"),
                                          "不是有效数字，按空值处理", "已修正"))
        if name == "customer_code":
            typed = typed.with_columns((pl.col("customer_code") == "").alias("_code_empty"))
            problems.append(_problems(typed.filter(~drop), "_code_empty", table, table.headers[name],
                                      pl.lit(""), "客户编码为空", "已跳过"))
            drop = drop | pl.col("_code_empty")
        if name in ("date", "until"):
            unreadable = pl.col(name).is_null()  # a sales line needs its date; an empty 有效期至 is allowed
            if name == "until":
                unreadable = unreadable & pl.col(f"_{name}_raw").is_not_null()
            typed = typed.with_columns(unreadable.alias(f"_{name}_bad"))
            if name == "date":
                problems.append(_problems(typed.filter(~drop), "_date_bad", table, table.headers[name],
                                          pl.col("_date_raw"), DATE_HELP, "已跳过"))
                drop = drop | pl.col("_date_bad")
    out = typed.filter(~drop).select(*[pl.col(n) for n in fields], pl.col("_row"))
    out = out.with_columns(pl.lit(table.file).alias("_file"), pl.lit(table.sheet).alias("_sheet"))
    return out, pl.concat([as_problems(p) for p in problems], how="vertical")
