"""OrderBookTracker: buffering, covered-diff dropping, bridge rule, gap/crossed/checksum -> resync."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import pytest

from mmkit.book import ChecksumFn, OrderBook, OrderBookTracker
from mmkit.clock import TimeIterator
from mmkit.model import BookDelta, BookSnapshot, Side

D = Decimal
Pairs = Sequence[tuple[str, str]]


def snap(seq: int, bid: str = "100", ask: str = "101", checksum: int | None = None) -> BookSnapshot:
    return BookSnapshot(
        venue="v",
        symbol="S",
        seq=seq,
        bids=((D(bid), D("1")),),
        asks=((D(ask), D("1")),),
        ts_event=0,
        ts_recv=0,
        checksum=checksum,
    )


def delta(first: int, seq: int, bids: Pairs = (), asks: Pairs = (), checksum: int | None = None) -> BookDelta:
    return BookDelta(
        venue="v",
        symbol="S",
        first_seq=first,
        seq=seq,
        bids=tuple((D(p), D(q)) for p, q in bids),
        asks=tuple((D(p), D(q)) for p, q in asks),
        ts_event=seq,
        ts_recv=seq,
        checksum=checksum,
    )


class Resyncs:
    def __init__(self) -> None:
        self.reasons: list[str] = []

    def __call__(self, reason: str) -> None:
        self.reasons.append(reason)


@pytest.fixture
def resyncs() -> Resyncs:
    return Resyncs()


def make(resyncs: Resyncs, checksum: ChecksumFn | None = None) -> OrderBookTracker:
    return OrderBookTracker("v", "S", D("0.01"), D("0.01"), request_resync=resyncs, checksum=checksum)


def test_invalid_until_first_snapshot_and_buffers_deltas(resyncs: Resyncs) -> None:
    tracker = make(resyncs)
    tracker.on_delta(delta(5, 6, bids=[("100.5", "1")]))
    tracker.on_delta(delta(7, 8))
    assert not tracker.is_valid
    assert tracker.buffered == 2
    assert tracker.book.best_bid() is None
    assert tracker.deltas_applied == 0
    assert resyncs.reasons == []


def test_snapshot_drops_covered_and_applies_bridging_buffered_diffs(resyncs: Resyncs) -> None:
    tracker = make(resyncs)
    tracker.on_delta(delta(1, 4, bids=[("99", "9")]))  # covered by the snapshot: dropped
    tracker.on_delta(delta(5, 7, bids=[("100.5", "2")]))  # covered too (seq == snapshot seq)
    tracker.on_delta(delta(6, 9, bids=[("100.2", "3")]))  # bridges 7 -> 8
    tracker.on_delta(delta(10, 10, asks=[("101", "0"), ("102", "5")]))
    tracker.on_snapshot(snap(7))
    assert tracker.is_valid
    assert tracker.buffered == 0
    assert tracker.deltas_dropped == 2
    assert tracker.deltas_applied == 2
    assert tracker.last_seq == 10
    assert tracker.book.seq == 10
    assert tracker.book.best_bid() == (D("100.2"), D("3"))
    assert tracker.book.best_ask() == (D("102"), D("5"))
    assert tracker.book.depth(Side.BUY, 5) == [(D("100.2"), D("3")), (D("100"), D("1"))]
    assert resyncs.reasons == []


def test_live_diffs_must_follow_on(resyncs: Resyncs) -> None:
    tracker = make(resyncs)
    tracker.on_snapshot(snap(10))
    tracker.on_delta(delta(11, 11, bids=[("100.1", "1")]))
    tracker.on_delta(delta(12, 15, bids=[("100.2", "1")]))
    assert tracker.is_valid
    assert tracker.last_seq == 15
    assert tracker.book.best_bid() == (D("100.2"), D("1"))
    # A repeat of an old diff is stale, not a gap.
    tracker.on_delta(delta(12, 15, bids=[("50", "1")]))
    assert tracker.is_valid
    assert tracker.deltas_dropped == 1
    assert tracker.book.best_bid() == (D("100.2"), D("1"))


def test_first_diff_that_does_not_bridge_is_a_gap(resyncs: Resyncs) -> None:
    tracker = make(resyncs)
    tracker.on_delta(delta(12, 14))  # snapshot at 10 needs a diff covering 11
    tracker.on_snapshot(snap(10))
    assert not tracker.is_valid
    assert tracker.gaps == 1
    assert tracker.resyncs == 1
    assert len(resyncs.reasons) == 1 and "gap" in resyncs.reasons[0]
    assert tracker.buffered == 1  # kept for a newer snapshot


def test_gap_requests_resync_and_recovers_after_new_snapshot(resyncs: Resyncs) -> None:
    tracker = make(resyncs)
    tracker.on_snapshot(snap(10))
    tracker.on_delta(delta(11, 12, bids=[("100.1", "1")]))
    tracker.on_delta(delta(14, 15, bids=[("100.3", "1")]))  # 13 is missing
    assert not tracker.is_valid
    assert (tracker.gaps, tracker.resyncs, tracker.crossed, tracker.checksum_failures) == (1, 1, 0, 0)
    assert resyncs.reasons == [tracker.last_invalid_reason]
    assert "expected first_seq 13" in resyncs.reasons[0]
    assert tracker.book.best_bid() is None  # an invalid book is never readable as if it were right
    # More diffs while waiting: buffered, no second resync request.
    tracker.on_delta(delta(16, 17, asks=[("100.9", "2")]))
    assert tracker.buffered == 2
    assert tracker.resyncs == 1
    # The fresh snapshot covers 15; the buffered 16..17 bridges it.
    tracker.on_snapshot(snap(15, bid="100.3", ask="101"))
    assert tracker.is_valid
    assert tracker.last_seq == 17
    assert tracker.book.best_ask() == (D("100.9"), D("2"))
    assert tracker.book.best_bid() == (D("100.3"), D("1"))
    assert tracker.snapshots == 2
    assert tracker.gaps == 1


def test_crossed_book_after_delta_requests_resync(resyncs: Resyncs) -> None:
    tracker = make(resyncs)
    tracker.on_snapshot(snap(10))
    tracker.on_delta(delta(11, 11, bids=[("101.5", "1")]))
    assert not tracker.is_valid
    assert tracker.crossed == 1
    assert tracker.resyncs == 1
    assert tracker.gaps == 0
    assert "crossed" in resyncs.reasons[0]
    tracker.on_delta(delta(12, 12))
    assert tracker.buffered == 1
    tracker.on_snapshot(snap(12))
    assert tracker.is_valid
    assert tracker.deltas_dropped == 1  # the buffered 12 is covered by the new snapshot


def test_crossed_snapshot_is_invalid(resyncs: Resyncs) -> None:
    tracker = make(resyncs)
    tracker.on_snapshot(snap(10, bid="101", ask="101"))
    assert not tracker.is_valid
    assert tracker.crossed == 1
    assert len(resyncs.reasons) == 1


def top_checksum(book: OrderBook) -> int:
    """A stand-in venue checksum: best bid and ask in ticks."""
    return (book.best_bid_int() or 0) * 1_000_000 + (book.best_ask_int() or 0)


def test_checksum_hook_match_keeps_book_valid(resyncs: Resyncs) -> None:
    tracker = make(resyncs, checksum=top_checksum)
    tracker.on_snapshot(snap(10, checksum=10000 * 1_000_000 + 10100))
    tracker.on_delta(delta(11, 11, bids=[("100.5", "1")], checksum=10050 * 1_000_000 + 10100))
    tracker.on_delta(delta(12, 12, asks=[("100.9", "1")]))  # no checksum sent: nothing to compare
    assert tracker.is_valid
    assert tracker.checksum_failures == 0


def test_checksum_mismatch_requests_resync(resyncs: Resyncs) -> None:
    tracker = make(resyncs, checksum=top_checksum)
    tracker.on_snapshot(snap(10))
    tracker.on_delta(delta(11, 11, bids=[("100.5", "1")], checksum=12345))
    assert not tracker.is_valid
    assert tracker.checksum_failures == 1
    assert tracker.resyncs == 1
    assert "checksum" in resyncs.reasons[0]


def test_checksum_on_snapshot_mismatch_is_invalid(resyncs: Resyncs) -> None:
    tracker = make(resyncs, checksum=top_checksum)
    tracker.on_delta(delta(11, 11))
    tracker.on_snapshot(snap(10, checksum=1))
    assert not tracker.is_valid
    assert tracker.checksum_failures == 1
    assert tracker.deltas_applied == 0


def test_without_hook_checksums_are_ignored(resyncs: Resyncs) -> None:
    tracker = make(resyncs)
    tracker.on_snapshot(snap(10))
    tracker.on_delta(delta(11, 11, checksum=12345))
    assert tracker.is_valid


def test_wrong_instrument_is_refused(resyncs: Resyncs) -> None:
    tracker = make(resyncs)
    other = BookDelta("v", "OTHER", 1, 1, (), (), 0, 0)
    with pytest.raises(ValueError, match="OTHER"):
        tracker.on_delta(other)


def test_snapshot_from_inside_the_resync_callback_is_refused() -> None:
    holder: list[OrderBookTracker] = []

    def eager(reason: str) -> None:
        holder[0].on_snapshot(snap(20))

    tracker = OrderBookTracker("v", "S", D("0.01"), D("0.01"), request_resync=eager)
    holder.append(tracker)
    tracker.on_snapshot(snap(10))
    with pytest.raises(RuntimeError, match="schedule"):
        tracker.on_delta(delta(15, 15))


def test_buffer_is_bounded(resyncs: Resyncs) -> None:
    tracker = OrderBookTracker("v", "S", D("0.01"), D("0.01"), request_resync=resyncs, max_buffer=3)
    for seq in range(1, 10):
        tracker.on_delta(delta(seq, seq))
    assert tracker.buffered == 3
    tracker.on_snapshot(snap(6))  # 7..9 kept, they follow on
    assert tracker.is_valid
    assert tracker.last_seq == 9


def test_is_a_time_iterator(resyncs: Resyncs) -> None:
    assert isinstance(make(resyncs), TimeIterator)


def levels_snap(seq: int, bids: Pairs, asks: Pairs = (("101", "1"),)) -> BookSnapshot:
    return BookSnapshot(venue="v", symbol="S", seq=seq, bids=tuple((D(p), D(q)) for p, q in bids),
                        asks=tuple((D(p), D(q)) for p, q in asks), ts_event=0, ts_recv=0)


#: Levels a hostile or broken feed may send: NaN and infinite sizes and prices, a negative size, a price at
#: zero, a price off the 0.01 grid (the book refuses each whole).
MALFORMED: list[Pairs] = [
    (("100.5", "NaN"), ("100", "1")), (("100.5", "-1"),), (("NaN", "1"),), (("Infinity", "1"),),
    (("100.5", "Infinity"),), (("0", "1"),), (("100.005", "1"),),
]


@pytest.mark.parametrize("bids", MALFORMED)
def test_a_malformed_snapshot_invalidates_the_book_and_asks_for_a_resync_never_raises(
    resyncs: Resyncs, bids: Pairs
) -> None:
    """Before: the book's ValueError escaped to the feed that delivered it, and the tracker still called the
    book it was told to replace valid, so the quotes went on off a book the venue had said was over."""
    tracker = make(resyncs)
    tracker.on_snapshot(levels_snap(1, (("100", "1"), ("99", "2"))))
    assert tracker.is_valid
    tracker.on_snapshot(levels_snap(5, bids))
    assert not tracker.is_valid and tracker.book.best_bid() is None
    assert tracker.malformed == 1
    assert len(resyncs.reasons) == 1 and resyncs.reasons[0].startswith("malformed snapshot seq=5")
    tracker.on_snapshot(levels_snap(6, (("100", "3"),)))  # the resync's snapshot: valid again
    assert tracker.is_valid and tracker.book.best_bid() == (D("100"), D("3"))


@pytest.mark.parametrize("bids", MALFORMED)
def test_a_malformed_diff_is_dropped_and_the_book_resynced_never_raises(resyncs: Resyncs, bids: Pairs) -> None:
    tracker = make(resyncs)
    tracker.on_snapshot(snap(10))
    tracker.on_delta(delta(11, 11, bids=bids))
    assert not tracker.is_valid and tracker.book.best_bid() is None
    assert tracker.malformed == 1 and tracker.deltas_applied == 0
    assert len(resyncs.reasons) == 1 and resyncs.reasons[0].startswith("malformed diff seq=11")
    tracker.on_delta(delta(12, 12, bids=[("99", "1")]))  # later diffs wait for the resync's snapshot
    assert tracker.buffered == 1
    tracker.on_snapshot(snap(11))
    assert tracker.is_valid and tracker.book.best_bid() == (D("100"), D("1")) and tracker.deltas_applied == 1
