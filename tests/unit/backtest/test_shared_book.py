"""SharedBook: the replay venue's and the reference tracker's book as one object, against two books.

Every run here is run twice, with the books shared (the setup's default) and kept apart
(``share_book=False``), and must agree after every delivery: every level of the venue's book and of the
tracker's book, their ``seq`` (and the tracker's ``ts_event``), everything the compiled loop touches
(tests/replay_loop_support.state), what a controller that reads ``ctx.book`` saw on every tick, the
report and the fills. The streams are built to make the two books part ways: diffs before the first
snapshot with a gap or an overlap among them (the sequencer and the tracker replay their buffers
differently), gaps, overlaps the sequencer takes and the tracker refuses, diffs out of order, stale
repeats, snapshots mid-stream (older than the book, ahead of it, crossed), diffs that cross the book
(the tracker invalidates after applying one), diffs without pre-scaled levels. Both with the compiled loop
and on the pure path. Two tests break the SharedBook on purpose (never fork; join without comparing the
levels) and check that the comparison sees it.
"""

from __future__ import annotations

import functools
import json
import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal as D
from typing import Any

import attrs
import pytest
from loguru import logger

import mmkit.app.backtest_setups as setups_module
from mmkit import _speedups
from mmkit.app.backtest_cmd import run_backtest
from mmkit.backtest.replay import RecordingReplay, ReplayedReference, ReplayEvent
from mmkit.backtest.shared_book import SharedBook
from mmkit.book.book import OrderBook
from mmkit.book.tracker import OrderBookTracker
from mmkit.model import NS_PER_S, BookDelta, BookSnapshot, ScaledLevels, Side, TargetQuote, Trade
from mmkit.strategy import StrategyContext
from strategies.skewed_ladder import SkewedLadderConfig, SkewedLadderController
from tests.replay_loop_support import LOT, RISK, TICK, setup_sinks, state, walk_levels

SYMBOL = "BTCUSDT"


@pytest.fixture(autouse=True)
def quiet() -> Iterator[None]:
    logger.disable("mmkit")
    yield
    logger.enable("mmkit")


class BookReadingLadder(SkewedLadderController):
    """The skewed ladder, asked every tick, recording what ``ctx.book`` shows; now and then it also bids at
    the book's best ask (an order the venue checks against its own book)."""

    reads = frozenset({"book", "time"})

    def __init__(self) -> None:
        super().__init__(SkewedLadderConfig(base_spread_bps=D(4), levels=2, base_size=D("0.01")))
        self.seen: list[Any] = []

    def on_tick(self, ctx: StrategyContext) -> Sequence[TargetQuote]:
        book = ctx.book
        if book is None:
            self.seen.append(None)
            return super().on_tick(ctx)
        ask = book.best_ask()
        self.seen.append((book.best_bid(), ask, tuple(book.depth(Side.BUY, 5)), tuple(book.depth(Side.SELL, 5)),
                          book.mid(), book.vwap(Side.SELL, D("0.5"))))
        quotes = list(super().on_tick(ctx))
        if ask is not None and len(self.seen) % 13 == 0:
            quotes.append(TargetQuote(Side.BUY, 2, ask[0], D("0.001")))
        return quotes


