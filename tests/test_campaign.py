"""Cases found by trying the product as a new user and as a hostile file would (after issues 9–12):
each asserts the exit code, the exact message and that no input, config, template, history or
previous output changed."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from etl.cli import EXIT_CONFIG, EXIT_INPUT, EXIT_OK, EXIT_OUTPUT, main

from .test_reliability import DB, OUTPUT, hashes, project, run


# ------------------------------------------------------------ history customer -o

def test_history_customer_csv_over_the_config_is_refused(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg = project(tmp_path)
    assert run("-c", str(cfg), "-q") == EXIT_OK
    capsys.readouterr()
    before = hashes(tmp_path)
    for target in ("config.yaml", "exports/sales.csv", "templates/客户分级管理表.xlsx", str(DB), str(OUTPUT)):
        assert main(["history", "-c", str(cfg), "customer", "C001", "-o", str(tmp_path / target)]) == EXIT_CONFIG
        err = capsys.readouterr().err
        assert err.startswith(f"[E106] 配置文件有 1 处错误，请修改后重试：\n  - config.yaml -o: 输出路径 "
                              f"{tmp_path / target} 是要保留的文件（"), err
        assert "写入会覆盖它，已停止，未修改任何文件。请用 -o 指定另一个文件名，例如 C00001.csv。" in err
    assert hashes(tmp_path) == before


def test_history_customer_csv_into_a_missing_folder_is_an_output_error(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg = project(tmp_path)
    assert run("-c", str(cfg), "-q") == EXIT_OK
    capsys.readouterr()
    before = hashes(tmp_path)
    target = tmp_path / "没有 这个" / "C001.csv"
    assert main(["history", "-c", str(cfg), "customer", "C001", "-o", str(target)]) == EXIT_OUTPUT
    assert capsys.readouterr().err.startswith(
        f"[E404] 无法写入文件夹 {target.parent}（文件夹不存在）。请先创建该文件夹，或把 -o 改到已有的文件夹。\n")
    assert hashes(tmp_path) == before


def test_history_customer_csv_is_written_and_rewritten(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg = project(tmp_path)
    assert run("-c", str(cfg), "-q") == EXIT_OK
    target = tmp_path / "C001.csv"
    for _ in range(2):  # a second export replaces the first one (it is the tool's own CSV)
        assert main(["history", "-c", str(cfg), "customer", "C001", "-o", str(target)]) == EXIT_OK
    text = target.read_text(encoding="utf-8-sig")
    assert text.splitlines()[0] == "期间,截止日期,等级,规则等级,综合得分,净销售额,人工指定,分级依据"
    assert text.splitlines()[1].startswith("2026H1,2026-06-30,C,C,,")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".~")] == []


# ------------------------------------------------------------ output path is a folder

def test_output_that_is_a_folder_is_refused_before_reading(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg = project(tmp_path)
    folder = tmp_path / "结果.xlsx"
    folder.mkdir()
    (folder / "keep.txt").write_text("别动", encoding="utf-8")
    before = hashes(tmp_path)
    assert run("-c", str(cfg), "-o", str(folder), "-q") == EXIT_OUTPUT
    assert capsys.readouterr().err.startswith(
        f"[E405] 输出路径 {folder} 是一个文件夹，不能写成工作簿；未读取也未修改任何文件。"
        "请把 output.file（或命令行 -o）改成文件名，例如 output/客户分级管理表_{period}.xlsx。\n")
    assert hashes(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "logs") == ["config.yaml", "exports", "templates", "结果.xlsx"]


# ------------------------------------------------------------ zip bombs

def _xlsx_with_huge_part(part: str, size: int) -> bytes:
    """A small valid sales xlsx whose `part` (sharedStrings or the sheet) inflates to about `size` bytes."""
    ns = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    rows = [["单据日期", "单据编号", "客户编码", "客户名称", "价税合计"]]
    rows += [[f"2026-01-1{c}", f"XS-{c}", f"C{c:03d}", f"客户{c}", str(1000 * c)] for c in range(1, 5)]
    cells = "".join(f'<row r="{r}">' + "".join(
        f'<c r="{"ABCDE"[i]}{r}" t="inlineStr"><is><t>{v}</t></is></c>' if i < 4 else f'<c r="E{r}"><v>{v}</v></c>'
        for i, v in enumerate(row)) + "</row>" for r, row in enumerate(rows, 1))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/'
                   'package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/>'
                   '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                   '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
                   'officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" '
                   'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
                   '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-'
                   'officedocument.spreadsheetml.sharedStrings+xml"/></Types>')
        z.writestr("_rels/.rels", '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/'
                   'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
                   'officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>')
        z.writestr("xl/workbook.xml", f'<?xml version="1.0"?><workbook xmlns="{ns}" xmlns:r="{rel}"><sheets>'
                   '<sheet name="销售" sheetId="1" r:id="rId1"/></sheets></workbook>')
        z.writestr("xl/_rels/workbook.xml.rels", '<?xml version="1.0"?><Relationships xmlns="http://schemas.'
                   'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.'
                   'openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
                   '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
                   'relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>')
        padding = b"<!--" + b" " * (1 << 20) + b"-->"
        if part == "sharedStrings":
            with z.open("xl/sharedStrings.xml", "w", force_zip64=True) as fh:
                fh.write(f'<?xml version="1.0"?><sst xmlns="{ns}"><si><t>x</t></si>'.encode())
                for _ in range(size >> 20):
                    fh.write(b"<si><t>" + b"A" * (1 << 20) + b"</t></si>")
                fh.write(b"</sst>")
            z.writestr("xl/worksheets/sheet1.xml", f'<?xml version="1.0"?><worksheet xmlns="{ns}"><sheetData>'
                       f"{cells}</sheetData></worksheet>")
        else:
            z.writestr("xl/sharedStrings.xml", f'<?xml version="1.0"?><sst xmlns="{ns}"></sst>')
            with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as fh:
                fh.write(f'<?xml version="1.0"?><worksheet xmlns="{ns}"><sheetData>{cells}'.encode())
                for _ in range(size >> 20):
                    fh.write(padding)
                fh.write(b"</sheetData></worksheet>")
    return buf.getvalue()


def test_xlsx_whose_shared_strings_inflate_beyond_the_limit_is_refused(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from grading import xlsx_extent

    monkeypatch.setattr(xlsx_extent, "MAX_SHARED_STRINGS_BYTES", 8 << 20)  # the real limit, scaled down
    cfg = project(tmp_path, _xlsx_with_huge_part("sharedStrings", 12 << 20), name="sales.xlsx")
    assert (tmp_path / "exports" / "sales.xlsx").stat().st_size < 200_000
    before = hashes(tmp_path)
    assert run("-c", str(cfg), "-q") == EXIT_INPUT
    err = capsys.readouterr().err
    assert err.startswith("[E207] 文件 sales.xlsx 的共享文本（xl/sharedStrings.xml）解压后超过 8 MB 的上限"
                          "（压缩包内只有 "), err
    assert hashes(tmp_path) == before


def test_xlsx_shared_strings_message_names_the_fix(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from grading import xlsx_extent

    monkeypatch.setattr(xlsx_extent, "MAX_SHARED_STRINGS_BYTES", 8 << 20)
    cfg = project(tmp_path, _xlsx_with_huge_part("sharedStrings", 12 << 20), name="sales.xlsx")
    assert run("-c", str(cfg), "-q") == EXIT_INPUT
    err = capsys.readouterr().err
    assert "，可能是损坏或恶意构造的文件（压缩炸弹），为避免耗尽内存已停止读取。请在 Excel 中打开后另存为 .xlsx，或从 ERP 重新导出。\n" in err


def test_shared_strings_are_measured_before_calamine_opens_the_workbook(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Opening a workbook makes calamine load every shared string: the check must come first."""
    from grading import read, xlsx_extent

    def refuse(*args: object) -> None:
        raise AssertionError("calamine opened the workbook before its shared strings were measured")

    monkeypatch.setattr(xlsx_extent, "MAX_SHARED_STRINGS_BYTES", 8 << 20)
    monkeypatch.setattr(read.CalamineWorkbook, "from_filelike", refuse)
    cfg = project(tmp_path, _xlsx_with_huge_part("sharedStrings", 12 << 20), name="sales.xlsx")
    assert run("-c", str(cfg), "-q") == EXIT_INPUT
    assert capsys.readouterr().err.startswith("[E207] 文件 sales.xlsx 的共享文本（xl/sharedStrings.xml）解压后超过 8 MB")


