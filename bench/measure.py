"""Child processes of the benchmark, one measurement each (a fresh interpreter, so peak RSS is its own):

    python -m bench.measure project FOLDER RESULT.json   # grade-etl's pipeline (run_to_file), stage times, RSS per stage
    python -m bench.measure polars  FOLDER RESULT.json   # the polars reference pipeline (bench/polars_ref.py)
    python -m bench.measure floor   FOLDER RESULT.json   # the strict I/O floor (bench/floor.py)
    python -m bench.measure floor-prep FOLDER RESULT.json  # the project's output cells → parquet (not timed)

BENCH_CONFIG names the config file in FOLDER (default config.yaml; config_seed.yaml seeds a history case,
writing seed outputs beside the timed ones).

Each writes a JSON result; `import` seconds (interpreter already up, modules not yet imported) are part
of the project's and the polars pipeline's totals, not of the floor.
"""

from __future__ import annotations

import glob
import json
import os
import resource
import sys
import threading
import time
from pathlib import Path
from typing import Any

_PAGE = os.sysconf("SC_PAGE_SIZE")


class RssSampler(threading.Thread):
    """Peak resident memory (MB) per named stage, sampled every `interval` s: this process and every process
    it started (grade-etl reads large inputs in worker processes and writes the problem list and the
    history record in a forked one: their memory counts too).

    A forked process shares its parent's pages until either writes them; its RSS counts them again. So a
    child counts only its pages not shared with another process: RSS less the shared part, read from
    /proc/<pid>/smaps_rollup when the child is first seen and every `refresh` samples after (reading it
    walks the process's page tables: milliseconds). Between readings (`refresh` samples apart) the last
    shared part is used, never more than the child's RSS. Pages shared between two children only would
    count for neither (the read pool's workers have ended before the side process is forked). Earlier
    tables counted the read pool's worker's pages shared with the run's process twice (about 100 MB)."""

    def __init__(self, interval: float = 0.02, refresh: int = 10) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.refresh = refresh
        self.stage = "import"
        self.peaks: dict[str, float] = {}
        self._halt = threading.Event()
        self._shared: dict[int, int] = {}  # child pid → its shared pages at the last reading
        self._lock = threading.Lock()
        self._samples = 0

    def current_mb(self) -> float:
        with self._lock:  # called by this thread and by `mark` from the measured one
            return self._current_mb()

    def _current_mb(self) -> float:
        me = os.getpid()
        tree = _tree(me)
        self._samples += 1
        self._shared = {pid: n for pid, n in self._shared.items() if pid in tree}  # ended: a new pid is read anew
        pages = 0
        for pid in tree:
            resident = _resident_pages(pid)
            if pid != me:
                if pid not in self._shared or self._samples % self.refresh == 0:
                    self._shared[pid] = _shared_pages(pid)
                resident -= min(self._shared[pid], resident)  # a child ending: never below nothing
            pages += resident
        return pages * _PAGE / 2**20

    def mark(self, stage: str) -> None:
        self._sample()
        self.stage = stage
        self._sample()

    def _sample(self) -> None:
        mb = self.current_mb()
        if mb > self.peaks.get(self.stage, 0.0):
            self.peaks[self.stage] = mb

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            self._sample()

    def stop(self) -> dict[str, float]:
        self._sample()
        self._halt.set()
        return {k: round(v) for k, v in self.peaks.items()}


def _tree(pid: int) -> list[int]:
    """pid and its descendants (Linux /proc/<pid>/task/<tid>/children)."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        for children in glob.glob(f"/proc/{current}/task/*/children"):
            try:
                todo += [int(c) for c in Path(children).read_text().split()]
            except (OSError, ValueError):
                pass
    return out


def _shared_pages(pid: int) -> int:
    """Resident pages of `pid` that another process maps too (Shared_Clean + Shared_Dirty)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            kb = sum(int(line.split()[1]) for line in fh if line.startswith(("Shared_Clean:", "Shared_Dirty:")))
        return kb * 1024 // _PAGE
    except (OSError, ValueError, IndexError):
        return 0  # ended between listing and reading


