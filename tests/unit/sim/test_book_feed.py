"""ExchangeVenue's incremental book feed: a tracker fed its snapshot + deltas holds the engine's top levels.

The random walks below mix every way the engine's book changes (synthetic
makers that may cross, takers with and without a limit, our orders placed,
replaced in place and moved, cancelled, the makers' re-quote) and check,
after every action, that the subscriber's book equals
``MatchingEngine.depth(side, levels)`` exactly: no level more, none less,
every size right. A small window (1 or 3 levels) makes levels slide in and out
of it all the time.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from decimal import Decimal as D

import pytest

from mmkit.book.tracker import OrderBookTracker
from mmkit.connector import FeeSchedule, rules_for
from mmkit.instrument import IncrementBand, Instrument
from mmkit.model import BookDelta, BookSnapshot, OrderRequest, ReplaceRequest, Side
from mmkit.sim import ConstantLatency, ExchangeVenue
from mmkit.sim.matching import MatchingEngine

TICK = D("0.01")


class Now:
    def __init__(self) -> None:
        self.ns = 0

    def __call__(self) -> int:
        return self.ns


class Subscriber:
    """The venue, a tracker on its book feed (resync re-subscribes), and the check after each action."""

    def __init__(self, levels: int) -> None:
        inst = Instrument("sim", "X", "BTC", "USD", (IncrementBand(D(0), TICK, D("0.01")),),
                          min_notional=D(0), price_band=D("0.5"))
        rules = rules_for([inst], "sim", fees=FeeSchedule(D(0), D(0)), supports_replace=True)
        self.now = Now()
        self.venue = ExchangeVenue(rules, self.now, latency=ConstantLatency(), book_levels=levels,
                                   initial_balances={"BTC": D(10**6), "USD": D(10**9)})
        self.levels = levels
        tick, lot = inst.finest_increments()
        self.resyncs: list[str] = []
        self.tracker = OrderBookTracker("sim", "X", tick, lot, request_resync=self.resyncs.append)
        self.deltas = 0
        self.snapshots = 0
        self.venue.simulate_reconnect()
        self.venue.subscribe_book("X")
        self.drop_next_delta = False
        self.venue.add_liquidity(Side.BUY, D(90), D(1))  # the first book event: the subscription's snapshot
        self.pump()

    @property
    def engine(self) -> MatchingEngine:
        return self.venue.engines["X"]

    def pump(self) -> None:
        """Deliver what the venue published; a requested resync re-subscribes, as the engine's tracker does."""
        for event in self.venue.drain():
            if isinstance(event, BookSnapshot):
                self.snapshots += 1
                self.tracker.on_snapshot(event)
            elif isinstance(event, BookDelta):
                if self.drop_next_delta:
                    self.drop_next_delta = False
                    continue
                self.deltas += 1
                assert event.first_seq == event.seq and (event.bids or event.asks)
                self.tracker.on_delta(event)
        if self.resyncs:
            self.resyncs.clear()
            self.venue.subscribe_book("X")
            self.pump()

    def mismatch(self) -> str | None:
        """None when the tracker's whole book is exactly the engine's top ``levels`` levels a side."""
        if not self.tracker.is_valid:
            return f"tracker invalid: {self.tracker.last_invalid_reason}"
        for side in (Side.BUY, Side.SELL):
            want = self.engine.depth(side, self.levels)
            have = self.tracker.book.depth(side, 10_000)
            if have != want:
                return f"{side.value}: tracker {have} != engine {want}"
        return None


def random_walk(sub: Subscriber, steps: int, seed: int, check: Callable[[int], None]) -> None:
    """``steps`` random venue actions; ``check(step)`` after each one is delivered."""
    rng = random.Random(seed)
    ours: list[str] = []
    next_id = 0

    def price() -> D:
        return D(100) + rng.randint(-15, 15) * TICK

    def qty() -> D:
        return D(rng.randint(1, 300)) / 100

    for step in range(steps):
        sub.now.ns += 1_000
        roll = rng.random()
        if roll < 0.35:
            sub.venue.add_liquidity(rng.choice((Side.BUY, Side.SELL)), price(), qty())  # may cross and trade
        elif roll < 0.5:
            side = rng.choice((Side.BUY, Side.SELL))
            market = rng.random() < 0.2 and sub.engine.depth(side.opposite, 1)  # a market order needs liquidity
            sub.venue.take(side, qty(), None if market else price())
        elif roll < 0.65:
            next_id += 1
            cid = f"o{next_id}"
            side = rng.choice((Side.BUY, Side.SELL))
            sub.venue.place(OrderRequest(cid, "sim", "X", side, qty(), price()))
            ours.append(cid)
        elif roll < 0.75 and ours:
            sub.venue.cancel(rng.choice(ours), "X")
        elif roll < 0.87 and ours:
            old = rng.choice(ours)
            truth = sub.venue.order_truth(old)
            if truth is not None and truth.status.is_open and truth.price is not None:
                next_id += 1
                new = f"o{next_id}"
                # Same price and smaller: replaced in place; otherwise the order moves (and may trade).
                in_place = rng.random() < 0.5
                new_price = truth.price if in_place else price()
                leaves = truth.qty - truth.filled_qty
                new_qty = max(D("0.01"), leaves - D("0.01")) if in_place else qty()
                sub.venue.replace(ReplaceRequest(new, old, "sim", "X", truth.side, new_qty, new_price))
                ours.append(new)
        elif roll < 0.95:
            sub.venue.quote_around(price(), D(rng.randint(0, 10)) * TICK, qty(), levels=rng.randint(1, 4))
        else:
            sub.venue.take(rng.choice((Side.BUY, Side.SELL)), D(1), D(100))  # often crosses nothing
        sub.pump()
        check(step)