def adversarial_stream(seed: int, count: int = 2500) -> list[ReplayEvent]:
    """A BTCUSDT-like recorded stream (random-walk book near 60,000, prints at and through the touch) full
    of the events after which the venue's and the tracker's book differ (see the module docstring)."""
    rng = random.Random(seed)
    mid = 6_000_000  # ticks
    seq, ts = 1_000, 1_700_000_000_000_000_000
    book: dict[int, dict[int, int]] = {-1: {}, 1: {}}
    events: list[ReplayEvent] = []

    def levels(side: int, n: int) -> list[tuple[int, int]]:
        return walk_levels(rng, book, mid, side, n, far_share=0.4)

    def delta(first: int, last: int, bids: list[tuple[int, int]], asks: list[tuple[int, int]], recv: int,
              scaled: bool = True) -> BookDelta:
        return BookDelta("binance", SYMBOL, first, last, tuple((TICK * p, LOT * q) for p, q in bids),
                         tuple((TICK * p, LOT * q) for p, q in asks), ts_event=recv - rng.randrange(0, 10**6),
                         ts_recv=recv,
                         scaled=ScaledLevels(TICK, LOT, tuple(bids), tuple(asks)) if scaled else None)

    def snapshot(at: int, crossed: bool = False) -> BookSnapshot:
        levels(-1, 60)
        levels(1, 60)
        bids, asks = sorted(book[-1].items()), sorted(book[1].items())
        if crossed:
            bids.append((asks[0][0] + 2, 10**6) if asks else (mid, 1))
        return BookSnapshot("binance", SYMBOL, at, tuple((TICK * p, LOT * q) for p, q in bids),
                            tuple((TICK * p, LOT * q) for p, q in asks), ts_event=ts, ts_recv=ts,
                            scaled=ScaledLevels(TICK, LOT, tuple(bids), tuple(asks)))

    def next_diff(first_offset: int = 1, extra: int = 0) -> BookDelta:
        nonlocal seq
        first = seq + first_offset
        last = max(first, seq + 1) + extra
        seq = max(seq, last)
        return delta(first, last, levels(-1, rng.randrange(0, 20)), levels(1, rng.randrange(0, 20)), ts)

    # Before the first snapshot: diffs it covers, and (by seed) a gap or an overlap among the later ones.
    for index in range(7):
        ts += 1_000_000
        offset = 1
        if index == 5 and seed % 3 == 1:
            offset = 3  # a gap inside the buffers: the sequencer hands on up to it, the tracker invalidates
        elif index == 5 and seed % 3 == 2:
            offset = -1  # an overlap: the sequencer takes it, the tracker (past its bridge) refuses it
        events.append(next_diff(offset))
    events.append(snapshot(seq - 4))
    for _ in range(count):
        ts += rng.randrange(1, 40_000_000)
        mid += rng.choice((-1, 1)) * rng.choice((0, 0, 0, 1, 1, 2, 5, 20) * 4 + (400, 3000))
        roll = rng.random()
        if roll < 0.5:
            aggressor = rng.choice((Side.BUY, Side.SELL, None))
            offset = rng.choice((0, 1, 2, 150, 800, 1200, 1500, 2500)) * rng.choice((-1, 1))
            events.append(Trade("binance", SYMBOL, f"t{len(events)}", TICK * (mid + offset),
                                LOT * rng.randrange(1, 10**7), aggressor, ts - rng.randrange(0, 10**6), ts))
            continue
        special = rng.random()
        if special < 0.03:  # a snapshot mid-stream, at the book's seq or ahead of it
            seq += rng.choice((0, 0, 4))
            events.append(snapshot(seq))
        elif special < 0.035:  # an older snapshot than the book
            events.append(snapshot(seq - 3))
        elif special < 0.038:  # a crossed snapshot: the venue takes it, the tracker invalidates
            events.append(snapshot(seq, crossed=True))
        elif special < 0.046:
            events.append(next_diff(3))  # a gap
        elif special < 0.052:
            events.append(next_diff(-1, extra=1))  # an overlap
        elif special < 0.058:  # out of order: the later diff arrives first
            early, late = next_diff(), next_diff()
            events.append(attrs.evolve(late, ts_recv=ts))
            events.append(attrs.evolve(early, ts_recv=ts + 1))
            ts += 1
        elif special < 0.068:  # a stale repeat of a recent diff
            recent = [e for e in events[-40:] if isinstance(e, BookDelta)]
            if recent:
                events.append(attrs.evolve(rng.choice(recent), ts_recv=ts))
        elif special < 0.073:  # a stale diff with other levels than the one it repeats
            events.append(delta(seq, seq, [(mid - 1000, 5)], [(mid + 1000, 5)], ts))
        elif special < 0.077:  # a diff that crosses the book: applied by both, then the tracker invalidates
            diff = next_diff()
            crossing = max(book[1], default=mid) + 1
            book[-1][crossing] = 10**6
            bids = (*diff.scaled.bids, (crossing, 10**6)) if diff.scaled else ()
            events.append(delta(diff.first_seq, diff.seq, list(bids), list(diff.scaled.asks) if diff.scaled else [],
                                ts))
        elif special < 0.084:
            diff = next_diff()
            events.append(attrs.evolve(diff, scaled=None))  # no pre-scaled levels: the sinks convert
        else:
            events.append(next_diff())
    events.sort(key=lambda e: e.ts_recv)
    return events


