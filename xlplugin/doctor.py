"""`python -m xlplugin doctor`: print what the add-in will use, and the known pitfalls found,
each with the exact fix. The interpreter checked is the one the add-in's conf sheet names
(what Excel will start), not the one running the doctor."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

from grading.xlsx_template import workbook_sheets

from .addin import CONFIG_ENV, CONFIG_SHEET, PROJECT_CONFIG
from .build_addin import CONF_SHEET, TARGET, XLWINGS_VERSION

VENV_WIN = r"%LOCALAPPDATA%\kehu-fenji\.venv"
VENV_MAC = "$HOME/kehu-fenji/.venv"
PROBE = ("import sys, xlwings, grading, xlplugin; "
         "print(sys.version.split()[0]); print(xlwings.__version__); print(xlplugin.__file__)")


def conf_sheet_values(xlam: Path) -> dict[str, str]:
    """Keys and values of the add-in's conf sheet (what the VBA reads)."""
    with zipfile.ZipFile(xlam) as zf:
        xml = zf.read("xl/worksheets/sheet1.xml").decode("utf-8")
    values: dict[str, str] = {}
    for row in re.findall(r"<row\b.*?</row>", xml, flags=re.S):
        texts = re.findall(r'<c r="([AB])\d+"[^>]*?(?:t="b"[^>]*><v>(\d)</v>|><is><t>(.*?)</t></is>)', row)
        cells = {col: (text if text else ("TRUE" if flag == "1" else "FALSE")) for col, flag, text in texts}
        if "A" in cells:
            values[cells["A"].upper()] = cells.get("B", "")
    return values


def _install_fix(python: str, windows: bool) -> str:
    venv = VENV_WIN if windows else VENV_MAC
    return (f'修复：{python} -m pip install "kehu-fenji[excel]"（用安装包或 wheel 文件的路径代替 kehu-fenji；'
            f"没有这个虚拟环境时先运行 {'py -3.11' if windows else 'python3'} -m venv {venv}）")


