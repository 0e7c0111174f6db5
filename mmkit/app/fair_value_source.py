"""Where the strategy step's fair price comes from: the FairValueSource protocol and the book-mid source.

Why a module of its own: the StrategyRunner only needs "something with
``fair(now_ns)``", and the assembly picks which (the reference aggregator, a
replay, or, with no reference feeds, the quoted venue's own mid). Keeping the
protocol here lets the runner, the assembly and the build name it without
importing each other.
"""

from __future__ import annotations

from typing import Protocol

from mmkit.book.tracker import OrderBookTracker
from mmkit.model import FairValue


class FairValueSource(Protocol):
    """Where the controller's fair price comes from (aggregator, a book's mid, a replay)."""

    def fair(self, now_ns: int) -> FairValue: ...


class BookMidFairValue:
    """Fair value = mid of one tracked book; confidence 1 while valid and fresh, else 0."""

    def __init__(self, tracker: OrderBookTracker, staleness_ns: int) -> None:
        self.tracker = tracker
        self.staleness_ns = staleness_ns
        self.last_update_ns = 0

    def touch(self, ts_ns: int) -> None:
        self.last_update_ns = ts_ns

    def fair(self, now_ns: int) -> FairValue:
        if not self.tracker.is_valid:
            return FairValue(None, 0.0, now_ns)
        mid = self.tracker.book.mid()
        fresh = now_ns - self.last_update_ns <= self.staleness_ns
        return FairValue(mid, 1.0 if (mid is not None and fresh) else 0.0, self.last_update_ns, sources=1)
