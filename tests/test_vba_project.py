"""The add-in's own VBA names (issue #10, "use our own add-in and VBA project names"): read back from
the built xlplugin.xlam with olefile and oletools' own decompressor, every place Excel reads a name
agrees — the PROJECT stream, the dir stream, the stream names, PROJECTwm, the module sources, the
ribbon XML and the conf sheet — and xlwings' quickstart names are gone. Plus the compound-file writer
that makes free names and sizes possible: valid red-black directory trees, read back by olefile."""

from __future__ import annotations

import io
import re
import zipfile
import xml.etree.ElementTree as ET

import olefile
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oletools.olevba import decompress_stream

from xlplugin.build_addin import CONF_SHEET, TARGET

UI = "{http://schemas.microsoft.com/office/2006/01/customui}"
PROJECT, RIBBON, PROJECT_CONST, CONF = "KehuFenji", "RibbonKehuFenji", "kehufenji", "kehufenji.conf"


def _dir_records(text: bytes) -> list[tuple[int, bytes]]:
    """[MS-OVBA] 2.3.4.2 records (Id, Size, Data); PROJECTVERSION's Size says 4 but 6 bytes follow."""
    records, pos = [], 0
    while pos < len(text):
        rec, size = int.from_bytes(text[pos:pos + 2], "little"), int.from_bytes(text[pos + 2:pos + 6], "little")
        size = 6 if rec == 0x0009 else size
        records.append((rec, text[pos + 6:pos + 6 + size]))
        pos += 6 + size
        if rec == 0x0010:
            break
    assert pos == len(text), "dir stream not fully parsed"
    return records


def _ole_streams(vba_bin: bytes) -> dict[str, bytes]:
    ole = olefile.OleFileIO(io.BytesIO(vba_bin), raise_defects=olefile.DEFECT_UNSURE)
    try:
        return {"/".join(e): ole.openstream(e).read() for e in ole.listdir()}
    finally:
        ole.close()


def _addin() -> tuple[dict[str, bytes], dict[str, bytes]]:
    with zipfile.ZipFile(TARGET) as zf:
        parts = {n: zf.read(n) for n in zf.namelist()}
    return parts, _ole_streams(parts["xl/vbaProject.bin"])


def test_every_place_excel_reads_a_name_agrees_on_ours() -> None:
    parts, streams = _addin()
    records = _dir_records(bytes(decompress_stream(bytearray(streams["VBA/dir"]))))
    by_id = lambda rid: [data for rec, data in records if rec == rid]  # noqa: E731
    assert by_id(0x0004) == [PROJECT.encode()]                                     # PROJECTNAME
    names = [n.decode("cp1252") for n in by_id(0x0019)]                            # MODULENAME
    assert [n.decode("utf-16-le") for n in by_id(0x0047)] == names                 # MODULENAMEUNICODE
    assert [n.decode("cp1252") for n in by_id(0x001A)] == names                    # MODULESTREAMNAME
    assert [n.decode("utf-16-le") for n in by_id(0x0032)] == names                 # ... its Unicode form
    assert RIBBON in names and "xlwings" in names
    assert sorted(f"VBA/{n}" for n in names) == sorted(s for s in streams if s.startswith("VBA/")
                                                      and s not in ("VBA/dir", "VBA/_VBA_PROJECT"))
    project = streams["PROJECT"].decode("cp1252").split("\r\n")
    assert f'Name="{PROJECT}"' in project
    listed = [line.split("=", 1)[1].split("/")[0] for line in project
              if line.split("=", 1)[0] in ("Module", "Document", "Class", "BaseClass")]
    assert sorted(listed) == sorted(names) and f"Module={RIBBON}" in project
    workspace = project[project.index("[Workspace]") + 1:]
    assert sorted(line.split("=", 1)[0] for line in workspace if line) == sorted(names)
    wm = streams["PROJECTwm"]
    pairs = re.findall(rb"([\x20-\x7e]+)\x00((?:[\x20-\x7e]\x00)+)\x00\x00", wm)
    assert [(a.decode(), b.decode("utf-16-le")) for a, b in pairs] == [(n, n) for n in names]
    # no compiled cache: Excel compiles every module from its source ([MS-OVBA] 2.3.4.1, version 0xFFFF)
    assert streams["VBA/_VBA_PROJECT"][:5] == b"\xcc\x61\xff\xff\x00" and len(streams["VBA/_VBA_PROJECT"]) == 7
    offsets = [int.from_bytes(d, "little") for d in by_id(0x0031)]                 # MODULEOFFSET
    sources = {n: bytes(decompress_stream(bytearray(streams[f"VBA/{n}"][off:]))).decode("cp1252")
               for n, off in zip(names, offsets)}
    for name, source in sources.items():
        assert re.match(rf'Attribute VB_Name = "{name}"\r?\n', source), name
    assert re.search(rf'^Public Const PROJECT_NAME As String = "{PROJECT_CONST}"\r?$', sources["xlwings"], re.M)
    # the conf sheet is the one the VBA looks up: wb.Sheets(PROJECT_NAME & ".conf")
    assert 'Set sht = wb.Sheets(PROJECT_NAME & ".conf")' in sources["xlwings"]
    assert re.findall(r'<sheet name="([^"]+)"', parts["xl/workbook.xml"].decode()) == [CONF] == [CONF_SHEET]
    buttons = ET.fromstring(parts["customUI/customUI.xml"]).findall(f".//{UI}button")
    for button in buttons:
        module, sub = str(button.get("onAction")).split(".")
        assert module == RIBBON and f"Sub {sub}(control As IRibbonControl)" in sources[RIBBON]
    assert len(buttons) == 2


