"""Write config.schema.json from the config model (run after changing grading/config_model.py):

    python tools/make_schema.py

config.yaml's first line points editors (VS Code YAML) at it for completion and checks;
tests fail if the shipped file is out of date."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grading.config_model import Config  # noqa: E402


def schema_text() -> str:
    schema = Config.model_json_schema(by_alias=True)
    schema["title"] = "客户分级 config.yaml"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return json.dumps(schema, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    target = ROOT / "config.schema.json"
    target.write_text(schema_text(), encoding="utf-8")
    print(target)