def _books(replay: RecordingReplay) -> tuple[Any, ...]:
    sequencer, reference = setup_sinks(replay)
    venue_book: OrderBook = sequencer._sink.__self__.books[SYMBOL]
    ref_book = reference.tracker.book
    return (venue_book.levels_int(Side.BUY), venue_book.levels_int(Side.SELL), venue_book.seq,
            ref_book.levels_int(Side.BUY), ref_book.levels_int(Side.SELL), ref_book.seq, ref_book.ts_event)


@contextmanager
def _recording(monkeypatch: pytest.MonkeyPatch, *, pure: bool, share: bool) -> Iterator[dict[str, Any]]:
    seen: dict[str, Any] = {"states": [], "books": [], "shared": [], "replay": None}
    deliver = RecordingReplay.deliver_until

    def recorded(self: RecordingReplay, recorded_ns: int) -> int:
        count = deliver(self, recorded_ns)
        seen["replay"] = self
        seen["states"].append(state(self))
        seen["books"].append(_books(self))
        if len(self._sinks) == 1:
            seen["shared"].append(self._sinks[0].shared)
        return count

    with monkeypatch.context() as patch:
        patch.setenv(_speedups.ENV_PURE, "1" if pure else "0")
        patch.setattr(RecordingReplay, "deliver_until", recorded)
        if not share:
            patch.setattr(setups_module, "build_replay_venue_setup",
                          functools.partial(setups_module.build_replay_venue_setup, share_book=False))
        yield seen


def _run(events: list[ReplayEvent], monkeypatch: pytest.MonkeyPatch, *, pure: bool, share: bool) -> dict[str, Any]:
    controller = BookReadingLadder()
    with _recording(monkeypatch, pure=pure, share=share) as seen:
        result = run_backtest(controller, events, setup="replay", queue="probabilistic", risk=RISK, seed=3)
    replay: RecordingReplay = seen["replay"]
    return {**seen, "seen": controller.seen, "loop": replay.compiled_loop,
            "sinks": list(replay._sinks), "fills": [repr(fill) for fill in result.engine.fills],
            "report": json.dumps(result.report, sort_keys=True, default=str)}


def _first_difference(want: dict[str, Any], got: dict[str, Any]) -> str | None:
    """Where a shared run first left the two-book run (None: nowhere)."""
    if len(got["states"]) != len(want["states"]):
        return f"{len(got['states'])} deliveries against {len(want['states'])}"
    for tick in range(len(want["states"])):
        if got["books"][tick] != want["books"][tick]:
            return f"books differ after delivery {tick}"
        if got["states"][tick] != want["states"][tick]:
            return f"state differs after delivery {tick}"
    for key in ("seen", "fills", "report"):
        if got[key] != want[key]:
            return f"{key} differ"
    return None


def _share(run: dict[str, Any]) -> SharedBook:
    (share,) = run["sinks"]
    assert type(share) is SharedBook
    return share


