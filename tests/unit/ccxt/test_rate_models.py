"""Kraken's decaying per-pair order counter in the limiter: it never sends what Kraken would refuse.

The oracle below is Kraken's published rule ("Spot Trading Limits"), written
here independently of mmkit.execution.rate_models: a counter per pair, +1 per
new order, +penalty by age for a cancel, +1 +penalty for an amend, decaying
at the tier's rate; the venue refuses what would take it past the threshold.
Actions reach the venue after a random latency, as they would live.
"""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from mmkit.connector import RateLimit, load_venue_rules
from mmkit.execution.rate_limiter import ActionKind, RateLimiter
from mmkit.execution.rate_models import DecayingOrderCounter, penalty
from mmkit.model import NS_PER_MS, NS_PER_S

D = Decimal
CANCEL_STEPS = ((5, 8), (10, 6), (15, 5), (45, 4), (90, 2), (300, 1))  # (age under s, cost)
AMEND_STEPS = ((5, 3), (10, 2), (15, 1))


class KrakenOracle:
    """What Kraken's matching engine does with one pair's counter (starter tier: 60, 1/s)."""

    def __init__(self, threshold: float = 60.0, decay: float = 1.0) -> None:
        self.threshold, self.decay = threshold, decay
        self.value, self.at_s = 0.0, 0.0
        self.refused = 0
        self.peak = 0.0

    def arrive(self, at_s: float, kind: ActionKind, age_s: float) -> bool:
        self.value = max(0.0, self.value - self.decay * (at_s - self.at_s))
        self.at_s = at_s
        if kind is ActionKind.PLACE:
            cost = 1.0
        else:
            steps = CANCEL_STEPS if kind is ActionKind.CANCEL else AMEND_STEPS
            cost = next((c for limit, c in steps if age_s < limit), 0) + (1.0 if kind is ActionKind.REPLACE else 0)
        if self.value + cost > self.threshold:
            self.refused += 1
            return False
        self.value += cost
        self.peak = max(self.peak, self.value)
        return True


def _quote_aggressively(limiter: RateLimiter, seconds: int, seed: int) -> tuple[KrakenOracle, int]:
    """A ladder that re-prices all 10 orders every 100 ms (cancel + place, or amend) for ``seconds``."""
    rng = random.Random(seed)
    oracle = KrakenOracle()
    orders: list[int] = []  # creation times (ns) of our resting orders
    arrivals: list[tuple[float, ActionKind, float]] = []
    granted = 0
    for tick in range(seconds * 10):
        now = tick * 100 * NS_PER_MS
        survivors = []
        for created in orders:
            kind = ActionKind.REPLACE if rng.random() < 0.3 else ActionKind.CANCEL
            if limiter.try_acquire(now, kind, now - created):
                granted += 1
                arrivals.append((now / NS_PER_S + rng.uniform(0.001, 0.08), kind, (now - created) / NS_PER_S))
                if kind is ActionKind.REPLACE:
                    survivors.append(now)  # an amend restarts the order's age
            else:
                survivors.append(created)
        orders = survivors
        while len(orders) < 10 and limiter.try_acquire(now, ActionKind.PLACE):
            granted += 1
            arrivals.append((now / NS_PER_S + rng.uniform(0.001, 0.08), ActionKind.PLACE, 0.0))
            orders.append(now)
    for at_s, kind, age_s in sorted(arrivals, key=lambda a: a[0]):
        oracle.arrive(at_s, kind, age_s)
    return oracle, granted


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_kraken_model_never_sends_what_kraken_refuses(seed: int) -> None:
    limiter = RateLimiter.from_rules(load_venue_rules("kraken"))
    assert limiter.counter is not None
    oracle, granted = _quote_aggressively(limiter, seconds=120, seed=seed)
    assert oracle.refused == 0
    # Not vacuous: the strategy wanted far more than Kraken allows, and we used most of the room.
    assert limiter.denied > 1000
    assert granted > 30 and oracle.peak > 45, (granted, oracle.peak)


def test_plain_windows_would_have_been_refused() -> None:
    """The windows the Kraken config used to have (15/s, 60/min) let young-order cancels through."""
    limiter = RateLimiter([RateLimit(15, 1000), RateLimit(60, 60_000)])
    oracle, _ = _quote_aggressively(limiter, seconds=120, seed=1)
    assert oracle.refused > 0


def test_cancel_penalty_follows_the_order_age() -> None:
    config = load_venue_rules("kraken").order_rate_counter
    assert config is not None
    steps = config.cancel_penalties
    assert penalty(steps, 2 * NS_PER_S) == D(8)
    assert penalty(steps, 20 * NS_PER_S) == D(4)
    assert penalty(steps, 400 * NS_PER_S) == D(0)
    assert penalty(steps, None) == D(8), "an order of unknown age is charged as brand new"
    counter = DecayingOrderCounter(config)
    assert counter.cost("REPLACE", 3 * NS_PER_S) == D(4)  # +1 fixed, +3 under 5 s
    assert counter.cost("PLACE", None) == D(1)


def test_places_leave_room_for_cancels_and_the_counter_decays() -> None:
    config = load_venue_rules("kraken").order_rate_counter
    assert config is not None
    limiter = RateLimiter([], counter=DecayingOrderCounter(config))
    placed = 0
    while limiter.try_acquire(0, ActionKind.PLACE):
        placed += 1
    assert placed == 48  # 60 less the 20 % reserve
    assert limiter.try_acquire(0, ActionKind.CANCEL, 1 * NS_PER_S)  # +8: still fits under 60
    assert not limiter.try_acquire(0, ActionKind.CANCEL, 1 * NS_PER_S)  # 56 + 8 > 60
    # Decay (at 90 % of the venue's rate, to stay on the safe side): 10 s later 9 units are free.
    assert limiter.try_acquire(10 * NS_PER_S, ActionKind.CANCEL, 1 * NS_PER_S)


def test_a_rate_limit_reply_raises_the_backoff_on_top_of_the_model() -> None:
    limiter = RateLimiter.from_rules(load_venue_rules("kraken"))
    limiter.on_rate_limit_reject(NS_PER_S)
    assert limiter.in_backoff(NS_PER_S + 1)
    assert not limiter.try_acquire(NS_PER_S + 1, ActionKind.PLACE)
    assert limiter.try_acquire(NS_PER_S + 1, ActionKind.CANCEL, 100 * NS_PER_S)  # cancels still go
