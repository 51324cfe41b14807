"""Rebuild xlplugin/xlplugin.xlam from the installed xlwings' own ribbon add-in.

    python -m xlplugin.build_addin            # after upgrading xlwings (and the pin in pyproject.toml)

What `xlwings quickstart NAME --addin --ribbon` copies is quickstart_addin_ribbon.xlam; its VBA
`RunMain` runs `import <file name>; <file name>.main()`, so the file is named xlplugin.xlam. This
script rewrites three parts of that package and copies everything else byte for byte:
  - customUI/customUI.xml: a tab 客户分级 with a large Grade (分级) button → RibbonKehuFenji.RunMain
    and a 预览 button → RibbonKehuFenji.RunPreview;
  - xl/vbaProject.bin (vba_patch.py, cfb.py): our own names instead of the quickstart's, as xlwings'
    "Renaming your add-in" steps do in Excel — the VBA project MyAddin becomes KehuFenji, the
    ribbon module RibbonMyAddin becomes RibbonKehuFenji and the xlwings module's PROJECT_NAME
    "myaddin" becomes "kehufenji"; the ribbon module's source becomes xlwings' RunMain plus our
    RunPreview, each starting with a guard that explains in a MsgBox what to do when no workbook is
    active (none open, or Protected View) instead of VBA error 91; the other modules unchanged;
  - the conf sheet: `_myaddin.conf` (inactive) becomes `kehufenji.conf` (the VBA reads the sheet
    PROJECT_NAME & ".conf"), with the keys the VBA reads, defaulting to the virtual environment the
    README creates, and ADD_WORKBOOK_TO_PYTHONPATH false (OneDrive/SharePoint workbooks).
The VBA belongs to XLWINGS_VERSION; a different installed xlwings is refused (use --force to override).
"""

from __future__ import annotations

import argparse
import re
import sys
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

from .vba_patch import rebuild_project

XLWINGS_VERSION = "0.37.8"
TARGET = Path(__file__).resolve().parent / "xlplugin.xlam"
# Our names (xlwings' quickstart ones clash with every other add-in built from the same quickstart)
VBA_PROJECT = "KehuFenji"
PROJECT_NAME = "kehufenji"  # the xlwings module's PROJECT_NAME: conf sheet, conf files
RIBBON_MODULE = "RibbonKehuFenji"
CONF_SHEET = f"{PROJECT_NAME}.conf"
QUICKSTART_RIBBON_MODULE = "RibbonMyAddin"
QUICKSTART_PROJECT_NAME_LINE = b'Public Const PROJECT_NAME As String = "myaddin"'
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
                    <button id="gradeButton" label="Grade (分级)" size="large" onAction="RibbonKehuFenji.RunMain"
                            imageMso="MacroPlay" screentip="分级"
                            supertip="读取 ERP 导出数据，按 config.yaml 的规则分级，并填写本工作簿的客户分级管理表。" />
                    <button id="previewButton" label="预览" size="large" onAction="RibbonKehuFenji.RunPreview"
                            imageMso="FilePrintPreview" screentip="规则预览"
                            supertip="用本工作簿的 config.yaml（或配置文件）的规则与上次运行的规则分别分级，把差异写入工作表“规则预览”；不写历史记录。" />
                </group>
            </tab>
        </tabs>
    </ribbon>
</customUI>
"""


# Shown by a button when no workbook is active: none is open, or the one shown is in Protected View
# (such a workbook is not in Workbooks, so ActiveWorkbook is Nothing and xlwings ends in VBA error 91).
NO_BOOK_MESSAGE = "请先打开（或在受保护视图中点「启用编辑」）要分级的工作簿，再点「{button}」。"
MESSAGE_TITLE = "客户分级"
BUTTONS = {"RunMain": ("分级", "main"), "RunPreview": ("预览", "main_preview")}


def _zh(text: str) -> str:
    """Chinese text as the hex of its UTF-16 code units: the VBA project's code page (1252) has no
    Chinese, so the VBA builds the text with ChrW (function Zh below)."""
    return "".join(f"{ord(c):04X}" for c in text)


def ribbon_source(original: bytes) -> bytes:
    """The ribbon module's source: xlwings' RunMain and our RunPreview, each starting with the guard.
    Both helpers take arguments, so neither is listed as a macro."""
    name = QUICKSTART_RIBBON_MODULE.encode("ascii")
    if not original.startswith(b'Attribute VB_Name = "' + name + b'"\r\nSub RunMain(control As IRibbonControl)'):
        raise SystemExit(f"xlwings 的功能区模块不是预期的 {QUICKSTART_RIBBON_MODULE}（xlwings 版本不同？）")
    before, after = NO_BOOK_MESSAGE.split("{button}")
    subs = "".join(f"""Sub {sub}(control As IRibbonControl)
    If NoBook("{_zh(label)}") Then Exit Sub
    mymodule = Left(ThisWorkbook.Name, (InStrRev(ThisWorkbook.Name, ".", -1, vbTextCompare) - 1))
    RunPython "import " & mymodule & ";" & mymodule & ".{function}()"
End Sub
""" for sub, (label, function) in BUTTONS.items())
    return f"""Attribute VB_Name = "{RIBBON_MODULE}"
{subs}Function NoBook(b As String) As Boolean
    NoBook = ActiveWorkbook Is Nothing
    If NoBook Then MsgBox Zh("{_zh(before)}") & Zh(b) & Zh("{_zh(after)}"), vbExclamation, Zh("{_zh(MESSAGE_TITLE)}")
End Function
Function Zh(h As String) As String
    Dim i As Long
    For i = 1 To Len(h) Step 4
        Zh = Zh & ChrW(CLng("&H" & Mid(h, i, 4)) And &HFFFF&)
    Next
End Function
""".replace("\n", "\r\n").encode("ascii")


def xlwings_module_source(original: bytes) -> bytes:
    """xlwings' module with our PROJECT_NAME (the only line that differs)."""
    if original.count(QUICKSTART_PROJECT_NAME_LINE) != 1:
        raise SystemExit("xlwings 模块中没有预期的 PROJECT_NAME 常量（xlwings 版本不同？）")
    return original.replace(QUICKSTART_PROJECT_NAME_LINE,
                            f'Public Const PROJECT_NAME As String = "{PROJECT_NAME}"'.encode("ascii"))


def _edit(module: str, source: bytes) -> bytes | None:
    if module == RIBBON_MODULE:
        return ribbon_source(source)
    if module == "xlwings":
        return xlwings_module_source(source)
    return None


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
                if data.count(b'name="_myaddin.conf"') != 1:
                    raise SystemExit("xlwings 加载项中没有预期的配置表 _myaddin.conf（xlwings 版本不同？）")
                data = data.replace(b'name="_myaddin.conf"', f'name="{CONF_SHEET}"'.encode())
            elif info.filename == "xl/vbaProject.bin":
                data = rebuild_project(data, VBA_PROJECT, {QUICKSTART_RIBBON_MODULE: RIBBON_MODULE}, _edit)
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
