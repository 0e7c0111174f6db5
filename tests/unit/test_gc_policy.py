"""The long-run GC policy freezes what is alive, raises the young threshold, and undoes both on exit."""

from __future__ import annotations

import gc

import pytest

from mmkit.gc_policy import GC_GEN0_THRESHOLD, long_run_gc


def test_freezes_survivors_and_restores_everything_on_exit() -> None:
    before = gc.get_threshold()
    alive = [object() for _ in range(10)]  # noqa: F841 -- kept alive so the freeze has something to hold
    with long_run_gc():
        assert gc.get_threshold() == (GC_GEN0_THRESHOLD, *before[1:])
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_restores_after_an_exception() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), long_run_gc(gen0_threshold=1234):
        assert gc.get_threshold()[0] == 1234
        raise RuntimeError("boom")
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_collections_counts_passes_per_generation() -> None:
    from mmkit.gc_policy import collections

    before = collections()
    assert len(before) == 3
    gc.collect(2)
    gc.collect(0)
    after = collections()
    assert after[2] - before[2] >= 1 and after[0] - before[0] >= 1
