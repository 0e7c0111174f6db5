"""Data health of a replayed book: counts and the time without a valid book, on synthetic recordings."""

from __future__ import annotations

from pathlib import Path

import pytest
from loguru import logger

from mmkit.app.simulated import REFERENCE_SIZE, REFERENCE_TICK
from mmkit.backtest.binance import read_recording
from mmkit.backtest.health import BookHealth, unhealthy
from mmkit.backtest.replay import ReplayedReference
from mmkit.book.tracker import OrderBookTracker
from mmkit.model import NS_PER_S, BookDelta, BookSnapshot, Trade
from mmkit.testing.binance_recordings import synthetic_recording


@pytest.fixture(autouse=True)
def _quiet() -> None:
    logger.remove()


def _replay(paths: list[Path]) -> tuple[ReplayedReference, int, int]:
    events = [e for e in read_recording(paths, disk_cache=False) if isinstance(e, BookSnapshot | BookDelta | Trade)]
    first = events[0]
    tracker = OrderBookTracker(first.venue, first.symbol, REFERENCE_TICK, REFERENCE_SIZE, request_resync=lambda r: None)
    reference = ReplayedReference(tracker, 2 * NS_PER_S)
    for event in events:
        reference(event)
    return reference, events[0].ts_recv, events[-1].ts_recv


@pytest.mark.parametrize("market", ["spot", "usdm", "coinm"])
def test_a_clean_recording_is_valid_after_its_first_snapshot(tmp_path: Path, market: str) -> None:
    rec = synthetic_recording(market, seconds=60)  # type: ignore[arg-type]
    reference, start, end = _replay(rec.write(tmp_path))
    health = reference.health.summary(start, end)
    assert health["snapshots"] == 1 and health["gaps"] == 0 and health["crossed"] == 0
    assert health["diffs_received"] == rec.diffs
    assert health["diffs_applied"] + health["diffs_dropped"] == rec.diffs
    assert health["events_refused"] == health["diffs_dropped"] <= 4  # the diffs the snapshot covers
    # Invalid only until the snapshot (written 3 diffs = 0.3 s after the first diff, +40 ms).
    assert 0.2 * NS_PER_S < health["invalid_ns"] < 0.5 * NS_PER_S
    assert not unhealthy(health)


@pytest.mark.parametrize("market", ["spot", "usdm"])
def test_a_gap_is_counted_and_the_book_is_invalid_until_the_next_snapshot(tmp_path: Path, market: str) -> None:
    rec = synthetic_recording(market, seconds=30, gap_after_s=10, snapshot_again_after_s=20)  # type: ignore[arg-type]
    reference, start, end = _replay(rec.write(tmp_path))
    health = reference.health.summary(start, end)
    assert health["gaps"] == 1 and health["resyncs"] == 1 and health["snapshots"] == 2
    assert health["diffs_while_invalid"] > 90  # ~10 s of diffs waited for a snapshot
    assert health["events_refused"] > 90
    # ~10 s of 30 s without a book (the gap at 10 s + one diff, the resync snapshot at 20.3 s).
    assert 30 < health["invalid_pct"] < 37
    assert health["first_invalid_reason"] == "no snapshot yet"  # the warm-up, before the first snapshot
    assert health["first_gap_reason"].startswith("gap")
    assert health["first_gap_utc"].startswith("2024-08-08T23:54:30")  # 10 s after the start
    assert unhealthy(health) and not unhealthy(health, max_invalid_pct=50)


def test_a_recording_that_never_gets_a_snapshot_is_invalid_all_along(tmp_path: Path) -> None:
    rec = synthetic_recording("usdm", seconds=10)
    rec.lines = [line for index, line in enumerate(rec.lines) if index not in rec.snapshot_lines]
    reference, start, end = _replay(rec.write(tmp_path))
    health = reference.health.summary(start, end)
    assert health["snapshots"] == 0 and health["never_valid"] and health["invalid_pct"] == 100.0
    assert health["diffs_applied"] == 0 and health["events_refused"] == rec.diffs


def test_health_counts_only_the_span_asked_for() -> None:
    tracker = OrderBookTracker("v", "S", REFERENCE_TICK, REFERENCE_SIZE, request_resync=lambda r: None)
    health = BookHealth(tracker)
    health.observe(0, False)
    health.observe(100, True)
    health.observe(500, False)
    health.observe(700, True)
    assert health.summary(0, 1000)["invalid_ns"] == 300
    assert health.summary(50, 600)["invalid_ns"] == 150
    assert health.summary(200, 400)["invalid_ns"] == 0
