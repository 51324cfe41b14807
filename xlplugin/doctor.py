"""`python -m xlplugin doctor`: print what the add-in will use, and the known pitfalls found."""

from __future__ import annotations

import os
import re
import sys
import zipfile
from pathlib import Path

from .addin import CONFIG_ENV, CONFIG_SHEET, PROJECT_CONFIG
from .build_addin import CONF_SHEET, TARGET, XLWINGS_VERSION


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


def report(workbook: Path | None = None) -> list[str]:
    lines: list[str] = []
    ok = True

    def warn(text: str) -> None:
        nonlocal ok
        ok = False
        lines.append(f"  ! {text}")

    lines.append(f"Python：{sys.executable}（{sys.version.split()[0]}）")
    try:
        import xlwings

        lines.append(f"xlwings：{xlwings.__version__}（加载项 VBA 对应 {XLWINGS_VERSION}）")
        if xlwings.__version__ != XLWINGS_VERSION:
            warn(f"版本不一致：请 pip install xlwings=={XLWINGS_VERSION}，或重建加载项 python -m xlplugin.build_addin")
    except ImportError:
        warn('没有安装 xlwings：pip install ".[excel]"')
    import grading

    lines.append(f"分级核心：grading {grading.__version__}，位置 {Path(grading.__file__).parent}")
    lines.append(f"加载项文件：{TARGET}" + ("" if TARGET.exists() else "（不存在！）"))
    if TARGET.exists():
        conf = conf_sheet_values(TARGET)
        lines.append(f"加载项配置表 {CONF_SHEET}：")
        for key, value in conf.items():
            lines.append(f"  {key} = {value}")
        interpreter = conf.get("INTERPRETER_WIN" if sys.platform == "win32" else "INTERPRETER_MAC", "")
        expanded = os.path.expandvars(interpreter.replace("$HOME", str(Path.home())))
        if interpreter and not Path(expanded).exists():
            warn(f"加载项指定的解释器不存在：{expanded}。按 README 创建虚拟环境，"
                 "或在 xlwings 功能区/配置中改为当前解释器：" + sys.executable)
    folder = (workbook.parent if workbook else Path.cwd()).resolve()
    lines.append("配置文件查找顺序（找到的第一个生效）：")
    lines.append(f"  1. 工作簿中名为 {CONFIG_SHEET} 的工作表，或名称 GRADING_CONFIG 指向的单元格")
    beside = folder / "config.yaml"
    lines.append(f"  2. 工作簿旁边：{beside}{' ✓' if beside.exists() else '（无）'}")
    env = os.environ.get(CONFIG_ENV)
    lines.append(f"  3. 环境变量 {CONFIG_ENV}：{env or '（未设置）'}")
    lines.append(f"  4. 项目默认：{PROJECT_CONFIG}{' ✓' if PROJECT_CONFIG.exists() else '（无）'}")
    for path in (folder, Path(sys.executable)):
        text = str(path)
        if any(ord(ch) > 127 for ch in text):
            warn(f"路径含中文或其他非 ASCII 字符：{text}。个别 Excel/xlwings 版本在这类路径下找不到解释器或模块，"
                 "出现问题时请把虚拟环境放到纯英文路径。")
        if "onedrive" in text.lower() or "sharepoint" in text.lower():
            warn(f"路径在 OneDrive/SharePoint 中：{text}。工作簿的路径会变成网址，加载项找不到旁边的 config.yaml；"
                 f"请设置 {CONFIG_ENV} 或在工作簿中加入 {CONFIG_SHEET} 工作表。")
    lines.append("检查完成，未发现问题。" if ok else "检查完成，请处理上面标 ! 的项目。")
    return lines
