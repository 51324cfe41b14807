"""Build step (the rest of the metadata is in pyproject.toml): the wheel gets copies of the
top-level config.yaml, config.schema.json and templates/客户分级管理表.xlsx as package data
in grading/defaults/, so a non-editable install finds a starter config and the default template.
The top-level files stay the one source of truth (see grading/defaults.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = ("config.yaml", "config.schema.json", "templates/客户分级管理表.xlsx")  # = grading.defaults.SHIPPED


class BuildWithDefaults(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads the originals
            return
        target = Path(self.build_lib) / "grading" / "defaults"
        for name in SHIPPED:
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / name, target / name)


setup(cmdclass={"build_py": BuildWithDefaults})
