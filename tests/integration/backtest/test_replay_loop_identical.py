"""The compiled replay loop over the whole shared recording: the same state after every tick as the sinks.

A two-level skewed ladder 2 bps from the mid (probabilistic queue, 100 ms ticks; it fills a few hundred
times) on the whole shared Binance recording, three ways: the pure-Python path, the compiled books and sequencer
without the loop, and with it. After every delivery the sequencer, venue (its books' tops, its netted
trades, every resting order's queue position), tracker, health counters and reference must agree; at the
end every level of every book, the report and the fills. The loop must also have handled most events.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from mmkit import _speedups
from mmkit.app.backtest_cmd import load_events, write_outputs
from mmkit.backtest.replay import ReplayEvent
from tests.replay_loop_support import full_books, recording_states, run_maker

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def recording(shared_data: Path) -> list[ReplayEvent]:
    return load_events(shared_data / "binance_spot_btcusdt")


def _run(events: list[ReplayEvent], monkeypatch: pytest.MonkeyPatch, out: Path, *, pure: bool,
         loop: bool) -> dict[str, Any]:
    logger.disable("mmkit")
    try:
        with recording_states(monkeypatch, pure=pure, loop=loop) as seen:
            result = run_maker(events)
    finally:
        logger.enable("mmkit")
    paths = write_outputs(result, out)
    return {"states": seen["states"], "books": full_books(seen["replay"]), "loop": seen["replay"].compiled_loop,
            "files": {name: paths[name].read_bytes() for name in ("report.json", "fills.csv")},
            "report": json.dumps(result.report, sort_keys=True, default=str), "fills": len(result.engine.fills)}


def test_the_loop_matches_the_sinks_over_the_whole_recording(
    recording: list[ReplayEvent], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert _speedups.compiled_available(), _speedups.import_error()
    pure = _run(recording, monkeypatch, tmp_path / "pure", pure=True, loop=False)
    plain = _run(recording, monkeypatch, tmp_path / "plain", pure=False, loop=False)
    looped = _run(recording, monkeypatch, tmp_path / "loop", pure=False, loop=True)
    assert pure["fills"] > 20, "too few fills to exercise the queue model"
    for name, other in (("compiled without the loop", plain), ("compiled loop", looped)):
        assert len(other["states"]) == len(pure["states"])
        for tick, (want, got) in enumerate(zip(pure["states"], other["states"], strict=True)):
            assert got == want, f"{name}: state differs after delivery {tick}"
        assert other["books"] == pure["books"], name
        assert other["files"] == pure["files"], name
    loop = looped["loop"]
    assert loop is not None and loop.handled > 0.9 * len(recording), (loop.handled, loop.passed_by)
    assert loop.passed_by.get("diff lists our level", 0) > 0
