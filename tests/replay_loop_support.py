"""Shared by the replay-loop equivalence tests: a replay backtest run with or without the compiled loop,
the state of every part the loop touches after every tick, and random recorded streams.

Why state after every tick (not only the report): the loop writes the sequencer's, the venue's, the
tracker's, the health counters' and the reference's attributes itself; a step it forgot would show here
at the tick it happened, even when the report happened not to move.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal as D
from typing import Any

import attrs
import pytest

import mmkit.backtest.replay as replay_module
from mmkit import _speedups
from mmkit.app.assembly import RiskSettings
from mmkit.app.backtest_cmd import BacktestResult, run_backtest
from mmkit.backtest.replay import RecordingReplay, ReplayEvent
from mmkit.connector import load_venue_rules
from mmkit.model import NS_PER_S, BookDelta, BookSnapshot, ScaledLevels, Side, Trade
from mmkit.risk.inventory import InventoryConfig
from mmkit.risk.kill_switch import KillSwitchConfig
from strategies.skewed_ladder import SkewedLadderConfig, SkewedLadderController

#: A short kill-switch cooldown: the random streams lose their book often, and the maker should quote again soon.
RISK = RiskSettings(inventory=InventoryConfig(max_position=D("0.5"), hedge_threshold=D("0.2"),
                                              emergency_position=D("0.6")),
                    kill_switch=KillSwitchConfig(resume="auto", cooldown_ns=NS_PER_S))
TICK = D("0.01")
LOT = D("0.00000001")


def setup_sinks(replay: RecordingReplay) -> tuple[Any, Any]:
    """The replay setup's (sequencer, reference), behind its SharedBook or not (share_book=False)."""
    if len(replay._sinks) == 1:
        return replay._sinks[0].sequencer, replay._sinks[0].reference
    sequencer, reference = replay._sinks
    return sequencer, reference


def state(replay: RecordingReplay) -> dict[str, Any]:
    """Everything the compiled loop reads or writes, as plain values (books: best levels, counts, seq)."""
    sequencer, reference = setup_sinks(replay)
    venue = sequencer._sink.__self__
    tracker = reference.tracker
    health = reference.health
    out: dict[str, Any] = {
        "index": replay._index,
        "sequencer": (sequencer._last_seq, sequencer.gaps, sequencer.dropped, sequencer.snapshots),
        "venue_time": venue._venue_time,
        "refused": venue.refused_events,
        "traded": {key: dict(table) for key, table in venue._traded.items()},
        "taken": {key: dict(table) for key, table in venue._taken.tables.items()},
        "resting": [(cid, q.rec.side, q.rec.price, q.rec.leaves, q.pos.front, q.tick)
                    for cid, q in venue._resting.items()],
        "tracker": (tracker._valid, tracker._need_bridge, tracker._last_seq, tracker.snapshots,
                    tracker.deltas_applied, tracker.deltas_dropped, tracker.gaps, tracker.crossed,
                    tracker.resyncs, tracker.last_invalid_reason, tracker.buffered),
        "health": (health.diffs_received, health.diffs_while_invalid,
                   [(s.start_ns, s.end_ns, s.reason) for s in health.invalid_spells]),
        "reference": (reference.last_mid, reference.last_update_ns, reference._last_top, reference._was_valid),
    }
    books = {f"venue:{symbol}": book for symbol, book in venue.books.items()}
    books["reference"] = tracker.book
    for name, book in books.items():
        out[name] = (book.seq, book.ts_event if name == "reference" else None, book.bid_count, book.ask_count,
                     book.best_bid_level_int(), book.best_ask_level_int())
    return out


def full_books(replay: RecordingReplay) -> dict[str, Any]:
    """Every level of every book (compared once, at the end of a run)."""
    sequencer, reference = setup_sinks(replay)
    venue = sequencer._sink.__self__
    books = {f"venue:{symbol}": book for symbol, book in venue.books.items()}
    books["reference"] = reference.tracker.book
    return {name: (book.levels_int(Side.BUY), book.levels_int(Side.SELL)) for name, book in books.items()}


@contextmanager
def recording_states(monkeypatch: pytest.MonkeyPatch, *, pure: bool, loop: bool) -> Iterator[dict[str, Any]]:
    """Run a backtest inside: the replay's state after every delivery lands in the yielded dict."""
    seen: dict[str, Any] = {"states": [], "replay": None}
    deliver = RecordingReplay.deliver_until

    def recorded(self: RecordingReplay, recorded_ns: int) -> int:
        count = deliver(self, recorded_ns)
        seen["replay"] = self
        seen["states"].append(state(self))
        return count

    with monkeypatch.context() as patch:
        patch.setenv(_speedups.ENV_PURE, "1" if pure else "0")
        patch.setattr(RecordingReplay, "deliver_until", recorded)
        if not loop:
            patch.setattr(replay_module, "compiled_loop_for", lambda sinks: None)
        yield seen


def run_maker(
    events: list[ReplayEvent], *, end_ns: int | None = None, seed: int = 3, post_only: bool = True
) -> BacktestResult:
    """A two-level ladder on ``events``; ``post_only=False``: on a Binance without post-only orders, so that
    quotes the book moved through take from it (taker fills, and the venue's ledger of what it took)."""
    controller = SkewedLadderController(SkewedLadderConfig(base_spread_bps=D(4), levels=2, base_size=D("0.01")))
    rules = load_venue_rules("binance")
    if not post_only:
        rules = attrs.evolve(rules, supports_post_only=False)
    return run_backtest(controller, events, setup="replay", queue="probabilistic", risk=RISK, end_ns=end_ns,
                        seed=seed, rules=rules)


