"""The default template and the commented starter config shipped with the package.

One source of truth: the top-level `config.yaml` and `templates/客户分级管理表.xlsx` of the
source tree. A wheel carries copies of them in `grading/defaults/` (setup.py's build step
copies them at build time); a source checkout or editable install uses the originals.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_TEMPLATE_NAME = "templates/客户分级管理表.xlsx"
STARTER_CONFIG_NAME = "config.yaml"
SCHEMA_NAME = "config.schema.json"
SHIPPED = (STARTER_CONFIG_NAME, SCHEMA_NAME, DEFAULT_TEMPLATE_NAME)  # copied into the wheel, same relative paths

PACKAGED = Path(__file__).resolve().parent / "defaults"
CHECKOUT = Path(__file__).resolve().parents[1]


def shipped(name: str) -> Path:
    """A shipped file: the wheel's copy if there is one, else the source tree's original."""
    packaged = PACKAGED / name
    return packaged if packaged.exists() else CHECKOUT / name


def default_template() -> Path:
    return shipped(DEFAULT_TEMPLATE_NAME)


def starter_config() -> Path:
    return shipped(STARTER_CONFIG_NAME)