def test_xlwings_quickstart_names_are_gone() -> None:
    parts, streams = _addin()
    texts = [parts["customUI/customUI.xml"], parts["xl/workbook.xml"], streams["PROJECT"], streams["PROJECTwm"],
             streams["PROJECTwm"].replace(b"\x00", b""), "\n".join(streams).encode()]
    records = _dir_records(bytes(decompress_stream(bytearray(streams["VBA/dir"]))))
    texts += [data.replace(b"\x00", b"") for _, data in records]
    offsets = [int.from_bytes(d, "little") for rec, d in records if rec == 0x0031]
    names = [d.decode() for rec, d in records if rec == 0x0019]
    texts += [bytes(decompress_stream(bytearray(streams[f"VBA/{n}"][off:]))) for n, off in zip(names, offsets)]
    for text in texts:
        assert b"myaddin" not in text.lower()


def test_other_modules_keep_xlwings_streams_byte_for_byte() -> None:
    from pathlib import Path

    import xlwings

    with zipfile.ZipFile(Path(xlwings.__file__).parent / "quickstart_addin_ribbon.xlam") as zf:
        shipped = _ole_streams(zf.read("xl/vbaProject.bin"))
    _, ours = _addin()
    for name in ("VBA/ThisWorkbook", "VBA/Sheet2", "VBA/Dictionary", "VBA/_VBA_PROJECT"):
        assert ours[name] == shipped[name], name
    theirs = bytes(decompress_stream(bytearray(shipped["VBA/xlwings"]))).decode("cp1252")
    mine = bytes(decompress_stream(bytearray(ours["VBA/xlwings"]))).decode("cp1252")
    assert mine == theirs.replace('PROJECT_NAME As String = "myaddin"', f'PROJECT_NAME As String = "{PROJECT_CONST}"')
    assert mine != theirs


# --- the compound-file writer ------------------------------------------------------------------

def _key(name: str) -> tuple[int, str]:
    return len(name), name.upper()


def _check_red_black(ole: olefile.OleFileIO) -> None:
    """Every storage's children form a binary search tree by ([MS-CFB] 2.6.4) length, then upper case,
    with a black root, no red node with a red child, and the same number of black nodes on every path."""
    entries = ole.direntries
    nostream = 0xFFFFFFFF

    def walk(sid: int, low: tuple[int, str] | None, high: tuple[int, str] | None) -> int:
        if sid == nostream:
            return 1
        entry = entries[sid]
        key = _key(entry.name)
        assert (low is None or low < key) and (high is None or key < high), entry.name
        for child in (entry.sid_left, entry.sid_right):
            if entry.color == 0 and child != nostream:
                assert entries[child].color == 1, f"red {entry.name} has a red child"
        left, right = walk(entry.sid_left, low, key), walk(entry.sid_right, key, high)
        assert left == right, f"black heights differ under {entry.name}"
        return left + entry.color

    for entry in entries:
        if entry is not None and entry.entry_type in (olefile.STGTY_ROOT, olefile.STGTY_STORAGE):
            if entry.sid_child != nostream:
                assert entries[entry.sid_child].color == 1, f"root of {entry.name}'s tree is red"
                walk(entry.sid_child, None, None)


