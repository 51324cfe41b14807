"""The 规则预览 sheet as rows: title and notes, then five sections (grades before → after,
migration matrix, movers, policy changes, visit load per salesperson), each a title row, a header
row and data rows. The workbook writer and the Excel add-in both write these rows, so the
preview, the add-in's preview and `history diff` share one layout."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from .preview import POLICY_FIELDS, Preview

SHEET = "规则预览"
Kind = Literal["text", "int", "money", "pct", "num"]
RowKind = Literal["title", "note", "section", "header", "data", "blank"]


@dataclass(frozen=True)
class Row:
    kind: RowKind
    values: tuple[object, ...]
    formats: tuple[Kind, ...] = ()  # data rows: one per value


@dataclass(frozen=True)
class Table:
    title: str
    headers: tuple[str, ...]
    formats: tuple[Kind, ...]
    rows: Sequence[Sequence[object]]


def _clean(value: object) -> object:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "item"):
        return value.item()  # numpy scalar
    return value


def tables(p: Preview) -> list[Table]:
    s = p.summary
    summary = Table(
        f"一、各等级客户数与净销售额（原 → 新）",
        ("等级", "原客户数", "新客户数", "客户数变化", "原客户占比", "新客户占比",
         "原净销售额", "新净销售额", "净销售额变化", "原销售占比", "新销售占比"),
        ("text", "int", "int", "int", "pct", "pct", "money", "money", "money", "pct", "pct"),
        [[r["grade"], r["before_customers"], r["after_customers"], r["customer_change"], r["before_share"],
          r["after_share"], r["before_sales"], r["after_sales"], r["sales_change"], r["before_sales_share"],
          r["after_sales_share"]] for r in s.to_dict("records")])
    m = p.matrix
    matrix = Table(
        "二、等级迁移矩阵（行：原等级，列：新等级；客户数）",
        ("原＼新", *map(str, m.columns), "合计"), ("text", *(["int"] * (len(m.columns) + 1))),  # type: ignore[arg-type]
        [[str(g), *m.loc[g].tolist(), int(m.loc[g].sum())] for g in m.index]
        + [["合计", *(int(m[c].sum()) for c in m.columns), int(m.to_numpy().sum())]])
    mv = p.movers
    movers = Table(
        f"三、等级变动的客户（{len(mv)} 个，按净销售额从高到低）",
        ("序号", "客户编码", "客户名称", "业务员", "原等级", "新等级", "变动", "原净销售额", "新净销售额",
         "原分级依据", "新分级依据"),
        ("int", "text", "text", "text", "text", "text", "text", "money", "money", "text", "text"),
        [[i, r["customer_code"], r["customer_name"], r["salesperson"], r["before"], r["after"], r["change"],
          r["before_sales"], r["after_sales"], r["before_reason"], r["after_reason"]]
         for i, r in enumerate(mv.to_dict("records"), start=1)])
    pc = p.policy
    policy = Table(
        f"四、服务政策变化的客户（{len(pc)} 个：拜访频率、信用政策、折扣）",
        ("序号", "客户编码", "客户名称", "业务员", "净销售额", "原等级", "新等级",
         *(f"{w}{label}" for _, label in POLICY_FIELDS for w in ("原", "新"))),
        ("int", "text", "text", "text", "money", "text", "text", *(["text"] * 2 * len(POLICY_FIELDS))),  # type: ignore[arg-type]
        [[i, r["customer_code"], r["customer_name"], r["salesperson"], r["sales"], r["before"], r["after"],
          *(r[f"{w}_{key}"] for key, _ in POLICY_FIELDS for w in ("before", "after"))]
         for i, r in enumerate(pc.to_dict("records"), start=1)])
    ld = p.load
    load = Table(
        "五、业务员拜访负荷（次/月，按各等级拜访频率的下限和上限合计）",
        ("业务员", "原客户数", "新客户数", "原拜访下限", "原拜访上限", "新拜访下限", "新拜访上限",
         "下限变化", "上限变化"),
        ("text", "int", "int", "num", "num", "num", "num", "num", "num"),
        [[r["salesperson"], r["before_customers"], r["after_customers"], r["before_low"], r["before_high"],
          r["after_low"], r["after_high"], r["change_low"], r["change_high"]] for r in ld.to_dict("records")])
    return [summary, matrix, movers, policy, load]


def rows(p: Preview) -> list[Row]:
    """Every row of the 规则预览 sheet, top to bottom."""
    out = [Row("title", (p.title,)), Row("note", (f"原：{p.before}",)), Row("note", (f"新：{p.after}",))]
    out += [Row("note", (n,)) for n in p.notes]
    for t in tables(p):
        out.append(Row("blank", ()))
        out.append(Row("section", (t.title,)))
        out.append(Row("header", t.headers))
        out += [Row("data", tuple(_clean(v) for v in r), t.formats) for r in t.rows]
        if not t.rows:
            out.append(Row("note", ("（无）",)))
    return out
