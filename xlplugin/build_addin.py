"""Rebuild xlplugin/xlplugin.xlam from the installed xlwings' own ribbon add-in.

    python -m xlplugin.build_addin            # after upgrading xlwings (and the pin in pyproject.toml)

What `xlwings quickstart NAME --addin --ribbon` copies is quickstart_addin_ribbon.xlam; its VBA
`RunMain` runs `import <file name>; <file name>.main()`, so the file is named xlplugin.xlam. This
script rewrites three parts of that package and copies everything else byte for byte:
  - customUI/customUI.xml: a tab 客户分级 with a large Grade (分级) button → RibbonMyAddin.RunMain
    and a 预览 button → RibbonMyAddin.RunPreview;
  - xl/vbaProject.bin: the Sub RunPreview added to the RibbonMyAddin module (vba_patch.py; the other
    modules and streams unchanged);
  - the conf sheet: renamed from `_myaddin.conf` (inactive) to `myaddin.conf` (the VBA's PROJECT_NAME
    is "myaddin"), with the keys the VBA reads, defaulting to the virtual environment the README creates,
    and ADD_WORKBOOK_TO_PYTHONPATH false (OneDrive/SharePoint workbooks).
The VBA belongs to XLWINGS_VERSION; a different installed xlwings is refused (use --force to override).
"""

from __future__ import annotations

import argparse
import re
import sys
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

from .vba_patch import add_to_module

XLWINGS_VERSION = "0.37.8"
TARGET = Path(__file__).resolve().parent / "xlplugin.xlam"
CONF_SHEET = "myaddin.conf"
CONF: tuple[tuple[str, str | bool], ...] = (
    ("Interpreter_Win", r"%LOCALAPPDATA%\kehu-fenji\.venv\Scripts\pythonw.exe"),
    ("Interpreter_Mac", "$HOME/kehu-fenji/.venv/bin/python"),
    ("PYTHONPATH", ""),
    # false: xlwings would otherwise resolve the workbook's folder first, which fails for OneDrive/SharePoint
    # workbooks before our code runs; the package is imported from the virtual environment instead
    ("ADD_WORKBOOK_TO_PYTHONPATH", False),
    ("Conda Path", ""),
    ("Conda Env", ""),
    ("UDF Modules", ""),
    ("Debug UDFs", False),
    ("Use UDF Server", False),
    ("Show Console", False),
)

CUSTOM_UI = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<customUI xmlns="http://schemas.microsoft.com/office/2006/01/customui">
    <ribbon>
        <tabs>
            <tab id="kehuFenjiTab" label="客户分级">
                <group id="kehuFenjiGroup" label="客户分级">
                    <button id="gradeButton" label="Grade (分级)" size="large" onAction="RibbonMyAddin.RunMain"
                            imageMso="MacroPlay" screentip="分级"
                            supertip="读取 ERP 导出数据，按 config.yaml 的规则分级，并填写本工作簿的客户分级管理表。" />
                    <button id="previewButton" label="预览" size="large" onAction="RibbonMyAddin.RunPreview"
                            imageMso="FilePrintPreview" screentip="规则预览"
                            supertip="用本工作簿的 config.yaml（或配置文件）的规则与上次运行的规则分别分级，把差异写入工作表“规则预览”；不写历史记录。" />
                </group>
            </tab>
        </tabs>
    </ribbon>
</customUI>
"""


# The 预览 button's callback, added to the ribbon module of xlwings' VBA (see vba_patch.py)
PREVIEW_SUB = """Sub RunPreview(control As IRibbonControl)
    mymodule = Left(ThisWorkbook.Name, (InStrRev(ThisWorkbook.Name, ".", -1, vbTextCompare) - 1))
    RunPython "import " & mymodule & ";" & mymodule & ".main_preview()"
End Sub
"""


def source_xlam() -> tuple[Path, str]:
    import xlwings

    return Path(xlwings.__file__).parent / "quickstart_addin_ribbon.xlam", str(xlwings.__version__)


def _conf_sheet(original: str) -> str:
    """The conf sheet with our keys in A and values in B (inline strings; booleans as booleans)."""
    rows = []
    for i, (key, value) in enumerate(CONF, start=1):
        cells = f'<c r="A{i}" s="1" t="inlineStr"><is><t>{escape(key)}</t></is></c>'
        if isinstance(value, bool):
            cells += f'<c r="B{i}" s="1" t="b"><v>{int(value)}</v></c>'
        elif value:
            cells += f'<c r="B{i}" s="1" t="inlineStr"><is><t>{escape(value)}</t></is></c>'
        rows.append(f'<row r="{i}">{cells}</row>')
    body = "<sheetData>" + "".join(rows) + "</sheetData>"
    xml = re.sub(r"<sheetData>.*</sheetData>", lambda m: body, original, flags=re.S)
    return re.sub(r'<dimension ref="[^"]*"\s*/>', f'<dimension ref="A1:B{len(CONF)}"/>', xml)


def build(target: Path = TARGET, force: bool = False) -> Path:
    source, version = source_xlam()
    if version != XLWINGS_VERSION and not force:
        raise SystemExit(f"已安装的 xlwings 是 {version}，而加载项的 VBA 对应 {XLWINGS_VERSION}。"
                         f"请安装 xlwings=={XLWINGS_VERSION}，或升级后修改 XLWINGS_VERSION 与 pyproject.toml 并加 --force。")
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "customUI/customUI.xml":
                data = CUSTOM_UI.encode("utf-8")
            elif info.filename == "xl/workbook.xml":
                data = data.replace(b'name="_myaddin.conf"', f'name="{CONF_SHEET}"'.encode())
            elif info.filename == "xl/vbaProject.bin":
                data = add_to_module(data, "RibbonMyAddin", PREVIEW_SUB)
            elif info.filename == "xl/worksheets/sheet1.xml":
                data = _conf_sheet(data.decode("utf-8")).encode("utf-8")
            zi = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = info.external_attr
            out.writestr(zi, data)
    return target


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--force", action="store_true", help="build from a different xlwings version anyway")
    ap.add_argument("-o", "--output", type=Path, default=TARGET)
    args = ap.parse_args()
    print(build(args.output, args.force))
    sys.exit(0)