def test_the_vba_project_is_a_valid_compound_file() -> None:
    with zipfile.ZipFile(TARGET) as zf:
        data = zf.read("xl/vbaProject.bin")
    assert data[:8] == bytes.fromhex("D0CF11E0A1B11AE1") and len(data) % 512 == 0
    ole = olefile.OleFileIO(io.BytesIO(data), raise_defects=olefile.DEFECT_UNSURE)
    try:
        _check_red_black(ole)
        assert not ole.parsing_issues
    finally:
        ole.close()


_NAME = st.text(alphabet="abcXYZ_09", min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.tuples(st.sampled_from(["", "VBA/", "VBA/Sub/", "Other/"]), _NAME).map("".join),
                       st.integers(0, 9000).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
                       min_size=1, max_size=40))
def test_compound_files_read_back_with_valid_trees(streams: dict[str, bytes]) -> None:
    from xlplugin.cfb import write_cfb

    storages = {path.rsplit("/", 1)[0] for path in streams if "/" in path}
    storages |= {s.split("/")[0] for s in storages}
    streams = {p: d for p, d in streams.items() if p not in storages}
    if not streams:
        return
    data = write_cfb(streams)
    ole = olefile.OleFileIO(io.BytesIO(data), raise_defects=olefile.DEFECT_UNSURE)
    try:
        assert {"/".join(e): ole.openstream(e).read() for e in ole.listdir()} == streams
        _check_red_black(ole)
    finally:
        ole.close()


def test_compound_file_names_are_checked() -> None:
    from xlplugin.cfb import CfbError, write_cfb

    with pytest.raises(CfbError, match="名称"):
        write_cfb({"x" * 32: b""})
    with pytest.raises(CfbError, match="名称"):
        write_cfb({"客户": b""})


def test_rebuild_refuses_what_it_cannot_do_cleanly() -> None:
    from pathlib import Path

    import xlwings

    from xlplugin.vba_patch import VbaPatchError, rebuild_project

    with zipfile.ZipFile(Path(xlwings.__file__).parent / "quickstart_addin_ribbon.xlam") as zf:
        vba = zf.read("xl/vbaProject.bin")
    keep = lambda name, source: None  # noqa: E731
    with pytest.raises(VbaPatchError, match="没有模块"):
        rebuild_project(vba, PROJECT, {"NoSuchModule": "Other"}, keep)
    with pytest.raises(VbaPatchError, match="ASCII 标识符"):
        rebuild_project(vba, "客户分级", {}, keep)
    with pytest.raises(VbaPatchError, match="Attribute VB_Name"):  # a renamed module must say its new name
        rebuild_project(vba, PROJECT, {"RibbonMyAddin": RIBBON}, keep)
    same = _ole_streams(rebuild_project(vba, "MyAddin", {}, keep))
    assert same == _ole_streams(vba) | {"VBA/dir": same["VBA/dir"]}  # only the dir stream is re-encoded
    assert decompress_stream(bytearray(same["VBA/dir"])) == decompress_stream(bytearray(_ole_streams(vba)["VBA/dir"]))


def _uno_python() -> str | None:
    import shutil
    import subprocess

    if shutil.which("soffice") is None:
        return None
    for python in ("/usr/bin/python3", "python3"):
        try:
            if subprocess.run([python, "-c", "import uno"], capture_output=True, timeout=60).returncode == 0:
                return python
        except OSError:
            continue
    return None


def test_libreoffice_reads_the_vba_project_under_our_names(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """An independent reader of compound files and VBA projects (LibreOffice's import, which Excel is
    not): the project, its modules and their sources come through under our names."""
    import json
    import subprocess
    from pathlib import Path

    python = _uno_python()
    if python is None:
        pytest.skip("LibreOffice with Python (uno) is not installed")
    proc = subprocess.run([python, str(Path(__file__).with_name("lo_vba_dump.py")), str(tmp_path / "profile"),
                           str(TARGET)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    book = json.loads(proc.stdout)[str(TARGET)]
    assert book["sheets"] == [CONF]
    libraries = {k: v for k, v in book["libraries"].items() if v}  # LibreOffice's own empty Standard aside
    assert list(libraries) == [PROJECT]
    modules = libraries[PROJECT]
    assert sorted(modules) == sorted(["Dictionary", RIBBON, "Sheet2", "ThisWorkbook", "xlwings"])
    ribbon = modules[RIBBON]
    for sub in ("RunMain", "RunPreview"):
        assert f"Sub {sub}(control As IRibbonControl)" in ribbon
    assert ribbon.count('If NoBook("') == 2 and "Function Zh(h As String) As String" in ribbon
    assert f'Public Const PROJECT_NAME As String = "{PROJECT_CONST}"' in modules["xlwings"]
