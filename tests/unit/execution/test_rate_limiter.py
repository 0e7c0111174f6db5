"""RateLimiter: windows never exceeded, cancels keep headroom, duplicates blocked, backoff on bans."""

from __future__ import annotations

import random
from bisect import bisect_right
from decimal import Decimal

from mmkit.connector import RateLimit, load_venue_rules
from mmkit.execution.rate_limiter import ActionKind, RateLimiter
from mmkit.model import NS_PER_MS, NS_PER_S, Side

LIMITS = (RateLimit(10, 1000), RateLimit(300, 60_000))


def max_in_window(times: list[int], window_ns: int) -> int:
    """Largest number of timestamps in any half-open window of length window_ns."""
    best = 0
    for i, t in enumerate(times):
        # window ending at t: (t - window, t]
        lo = bisect_right(times, t - window_ns)
        best = max(best, i + 1 - lo)
    return best


def test_random_burst_never_exceeds_any_window() -> None:
    rng = random.Random(8457)
    limiter = RateLimiter(LIMITS)
    t = 0
    granted: list[int] = []
    kinds = list(ActionKind)
    for _ in range(20_000):
        t += rng.choice([0, 0, 0, rng.randrange(1, 5 * NS_PER_MS), rng.randrange(1, 3 * NS_PER_S)])
        if limiter.try_acquire(t, rng.choice(kinds)):
            granted.append(t)
    assert len(granted) > 1000  # it did let plenty through
    for limit in LIMITS:
        assert max_in_window(granted, limit.window_ns) <= limit.max_count
    assert max_in_window(granted, NS_PER_S) == 10  # and the short window was actually filled


def test_cancels_keep_reserved_headroom() -> None:
    limiter = RateLimiter([RateLimit(10, 1000)])
    placed = sum(limiter.try_acquire(0, ActionKind.PLACE) for _ in range(20))
    assert placed == 8
    assert not limiter.try_acquire(0, ActionKind.REPLACE)
    assert limiter.try_acquire(0, ActionKind.CANCEL) and limiter.try_acquire(0, ActionKind.CANCEL)
    assert not limiter.try_acquire(0, ActionKind.CANCEL)
    assert not limiter.try_acquire(NS_PER_S, ActionKind.PLACE)  # one window later, but within the guard
    assert limiter.try_acquire(NS_PER_S + limiter.window_guard_ns, ActionKind.PLACE)  # the window slid


def test_from_rules_and_duplicate_guard() -> None:
    limiter = RateLimiter.from_rules(load_venue_rules("truex"))
    assert limiter.duplicate_window_ns == 500 * NS_PER_MS
    p, q = Decimal("60000.5"), Decimal("0.01")
    assert not limiter.is_duplicate(0, Side.BUY, p, q)
    limiter.record_place(0, Side.BUY, p, q)
    assert limiter.is_duplicate(499 * NS_PER_MS, Side.BUY, p, q)
    assert not limiter.is_duplicate(499 * NS_PER_MS, Side.SELL, p, q)
    assert not limiter.is_duplicate(499 * NS_PER_MS, Side.BUY, p, Decimal("0.02"))
    assert not limiter.is_duplicate(500 * NS_PER_MS, Side.BUY, p, q)


def test_backoff_on_rate_limit_rejects_doubles_and_resets() -> None:
    limiter = RateLimiter([], backoff_base_ns=NS_PER_S, backoff_reset_ns=60 * NS_PER_S)
    limiter.on_rate_limit_reject(0)
    assert not limiter.try_acquire(NS_PER_S - 1, ActionKind.PLACE)
    assert limiter.try_acquire(NS_PER_S - 1, ActionKind.CANCEL)  # cancels still allowed
    assert limiter.try_acquire(NS_PER_S, ActionKind.PLACE)
    limiter.on_rate_limit_reject(NS_PER_S)
    assert limiter.blocked_until_ns == 3 * NS_PER_S  # 2 s now
    limiter.on_rate_limit_reject(2 * NS_PER_S)  # sent before the pause: the same burst, no escalation
    assert limiter.blocked_until_ns == 3 * NS_PER_S
    assert limiter.backoff_level == 2
    limiter.on_rate_limit_reject(3 * NS_PER_S)  # a new offence after the pause
    assert limiter.blocked_until_ns == 7 * NS_PER_S  # 4 s
    assert limiter.try_acquire(70 * NS_PER_S, ActionKind.PLACE)  # quiet: level resets
    assert limiter.backoff_level == 0
    limiter.on_rate_limit_reject(70 * NS_PER_S)
    assert limiter.blocked_until_ns == 71 * NS_PER_S


def test_clock_stepping_back_cannot_free_slots() -> None:
    limiter = RateLimiter([RateLimit(2, 1000)], cancel_reserve=Decimal(0))
    assert limiter.try_acquire(5 * NS_PER_S, ActionKind.PLACE)
    assert limiter.try_acquire(5 * NS_PER_S, ActionKind.PLACE)
    assert not limiter.try_acquire(0, ActionKind.PLACE)


def test_headroom_is_the_tightest_window_and_leaves_the_reserve_to_cancels() -> None:
    limiter = RateLimiter([RateLimit(10, 1000), RateLimit(5, 60_000)])  # reserves: 2 and 1
    assert limiter.headroom(0, ActionKind.PLACE) == 4 and limiter.headroom(0, ActionKind.CANCEL) == 5
    assert sum(limiter.try_acquire(0, ActionKind.PLACE) for _ in range(10)) == 4  # the 60 s window binds
    assert limiter.headroom(0, ActionKind.PLACE) == 0 and limiter.headroom(0, ActionKind.CANCEL) == 1
    later = 2 * NS_PER_S  # the 1 s window has emptied, the 60 s one has not
    assert limiter.headroom(later, ActionKind.PLACE) == 0 and limiter.headroom(later, ActionKind.CANCEL) == 1
    assert limiter.try_acquire(later, ActionKind.CANCEL)
    assert limiter.headroom(later, ActionKind.CANCEL) == 0
    gone = 63 * NS_PER_S  # both windows (plus the 100 ms guard) have slid past everything
    assert limiter.headroom(gone, ActionKind.PLACE) == 4
