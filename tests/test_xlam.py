"""The shipped add-in file: a valid package whose ribbon button reaches RunMain,
whose VBA imports the module named like the file, with a working conf sheet;
rebuilt identically from the pinned xlwings. Plus: the headless path never
imports xlwings, and a real-Excel run that skips where Excel is absent."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest
import xlwings

from xlplugin.build_addin import CONF, TARGET, XLWINGS_VERSION, build
from xlplugin.doctor import conf_sheet_values, report

from .conftest import ROOT

UI = "{http://schemas.microsoft.com/office/2006/01/customui}"


def _vba() -> str:
    from oletools.olevba import VBA_Parser

    parser = VBA_Parser(str(TARGET))
    try:
        return "\n".join(f"'@@ {name}\n{code}" for _, _, name, code in parser.extract_macros())
    finally:
        parser.close()


def test_xlam_is_a_valid_package_with_the_ribbon_button() -> None:
    with zipfile.ZipFile(TARGET) as zf:
        assert zf.testzip() is None
        ui = ET.fromstring(zf.read("customUI/customUI.xml"))
        rels = zf.read("_rels/.rels").decode()
    assert "customUI/customUI.xml" in rels
    tab = ui.find(f".//{UI}tab")
    assert tab is not None and tab.get("label") == "客户分级"
    button = ui.find(f".//{UI}button")
    assert button is not None
    assert (button.get("label"), button.get("size"), button.get("onAction")) == \
        ("Grade (分级)", "large", "RibbonKehuFenji.RunMain")


def test_vba_runmain_imports_the_module_named_like_the_file() -> None:
    vba = _vba()
    with zipfile.ZipFile(TARGET) as zf:
        button = ET.fromstring(zf.read("customUI/customUI.xml")).find(f".//{UI}button")
    assert button is not None
    module, sub = str(button.get("onAction")).split(".")  # the button's onAction names module.sub
    assert f"'@@ {module}.bas" in vba
    body = vba.split(f"'@@ {module}.bas", 1)[1]
    assert re.search(rf"Sub {sub}\(control As IRibbonControl\)", body)
    assert 'mymodule = Left(ThisWorkbook.Name, (InStrRev(ThisWorkbook.Name, ".", -1, vbTextCompare) - 1))' in body
    assert 'RunPython "import " & mymodule & ";" & mymodule & ".main()"' in body
    assert TARGET.stem == "xlplugin"
    import xlplugin

    assert callable(xlplugin.main)  # what `import xlplugin; xlplugin.main()` calls


def test_conf_sheet_matches_the_vba_project_name_and_keys() -> None:
    vba = _vba()
    project = re.search(r'Public Const PROJECT_NAME As String = "(\w+)"', vba)
    assert project is not None
    with zipfile.ZipFile(TARGET) as zf:
        names = re.findall(r'<sheet name="([^"]+)"', zf.read("xl/workbook.xml").decode())
    assert names == [f"{project.group(1)}.conf"]
    values = conf_sheet_values(TARGET)
    assert list(values) == [k.upper() for k, _ in CONF]
    for key in ("INTERPRETER_WIN", "INTERPRETER_MAC", "PYTHONPATH", "CONDA PATH", "CONDA ENV"):
        assert f'GetConfig("{key.replace(" ", "_")}' in vba or key in values
    assert values["INTERPRETER_WIN"].endswith(r"\.venv\Scripts\pythonw.exe")


def test_vba_xlwings_version_is_pinned_everywhere() -> None:
    vba = _vba()
    assert f'Public Const XLWINGS_VERSION As String = "{XLWINGS_VERSION}"' in vba
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    assert f"xlwings=={XLWINGS_VERSION}" in extras["excel"]


@pytest.mark.skipif(xlwings.__version__ != XLWINGS_VERSION, reason="rebuild needs the pinned xlwings")
def test_rebuilding_from_installed_xlwings_gives_the_shipped_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert build(tmp_path / "xlplugin.xlam").read_bytes() == TARGET.read_bytes()


def test_doctor_reports_versions_config_order_and_pitfalls(tmp_path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "OneDrive - 公司" / "报表"
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text("x: 1\n", encoding="utf-8")
    lines = report(folder / "客户.xlsx")
    text = "\n".join(lines)
    assert f"xlwings：{xlwings.__version__}（加载项 VBA 对应 {XLWINGS_VERSION}）" in text
    assert f"  2. 工作簿旁边：{folder / 'config.yaml'} ✓" in text
    assert "路径含中文或其他非 ASCII 字符" in text and "路径在 OneDrive/SharePoint 中" in text
    proc = subprocess.run([sys.executable, "-m", "xlplugin", "doctor"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and "配置文件查找顺序" in proc.stdout


def test_headless_path_never_imports_xlwings() -> None:
    code = ("import sys, etl.cli, grading.pipeline; "
            "from etl.cli import main; main(['check-config', '-q']); "
            "assert 'xlwings' not in sys.modules, 'xlwings imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.excel
def test_grade_button_in_real_excel(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Runs only where Microsoft Excel is installed (Windows/macOS): grades into a real workbook."""
    import shutil

    from xlplugin import run

    shutil.copyfile(ROOT / "templates" / "客户分级管理表.xlsx", tmp_path / "book.xlsx")
    app = xlwings.App(visible=False, add_book=False)
    try:
        book = app.books.open(str(tmp_path / "book.xlsx"))
        outcome = run(book, ROOT / "config.yaml")
        assert outcome.ok, outcome.message
        assert book.sheets["客户分级管理表"].range("B5").value
    finally:
        app.quit()


