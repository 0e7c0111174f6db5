"""RateLimiter skips pruning until the next action can leave a window: it must decide as a full prune would.

Why: ``_next_expiry_ns`` is a cache of "nothing leaves a window before this
time". If an append, a prune or ``seed`` forgot to lower or recompute it, the
limiter would keep counting actions that left their window (refusing what the
venue allows) or, worse, the opposite. These tests compare every decision
with a plain recount of the timestamps.
"""

from __future__ import annotations

import random
from decimal import Decimal

from mmkit.connector import RateLimit
from mmkit.execution.rate_limiter import ActionKind, RateLimiter
from mmkit.model import NS_PER_MS

LIMITS = (RateLimit(5, 1000), RateLimit(12, 7000), RateLimit(40, 60_000))
GUARD = 30 * NS_PER_MS


class _Recount:
    """The rules without any cache: every decision counts the timestamps still inside each window."""

    def __init__(self) -> None:
        self.times: list[int] = []
        self.last = 0

    def room(self, now: int, kind: ActionKind) -> int:
        now = self.last = max(now, self.last)  # the clock never steps back (as RateLimiter._now)
        horizon = now - max(limit.window_ns for limit in LIMITS) - GUARD
        self.times = [t for t in self.times if t > horizon]  # outside every window: only keeps the recount short
        rooms = []
        for limit in LIMITS:
            reserve = int(limit.max_count * Decimal("0.2"))
            cap = limit.max_count if kind is ActionKind.CANCEL else limit.max_count - reserve
            inside = sum(1 for t in self.times if t > now - limit.window_ns - GUARD)
            rooms.append(cap - inside)
        return max(min(rooms), 0)

    def acquire(self, now: int, kind: ActionKind) -> bool:
        now = max(now, self.last)
        if self.room(now, kind) <= 0:
            return False
        self.times.append(now)
        return True


def test_every_decision_equals_a_full_recount() -> None:
    rng = random.Random(11)
    limiter = RateLimiter(LIMITS, window_guard_ns=GUARD)
    recount = _Recount()
    now = 0
    granted = denied = 0
    for _ in range(6000):
        step = rng.choice((0, 1, 5, 50, 200, 900, 3000, 20_000))
        now += step * NS_PER_MS
        asked = now - NS_PER_MS * rng.choice((0, 0, 0, 400))  # sometimes the clock steps back
        kind = rng.choice((ActionKind.PLACE, ActionKind.REPLACE, ActionKind.CANCEL))
        if rng.random() < 0.2:
            assert limiter.headroom(asked, kind) == recount.room(asked, kind)
            continue
        expected = recount.acquire(asked, kind)
        assert limiter.try_acquire(asked, kind) is expected
        granted += expected
        denied += not expected
    assert granted > 1000 and denied > 500  # both outcomes were compared, many times


def test_an_action_appended_to_empty_windows_leaves_them_in_time() -> None:
    limiter = RateLimiter((RateLimit(2, 1000),), window_guard_ns=0)
    assert limiter.headroom(0, ActionKind.CANCEL) == 2  # empty windows: nothing to expire
    assert limiter.try_acquire(0, ActionKind.CANCEL)
    assert limiter.try_acquire(10 * NS_PER_MS, ActionKind.CANCEL)
    assert not limiter.try_acquire(999 * NS_PER_MS, ActionKind.CANCEL)
    assert limiter.try_acquire(1000 * NS_PER_MS, ActionKind.CANCEL)  # the first one left its window


def test_seeded_older_actions_leave_at_their_own_time() -> None:
    """seed() brings in actions older than the next expiry known: they must leave when they are due."""
    limiter = RateLimiter((RateLimit(2, 1000),), window_guard_ns=0)
    assert limiter.try_acquire(900 * NS_PER_MS, ActionKind.CANCEL)  # next expiry: 1900 ms
    assert limiter.seed([100 * NS_PER_MS]) == 1
    assert limiter.headroom(1050 * NS_PER_MS, ActionKind.CANCEL) == 0
    assert limiter.headroom(1100 * NS_PER_MS, ActionKind.CANCEL) == 1  # the seeded one left at 1100 ms
