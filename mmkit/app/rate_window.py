"""The rate limiter's window across restarts: seeded from the journal at start, journaled while running.

Why a module of its own: issue 11 case 6 (a clean stop then an immediate
restart must not exceed the venue's window) needs three small steps the
Persistence iterator calls at start, every tick and at stop; kept here they
stay one piece, next to the rule that journaled times after "now" are counted
as now (:meth:`mmkit.execution.rate_limiter.RateLimiter.seed`).
"""

from __future__ import annotations

from typing import Any

from loguru import logger

from mmkit.store.journal import Journal


class RateWindowJournal:
    """Journals the limiter's granted actions and seeds a new limiter from them."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self._granted = 0

    @property
    def limiter(self) -> Any:
        limiter = getattr(self.engine.runner.executor, "limiter", None)
        return limiter if limiter is not None and hasattr(limiter, "action_times") else None

    def seed(self, actions: tuple[int, ...]) -> int:
        """Start the limiter from what the journal says was sent (times after now count as now)."""
        limiter = self.limiter
        seeded = 0
        if actions and limiter is not None and hasattr(limiter, "seed"):
            seeded = limiter.seed(actions, self.engine.clock.now_ns)
            if seeded:
                logger.info("rate limiter starts from {} actions sent in its window before this start", seeded)
        self._granted = getattr(limiter, "granted", 0)
        return seeded

    def journal_new(self, journal: Journal | None) -> None:
        """Journal the order-entry actions granted since last time."""
        limiter = self.limiter
        if journal is None or limiter is None:
            return
        granted = limiter.granted
        new = granted - self._granted
        if new <= 0:
            return
        self._granted = granted
        times = limiter.action_times()
        journal.append_actions(times[-new:] if new < len(times) else times)

    def carry(self) -> list[int]:
        """The times a checkpoint keeps: the actions still inside the limiter's longest window."""
        limiter = self.limiter
        return list(limiter.action_times()) if limiter is not None else []
