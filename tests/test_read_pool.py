"""grade-etl reads large inputs in worker processes (grading.read_pool): the run must report exactly
what a run in line reports — grades, problems in order, notes, errors — and the files must really be
loaded by the workers (a pickling fault would otherwise fall back to in-line loading unseen)."""

from __future__ import annotations

import pickle
import sys
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

import grading.read_pool as read_pool
from grading.config import load_config
from grading.errors import InputErrors
from grading.pipeline import GradingResult, grade_data
from grading.problems import Problem, ProblemLog

from .conftest import FIXED_TIME, base_config, copy_template

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="worker processes are used on Linux")

SUBMITTED: list[Future[Any]] = []


class CountingExecutor(ProcessPoolExecutor):
    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        future = super().submit(fn, *args, **kwargs)
        SUBMITTED.append(future)
        return future


def _grade(folder: Path, parallel: bool) -> GradingResult:
    return grade_data(load_config(folder / "config.yaml"), generated_at=FIXED_TIME, parallel=parallel)


@pytest.fixture
def in_workers(monkeypatch: pytest.MonkeyPatch) -> list[Future[Any]]:
    """Every run with `parallel` uses the workers, however small its files."""
    monkeypatch.setattr(read_pool, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(read_pool, "PACK_MIN_CATEGORIES", 0)  # every text column goes back packed
    monkeypatch.setattr(read_pool, "ProcessPoolExecutor", CountingExecutor)
    SUBMITTED.clear()
    return SUBMITTED


def _same(a: GradingResult, b: GradingResult) -> None:
    pd.testing.assert_frame_equal(a.graded, b.graded)
    assert list(a.problems) == list(b.problems)
    assert (a.files, a.rows_read, a.warnings, a.lines_in_window, a.lines_outside) == \
        (b.files, b.rows_read, b.warnings, b.lines_in_window, b.lines_outside)
    assert a.drops == b.drops


def test_workers_give_what_a_run_in_line_gives(demo: Any, in_workers: list[Future[Any]]) -> None:
    folder, _ = demo
    copy_template(folder)
    (folder / "config.yaml").write_text(yaml.safe_dump(base_config(), allow_unicode=True), encoding="utf-8")
    alone = _grade(folder, parallel=False)
    assert not in_workers
    together = _grade(folder, parallel=True)
    files = sum(len(files) for files in together.files.values())
    assert files >= 5
    assert 1 <= len(in_workers) <= files - 1  # the largest file is read by this process, and what it takes next
    assert all(f.done() and f.exception() is None for f in in_workers)  # loaded there, not in line
    assert len(together.problems) > 0
    _same(alone, together)


def test_errors_and_notes_in_order_with_workers(tmp_path: Path, in_workers: list[Future[Any]]) -> None:
    """Two CSVs without a code column (the note is said once), a damaged xlsx and a glob that matches
    nothing: the same message, errors in source and file order."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("日期,客户名称,价税合计\n2026-05-03,甲公司,10\n2026-05-04,乙公司,合计\n", encoding="utf-8")
    (data / "b.csv").write_text("日期,客户名称,价税合计\n2026-05-05,甲公司,20\n", encoding="utf-8")
    (data / "c.xlsx").write_bytes(b"PK\x03\x04 not really a workbook")
    config = base_config()
    config["sources"] = {"sales": {"files": ["data/*.csv", "data/c.xlsx"]},
                         "receivables": {"files": ["data/none_*.xlsx"]}}
    config["period"] = {"as_of": "2026-06-30", "months": 12, "name": "2026H1"}
    config["grading"] = {"stages": [{"name": "金额", "type": "thresholds", "metric": "净销售额",
                                     "bands": [{"grade": "A", "min": 100}, {"grade": "B", "min": 15}],
                                     "else": "C"}]}
    copy_template(tmp_path)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    with pytest.raises(InputErrors) as alone:
        _grade(tmp_path, parallel=False)
    with pytest.raises(InputErrors) as together:
        _grade(tmp_path, parallel=True)
    assert 1 <= len(in_workers) <= 2  # three files: the largest read here
    assert str(together.value) == str(alone.value)
    assert [type(e) for e in together.value.errors] == [type(e) for e in alone.value.errors]

    config["sources"] = {"sales": {"files": ["data/*.csv"]}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    alone_ok = _grade(tmp_path, parallel=False)
    together_ok = _grade(tmp_path, parallel=True)
    _same(alone_ok, together_ok)
    notes = [w for w in together_ok.warnings if "没有客户编码列" in w]
    assert len(notes) == 1, together_ok.warnings


def test_small_runs_stay_in_line(demo: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    folder, _ = demo
    copy_template(folder)
    (folder / "config.yaml").write_text(yaml.safe_dump(base_config(), allow_unicode=True), encoding="utf-8")
    monkeypatch.setattr(read_pool, "ProcessPoolExecutor", CountingExecutor)
    SUBMITTED.clear()
    _grade(folder, parallel=True)  # the demo's inputs are far below PARALLEL_MIN_BYTES
    assert not SUBMITTED


def test_problem_log_pickles_as_its_parts() -> None:
    log = ProblemLog(keep_per_reason=2)
    log.append(Problem("a.csv", "a", 3, "金额", "x", "金额不是有效数字", "已跳过"))
    log.add_rows("b.csv", "b", np.arange(5, 10), "日期", np.array(list("vwxyz"), dtype=object), "日期无法识别",
                 "已跳过", str, np.arange(5.0))
    back = pickle.loads(pickle.dumps(log))
    assert isinstance(back, ProblemLog) and back.keep == 2
    assert list(back) == list(log) and len(back) == 6 and back.counts() == log.counts()
    merged = ProblemLog()
    merged.append(Problem("z.csv", "z", None, "", "", "提示在前", "提示"))
    merged.absorb(back)
    assert list(merged)[1:] == list(log) and len(merged) == 7


def _slow_job(name: str, source: Any, config: Any, path: Path) -> Any:
    import time

    time.sleep(60)


def _csv_pool(folder: Path, monkeypatch: pytest.MonkeyPatch, job: Any) -> read_pool.ReadPool:
    """A pool over the .csv files of `folder` as one sales source, in workers however small they are."""
    from grading.config_model import SourceConfig

    monkeypatch.setattr(read_pool, "PARALLEL_MIN_BYTES", 0)
    source = SourceConfig.model_validate({"files": ["*.csv"]})
    config: Any = SimpleNamespace(base_dir=folder)  # what the job is handed must pickle

    def paths_of(name: str, source: SourceConfig, config: Any, own: Any) -> tuple[list[Path], list[Path]]:
        return sorted(folder.glob("*.csv")), []

    return read_pool.ReadPool(config, [("sales", source)], job, paths_of, None, None, enabled=True)


def test_a_cancelled_run_stops_its_workers_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C (or any error) while files are being read: the workers end with the run, not a minute later."""
    import time

    for name in ("a.csv", "b.csv"):
        (tmp_path / name).write_text("x\n", encoding="utf-8")
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        with _csv_pool(tmp_path, monkeypatch, _slow_job) as pool:
            workers = list(pool._executor._processes.values())  # type: ignore[union-attr]
            assert len(workers) == 1
            time.sleep(1)  # the worker's file is being "read"
            assert all(not f.done() for f in pool._futures.values())
            raise KeyboardInterrupt
    pids = [w.pid for w in workers]
    while not all(_gone(pid) for pid in pids) and time.monotonic() - started < 20:
        time.sleep(0.1)
    assert all(_gone(pid) for pid in pids)  # (the pool's own thread may reap them first: not via is_alive)
    assert time.monotonic() - started < 20


def _gone(pid: int | None) -> bool:
    """The process has ended (no longer listed, or a zombie waiting to be reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


def _logged_job(name: str, source: Any, config: Any, path: Path) -> Any:
    """Sleeps as long as the file says; notes which process read it."""
    import os
    import time

    from grading.load import FileLoad, SourceData

    time.sleep(float(path.read_text(encoding="utf-8").split()[0]))
    with open(path.parent / "log.txt", "a", encoding="utf-8") as log:
        log.write(f"{path.name} {os.getpid()}\n")
    return FileLoad([], ProblemLog(), [], SourceData(name, pd.DataFrame({"file": [path.name]})))


def test_this_process_reads_the_largest_file_then_what_no_worker_started(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """a (largest) is read here; the worker takes b (slow); c and d, not started by then, are read here too
    (queued up front in the worker, they would wait for b). Results come back in the order asked for."""
    import os

    for name, seconds, size in (("a", 0.3, 4000), ("b", 3.0, 3000), ("c", 0.0, 2000), ("d", 0.0, 1000)):
        (tmp_path / f"{name}.csv").write_text(f"{seconds} " + "x" * size, encoding="utf-8")
    with _csv_pool(tmp_path, monkeypatch, _logged_job) as pool:
        got = [pool.result("sales", tmp_path / f"{n}.csv").data.frame["file"].tolist() for n in "dcba"]
    assert got == [["d.csv"], ["c.csv"], ["b.csv"], ["a.csv"]]
    readers = dict(line.split() for line in (tmp_path / "log.txt").read_text(encoding="utf-8").splitlines())
    here = str(os.getpid())
    assert {f for f, pid in readers.items() if pid == here} == {"a.csv", "c.csv", "d.csv"}
    assert readers["b.csv"] != here and len(readers) == 4


def test_ctrl_c_is_left_to_the_runs_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capfd: pytest.CaptureFixture[str]) -> None:
    """A terminal sends Ctrl-C to every process of the run: a worker waiting for its next file ignores it
    (it printed a KeyboardInterrupt traceback and ended); the run's process decides and ends the workers."""
    import os
    import signal
    import time

    for name, size in (("a", 4000), ("b", 3000)):
        (tmp_path / f"{name}.csv").write_text("0 " + "x" * size, encoding="utf-8")
    with _csv_pool(tmp_path, monkeypatch, _logged_job) as pool:
        assert pool.result("sales", tmp_path / "b.csv").data.frame["file"].tolist() == ["b.csv"]  # the worker's
        (worker,) = pool._executor._processes.values()  # type: ignore[union-attr]
        os.kill(worker.pid, signal.SIGINT)  # now waiting for a next file
        time.sleep(1)
        assert not _gone(worker.pid)
        pool.result("sales", tmp_path / "a.csv")
    assert "Traceback" not in capfd.readouterr().err


_RESULT_WRITER: Any = None  # the executor's result pipe, inherited by its worker (forked at the first submit)


def _send_part_of_a_result() -> None:
    """What a worker stopped while it sends a large result leaves: a message's header and a part of it."""
    import os
    import struct
    import time

    os.write(_RESULT_WRITER.fileno(), struct.pack("!i", 1 << 20) + b"cut short")
    time.sleep(60)


def test_a_worker_stopped_while_it_sends_a_result_leaves_nothing_waiting() -> None:
    """Ctrl-C while the worker sent a split sheet's part back: the executor's reading thread waited for the
    rest of the message, and the interpreter's exit joined it (the run said 已取消 and then hung)."""
    import multiprocessing
    import time

    global _RESULT_WRITER
    executor = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork"),
                                   initializer=read_pool._ignore_interrupts)
    _RESULT_WRITER = executor._result_queue._writer  # type: ignore[attr-defined]
    executor.submit(_send_part_of_a_result)
    time.sleep(1.5)  # the reading thread has the header and waits for the rest
    reading = executor._executor_manager_thread  # type: ignore[attr-defined]
    assert reading.is_alive()
    read_pool.stop_now(executor)
    reading.join(timeout=10)
    assert not reading.is_alive()


def test_a_part_taken_back_whose_parse_here_fails_is_dropped_quietly() -> None:
    """A split sheet's part taken back from the queue, then its parse here fails: the read's clean-up drops it
    again, which must not raise (it did: the temporary packages stayed, and a Ctrl-C was lost)."""
    import threading

    pool: Any = SimpleNamespace(_lock=threading.Lock(), _queue=[])
    part = read_pool._Part(pool, Path("second.xlsx"), "S", 7)
    pool._queue.append(part)

    def fails() -> Any:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        part.take(fails)
    part.drop()
    assert pool._queue == [] and part.future is None