def walk_levels(rng: random.Random, book: dict[int, dict[int, int]], mid: int, side: int, n: int,
                far_share: float) -> list[tuple[int, int]]:
    """A random-walk book's next diff on ``side`` (-1 bids, 1 asks; ``book``: side -> tick -> size, updated).

    ``n`` random changes (about 30 % deletions), ``far_share`` of them anywhere within 1,500 ticks of ``mid``
    and the rest 1,140–1,220 ticks away (about 2 bps: where the test makers quote), and the deletion of
    every level the mid crossed, as a venue's diffs do.
    """
    out = [(p, 0) for p in book[side] if (p - mid) * side <= 0]
    for _ in range(n):
        price = mid + side * (rng.randrange(1, 1500) if rng.random() < far_share else rng.randrange(1140, 1220))
        out.append((price, 0 if rng.random() < 0.3 else rng.randrange(1, 10**8)))
    for price, size in out:
        if size:
            book[side][price] = size
        else:
            book[side].pop(price, None)
    return out


def random_stream(seed: int, count: int = 4000) -> list[ReplayEvent]:
    """A BTCUSDT-like recorded stream: a random-walk book near 60,000 (diffs pre-scaled on the 0.01/1e-8 grid,
    levels that the walk crosses deleted, as a venue's diffs do), prints at and through the touch, and the
    unusual cases the loop leaves to the sinks: diffs before the first snapshot, stale repeats, gaps, later
    snapshots, a diff that crosses the book, diffs without pre-scaled levels, prints off the grid and
    without an aggressor.
    """
    rng = random.Random(seed)
    mid = 6_000_000  # ticks
    seq, ts = 1_000, 1_700_000_000_000_000_000
    book: dict[int, dict[int, int]] = {-1: {}, 1: {}}  # side (-1 bids, 1 asks) -> price -> size
    events: list[ReplayEvent] = []

    def levels(side: int, n: int) -> list[tuple[int, int]]:
        # Most of them where the maker quotes (about 2 bps from the mid), so diffs list our levels.
        return walk_levels(rng, book, mid, side, n, far_share=0.3)

    def delta(first: int, last: int, bids: list[tuple[int, int]], asks: list[tuple[int, int]],
              scaled: bool = True) -> BookDelta:
        return BookDelta("binance", "BTCUSDT", first, last, tuple((TICK * p, LOT * q) for p, q in bids),
                         tuple((TICK * p, LOT * q) for p, q in asks), ts_event=ts - rng.randrange(0, 10**6),
                         ts_recv=ts,
                         scaled=ScaledLevels(TICK, LOT, tuple(bids), tuple(asks)) if scaled else None)

    def snapshot() -> BookSnapshot:
        levels(-1, 100)
        levels(1, 100)
        bids, asks = sorted(book[-1].items()), sorted(book[1].items())
        return BookSnapshot("binance", "BTCUSDT", seq, tuple((TICK * p, LOT * q) for p, q in bids),
                            tuple((TICK * p, LOT * q) for p, q in asks), ts_event=ts, ts_recv=ts,
                            scaled=ScaledLevels(TICK, LOT, tuple(bids), tuple(asks)))

    for _ in range(5):  # diffs before the first snapshot (the first two are covered by it)
        ts += 1_000_000
        seq += 1
        events.append(delta(seq, seq, levels(-1, 3), levels(1, 3)))
    seq -= 3
    events.append(snapshot())
    seq += 3
    for _ in range(count):
        ts += rng.randrange(1, 40_000_000)
        mid += rng.choice((-1, 1)) * rng.choice((0, 0, 0, 1, 1, 2, 5, 20) * 4 + (400, 3000))
        roll = rng.random()
        if roll < 0.55:
            aggressor = rng.choice((Side.BUY, Side.SELL, Side.BUY, Side.SELL, None))
            offset = rng.choice((0, 1, 2, 50, 150, 400, 800, 1200, 1500, 2500)) * rng.choice((-1, 1))
            price = TICK * (mid + offset) + (D("0.005") if rng.random() < 0.01 else 0)
            events.append(Trade("binance", "BTCUSDT", f"t{len(events)}", price, LOT * rng.randrange(1, 10**7),
                                aggressor, ts - rng.randrange(0, 10**6), ts))
        elif roll < 0.56:
            seq += 5
            events.append(snapshot())
        else:
            first = seq + 1
            special = rng.random()
            diffs = [e for e in events[-50:] if isinstance(e, BookDelta)]
            if special < 0.01 and diffs:  # a stale repeat of a recent diff (the book must not take it again)
                events.append(attrs.evolve(rng.choice(diffs), ts_recv=ts))
                continue
            if special < 0.013:
                first += 3  # a gap
            last = first + rng.randrange(0, 4)
            seq = max(seq, last)
            bids, asks = levels(-1, rng.randrange(0, 25)), levels(1, rng.randrange(0, 25))
            if special > 0.994:
                crossing = max(book[1], default=mid) + 1
                bids.append((crossing, 10**6))  # crosses the book: the tracker invalidates
                book[-1][crossing] = 10**6
            scaled = not 0.98 < special <= 0.99
            events.append(delta(first, last, bids, asks, scaled))
    events.sort(key=lambda e: e.ts_recv)
    return events
