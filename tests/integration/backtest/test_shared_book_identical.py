"""The whole shared recording with the venue's and the tracker's book shared (the setup's default) and
kept apart (``share_book=False``): the same state after every tick, the same books level for level, the
same report and fills. Through the compiled loop, where sharing saves a diff application per recorded diff.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

import mmkit.app.backtest_setups as setups_module
from mmkit import _speedups
from mmkit.app.backtest_cmd import load_events, write_outputs
from mmkit.backtest.replay import ReplayEvent
from mmkit.backtest.shared_book import SharedBook
from tests.replay_loop_support import full_books, recording_states, run_maker

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def recording(shared_data: Path) -> list[ReplayEvent]:
    return load_events(shared_data / "binance_spot_btcusdt")


def _run(events: list[ReplayEvent], monkeypatch: pytest.MonkeyPatch, out: Path, *, share: bool) -> dict[str, Any]:
    logger.disable("mmkit")
    try:
        with recording_states(monkeypatch, pure=False, loop=True) as seen, monkeypatch.context() as patch:
            if not share:
                patch.setattr(setups_module, "build_replay_venue_setup",
                              functools.partial(setups_module.build_replay_venue_setup, share_book=False))
            result = run_maker(events)
    finally:
        logger.enable("mmkit")
    paths = write_outputs(result, out)
    replay = seen["replay"]
    return {"states": seen["states"], "books": full_books(replay), "sinks": list(replay._sinks),
            "loop": replay.compiled_loop,
            "files": {name: paths[name].read_bytes() for name in ("report.json", "fills.csv")}}


def test_one_shared_book_matches_two_books_over_the_whole_recording(
    recording: list[ReplayEvent], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert _speedups.compiled_available(), _speedups.import_error()
    apart = _run(recording, monkeypatch, tmp_path / "apart", share=False)
    shared = _run(recording, monkeypatch, tmp_path / "shared", share=True)
    assert len(apart["sinks"]) == 2
    (share,) = shared["sinks"]
    assert type(share) is SharedBook and share.shared  # shared at the end (one snapshot: forked, then joined)
    assert share.joins >= 2 and share.forks >= 1
    assert len(shared["states"]) == len(apart["states"])
    for tick, (want, got) in enumerate(zip(apart["states"], shared["states"], strict=True)):
        assert got == want, f"state differs after delivery {tick}"
    assert shared["books"] == apart["books"]
    assert shared["files"] == apart["files"]
    assert shared["loop"] is not None and shared["loop"].handled > 0.9 * len(recording)
