"""Run by tests/test_vba_project.py with a Python that has LibreOffice's `uno` (not the test venv):
opens workbooks in a headless LibreOffice — a reader of compound files and VBA projects independent
of olefile/oletools — and prints, as JSON, their sheets and the VBA modules LibreOffice imported.

    python3 tests/lo_vba_dump.py PROFILE_DIR BOOK.xlam ..."""

import json
import os
import subprocess
import sys
import time

import uno  # type: ignore[import-not-found]
from com.sun.star.beans import PropertyValue  # type: ignore[import-not-found]


def _prop(name: str, value: object) -> PropertyValue:
    p = PropertyValue()
    p.Name, p.Value = name, value
    return p


def main() -> None:
    profile, books = sys.argv[1], sys.argv[2:]
    pipe = f"vbadump{os.getpid()}"
    proc = subprocess.Popen(["soffice", "--headless", "--invisible", "--norestore", "--nologo",
                             f"-env:UserInstallation={uno.systemPathToFileUrl(os.path.abspath(profile))}",
                             f"--accept=pipe,name={pipe};urp;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        local = uno.getComponentContext()
        resolver = local.ServiceManager.createInstanceWithContext("com.sun.star.bridge.UnoUrlResolver", local)
        for _ in range(120):
            try:
                ctx = resolver.resolve(f"uno:pipe,name={pipe};urp;StarOffice.ComponentContext")
                break
            except Exception:  # noqa: BLE001 (not up yet)
                time.sleep(0.5)
        desktop = ctx.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", ctx)
        out = {}
        for path in books:
            doc = desktop.loadComponentFromURL(uno.systemPathToFileUrl(os.path.abspath(path)), "_blank", 0, (
                _prop("Hidden", True), _prop("MacroExecutionMode", 0), _prop("FilterName", "Calc MS Excel 2007 VBA XML")))
            libs = doc.BasicLibraries
            modules = {}
            for name in libs.ElementNames:
                libs.loadLibrary(name)
                lib = libs.getByName(name)
                modules[name] = {m: lib.getByName(m) for m in lib.ElementNames}
            out[path] = {"sheets": list(doc.Sheets.ElementNames), "libraries": modules}
            doc.close(True)
        print(json.dumps(out))
    finally:
        proc.terminate()
        proc.wait(timeout=60)


if __name__ == "__main__":
    main()