def test_conf_sheet_keeps_the_workbook_folder_off_the_python_path() -> None:
    """xlwings' default (true) resolves the workbook's folder first and fails for OneDrive/SharePoint
    workbooks ("Couldn't find your local OneDrive file, see: xlwings.org/error") before our code runs."""
    assert conf_sheet_values(TARGET)["ADD_WORKBOOK_TO_PYTHONPATH"] == "FALSE"
    assert 'AddExcelDir = GetConfig("ADD_WORKBOOK_TO_PYTHONPATH", "true")' in _vba()


def test_doctor_runs_the_interpreter_excel_will_start(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from xlplugin.doctor import check_interpreter

    good = check_interpreter(sys.executable, windows=False)
    assert good[-1] == f"  ✓ 能导入 xlplugin、grading 和 xlwings {XLWINGS_VERSION}"
    gone = check_interpreter(str(tmp_path / "nowhere" / "python"), windows=False)
    assert gone == [f"! 加载项要启动的解释器不存在：{tmp_path / 'nowhere' / 'python'}。修复：运行 python3 -m venv "
                    "$HOME/kehu-fenji/.venv，再运行 $HOME/kehu-fenji/.venv/bin/python -m pip install \"kehu-fenji[excel]\"；"
                    "或把加载项配置表 kehufenji.conf 中的 Interpreter_Mac 改成已安装本程序的 Python。"]
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "empty")], check=True)
    bare = str(tmp_path / "empty" / "bin" / "python")
    [finding] = check_interpreter(bare, windows=False)
    assert finding.startswith(f"! 解释器 {bare} 无法导入 xlwings。修复：{bare} -m pip install \"kehu-fenji[excel]\"")
    text = "\n".join(report(tmp_path / "book.xlsx", bare))
    assert f"  ! 解释器 {bare} 无法导入 xlwings。" in text and "检查完成，请按上面标 ! 的项目中的“修复”处理。" in text


def test_readme_quotes_error_texts_that_xlwings_really_prints() -> None:
    """The pitfalls in the README quote xlwings 0.37.8's own texts (its Python package and its VBA)."""
    import inspect

    import xlwings.utils
    from oletools.olevba import VBA_Parser

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    parser = VBA_Parser(str(Path(xlwings.__file__).parent / "quickstart_addin_ribbon.xlam"))
    try:
        vba = "\n".join(code for _, _, _, code in parser.extract_macros())
    finally:
        parser.close()
    python = inspect.getsource(xlwings.utils)
    quoted = {"Could not find Interpreter!": vba,
              "Couldn't find your local OneDrive file, see: xlwings.org/error": python,
              "not recognized as valid OneDrive/SharePoint link.": python}
    for text, source in quoted.items():
        assert text in readme and text in source, text
    assert "version mismatch" not in readme  # xlwings prints no such text