def _resident_pages(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0  # ended between listing and reading


def peak_rss_mb() -> float:
    """This process's own peak (VmHWM): ru_maxrss keeps the parent's size across fork + exec on Linux."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM")) / 1024
    except (OSError, StopIteration, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


_STAGES = (("读取", "read+normalise"), ("计算", "metrics"), ("分级", "grade+plan"), ("写入", "write+history"))


def project(folder: Path, sampler: RssSampler) -> dict[str, Any]:
    t0 = time.perf_counter()
    from grading.config import load_config
    from grading.pipeline import run_to_file

    imported = time.perf_counter() - t0

    def progress(message: str, fraction: float) -> None:
        stage = next((name for prefix, name in _STAGES if message.startswith(prefix)), None)
        if stage and stage != sampler.stage:
            sampler.mark(stage)

    t = time.perf_counter()
    config = load_config(folder / _config_name())
    result = run_to_file(config, folder / _output("output.xlsx"), progress)
    run = time.perf_counter() - t
    graded = result.graded
    return {"timings": {"import": imported, **result.timings}, "total": imported + run, "customers": len(graded),
            "lines": result.lines_in_window + result.lines_outside, "problems": len(result.problems),
            "net_cents": {str(k): int(round(v * 100)) for k, v in graded["net_sales"].items()},
            "grades": {str(k): str(v) for k, v in graded["grade"].items()}}


def polars(folder: Path, sampler: RssSampler) -> dict[str, Any]:
    t0 = time.perf_counter()
    from bench import polars_ref

    imported = time.perf_counter() - t0
    t = time.perf_counter()
    result = polars_ref.run(folder / _config_name(), folder / _output("polars_output.xlsx"), sampler.mark)
    result["timings"] = {"import": imported, **result["timings"]}
    result["total"] = imported + time.perf_counter() - t
    return result


def _config_name() -> str:
    return os.environ.get("BENCH_CONFIG", "config.yaml")


def _output(name: str) -> str:
    return name if _config_name() == "config.yaml" else f"seed_{name}"


def floor_prep(folder: Path, sampler: RssSampler) -> dict[str, Any]:
    from bench import floor as fl

    fl.save_tables(fl.output_tables(folder / "output.xlsx"), folder / "floor_cells")
    fl.save_csvs(fl.side_files(folder / "output.xlsx"), folder / "floor_cells")
    return {}


def floor(folder: Path, sampler: RssSampler) -> dict[str, Any]:
    from bench import floor as fl

    files = fl.input_files(folder / "config.yaml")
    tables = fl.load_tables(folder / "floor_cells")  # the project's output cells (prepared untimed)
    sampler.mark("read")
    read_s, cells_in = fl.read_floor(files)
    sampler.mark("write")
    write_s, cells_out = fl.write_floor(tables, folder / "floor.xlsx", fl.load_csvs(folder / "floor_cells"))
    return {"timings": {"read": read_s, "write": write_s}, "total": read_s + write_s, "cells_in": cells_in,
            "cells_out": cells_out, "input_mb": sum(p.stat().st_size for p in files) / 1e6}


def main() -> None:
    kind, folder, target = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    sampler = RssSampler()
    sampler.start()
    result = {"project": project, "polars": polars, "floor": floor, "floor-prep": floor_prep}[kind](folder, sampler)
    result["rss_stages"] = sampler.stop()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # worker processes, joined by the run
    result["cpu_s"] = usage.ru_utime + usage.ru_stime + children.ru_utime + children.ru_stime
    # the process tree's sampled peak (worker processes included), at least this process's own peak
    result["rss_mb"] = round(max(peak_rss_mb(), max(result["rss_stages"].values(), default=0)))
    target.write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