@pytest.mark.parametrize("levels", [1, 3, 20])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_tracker_fed_by_deltas_equals_engine_depth_at_every_step(levels: int, seed: int) -> None:
    sub = Subscriber(levels)

    def check(step: int) -> None:
        problem = sub.mismatch()
        assert problem is None, f"step {step}: {problem}"

    random_walk(sub, 600, seed, check)
    assert sub.snapshots == 1  # the subscription's; everything after it came as deltas
    assert sub.deltas > 200


def test_the_equivalence_check_catches_a_missed_level(monkeypatch: pytest.MonkeyPatch) -> None:
    """If the engine forgets one changed level, the walk above fails: the check can fail.

    One action may touch a price twice (a maker filled out, then its level), so
    a single forgotten touch is sometimes harmless; most are not.
    """
    touch = MatchingEngine._touch
    caught = 0
    for forget in range(100, 1100, 100):
        sub, calls = Subscriber(20), [0]
        problems: list[str] = []

        def forgetful(self: MatchingEngine, side: Side, price: D, forget: int = forget, calls: list[int] = calls,
                      ) -> None:
            calls[0] += 1
            if calls[0] != forget:
                touch(self, side, price)

        def check(step: int, sub: Subscriber = sub, problems: list[str] = problems) -> None:
            if (problem := sub.mismatch()) is not None:
                problems.append(problem)

        monkeypatch.setattr(MatchingEngine, "_touch", forgetful)
        random_walk(sub, 600, 1, check)
        assert calls[0] > forget
        caught += bool(problems)
    assert caught >= 5, f"only {caught} of 10 forgotten levels were noticed"


def test_a_match_that_changes_nothing_publishes_nothing() -> None:
    sub = Subscriber(5)
    sub.venue.add_liquidity(Side.SELL, D("100.05"), D(1))
    sub.pump()
    before = sub.deltas
    sub.venue.take(Side.BUY, D(1), D("100.00"))  # below the ask: no trade, no level changed
    sub.pump()
    assert sub.deltas == before and sub.mismatch() is None
    sub.venue.take(Side.BUY, D("0.4"), D("100.05"))
    events: list[object] = []
    sub.now.ns += 1
    events.extend(sub.venue.drain())
    [delta] = [e for e in events if isinstance(e, BookDelta)]
    assert delta.asks == ((D("100.05"), D("0.6")),) and delta.bids == ()


def test_a_gap_resyncs_through_a_fresh_snapshot() -> None:
    sub = Subscriber(3)
    sub.venue.add_liquidity(Side.BUY, D("99.9"), D(1))
    sub.pump()
    sub.drop_next_delta = True
    sub.venue.add_liquidity(Side.BUY, D("99.8"), D(1))
    sub.pump()
    sub.venue.add_liquidity(Side.SELL, D("100.1"), D(1))
    sub.pump()  # the tracker sees the gap and asks for a resync (re-subscribes)
    assert sub.tracker.gaps == 1 and not sub.tracker.is_valid
    sub.venue.add_liquidity(Side.SELL, D("100.2"), D(1))
    sub.pump()  # the venue's next book event is the snapshot
    assert sub.snapshots == 2 and sub.mismatch() is None
    sub.venue.take(Side.BUY, D("1.5"), D("100.2"))
    sub.pump()  # and deltas follow on from it
    assert sub.mismatch() is None and sub.tracker.deltas_applied > 0


def test_book_published_while_disconnected_is_restored_on_reconnect() -> None:
    sub = Subscriber(3)
    sub.venue.add_liquidity(Side.BUY, D("99.9"), D(1))
    sub.pump()
    sub.venue.simulate_disconnect("test")
    sub.venue.add_liquidity(Side.SELL, D("100.1"), D(2))
    sub.venue.take(Side.SELL, D("0.5"), D("99.9"))
    sub.pump()  # dropped: the session is down
    sub.venue.simulate_reconnect()
    sub.venue.add_liquidity(Side.SELL, D("100.3"), D(1))
    sub.pump()  # the first book event after the session came back is a snapshot: no gap to detect
    assert sub.mismatch() is None and sub.tracker.gaps == 0 and sub.snapshots == 2