def test_xlsx_under_the_shared_strings_limit_is_read(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from grading import xlsx_extent

    monkeypatch.setattr(xlsx_extent, "MAX_SHARED_STRINGS_BYTES", 8 << 20)
    cfg = project(tmp_path, _xlsx_with_huge_part("sharedStrings", 4 << 20), name="sales.xlsx")
    assert run("-c", str(cfg), "-q") == EXIT_OK


def test_real_limit_on_shared_strings_is_generous_but_bounded() -> None:
    from grading import xlsx_extent

    assert 256 << 20 <= xlsx_extent.MAX_SHARED_STRINGS_BYTES <= 1 << 30


# ------------------------------------------------------------ config.yaml as users save it

def test_config_indented_with_tabs_names_line_and_fix_in_chinese(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg = project(tmp_path)
    text = cfg.read_text(encoding="utf-8").splitlines()
    text[1] = "\t" + text[1].lstrip()
    cfg.write_text("\n".join(text) + "\n", encoding="utf-8")
    before = hashes(tmp_path)
    assert run("-c", str(cfg), "-q") == EXIT_CONFIG
    assert capsys.readouterr().err == (
        "[E100] 配置文件有 1 处错误，请修改后重试：\n"
        "  - config.yaml 第 2 行: 第 1 列是制表符（Tab）：YAML 只能用空格缩进，请把 Tab 换成空格"
        "（在编辑器中把“用 Tab 缩进”改为“用空格缩进”）\n")
    assert hashes(tmp_path) == before


def test_empty_config_says_it_is_empty(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg = project(tmp_path)
    cfg.write_text("# 只有注释\n\n", encoding="utf-8")
    assert run("-c", str(cfg), "-q") == EXIT_CONFIG
    assert capsys.readouterr().err == (
        "[E100] 配置文件有 1 处错误，请修改后重试：\n"
        "  - config.yaml: 配置文件是空的（没有任何设置）。新建一份带注释的配置：grade-etl init 新文件夹，"
        "再把其中的 config.yaml 复制过来修改\n")


def test_config_in_gbk_says_how_to_save_it_as_utf8(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg = project(tmp_path)
    text = cfg.read_text(encoding="utf-8")
    cfg.write_bytes(text.encode("gbk"))
    line = next(n for n, t in enumerate(text.splitlines(), 1) if not t.isascii())
    assert run("-c", str(cfg), "-q") == EXIT_CONFIG
    assert capsys.readouterr().err == (
        "[E100] 配置文件有 1 处错误，请修改后重试：\n"
        f"  - config.yaml: 配置文件必须保存为 UTF-8 编码（第 {line} 行起不是 UTF-8）：在记事本中“另存为”，"
        "编码选 UTF-8 后保存\n")


def _padded(data: bytes, part: str, size: int) -> bytes:
    """The xlsx `data` with `size` bytes of spaces before the last closing tag of `part` (still valid XML)."""
    src = zipfile.ZipFile(io.BytesIO(data))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for item in src.infolist():
            body = src.read(item.filename)
            if item.filename != part:
                z.writestr(item.filename, body)
                continue
            cut = body.rfind(b"</")
            with z.open(part, "w", force_zip64=True) as fh:
                fh.write(body[:cut])
                for _ in range(size >> 20):
                    fh.write(b" " * (1 << 20))
                fh.write(body[cut:])
    return buf.getvalue()


def test_xlsx_whose_workbook_index_inflates_beyond_the_limit_is_refused(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """xl/workbook.xml and its relationships are read whole to find the sheets: a 1 GB one took 3 GB."""
    from grading import xlsx_extent

    monkeypatch.setattr(xlsx_extent, "MAX_INDEX_PART_BYTES", 4 << 20)
    for part in ("xl/workbook.xml", "xl/_rels/workbook.xml.rels"):
        cfg = project(tmp_path, _padded(_xlsx_with_huge_part("sharedStrings", 0), part, 6 << 20), name="sales.xlsx")
        before = hashes(tmp_path)
        assert run("-c", str(cfg), "-q") == EXIT_INPUT
        err = capsys.readouterr().err
        assert err.startswith(f"[E207] 文件 sales.xlsx 的工作簿目录（{part}）解压后超过 4 MB 的上限（压缩包内只有 "), err
        assert "可能是损坏或恶意构造的文件（压缩炸弹），为避免耗尽内存已停止读取。" in err
        assert hashes(tmp_path) == before


def test_real_limit_on_the_workbook_index_is_generous_but_bounded() -> None:
    from grading import xlsx_extent

    assert 16 << 20 <= xlsx_extent.MAX_INDEX_PART_BYTES <= 256 << 20


# ------------------------------------------------------------ files that cannot be opened

def test_history_seed_of_a_missing_workbook_says_so_in_chinese(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg = project(tmp_path)
    missing = tmp_path / "旧 输出.xlsx"
    assert main(["history", "-c", str(cfg), "seed", str(missing), "--period", "2025H2"]) == EXIT_INPUT
    assert capsys.readouterr().err == (
        f"[E201] 找不到文件 {missing}。请检查文件名和路径是否正确。\n上一次的输出文件保持不变。\n")


def test_an_export_without_read_permission_says_so_in_chinese(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from grading import read

    cfg = project(tmp_path)
    real_open = Path.open

    def denied(self: Path, *args: object, **kwargs: object) -> object:
        if self.name == "sales.csv":
            raise PermissionError(13, "Permission denied")
        return real_open(self, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(read.Path, "open", denied)
    assert run("-c", str(cfg), "-q") == EXIT_INPUT
    err = capsys.readouterr().err
    assert err.startswith(f"[E202] 无法打开文件 {tmp_path / 'exports' / 'sales.csv'}：没有读取权限。"
                          "请检查文件权限，或文件是否正被其他程序独占打开。\n"), err


# ------------------------------------------------------------ history database of another program

def test_history_database_of_another_program_is_named_as_such_and_left_alone(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    cfg = project(tmp_path)
    (tmp_path / DB).parent.mkdir()
    other = sqlite3.connect(tmp_path / DB)
    other.execute("CREATE TABLE runs (x)")
    other.execute("INSERT INTO runs VALUES (1)")
    other.commit()
    other.close()
    before = hashes(tmp_path)
    assert run("-c", str(cfg), "-q") == EXIT_OUTPUT
    assert capsys.readouterr().err.startswith(
        f"[E500] 历史数据库 {tmp_path / DB} 是另一个程序的 SQLite 数据库（已有表：runs），不是本程序的历史记录，未做任何修改。"
        "请在 config.yaml 的 history.database 改用一个新的文件名（如 output/客户分级历史.sqlite）。\n")
    assert hashes(tmp_path) == before


# ------------------------------------------------------------ receivables with a two-level header

def test_receivables_two_level_header_reads_billed_and_received(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """`本期` merged over `应收 | 收回` (the CSV/HTML form of merged cells: the parent once) is 本期应收 / 本期收回."""
    from typing import Any

    from python_calamine import CalamineWorkbook

    def edit(d: dict[str, Any]) -> None:
        d["sources"]["receivables"] = {"files": ["exports/ar.csv"]}

    cfg = project(tmp_path, edit=edit)
    (tmp_path / "exports" / "ar.csv").write_text(
        "应收账款余额表\n客户,,期初余额,本期,,期末余额\n客户编码,客户名称,,应收,收回,\n"
        "C001,客户1,100,200,150,150\nC002,客户2,0,500,500,0\n", encoding="utf-8")
    assert run("-c", str(cfg), "-q") == EXIT_OK
    rows = CalamineWorkbook.from_path(str(tmp_path / OUTPUT)).get_sheet_by_name("客户分级管理表").to_python()
    header = next(r for r in rows if "客户编码" in r)
    got = {r[header.index("客户编码")]: [r[header.index(h)] for h in ("本期应收", "本期收回", "期末余额")]
           for r in rows[rows.index(header) + 1:] if r[header.index("客户编码")] in ("C001", "C002")}
    assert got == {"C001": [200.0, 150.0, 150.0], "C002": [500.0, 500.0, 0.0]}


# ------------------------------------------------------------ two runs at the same moment

def test_a_lock_still_being_written_by_a_starting_run_is_not_taken_over(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """A run creates its lock file, then writes its pid into it: a second run that reads it in between
    saw an empty file, took it for a killed run's lock, removed it, and both runs went on together."""
    from etl.cli import EXIT_BUSY

    cfg = project(tmp_path)
    lock = tmp_path / "output" / (OUTPUT.name + ".lock")
    lock.parent.mkdir()
    lock.write_bytes(b"")  # created this instant by another run, not written yet
    before = hashes(tmp_path)
    assert run("-c", str(cfg), "-q") == EXIT_BUSY
    assert capsys.readouterr().err == (
        f"[E402] 另一个分级任务正在启动（锁文件 {lock} 刚刚创建），本次运行已退出，未做任何修改。请稍后重试。\n")
    assert hashes(tmp_path) == before


def test_an_old_unreadable_lock_is_taken_over(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    import os
    import time

    cfg = project(tmp_path)
    lock = tmp_path / "output" / (OUTPUT.name + ".lock")
    lock.parent.mkdir()
    lock.write_bytes(b"\xff\xfe garbage \x00")
    old = time.time() - 3600
    os.utime(lock, (old, old))
    assert run("-c", str(cfg)) == EXIT_OK
    assert "发现上次中断的运行留下的锁（进程 ? 已不存在），已清除并继续。" in capsys.readouterr().out
    assert not lock.exists()


# ------------------------------------------------------------ a template that is not a workbook

def _broken_templates(tmp_path: Path) -> dict[str, bytes]:
    from .conftest import TEMPLATE

    plain = io.BytesIO()
    with zipfile.ZipFile(plain, "w") as z:
        z.writestr("word/document.xml", "<w/>")  # a .docx renamed
    bad_xml = io.BytesIO()
    with zipfile.ZipFile(TEMPLATE) as src, zipfile.ZipFile(bad_xml, "w") as z:
        for name in src.namelist():
            z.writestr(name, b"<broken" if name == "xl/workbook.xml" else src.read(name))
    return {"not a zip": b"not a zip at all", "a zip without a workbook": plain.getvalue(),
            "damaged workbook.xml": bad_xml.getvalue()}


def test_a_template_that_is_not_a_workbook_is_a_template_error(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg = project(tmp_path)
    template = tmp_path / "templates" / "客户分级管理表.xlsx"
    for case, data in _broken_templates(tmp_path).items():
        template.write_bytes(data)
        before = hashes(tmp_path)
        for command in (["check-config", "-c", str(cfg)], ["run", "-c", str(cfg), "-q"]):
            assert main(command) == EXIT_OUTPUT, (case, command)
            err = capsys.readouterr().err
            assert err.startswith(
                "[E300] 模板文件 客户分级管理表.xlsx 不是有效的 Excel 工作簿（.xlsx），可能已损坏或是改了扩展名的其他文件。"
                "请在 Excel 中打开后另存为 .xlsx，或运行 grade-etl init 新文件夹 取得默认模板，再把它复制到 "
                f"{template}。\n"), (case, err)
        assert hashes(tmp_path) == before