@pytest.mark.parametrize("pure", [False, True], ids=["compiled", "pure"])
@pytest.mark.parametrize("seed", range(3))
def test_one_shared_book_leaves_both_books_as_two_books_would(
    seed: int, pure: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not pure:
        assert _speedups.compiled_available(), _speedups.import_error()
    events = adversarial_stream(seed)
    apart = _run(events, monkeypatch, pure=pure, share=False)
    shared = _run(events, monkeypatch, pure=pure, share=True)
    assert apart["sinks"][0] is not None and len(apart["sinks"]) == 2  # the two-book run really had two
    assert _first_difference(apart, shared) is None, _first_difference(apart, shared)
    # The stream made them part ways and meet again many times, and both states lasted whole ticks.
    share = _share(shared)
    assert share.forks >= 10 and share.joins >= 10, (share.forks, share.joins)
    # (this stream breaks the lockstep every ~25 diffs and re-syncs only at snapshots: forked much of the time)
    assert 0.1 < sum(shared["shared"]) / len(shared["shared"]) < 0.9
    assert apart["fills"], "no fills: our orders never met the books"
    assert sum(1 for s in shared["seen"] if s is not None) > 50  # the controller read the book (when valid)
    tracker = shared["states"][-1]["tracker"]
    assert tracker[6] > 0 and tracker[7] > 0  # gaps and crossed books in the tracker
    if not pure:
        loop = shared["loop"]
        assert loop is not None and loop.handled > 0.5 * len(events)
        assert loop.reference_crossings > 0  # a crossing diff applied once, then forked inside the loop


def _never_clear_fork(self: SharedBook, *args: Any, **kwargs: Any) -> None:
    """SharedBook.__init__ without the tracker's before_clear hook (a tracker that clears the shared book)."""
    _INIT(self, *args, **kwargs)
    self._tracker.before_clear = None


_INIT = SharedBook.__init__
_BREAKS = {
    "fork is a no-op": ("fork", lambda self: None),
    "no fork before an event out of lockstep": ("_in_lockstep", lambda self, event: True),
    "no fork before the tracker clears": ("__init__", _never_clear_fork),
}


@pytest.mark.parametrize("broken", sorted(_BREAKS))
def test_a_shared_book_without_one_of_its_forks_is_caught(broken: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison above sees a SharedBook that misses a fork: it is not vacuous. (Seed 2 has an overlap
    among the diffs before the first snapshot: the one case where only the fork before the event is right,
    the tracker's own fork before clearing coming too late; see mmkit/backtest/shared_book.py.)"""
    events = adversarial_stream(2)
    apart = _run(events, monkeypatch, pure=False, share=False)
    name, replacement = _BREAKS[broken]
    with monkeypatch.context() as patch:
        patch.setattr(SharedBook, name, replacement)
        wrong = _run(events, monkeypatch, pure=False, share=True)
    assert _first_difference(apart, wrong) is not None


# -- the SharedBook on its own, event by event ------------------------------------------------------------------


def _setup(**increments: Any) -> tuple[SharedBook, Any, Any]:
    """A replay setup's SharedBook (fed by hand here), its venue and its tracker."""
    from mmkit.app.backtest_setups import build_replay_venue_setup
    from mmkit.clock import Clock, ClockMode
    from mmkit.connector import load_venue_rules

    clock = Clock(ClockMode.BACKTEST, start_ns=1)
    setup = build_replay_venue_setup(clock, SkewedLadderController(), [], load_venue_rules("binance"), SYMBOL,
                                     **increments)
    assert setup.shared_book is not None
    return setup.shared_book, setup.venue, setup.reference.tracker


def _diff(first: int, last: int, bids: Sequence[tuple[int, int]] = (),
          asks: Sequence[tuple[int, int]] = ()) -> BookDelta:
    return BookDelta("binance", SYMBOL, first, last, tuple((TICK * p, LOT * q) for p, q in bids),
                     tuple((TICK * p, LOT * q) for p, q in asks), ts_event=last, ts_recv=last,
                     scaled=ScaledLevels(TICK, LOT, tuple(bids), tuple(asks)))


def _snapshot(seq: int, bids: Sequence[tuple[int, int]], asks: Sequence[tuple[int, int]]) -> BookSnapshot:
    return BookSnapshot("binance", SYMBOL, seq, tuple((TICK * p, LOT * q) for p, q in bids),
                        tuple((TICK * p, LOT * q) for p, q in asks), ts_event=seq, ts_recv=seq,
                        scaled=ScaledLevels(TICK, LOT, tuple(bids), tuple(asks)))


def _levels(book: OrderBook) -> tuple[list[Any], list[Any]]:
    return book.levels_int(Side.BUY), book.levels_int(Side.SELL)


def test_shared_from_the_start_forked_by_a_snapshot_and_joined_after_it() -> None:
    share, venue, tracker = _setup()
    assert share.shared and venue.books[SYMBOL] is tracker.book
    share(_diff(5, 5, [(100, 1)]))  # before any snapshot: both buffer it
    assert share.shared and share.forks == 0
    share(_snapshot(4, [(99, 2)], [(101, 3)]))
    assert (share.forks, share.joins) == (1, 2)  # forked before it, joined after (equal levels, both at 5)
    assert share.shared and venue.books[SYMBOL] is tracker.book
    assert _levels(tracker.book) == ([(100, 1), (99, 2)], [(101, 3)]) and tracker.book.seq == 5
    share(_diff(6, 6, [(100, 4)]))  # follows on: one apply for both
    assert share.shared and tracker.book.size_at_int(Side.BUY, 100) == 4
    share(_diff(3, 6, [(1, 1)]))  # stale for both
    assert share.shared and tracker.book.size_at_int(Side.BUY, 1) == 0


def test_an_overlap_the_sequencer_takes_and_the_tracker_refuses_forks_first() -> None:
    share, venue, tracker = _setup()
    share(_snapshot(10, [(99, 2)], [(101, 3)]))
    share(_diff(11, 11))  # past the bridge: the tracker wants first_seq == 12 from now on
    assert share.shared
    share(_diff(11, 12, [(100, 7)]))  # the sequencer takes an overlap, the tracker invalidates
    assert not share.shared and venue.books[SYMBOL] is not tracker.book
    assert _levels(venue.books[SYMBOL]) == ([(100, 7), (99, 2)], [(101, 3)]) and venue.books[SYMBOL].seq == 12
    assert not tracker.is_valid and _levels(tracker.book) == ([], [])


def test_a_crossing_diff_is_applied_once_then_the_venue_keeps_it_when_the_tracker_clears() -> None:
    share, venue, tracker = _setup()
    share(_snapshot(10, [(99, 2)], [(101, 3)]))
    share(_diff(11, 11, [(102, 1)]))  # crosses: both apply it, then the tracker invalidates and clears
    assert tracker.crossed == 1 and not share.shared
    assert _levels(venue.books[SYMBOL]) == ([(102, 1), (99, 2)], [(101, 3)])
    assert _levels(tracker.book) == ([], []) and tracker.book.seq == -1


def test_a_gap_forks_and_the_next_snapshot_joins() -> None:
    share, venue, tracker = _setup()
    share(_snapshot(10, [(99, 2)], [(101, 3)]))
    share(_diff(13, 13, [(98, 1)]))  # a gap for both: neither applies it, the tracker clears
    assert not share.shared and _levels(venue.books[SYMBOL]) == ([(99, 2)], [(101, 3)])
    share(_snapshot(14, [(97, 1)], [(103, 1)]))
    assert share.shared and share.joins == 3 and _levels(tracker.book) == ([(97, 1)], [(103, 1)])


def test_no_join_while_the_levels_differ_or_the_grids_do() -> None:
    share, venue, tracker = _setup()
    share(_snapshot(10, [(99, 2)], [(101, 3)]))
    share.fork()
    ours = venue.books[SYMBOL]
    ours.apply_levels_int([(50, 1)], [])  # the venue's own book shows a level the tracker's does not
    assert not share.try_join() and venue.books[SYMBOL] is ours and share.join_checks == 3
    ours.apply_levels_int([(50, 0)], [])
    assert share.try_join() and venue.books[SYMBOL] is tracker.book
    # A tracker on another grid than the venue's book never shares it (not even both empty, at the start).
    fresh, venue, _ = _setup()
    fresh.fork()
    coarse = OrderBookTracker("binance", SYMBOL, TICK, LOT * 10, request_resync=lambda reason: None)
    other = SharedBook(fresh.sequencer, ReplayedReference(coarse, NS_PER_S), venue)
    assert not other.shared and other.join_checks == 1 and venue.books[SYMBOL] is not coarse.book
    assert _levels(venue.books[SYMBOL]) == _levels(coarse.book) == ([], [])


def test_a_sharing_refuses_a_venue_without_the_symbol_and_a_second_hook() -> None:
    share, venue, _ = _setup()
    with pytest.raises(ValueError, match="already has a before_clear hook"):
        SharedBook(share.sequencer, share.reference, venue)
    with pytest.raises(ValueError, match="no book for"):
        SharedBook(share.sequencer, share.reference, attrs.make_class("V", {"books": attrs.field()})({}))


def _feed(setup: Any, event: ReplayEvent) -> str | None:
    """Hand ``event`` to the setup's sinks as the replay does (a raising sink stops the event there)."""
    try:
        for sink in setup.replay._sinks:
            sink(event)
    except ValueError as exc:
        return type(exc).__name__
    return None


def _both_ways(events: Sequence[ReplayEvent]) -> tuple[list[bool], Any]:
    """Feed ``events`` to a shared and a two-book setup; what each event left (books, errors) must agree.
    Returns whether the books were shared after each event, and the shared setup."""
    from mmkit.app.backtest_setups import build_replay_venue_setup
    from mmkit.clock import Clock, ClockMode
    from mmkit.connector import load_venue_rules

    setups = [build_replay_venue_setup(Clock(ClockMode.BACKTEST, start_ns=1), SkewedLadderController(), [],
                                       load_venue_rules("binance"), SYMBOL, share_book=share)
              for share in (False, True)]
    shared_states = []
    for event in events:
        after = []
        for setup in setups:
            error = _feed(setup, event)
            venue_book, ref_book = setup.venue.books[SYMBOL], setup.reference.tracker.book
            after.append((error, _levels(venue_book), venue_book.seq, _levels(ref_book), ref_book.seq,
                          ref_book.ts_event, setup.reference.tracker.is_valid))
        assert after[1] == after[0], (event, after)
        shared_states.append(setups[1].shared_book.shared)  # type: ignore[union-attr]
    return shared_states, setups[1]


def test_raising_sinks_leave_both_books_as_two_books_would() -> None:
    """A level off the grid (the venue refuses the diff; the tracker refuses it too, invalidates its book and
    asks for a resync: forked) and a diff of another venue (the tracker raises; the venue applied it) leave
    the books as two books would, and so does what follows them."""
    off_grid = attrs.evolve(_diff(11, 11, [(100, 1)]), bids=((TICK * 100 + TICK / 2, LOT),), scaled=None)
    other_venue = attrs.evolve(_diff(22, 22, [(98, 4)]), venue="elsewhere")
    shared, setup = _both_ways([
        _snapshot(10, [(99, 2)], [(101, 3)]),
        off_grid,
        _diff(12, 12, [(97, 1)]),  # the venue applies it, the invalid tracker buffers it: still forked
        _snapshot(20, [(99, 2)], [(101, 3)]),
        _diff(21, 21, [(96, 1)]),
        other_venue,
        _diff(23, 23, [(95, 1)]),
    ])
    assert shared == [True, False, False, True, True, False, False]
    # The venue took the other venue's diff, the tracker refused it (and is invalid after the next one).
    assert setup.venue.books[SYMBOL].size_at_int(Side.BUY, 98) == 4 and not setup.reference.tracker.is_valid


def test_diffs_out_of_order_and_snapshots_older_than_the_book_event_by_event() -> None:
    shared, _ = _both_ways([
        _diff(12, 12, [(98, 1)]),  # before the snapshot, out of order: both buffer them
        _diff(11, 11, [(97, 1)]),
        _snapshot(10, [(99, 2)], [(101, 3)]),  # 12 does not bridge: both wait again (the venue keeps the snapshot)
        _snapshot(11, [(99, 2)], [(101, 3)]),  # 12 bridges now (both buffered it): joined
        _diff(14, 14, [(96, 1)]),  # the later diff first: a gap for both
        _diff(13, 13, [(95, 1)]),
        _snapshot(12, [(99, 3)], [(101, 3)]),  # older than what both buffered: still a gap
        _diff(13, 13, [(94, 1)]),
        _diff(14, 15, [(93, 1)]),
        _diff(14, 16, [(92, 1)]),
        _snapshot(16, [(99, 1)], [(99, 1)]),  # locked: the venue takes it, the tracker refuses it
        _diff(17, 17, [(99, 0)]),  # the venue applies it, the invalid tracker buffers it
        _snapshot(17, [(98, 1)], [(100, 1)]),  # both at 17, the same levels: joined
    ])
    assert shared == [True, True, False, True] + [False] * 8 + [True]
