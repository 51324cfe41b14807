"""grade-etl's run allocates Arrow's memory from jemalloc (grading.process_memory: mimalloc handed freed
pages back at once and the run faulted them in again, 0.3 s of a 1M-line run), runs Python's collector
less often and makes numpy's arrays without transparent huge pages (their faults cost more than they save
here); the add-in's process and anything after the run keep the allocator, the collector and the pages they had."""

from __future__ import annotations

import gc
import shutil
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from grading.metrics import compute_metrics
from grading.pipeline import run_to_file
from grading.process_memory import YOUNG_THRESHOLD, _huge_page_setting, fewer_collections, jemalloc_pool, small_pages

from .conftest import FIXED_TIME


def _has_jemalloc() -> bool:
    try:
        pa.jemalloc_memory_pool()
    except NotImplementedError:
        return False
    return True


needs_jemalloc = pytest.mark.skipif(sys.platform != "linux" or not _has_jemalloc(),
                                    reason="jemalloc: pyarrow's Linux wheels")


@needs_jemalloc
def test_grade_etl_run_allocates_from_jemalloc_and_gives_the_pool_back(tmp_path: Path, demo: Any,
                                                                       write_config: Any, monkeypatch: Any) -> None:
    shutil.copytree(demo[0] / "demo_data", tmp_path / "demo_data")
    config = write_config(tmp_path)
    seen: list[str] = []
    collector: list[tuple[int, int]] = []

    huge: list[bool] = []
    setting = _huge_page_setting()
    assert setting is not None

    def metrics(*args: Any, **kwargs: Any) -> Any:
        seen.append(pa.default_memory_pool().backend_name)
        collector.append((gc.get_threshold()[0], gc.get_freeze_count()))
        was = setting(False)
        setting(was)  # put back
        huge.append(was)
        return compute_metrics(*args, **kwargs)

    monkeypatch.setattr("grading.pipeline.compute_metrics", metrics)
    before = pa.default_memory_pool().backend_name
    threshold = gc.get_threshold()
    pages = setting(True)
    try:
        run_to_file(config, tmp_path / "out.xlsx", generated_at=FIXED_TIME)
        assert huge == [False] and setting(pages) is True  # ordinary pages during the run, as before after it
    finally:
        setting(pages)
    assert seen == ["jemalloc"]
    assert pa.default_memory_pool().backend_name == before
    assert collector[0][0] == YOUNG_THRESHOLD and collector[0][1] > 1000  # the imports' objects set aside
    assert gc.get_threshold() == threshold and gc.get_freeze_count() == 0


@needs_jemalloc
def test_the_pool_is_given_back_when_the_run_fails() -> None:
    before = pa.default_memory_pool().backend_name
    with pytest.raises(KeyError):
        with jemalloc_pool():
            kept = pa.array(["甲", "乙"] * 1000)  # a buffer made meanwhile stays valid afterwards
            raise KeyError("x")
    assert pa.default_memory_pool().backend_name == before
    assert kept.to_pylist()[:2] == ["甲", "乙"]


def test_elsewhere_the_default_pool_stays(monkeypatch: Any) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    before = pa.default_memory_pool().backend_name
    with jemalloc_pool():
        assert pa.default_memory_pool().backend_name == before


def test_the_collector_is_given_back_when_the_run_fails() -> None:
    threshold = gc.get_threshold()
    with pytest.raises(KeyError):
        with fewer_collections():
            assert gc.get_threshold()[0] == YOUNG_THRESHOLD
            raise KeyError("x")
    assert gc.get_threshold() == threshold and gc.get_freeze_count() == 0


def test_a_callers_frozen_objects_and_switched_off_collection_are_left_alone() -> None:
    threshold = gc.get_threshold()
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with fewer_collections():
            assert gc.get_freeze_count() == frozen
        assert gc.get_freeze_count() == frozen  # not thawed
        gc.set_threshold(0)
        with fewer_collections():
            assert gc.get_threshold()[0] == 0
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


@pytest.mark.skipif(sys.platform != "linux", reason="numpy asks for huge pages on Linux only")
def test_huge_pages_are_given_back_when_the_run_fails() -> None:
    setting = _huge_page_setting()
    assert setting is not None  # numpy >= 1.20 has the switch
    before = setting(True)
    try:
        with pytest.raises(KeyError):
            with small_pages():
                assert setting(False) is False
                raise KeyError("x")
        assert setting(True) is True  # as it was before
    finally:
        setting(before)


def test_elsewhere_numpys_page_setting_stays(monkeypatch: Any) -> None:
    setting = _huge_page_setting()
    assert setting is not None
    before = setting(True)
    try:
        monkeypatch.setattr(sys, "platform", "win32")
        with small_pages():
            assert setting(True) is True  # not switched off
    finally:
        setting(before)
