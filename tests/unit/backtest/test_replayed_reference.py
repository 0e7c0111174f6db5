"""ReplayedReference: the recorded mid as a fair value, fresh or stale by recorded time, reused while unchanged."""

from __future__ import annotations

from decimal import Decimal

from mmkit.backtest.replay import ReplayedReference
from mmkit.book.tracker import OrderBookTracker
from mmkit.model import NS_PER_S, BookDelta, BookSnapshot

D = Decimal
STALE_NS = 2 * NS_PER_S


def _reference() -> ReplayedReference:
    tracker = OrderBookTracker("binance", "BTCUSDT", D("0.01"), D("0.00001"), request_resync=lambda reason: None)
    reference = ReplayedReference(tracker, STALE_NS)
    reference(BookSnapshot("binance", "BTCUSDT", 10, ((D("100.00"), D("1")),), ((D("100.10"), D("1")),), 0, 0))
    return reference


def _move_bid(reference: ReplayedReference, seq: int, price: str, ts: int) -> None:
    reference(BookDelta("binance", "BTCUSDT", seq, seq, ((D(price), D("2")),), (), ts, ts))


def test_fair_is_the_recorded_mid_and_turns_stale_by_recorded_time() -> None:
    reference = _reference()
    fair = reference.fair(NS_PER_S)
    assert (fair.price, fair.confidence, fair.ts, fair.sources) == (D("100.05"), 1.0, 0, 1)
    stale = reference.fair(STALE_NS + 1)
    assert (stale.price, stale.confidence, stale.ts) == (D("100.05"), 0.0, 0)


def test_the_same_value_is_handed_back_while_nothing_changed_and_a_new_one_after() -> None:
    reference = _reference()
    first = reference.fair(NS_PER_S)
    assert reference.fair(NS_PER_S + 100) is first  # same mid, same update time, still fresh
    assert reference.fair(STALE_NS + 1).confidence == 0.0  # staleness is re-judged on every call
    _move_bid(reference, 11, "100.02", ts=3 * NS_PER_S)
    moved = reference.fair(3 * NS_PER_S)
    assert (moved.price, moved.confidence, moved.ts) == (D("100.06"), 1.0, 3 * NS_PER_S)
    # A diff that leaves the top alone still refreshes the update time (so freshness), and the value follows it.
    reference(BookDelta("binance", "BTCUSDT", 12, 12, ((D("99.00"), D("1")),), (), 4 * NS_PER_S, 4 * NS_PER_S))
    later = reference.fair(4 * NS_PER_S)
    assert later is not moved and (later.price, later.ts) == (D("100.06"), 4 * NS_PER_S)


def test_no_valid_book_means_no_price() -> None:
    tracker = OrderBookTracker("binance", "BTCUSDT", D("0.01"), D("0.00001"), request_resync=lambda reason: None)
    fair = ReplayedReference(tracker, STALE_NS).fair(0)
    assert fair.price is None and fair.confidence == 0.0


def test_staleness_follows_the_bound_replay_clock_in_either_mode() -> None:
    """fair() reads a bound replay's time mapping directly in BACKTEST; in REALTIME it must still map wall time.

    A REALTIME replay at speed 10 started at wall 0: wall 0.5 s is recorded 5 s, past the staleness of the
    book updated at recorded 0; the same wall time in BACKTEST is recorded 0.5 s, fresh.
    """
    from mmkit.backtest.replay import RecordingReplay
    from mmkit.clock import Clock, ClockMode

    for mode, confidence, ts in ((ClockMode.REALTIME, 0.0, NS_PER_S // 2 - 5 * NS_PER_S), (ClockMode.BACKTEST, 1.0, 0)):
        reference = _reference()
        replay = RecordingReplay([], speed=10.0)
        reference.bind(replay)
        clock = Clock(mode, start_ns=0, time_source=lambda: 0)
        replay.start(clock, 0)
        fair = reference.fair(NS_PER_S // 2)
        # ts: when the source last moved (recorded 0), on the clock's time line (now minus the recorded age)
        assert (fair.confidence, fair.ts) == (confidence, ts), mode