def check_interpreter(interpreter: str, windows: bool = sys.platform == "win32") -> list[str]:
    """Findings ("! …" with the fix, or "✓ …") for the interpreter Excel will start."""
    expanded = os.path.expandvars(interpreter.replace("$HOME", str(Path.home())))
    path = Path(expanded)
    venv = VENV_WIN if windows else VENV_MAC
    if not path.is_file():
        make = (f"py -3.11 -m venv {venv}" if windows else f"python3 -m venv {venv}")
        pip = (rf"{venv}\Scripts\python -m pip install " if windows else f"{venv}/bin/python -m pip install ")
        return [f"! 加载项要启动的解释器不存在：{expanded}。修复：运行 {make}，再运行 {pip}\"kehu-fenji[excel]\"；"
                f"或把加载项配置表 {CONF_SHEET} 中的 Interpreter_{'Win' if windows else 'Mac'} 改成已安装本程序的 Python。"]
    if path.name.lower() == "pythonw.exe" and (path.parent / "python.exe").is_file():
        path = path.parent / "python.exe"  # same environment, with a console to report back
    try:
        proc = subprocess.run([str(path), "-c", PROBE], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [f"! 无法运行解释器 {path}：{exc}。修复：重新创建虚拟环境（见安装指南）。"]
    if proc.returncode != 0:
        missing = re.search(r"No module named '([^']+)'", proc.stderr)
        what = missing.group(1) if missing else proc.stderr.strip().splitlines()[-1:]
        return [f"! 解释器 {path} 无法导入 {what}。{_install_fix(str(path), windows)}"]
    version, xlwings_version, location = (proc.stdout.strip().splitlines() + ["", "", ""])[:3]
    out = [f"  解释器 {path}：Python {version}，xlwings {xlwings_version}，本程序位于 {Path(location).parent}"]
    if xlwings_version != XLWINGS_VERSION:
        out.append(f"! 该解释器的 xlwings 是 {xlwings_version}，加载项的 VBA 对应 {XLWINGS_VERSION}（会提示版本不一致）。"
                   f"修复：{path} -m pip install xlwings=={XLWINGS_VERSION}")
    else:
        out.append(f"  ✓ 能导入 xlplugin、grading 和 xlwings {XLWINGS_VERSION}")
    return out


def _quickstart_leftovers(workbook: Path | None, folder: Path) -> list[str]:
    """A conf sheet or file under xlwings' quickstart name (what add-ins built before the rename read):
    this add-in reads PROJECT_NAME.conf, so an override under the old name would be ignored."""
    old = "myaddin.conf"
    out: list[str] = []
    if workbook is not None and zipfile.is_zipfile(workbook):
        try:
            with zipfile.ZipFile(workbook) as zf:
                names = [n for n, _ in workbook_sheets(zf)] if "xl/workbook.xml" in zf.namelist() else []
        except (KeyError, zipfile.BadZipFile, SyntaxError):  # not a readable workbook: other checks say so
            names = []
        if any(n.lower() == old for n in names):
            out.append(f"工作簿 {workbook.name} 中有工作表 {old}：那是按 xlwings 快速入门名称做的旧版加载项读取的配置，"
                       f"本加载项读取 {CONF_SHEET}。修复：把该工作表改名为 {CONF_SHEET}。")
    if (folder / old).is_file():
        out.append(f"工作簿旁边有 {folder / old}：本加载项读取同一文件夹中的 {CONF_SHEET}。修复：把该文件改名为 {CONF_SHEET}。")
    return out


def report(workbook: Path | None = None, interpreter: str | None = None) -> list[str]:
    lines: list[str] = []
    ok = True

    def warn(text: str) -> None:
        nonlocal ok
        ok = False
        lines.append(f"  ! {text}")

    lines.append(f"Python（运行本检查的）：{sys.executable}（{sys.version.split()[0]}）")
    try:
        import xlwings

        lines.append(f"xlwings：{xlwings.__version__}（加载项 VBA 对应 {XLWINGS_VERSION}）")
        if xlwings.__version__ != XLWINGS_VERSION:
            warn(f"版本不一致。修复：{sys.executable} -m pip install xlwings=={XLWINGS_VERSION}")
    except ImportError:
        warn(f'没有安装 xlwings。修复：{sys.executable} -m pip install "kehu-fenji[excel]"')
    import grading

    lines.append(f"分级核心：grading {grading.__version__}，位置 {Path(grading.__file__).parent}")
    lines.append(f"加载项文件：{TARGET}" + ("" if TARGET.exists() else "（不存在！）"))
    conf: dict[str, str] = {}
    if TARGET.exists():
        conf = conf_sheet_values(TARGET)
        lines.append(f"加载项配置表 {CONF_SHEET}：")
        for key, value in conf.items():
            lines.append(f"  {key} = {value}")
        if conf.get("ADD_WORKBOOK_TO_PYTHONPATH", "TRUE").upper() != "FALSE":
            warn(f"{CONF_SHEET} 中 ADD_WORKBOOK_TO_PYTHONPATH 不是 FALSE：工作簿在 OneDrive/SharePoint 上时 xlwings 会报错"
                 "“Couldn't find your local OneDrive file, see: xlwings.org/error”。修复：python -m xlplugin.build_addin 重建加载项")
    windows = sys.platform == "win32"
    chosen = interpreter or conf.get("INTERPRETER_WIN" if windows else "INTERPRETER_MAC", "")
    if chosen:
        lines.append(f"Excel 点「分级」时启动的解释器：{chosen}")
        for finding in check_interpreter(chosen, windows):
            if finding.startswith("!"):
                warn(finding[2:])
            else:
                lines.append(finding)
    folder = (workbook.parent if workbook else Path.cwd()).resolve()
    for finding in _quickstart_leftovers(workbook, folder):
        warn(finding)
    lines.append("配置文件查找顺序（找到的第一个生效）：")
    lines.append(f"  1. 工作簿中名为 {CONFIG_SHEET} 的工作表，或名称 GRADING_CONFIG 指向的单元格")
    beside = folder / "config.yaml"
    lines.append(f"  2. 工作簿旁边：{beside}{' ✓' if beside.exists() else '（无）'}")
    env = os.environ.get(CONFIG_ENV)
    lines.append(f"  3. 环境变量 {CONFIG_ENV}：{env or '（未设置）'}")
    lines.append(f"  4. 内置默认配置：{PROJECT_CONFIG}{' ✓' if PROJECT_CONFIG.exists() else '（无）'}"
                 "（其中的路径相对于工作簿所在文件夹；grade-etl init 可在工作簿旁边生成一份来修改）")
    for path in (folder, Path(sys.executable)):
        text = str(path)
        if any(ord(ch) > 127 for ch in text):
            warn(f"路径含中文或其他非 ASCII 字符：{text}。个别 Excel/xlwings 版本在这类路径下找不到解释器或模块；"
                 f"修复：出现问题时把虚拟环境放到纯英文路径（如 {VENV_WIN if windows else VENV_MAC}）。")
        if "onedrive" in text.lower() or "sharepoint" in text.lower():
            warn(f"路径在 OneDrive/SharePoint 中：{text}。工作簿的路径会变成网址，加载项找不到旁边的 config.yaml；"
                 f"修复：设置环境变量 {CONFIG_ENV} 指向 config.yaml，或在工作簿中加入 {CONFIG_SHEET} 工作表。")
    lines.append("检查完成，未发现问题。" if ok else "检查完成，请按上面标 ! 的项目中的“修复”处理。")
    return lines
