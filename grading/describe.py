"""Readable Chinese description of a config's rules: for `check-config`, the
分级规则 sheet and the add-in. One line per stage, then grades and policies."""

from __future__ import annotations

from .config_model import (
    AdjustStage,
    Axis,
    Config,
    GridStage,
    LapsedStage,
    ParetoStage,
    ProvisionalStage,
    QuantileStage,
    ScoreStage,
    ThresholdStage,
)
from .rules import format_value, label_of
from .units import format_amount, format_ratio

AssignRule = ThresholdStage | QuantileStage | ParetoStage | ScoreStage


def _rule(stage: AssignRule) -> list[tuple[str, str]]:
    if isinstance(stage, ThresholdStage):
        ref, op = stage.ref, "≥" if stage.inclusive else ">"
        parts = [f"{label_of(ref)} {op} {format_value(ref, b.min)} → {b.grade}" for b in stage.bands]
        return [("固定阈值", "；".join([*parts, f"其余 → {stage.else_grade}"]))]
    if isinstance(stage, QuantileStage):
        percent = stage.by == "percent"
        parts = [f"前 {format_ratio(b.top) if percent else f'{int(b.top)} 名'} → {b.grade}" for b in stage.bands]
        return [("排名分级", f"按{label_of(stage.ref)}从高到低排名（同值按客户编码）："
                 + "；".join([*parts, f"其余 → {stage.else_grade}"]))]
    if isinstance(stage, ParetoStage):
        parts = [f"累计前 {format_ratio(b.share)} → {b.grade}" for b in stage.bands]
        return [("帕累托", f"按{label_of(stage.ref)}从高到低累计占比（跨过分界的客户归入该段）："
                 + "；".join([*parts, f"其余 → {stage.else_grade}"]))]
    inds = []
    for ind in stage.indicators:
        ref = ind.ref
        if ind.bands is not None:
            scale = "，".join(f"≥{format_value(ref, b.min)} 得 {b.points:g} 分" for b in ind.bands)
        else:
            lin = ind.linear
            assert lin is not None
            scale = (f"{format_value(ref, lin.low)}→{lin.points_low:g} 分 至 "
                     f"{format_value(ref, lin.high)}→{lin.points_high:g} 分（线性）")
        missing = f"，缺失按 {ind.missing_points:g} 分" if ind.missing_points else ""
        inds.append(f"{label_of(ref)}（权重 {ind.weight:g}）：{scale}{missing}")
    bands = "；".join(f"≥{b.min:g} 分 → {b.grade}" for b in stage.grades)
    return [("加权评分", "；".join(inds)), ("分数段", f"{bands}；其余 → {stage.else_grade}")]


def _axis(axis: Axis) -> str:
    if axis.rule is not None:
        return "；".join(text for _, text in _rule(axis.rule))
    assert axis.map is not None
    mapping = "，".join(f"{k} → {v}" for k, v in axis.map.items())
    return f"客户档案列「{axis.column}」：{mapping}，其余 → {axis.else_grade}"


def describe_rules(config: Config) -> list[tuple[str, str]]:
    """(item, content) pairs."""
    p = config.period
    rows = [
        ("配置文件", f"{config.source_file}（校验码 {config.digest}）"),
        ("统计期间", f"{p.start:%Y-%m-%d} 至 {p.as_of:%Y-%m-%d}（{p.months} 个月，截止日 {p.as_of:%Y-%m-%d}）"),
        ("金额口径", f"{config.metrics.amount_basis}金额；回款率 = {config.metrics.collection_rate}"),
    ]
    for i, stage in enumerate(config.grading.stages, 1):
        head = f"阶段{i} {stage.name}"
        if isinstance(stage, GridStage):
            rows.append((f"{head}（多轴组合）", f"等级代码 = {' + '.join(a.name for a in stage.axes)}"))
            rows += [(f"  轴 {a.name}", _axis(a)) for a in stage.axes]
        elif isinstance(stage, AdjustStage):
            act = (f"升 {stage.up} 级" if stage.up else f"降 {stage.down} 级" if stage.down
                   else f"最高为 {stage.at_most}" if stage.at_most else f"最低为 {stage.at_least}")
            rows.append((f"{head}（调整）", f"当 {stage.when.text} 时 {act}"))
        elif isinstance(stage, ProvisionalStage):
            rows.append((f"{head}（暂定）", f"合作不满 {stage.tenure_below_months} 个月 → {stage.grade}"))
        elif isinstance(stage, LapsedStage):
            rows.append((f"{head}（流失）", f"超过 {stage.no_order_days} 天未下单 → {stage.grade}"))
        else:
            for kind, text in _rule(stage):
                rows.append((f"{head}（{kind}）", text))
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
