"""Every run starts by importing the pipeline: what it pulls in is part of each run's time (issue 15)."""

from __future__ import annotations

import subprocess
import sys


def test_the_pipeline_does_not_import_the_network_stack() -> None:
    """xml.sax.saxutils imported urllib.request, http.client and ssl (about 10 ms at every start) for one
    escape function; nothing on the run's path needs them."""
    code = ("import sys; import grading.pipeline, grading.config, grading.outputs, grading.write_xlsx; "
            "print(sorted(m for m in ('ssl', 'http.client', 'urllib.request', 'xml.sax.saxutils') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