def _macros(path: Path) -> dict[str, str]:
    from oletools.olevba import VBA_Parser

    parser = VBA_Parser(str(path))
    try:
        return {name: code for _, _, name, code in parser.extract_macros()}
    finally:
        parser.close()


def test_preview_button_reaches_main_preview() -> None:
    with zipfile.ZipFile(TARGET) as zf:
        buttons = ET.fromstring(zf.read("customUI/customUI.xml")).findall(f".//{UI}button")
    assert [(b.get("label"), b.get("onAction")) for b in buttons] == [
        ("Grade (分级)", "RibbonKehuFenji.RunMain"), ("预览", "RibbonKehuFenji.RunPreview")]
    body = _macros(TARGET)["RibbonKehuFenji.bas"]
    sub = body.split("Sub RunPreview(control As IRibbonControl)", 1)[1].split("End Sub", 1)[0]
    assert 'mymodule = Left(ThisWorkbook.Name, (InStrRev(ThisWorkbook.Name, ".", -1, vbTextCompare) - 1))' in sub
    assert 'RunPython "import " & mymodule & ";" & mymodule & ".main_preview()"' in sub
    import xlplugin

    assert callable(xlplugin.main_preview)


def test_vba_modules_other_than_the_ribbon_module_are_unchanged() -> None:
    import xlwings as xw

    shipped = _macros(Path(xw.__file__).parent / "quickstart_addin_ribbon.xlam")
    ours = _macros(TARGET)
    assert set(ours) == set(shipped) - {"RibbonMyAddin.bas"} | {"RibbonKehuFenji.bas"}
    for name in shipped:
        if name not in ("RibbonMyAddin.bas", "xlwings.bas"):
            assert ours[name] == shipped[name], name
    assert ours["xlwings.bas"] == shipped["xlwings.bas"].replace('PROJECT_NAME As String = "myaddin"',
                                                                 'PROJECT_NAME As String = "kehufenji"')
    without_guards = re.sub(r'    If NoBook\("\w+"\) Then Exit Sub\r?\n', "", ours["RibbonKehuFenji.bas"])
    assert without_guards.startswith(shipped["RibbonMyAddin.bas"].rstrip("\r\n").replace(
        'VB_Name = "RibbonMyAddin"', 'VB_Name = "RibbonKehuFenji"'))


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


_NOISE = __import__("random").Random(0).randbytes(4096)


def test_incompressible_chunks_are_written_raw() -> None:
    from xlplugin.vba_patch import VbaPatchError, compress

    assert compress(_NOISE)[1:3] == (0x3FFF).to_bytes(2, "little")  # raw chunk header ([MS-OVBA] 2.4.1.3.10)
    with pytest.raises(VbaPatchError):
        compress(_NOISE[:4000])  # a short raw chunk would be padded with zeros on decompression


@settings(max_examples=40, deadline=None)
@given(st.tuples(st.sampled_from([b"", _NOISE]),  # an incompressible full chunk
                 st.binary(min_size=1, max_size=3000) | st.text("ab =\r\n", min_size=1, max_size=6000).map(str.encode))
       .map(b"".join))
def test_vba_compression_round_trips(data: bytes) -> None:
    """Incompressible full chunks become raw chunks; text compresses."""
    from xlplugin.vba_patch import compress, decompress
    from oletools.olevba import decompress_stream

    packed = compress(data)
    assert decompress(packed)[0] == data == bytes(decompress_stream(bytearray(packed)))


# --- issue #10 item 5: a guard instead of VBA error 91 -----------------

def _vba_bin(path: Path) -> bytes:
    with zipfile.ZipFile(path) as zf:
        return zf.read("xl/vbaProject.bin")


