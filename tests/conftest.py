"""Shared fixtures: demo exports generated once per session into a temp folder,
and configs written beside them (the repo's config.yaml with paths adjusted)."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from grading.config import Config, load_config
from grading.demo_data import DemoTruth, generate

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "templates" / "客户分级管理表.xlsx"
FIXED_TIME = dt.datetime(2026, 7, 1, 8, 0)


def _excel_available() -> bool:
    import sys

    if sys.platform not in ("win32", "darwin"):
        return False
    try:
        import xlwings

        return bool(xlwings.apps.count is not None)
    except Exception:
        return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _excel_available():
        return
    skip = pytest.mark.skip(reason="needs Microsoft Excel (Windows/macOS); none on this machine")
    for item in items:
        if "excel" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoTruth]:
    folder = tmp_path_factory.mktemp("demo")
    truth = generate(folder / "demo_data")
    return folder, truth


def base_config() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8")))


def copy_template(folder: Path) -> None:
    """Put the default template where config.yaml's relative path expects it."""
    target = folder / "templates" / TEMPLATE.name
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(TEMPLATE, target)


def sales_only_rules(data: dict[str, Any]) -> None:
    """The repo's rules read 回款率/逾期天数 (from receivables): a config without receivables must not
    use them (a config error since issue 11), so sales-only test configs grade by thresholds on sales."""
    uses = ("回款率", "逾期天数", "期末余额", "本期应收", "本期收回", "期初余额")
    stages = [s for s in data["grading"]["stages"] if not any(u in yaml.safe_dump(s, allow_unicode=True)
                                                              for u in uses)]
    if not stages or stages[0].get("type") in ("adjust", "provisional", "lapsed"):
        stages.insert(0, {"type": "thresholds", "metric": "净销售额", "else": "C",
                          "bands": [{"grade": "A", "min": "500万"}, {"grade": "B", "min": "100万"}]})
    data["grading"]["stages"] = stages


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Config]:
    """Write a config (repo default, changed by `edit`) into a folder and load it."""

    def make(folder: Path | None = None, edit: Callable[[dict[str, Any]], None] | None = None,
             name: str = "config.yaml") -> Config:
        target = folder or tmp_path
        copy_template(target)
        data = base_config()
        if edit:
            edit(data)
        if "receivables" not in data["sources"]:
            sales_only_rules(data)
        path = target / name
        path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
        return load_config(path)

    return make
