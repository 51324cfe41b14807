"""Readable Chinese description of a config's rules: for `check-config`, the
分级规则 sheet and the add-in. One line per stage, then grades and policies."""

from __future__ import annotations

from .config_model import Config
from .units import format_amount, format_ratio


def describe_rules(config: Config) -> list[tuple[str, str]]:
    """(item, content) pairs."""
    p = config.period
    rows = [
        ("配置文件", f"{config.source_file}（校验码 {config.digest}）"),
        ("统计期间", f"{p.start:%Y-%m-%d} 至 {p.as_of:%Y-%m-%d}（{p.months} 个月，截止日 {p.as_of:%Y-%m-%d}）"),
        ("金额口径", f"{config.metrics.amount_basis}金额；回款率 = {config.metrics.collection_rate}"),
    ]
    sales = config.sources.sales
    if sales.amount_from is not None:
        rows.append(("销售明细金额", sales.amount_from if sales.amount_from == "金额列" else f"按 {sales.amount_from} 计算"))
    for name in ("sales", "receivables", "customers", "overrides"):
        source = getattr(config.sources, name)
        if source is not None and source.date_format:
            rows.append((f"日期写法（{name}）", source.date_format))
    if config.checks.dropped_share_warning != 0.05:
        rows.append(("数据检查", f"被跳过的销售明细金额超过全部金额的 {config.checks.dropped_share_warning:.0%} 时警告"))
    for i, stage in enumerate(config.grading.stages, 1):
        head = f"阶段{i} {stage.name}"
        for kind, text in stage.describe():
            rows.append((kind, text) if kind.startswith("  ") else (f"{head}（{kind}）", text))
    rows.append(("兜底等级", f"无法判断（指标缺失）时 → {config.fallback}"))
    for pin in config.grading.pins:
        until = f"，有效期至 {pin.until:%Y-%m-%d}" if pin.until else ""
        rows.append((f"人工指定 {pin.customer}", f"{pin.grade}（{pin.by}：{pin.reason}{until}）"))
    if config.sources.overrides is not None:
        rows.append(("人工指定等级表", "、".join(config.sources.overrides.files)))
    for code, pol in config.grades.items():
        detail = "；".join(x for x in (
            f"拜访 {pol.visits_per_month} 次/月" if pol.visits_per_month else "",
            pol.service, f"折扣 {pol.discount}" if pol.discount else "",
            f"信用 {pol.credit_terms}" if pol.credit_terms else "",
            (f"信用额度 月均净销售额 × {pol.credit_limit.months_of_sales:g}"
             + (f"，最高 {format_amount(pol.credit_limit.cap)}" if pol.credit_limit.cap is not None else ""))
            if pol.credit_limit else "") if x)
        rows.append((f"等级 {code}", f"{pol.label}" + (f"：{detail}" if detail else "")))
    v = config.views
    shown = [name for name, on in (("总览", v.overview), ("业务员与地区", v.owners), ("应收与信用", v.credit),
                                   ("增长率", v.growth), ("毛利", v.profit), ("九宫格矩阵", v.grid_matrix)) if on]
    rows.append(("附加视图", "、".join(shown) if shown else "（全部关闭）"))
    if v.visit_capacity_per_month is not None:
        rows.append(("业务员拜访能力", f"每人每月 {v.visit_capacity_per_month:g} 次"))
    w = v.watch
    rows.append(("关注清单", f"大客户 = 净销售额前 {format_ratio(w.large_top)}；接近上一等级 = 差距 ≤ 分界值的 "
                 f"{format_ratio(w.near_boundary)}；大客户 {w.quiet_days} 天未下单；人工指定 {w.pin_expiry_days} 天内到期"))
    return rows