def _streams(path: Path) -> dict[str, bytes]:
    import io

    import olefile

    ole = olefile.OleFileIO(io.BytesIO(_vba_bin(path)))
    try:
        return {"/".join(e): ole.openstream(e).read() for e in ole.listdir()}
    finally:
        ole.close()


def test_every_ribbon_callback_first_explains_what_to_do_without_a_workbook() -> None:
    from xlplugin.build_addin import BUTTONS, NO_BOOK_MESSAGE, _zh

    body = _macros(TARGET)["RibbonKehuFenji.bas"]
    callbacks = re.findall(r"Sub (\w+)\(control As IRibbonControl\)\r?\n(.*?)End Sub", body, re.S)
    assert [name for name, _ in callbacks] == ["RunMain", "RunPreview"]
    for name, code in callbacks:
        first = code.splitlines()[0].strip()
        assert first == f'If NoBook("{_zh(BUTTONS[name][0])}") Then Exit Sub', name
    assert "NoBook = ActiveWorkbook Is Nothing" in body
    # the message, decoded as the VBA's Zh() decodes it, is the Chinese text
    codes = re.search(r'MsgBox Zh\("(\w+)"\) & Zh\(b\) & Zh\("(\w+)"\), vbExclamation, Zh\("(\w+)"\)', body)
    assert codes is not None
    def zh(hexes: str) -> str:
        return "".join(chr(int(hexes[i:i + 4], 16)) for i in range(0, len(hexes), 4))
    assert zh(codes.group(1)) + "分级" + zh(codes.group(2)) == \
        "请先打开（或在受保护视图中点「启用编辑」）要分级的工作簿，再点「分级」。" == NO_BOOK_MESSAGE.format(button="分级")
    assert zh(codes.group(3)) == "客户分级"
    assert "Zh = Zh & ChrW(CLng(\"&H\" & Mid(h, i, 4)) And &HFFFF&)" in body


def test_ribbon_module_is_xlwings_source_plus_guards_and_preview() -> None:
    import xlwings as xw

    shipped = _macros(Path(xw.__file__).parent / "quickstart_addin_ribbon.xlam")["RibbonMyAddin.bas"]
    ours = _macros(TARGET)["RibbonKehuFenji.bas"]
    without_guards = re.sub(r'    If NoBook\("\w+"\) Then Exit Sub\r?\n', "", ours)
    run_main = shipped.strip("\r\n").replace('VB_Name = "RibbonMyAddin"', 'VB_Name = "RibbonKehuFenji"')
    assert without_guards.startswith(run_main)


def test_doctor_finds_a_conf_sheet_or_file_left_under_the_quickstart_name(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Add-ins built before the rename read `myaddin.conf`; this one reads kehufenji.conf: a user's
    override under the old name would be ignored silently."""
    import openpyxl

    book = tmp_path / "客户.xlsx"
    wb = openpyxl.Workbook()
    wb.active.title = "数据"  # type: ignore[union-attr]
    wb.create_sheet("myaddin.conf")["A1"] = "Interpreter_Win"
    wb.save(book)
    (tmp_path / "myaddin.conf").write_text('"INTERPRETER_WIN","C:\\py\\pythonw.exe"\n', encoding="utf-8")
    text = "\n".join(report(book))
    assert ("  ! 工作簿 客户.xlsx 中有工作表 myaddin.conf：那是按 xlwings 快速入门名称做的旧版加载项读取的配置，"
            "本加载项读取 kehufenji.conf。修复：把该工作表改名为 kehufenji.conf。") in text
    assert (f"  ! 工作簿旁边有 {tmp_path / 'myaddin.conf'}：本加载项读取同一文件夹中的 kehufenji.conf。"
            "修复：把该文件改名为 kehufenji.conf。") in text
    wb = openpyxl.load_workbook(book)
    wb["myaddin.conf"].title = "kehufenji.conf"
    wb.save(book)
    (tmp_path / "myaddin.conf").rename(tmp_path / "kehufenji.conf")
    assert "myaddin.conf" not in "\n".join(report(book))
