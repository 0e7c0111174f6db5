"""CircuitBreaker: stop sending after a burst of failures, probe again after a cooldown.

Why: a venue that rejects everything (bad config, margin, maintenance)
should not be hammered; each reject may count against our rate limits and
reputation. CLOSED lets everything through; ``max_failures`` failures within
``window_ns`` trip it OPEN; after ``cooldown_ns`` it goes HALF_OPEN and
lets exactly one trial through: success closes it, failure re-opens it.
"""

from __future__ import annotations

import enum
from collections import deque

from loguru import logger


class BreakerState(enum.Enum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


_CLOSED = BreakerState.CLOSED


class CircuitBreaker:
    """Failure-count breaker on integer-ns time."""

    def __init__(self, max_failures: int, window_ns: int, cooldown_ns: int, name: str = "orders") -> None:
        if max_failures < 1 or window_ns <= 0 or cooldown_ns < 0:
            raise ValueError("max_failures >= 1, window_ns > 0 and cooldown_ns >= 0 are required")
        self.max_failures = max_failures
        self.window_ns = window_ns
        self.cooldown_ns = cooldown_ns
        self.name = name
        self._failures: deque[int] = deque()
        self._state = BreakerState.CLOSED
        self._opened_ns = 0
        self._trial_out = False
        self.trips = 0

    def state(self, now_ns: int) -> BreakerState:
        if self._state is BreakerState.OPEN and now_ns - self._opened_ns >= self.cooldown_ns:
            self._state = BreakerState.HALF_OPEN
            self._trial_out = False
        return self._state

    def allow(self, now_ns: int) -> bool:
        """May an action go out now? In HALF_OPEN only one trial until its outcome is recorded."""
        if self._state is _CLOSED:  # state() changes only an OPEN breaker: the usual answer without the call
            return True
        state = self.state(now_ns)
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._trial_out:
            self._trial_out = True
            return True
        return False

    def record_success(self, now_ns: int) -> None:
        if self.state(now_ns) is BreakerState.HALF_OPEN:
            logger.info("breaker {}: trial succeeded, closing", self.name)
            self._state = BreakerState.CLOSED
            self._failures.clear()

    def record_failure(self, now_ns: int, reason: str = "") -> None:
        state = self.state(now_ns)
        if state is BreakerState.HALF_OPEN:
            self._trip(now_ns, f"trial failed: {reason}")
            return
        if state is BreakerState.OPEN:
            return
        self._failures.append(now_ns)
        cutoff = now_ns - self.window_ns
        while self._failures and self._failures[0] <= cutoff:
            self._failures.popleft()
        if len(self._failures) >= self.max_failures:
            self._trip(now_ns, reason)

    def _trip(self, now_ns: int, reason: str) -> None:
        self._state = BreakerState.OPEN
        self._opened_ns = now_ns
        self._trial_out = False
        self._failures.clear()
        self.trips += 1
        logger.error("breaker {} OPEN for {} ms: {}", self.name, self.cooldown_ns // 1_000_000, reason)
