"""Data health of a replayed book: counts and the time without a valid book, on synthetic recordings."""

from __future__ import annotations

from pathlib import Path

import pytest
from loguru import logger

from mmkit.app.simulated import REFERENCE_SIZE, REFERENCE_TICK
from mmkit.backtest.binance import read_recording
from mmkit.backtest.health import BookHealth, outside_recording, unhealthy
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


def _health(*changes: tuple[int, bool]) -> BookHealth:
    health = BookHealth(OrderBookTracker("v", "S", REFERENCE_TICK, REFERENCE_SIZE, request_resync=lambda r: None))
    for ts, valid in changes:
        health.observe(ts, valid)
    return health


def test_a_window_wider_than_the_recording_counts_what_it_does_not_cover() -> None:
    """Book events from 1,000 to 2,000 (valid from 1,100); the window asks 0 .. 10,000; staleness 300."""
    health = _health((1_000, False), (1_100, True))
    outside = outside_recording(1_000, 2_000, 0, 10_000, staleness_ns=300)
    assert [(s.start_ns, s.end_ns) for s in outside] == [(0, 1_000), (2_300, 10_000)]
    assert outside[0].reason.startswith("before the recording starts: its first book event is at 1970-01-01T")
    assert outside[1].reason.startswith("after the recording ends: its last book event is at")
    summary = health.summary(0, 10_000, outside)
    # 1,000 before it + 100 of warm-up + 7,700 after the last event went stale.
    assert summary["invalid_ns"] == 1_000 + 100 + 7_700
    assert summary["first_invalid_reason"].startswith("before the recording starts")
    assert summary["first_gap_reason"].startswith("after the recording ends")  # the head is no lost book
    assert unhealthy(summary) and not summary["never_valid"]
    assert health.summary(0, 10_000)["invalid_ns"] == 100, "without them only the warm-up counted (the bug)"


def test_a_tail_within_the_staleness_is_a_cut_window_not_an_ended_recording() -> None:
    assert outside_recording(1_000, 2_000, 1_000, 2_300, staleness_ns=300) == []
    assert outside_recording(1_000, 2_000, 1_000, 2_301, staleness_ns=300)[0].end_ns == 2_301
    assert outside_recording(None, None, 0, 10_000, staleness_ns=300) == []  # no book: summary counts it all


def test_an_uncovered_stretch_overlapping_an_invalid_book_counts_once() -> None:
    health = _health((1_000, True), (1_500, False))  # invalid from 1,500 to the end
    outside = outside_recording(1_000, 2_000, 1_000, 5_000, staleness_ns=300)  # uncovered from 2,300
    summary = health.summary(1_000, 5_000, outside)
    assert summary["invalid_ns"] == 3_500  # 1,500 .. 5,000 once, not 3,500 + 2,700
    assert summary["first_gap_reason"] == "invalid"


def test_a_book_never_valid_in_a_wider_window_is_never_valid() -> None:
    health = _health((1_000, False))
    summary = health.summary(0, 3_000, outside_recording(1_000, 1_500, 0, 3_000, staleness_ns=300))
    assert summary["invalid_ns"] == 3_000 and summary["never_valid"] and summary["invalid_pct"] == 100.0


def test_a_crossed_snapshot_says_so_instead_of_no_snapshot_yet(tmp_path: Path) -> None:
    """Before (2026-12-08): the book stayed invalid after a crossed snapshot, and the reason read "no snapshot yet"."""
    rec = synthetic_recording("spot", seconds=10)
    (at,) = rec.snapshot_lines
    rec.lines[at] = rec.lines[at].replace(b'"bids":[["', b'"bids":[["999', 1)  # a bid far above every ask
    reference, start, end = _replay(rec.write(tmp_path))
    health = reference.health.summary(start, end)
    assert health["snapshots"] == 1 and health["crossed"] == 1 and health["never_valid"]
    assert health["first_invalid_reason"].startswith("the snapshot at 2024-08-08T")
    assert "gave no valid book: crossed snapshot" in health["first_invalid_reason"]
