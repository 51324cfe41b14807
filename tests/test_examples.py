"""The shipped examples/ configs and config.schema.json: every example checks,
validates against the schema and runs on the demo data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import openpyxl
import pytest
import yaml

from etl.cli import EXIT_OK, main
from grading.config import load_config
from grading.pipeline import run_to_file

from .conftest import FIXED_TIME, ROOT

EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


@pytest.fixture(scope="module")
def project(demo, tmp_path_factory):  # type: ignore[no-untyped-def]
    """A copy of the project layout: examples/, templates/ and the generated demo_data/."""
    folder = tmp_path_factory.mktemp("project")
    shutil.copytree(ROOT / "examples", folder / "examples")
    shutil.copytree(ROOT / "templates", folder / "templates")
    shutil.copytree(demo[0] / "demo_data", folder / "demo_data")
    return folder


def test_every_seed_method_has_an_example() -> None:
    names = {p.stem for p in EXAMPLES}
    assert {"abc_thresholds", "pareto_70_20_10", "vip_top1", "weighted_score", "nine_grid",
            "member_points"} <= names


def _yaml_as_json(path: Path) -> object:
    # editors hand the schema plain YAML values: dates stay text
    return json.loads(json.dumps(yaml.safe_load(path.read_text(encoding="utf-8")), default=str))


@pytest.mark.parametrize("path", [ROOT / "config.yaml", *EXAMPLES], ids=lambda p: p.name)
def test_configs_validate_against_the_shipped_schema(path: Path) -> None:
    schema = json.loads((ROOT / "config.schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(_yaml_as_json(path), schema)
    assert path.read_text(encoding="utf-8").startswith("# yaml-language-server: $schema=")


def test_shipped_schema_is_up_to_date() -> None:
    import sys

    sys.path.insert(0, str(ROOT / "tools"))
    from make_schema import schema_text

    assert (ROOT / "config.schema.json").read_text(encoding="utf-8") == schema_text()


def test_schema_rejects_what_the_loader_rejects() -> None:
    schema = json.loads((ROOT / "config.schema.json").read_text(encoding="utf-8"))
    bad = _yaml_as_json(ROOT / "examples" / "abc_thresholds.yaml")
    assert isinstance(bad, dict)
    bad["grading"]["stages"][0]["metric"] = "销量"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs_on_demo_data(project: Path, path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg = project / "examples" / path.name
    assert main(["check-config", "-c", str(cfg)]) == EXIT_OK
    assert "检查通过" in capsys.readouterr().out
    config = load_config(cfg)
    result = run_to_file(config, project / "out" / f"{path.stem}.xlsx", generated_at=FIXED_TIME)
    graded = result.graded
    assert len(graded) == 300 and graded["grade"].notna().all()
    assert all(config.policy_key(g) is not None for g in set(graded["grade"]))
    ws = openpyxl.load_workbook(result.output)["客户分级管理表"]
    grade_col = [c.value for c in ws[4]].index("等级") + 1
    assert sorted(ws.cell(r, grade_col).value for r in range(5, 305)) == sorted(graded["grade"])


def test_example_results_follow_their_rules(project: Path) -> None:
    def run(name: str):  # type: ignore[no-untyped-def]
        return run_to_file(load_config(project / "examples" / name), project / "out" / f"r_{name}.xlsx",
                           generated_at=FIXED_TIME).graded

    abc = run("abc_thresholds.yaml")
    expected = abc["net_sales"].map(lambda s: "A" if s >= 5e6 else "B" if s >= 1e6 else "C")
    assert (abc["grade"] == expected).all()
    vip = run("vip_top1.yaml")
    assert (vip["grade"] == "VIP").sum() == 3  # ceil(300 × 1%)
    assert vip.loc[vip["grade"] == "VIP", "net_sales"].min() >= vip.loc[vip["grade"] != "VIP", "net_sales"].max()
    pareto = run("pareto_70_20_10.yaml")
    a = pareto[pareto["grade"] == "A"]["net_sales"]
    total = pareto["net_sales"].clip(lower=0).sum()
    assert a.sum() / total >= 0.7 and (a.sum() - a.min()) / total < 0.7
    points = run("member_points.yaml")
    discounts = dict(zip(points["grade"], points["discount"]))
    assert discounts == {"钻石": "8折", "金卡": "8.8折", "银卡": "9折", "普通": "9.5折"}
    grid = run("nine_grid.yaml")
    assert set(grid["grade"]) <= {f"{p}{l}" for p in "ABC" for l in "123"}
