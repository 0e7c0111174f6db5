"""BookSequencer: the recorded stream a simulated venue applies must be consistent."""

from __future__ import annotations

from decimal import Decimal as D

from mmkit.backtest.sequencing import BookSequencer, SequencedEvent
from mmkit.model import BookDelta, BookSnapshot, Side, Trade


def delta(first: int, last: int, ts: int) -> BookDelta:
    return BookDelta("v", "S", first, last, bids=((D(1), D(1)),), asks=(), ts_event=ts, ts_recv=ts)


def snapshot(seq: int, ts: int) -> BookSnapshot:
    return BookSnapshot("v", "S", seq, bids=((D(1), D(2)),), asks=((D(2), D(2)),), ts_event=ts, ts_recv=ts)


def collect() -> tuple[BookSequencer, list[SequencedEvent]]:
    out: list[SequencedEvent] = []
    return BookSequencer(out.append), out


def test_diffs_before_the_snapshot_are_buffered_and_the_covered_ones_dropped() -> None:
    seq, out = collect()
    for event in (delta(1, 5, 10), delta(6, 9, 20), delta(10, 12, 30), snapshot(8, 40), delta(13, 14, 50)):
        seq(event)
    kinds = [(type(e).__name__, getattr(e, "seq", None)) for e in out]
    assert kinds == [("BookSnapshot", 8), ("BookDelta", 9), ("BookDelta", 12), ("BookDelta", 14)]
    assert seq.dropped == 1
    # re-stamped so the stream stays in receive-time order
    assert [e.ts_recv for e in out] == [40, 40, 40, 50]


def test_a_gap_stops_the_book_until_the_next_snapshot_and_trades_pass() -> None:
    seq, out = collect()
    seq(snapshot(10, 1))
    seq(delta(11, 12, 2))
    seq(delta(15, 16, 3))  # gap: 13..14 missing
    assert seq.gaps == 1 and not seq.synced
    trade = Trade("v", "S", "t1", D(1), D(1), Side.BUY, 4, 4)
    seq(trade)
    seq(delta(17, 18, 5))
    assert out[-1] is trade
    seq(snapshot(16, 6))  # 17..18 buffered since the gap follows on from it
    assert [getattr(e, "seq", None) for e in out[-2:]] == [16, 18]
    assert seq.synced


def test_stale_diff_after_sync_is_dropped() -> None:
    seq, out = collect()
    seq(snapshot(10, 1))
    seq(delta(5, 9, 2))
    assert len(out) == 1 and seq.dropped == 1 and seq.gaps == 0
