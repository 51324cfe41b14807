"""A non-editable install works like a product: build the wheel from the source tree, install it into
a fresh virtual environment, and run `grade-etl init` and `grade-etl demo` in an empty folder.

Offline and quick: the wheel is built without build isolation (setuptools from the test extras), and
the fresh environment reaches the already installed dependencies through a path file (their own
.pth files, such as this checkout's editable install, are not processed there), so only the wheel
provides grading, etl and xlplugin."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

from grading.defaults import SHIPPED

from .conftest import ROOT

SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "config.yaml", "config.schema.json",
           "templates", "grading", "etl", "xlplugin")


def _run(cmd: list[str], cwd: Path, timeout: int = 240) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "KEHU_FENJI_CONFIG", "VIRTUAL_ENV")}
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_wheel_installs_into_a_fresh_venv_and_runs_init_and_demo(tmp_path) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "src"
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copyfile(ROOT / name, src / name)
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
          "-w", str(tmp_path / "dist"), str(src)], tmp_path)
    [wheel] = (tmp_path / "dist").glob("kehu_fenji-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        for name in SHIPPED:  # package data: copies of the top-level originals
            assert zf.read(f"grading/defaults/{name}") == (ROOT / name).read_bytes(), name
    assert "xlplugin/xlplugin.xlam" in names

    venv = tmp_path / "fresh"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path)
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / ("python.exe" if os.name == "nt" else "python")
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     tmp_path).stdout.strip())
    (site / "_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
          str(wheel)], tmp_path)

    work = tmp_path / "空文件夹"
    work.mkdir()
    where = _run([str(python), "-c", "import grading, xlplugin; print(grading.__file__)"], work).stdout
    assert where.startswith(str(site)), where  # the wheel, not this checkout
    grade_etl = str(bindir / "grade-etl")
    out = _run([grade_etl, "init"], work).stdout
    assert f"已创建：{Path('.') / 'config.yaml'}" in out
    assert (work / "templates" / "客户分级管理表.xlsx").read_bytes() == (ROOT / SHIPPED[2]).read_bytes()
    out = _run([grade_etl, "demo", "-q"], work).stdout
    assert (work / "output" / "客户分级管理表_2026H1.xlsx").is_file()
    assert (work / "output" / "客户分级历史.sqlite").is_file()
    checked = _run([grade_etl, "check-config"], work).stdout
    assert "检查通过" in checked
    doctor = _run([str(python), "-m", "xlplugin", "doctor"], work).stdout
    assert f"4. 内置默认配置：{site / 'grading' / 'defaults' / 'config.yaml'} ✓" in doctor
