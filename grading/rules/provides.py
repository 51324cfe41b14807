"""Which configured source provides each value a rule reads, so a rule on a
value nobody provides is refused instead of silently changing nothing."""

from __future__ import annotations

from collections.abc import Mapping, Set
from typing import Any

from ..fields import METRIC_BY_KEY, SOURCE_FIELDS, SOURCE_LABELS

# metric → (source, input fields it is computed from: any one present is enough)
NEEDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "opening": ("receivables", ("opening",)),
    "billed": ("receivables", ("billed",)),
    "received": ("receivables", ("received",)),
    "closing": ("receivables", ("closing",)),
    "collection_rate": ("receivables", ("received",)),
    "overdue_days": ("receivables", ("overdue_days",)),
    "gross_profit": ("sales", ("cost",)),
    "margin": ("sales", ("cost",)),
}


def _headers(source: str, field: str, extra: Mapping[str, list[str]] | None = None) -> str:
    spec = next(f for f in SOURCE_FIELDS[source] if f.key == field)
    return "、".join([*(extra or {}).get(field, []), *spec.aliases])


def unprovided(ref: str, sources: Any) -> str | None:
    """Why no configured source can provide `ref` (None when one can, or when only the data can tell)."""
    need = NEEDS.get(ref)
    if need is None or need[0] == "sales":
        return None
    source, fields = need
    if getattr(sources, source) is not None:
        return None
    label = METRIC_BY_KEY[ref].label
    return (f"规则用到指标「{label}」，它来自{SOURCE_LABELS[source]}，但 sources 中没有配置 {source}。"
            f"请配置 sources.{source}（需有列：{_headers(source, fields[0])}），或删去这条规则")


def missing_inputs(refs: list[str], loaded: Mapping[str, Set[str]], sources: Any) -> list[str]:
    """Messages for values whose source was read but holds none of the columns they are computed from."""
    out = []
    for ref in dict.fromkeys(refs):
        need = NEEDS.get(ref)
        if need is None or need[0] not in loaded:
            continue
        source, fields = need
        if not set(fields) & set(loaded[source]):
            conf = getattr(sources, source)
            extra = conf.columns if conf is not None else None
            out.append(f"规则用到指标「{METRIC_BY_KEY[ref].label}」，但{SOURCE_LABELS[source]}中没有可用的列"
                       f"（认得的列名：{_headers(source, fields[0], extra)}）。请在 sources.{source}.columns."
                       f"{fields[0]} 中写上导出文件里的列名（如 账龄(天)），或删去这条规则")
    return out


def check_loaded(config: Any, loaded: Mapping[str, Set[str]]) -> None:
    """Raise RuleInputMissing listing every rule whose value none of the loaded exports provides."""
    from ..errors import ConfigIssue, RuleInputMissing

    issues = []
    for i, stage in enumerate(config.grading.stages):
        for message in missing_inputs(stage.inputs(), loaded, config.sources):
            issues.append(ConfigIssue(f"grading.stages[{i}]（{stage.name}）", None, message))
    if issues:
        raise RuleInputMissing(config.source_file, issues)
