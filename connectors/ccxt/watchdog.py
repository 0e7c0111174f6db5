"""Backoff and per-feed staleness: ccxt's ``watch_*`` loops can hang silently.

A websocket that stops delivering without closing leaves ``await
watch_order_book()`` pending forever while the last book looks valid. Each
feed therefore carries a deadline: if nothing arrives within ``stale_ns`` the
feed is declared stale (the aggregator stops trusting it) and the connector
tears the socket down and resubscribes.
"""

from __future__ import annotations

import random

import attrs


@attrs.define(slots=True)
class Backoff:
    """Exponential backoff with jitter, reset on success.

    Jitter keeps several feeds that failed together from reconnecting in
    lock-step (and from tripping the venue's connection rate limit).
    """

    initial_s: float = 0.5
    maximum_s: float = 30.0
    factor: float = 2.0
    jitter: float = 0.1
    attempts: int = 0
    _rng: random.Random = attrs.field(factory=lambda: random.Random(7))

    def next_delay(self) -> float:
        delay = min(self.maximum_s, self.initial_s * self.factor**self.attempts)
        self.attempts += 1
        return delay * (1 + self.jitter * self._rng.random())

    def reset(self) -> None:
        self.attempts = 0


@attrs.define(slots=True)
class FeedWatchdog:
    """Remembers when one feed last delivered; answers "is it stale?" against a clock."""

    name: str
    stale_ns: int
    last_ns: int | None = None
    stale_events: int = 0

    def beat(self, now_ns: int) -> None:
        self.last_ns = now_ns

    def is_stale(self, now_ns: int) -> bool:
        return self.last_ns is None or now_ns - self.last_ns > self.stale_ns

    def remaining_s(self, now_ns: int) -> float:
        """Seconds left before the feed counts as stale (the timeout for the next wait)."""
        if self.last_ns is None:
            return self.stale_ns / 1e9
        return max(0.0, (self.last_ns + self.stale_ns - now_ns) / 1e9)
