"""PriceAggregator: one fair value, with a confidence, from several reference venues.

Why a confidence and not just a price: the quoting venue is priced off the
big venues, so when they disagree or go quiet we must know it. The
confidence falls with fewer fresh venues and with wider dispersion between
them, and reaches 0 when no venue is fresh: the controller then pulls quotes
instead of pricing off a stale number.

Hot path: ``on_book``/``update`` runs on the I/O path for every top-of-book
change, so it only stores the venue's mid (Decimal arithmetic on two numbers)
and, when the new fair value has moved past the reprice threshold since the
last wake, calls ``wake`` (the lead passes ``clock.wake``). The full
computation is a handful of venues: median, outlier filter, weighted mean.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from decimal import Decimal

import attrs
from loguru import logger

from mmkit.model import NS_PER_MS, FairValue

_TWO = Decimal(2)


@attrs.frozen(slots=True)
class AggregatorConfig:
    """Tuning of the fair value; defaults follow the desk's spec."""

    #: A venue whose last update is older than this is ignored.
    stale_ms: int = 2_000
    #: Mids further than this from the median (in bps) are outliers and dropped.
    outlier_bps: Decimal = Decimal(50)
    #: Venues that must be fresh for full confidence (fewer scale it down).
    full_confidence_venues: int = 3
    #: Dispersion (max deviation from the fair value, bps) at which confidence halves.
    dispersion_half_bps: Decimal = Decimal(10)
    #: Wake the clock when the fair value moved at least this much (bps) since the last wake.
    reprice_bps: Decimal = Decimal(1)
    #: Weight per venue (absent venues weigh 1).
    weights: Mapping[str, Decimal] = attrs.Factory(dict)

    def __attrs_post_init__(self) -> None:
        if self.stale_ms <= 0 or self.full_confidence_venues <= 0:
            raise ValueError("stale_ms and full_confidence_venues must be positive")
        if any(w < 0 for w in self.weights.values()):
            raise ValueError("venue weights must not be negative")


@attrs.define(slots=True)
class _Quote:
    mid: Decimal
    spread: Decimal
    ts_ns: int


class PriceAggregator:
    """Fair value from the mids of several venues; see the module docstring."""

    def __init__(
        self,
        config: AggregatorConfig | None = None,
        wake: Callable[[], None] | None = None,
        now_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.config = config or AggregatorConfig()
        self._wake = wake
        self._now = now_ns
        self._stale_ns = self.config.stale_ms * NS_PER_MS
        self._quotes: dict[str, _Quote] = {}
        self._last_wake_price: Decimal | None = None
        self._last_fresh_count = 0
        self.wakes = 0
        self.rejected_outliers = 0
        self._fair_listeners: list[Callable[[Decimal], None]] = []
        self._log = logger.bind(component="PriceAggregator")

    def add_fair_listener(self, listener: Callable[[Decimal], None]) -> None:
        """Called with the fair price whenever it moved past the reprice threshold (e.g. a simulated venue)."""
        self._fair_listeners.append(listener)

    # -- input (I/O path) -------------------------------------------------

    def update(self, venue: str, bid: Decimal, ask: Decimal, ts_ns: int) -> None:
        """Record a venue's best bid/ask at ``ts_ns`` (local receive time)."""
        if bid <= 0 or ask <= 0 or bid >= ask:
            # A crossed or empty top says the venue's book is broken, not that the price moved.
            self._quotes.pop(venue, None)
            return
        self._quotes[venue] = _Quote((bid + ask) / _TWO, ask - bid, ts_ns)
        self._maybe_wake(ts_ns)

    def on_book(self, venue: str, best_bid: Decimal | None, best_ask: Decimal | None, ts_ns: int) -> None:
        """Like :meth:`update`, but an empty side marks the venue as unusable."""
        if best_bid is None or best_ask is None:
            self._quotes.pop(venue, None)
            self._maybe_wake(ts_ns)
            return
        self.update(venue, best_bid, best_ask, ts_ns)

    def mark_down(self, venue: str) -> None:
        """Forget a venue at once (its feed reported a disconnect or a failed checksum)."""
        if self._quotes.pop(venue, None) is not None:
            self._maybe_wake(self._now())

    # -- output -----------------------------------------------------------

    def fair(self, now_ns: int | None = None) -> FairValue:
        """The fair value and its confidence at ``now_ns`` (defaults to the injected clock)."""
        return self._compute(self._now() if now_ns is None else now_ns, count_outliers=True)

    def _compute(self, now: int, count_outliers: bool) -> FairValue:
        fresh = [(venue, q) for venue, q in self._quotes.items() if now - q.ts_ns <= self._stale_ns]
        if not fresh:
            return FairValue(price=None, confidence=0.0, ts=now, sources=0)
        mids = sorted(q.mid for _, q in fresh)
        median = _median(mids)
        limit = median * self.config.outlier_bps / Decimal(10_000)
        kept = [(venue, q) for venue, q in fresh if abs(q.mid - median) <= limit]
        if count_outliers:
            self.rejected_outliers += len(fresh) - len(kept)
        weights = self.config.weights
        total = sum((weights.get(venue, Decimal(1)) for venue, _ in kept), Decimal(0))
        if total <= 0:
            price = median
        else:
            price = sum((q.mid * weights.get(venue, Decimal(1)) for venue, q in kept), Decimal(0)) / total
        dispersion_bps = max(abs(q.mid - price) for _, q in kept) / price * Decimal(10_000)
        return FairValue(price=price, confidence=self._confidence(len(kept), dispersion_bps), ts=now, sources=len(kept))

    def fresh_venues(self, now_ns: int | None = None) -> list[str]:
        now = self._now() if now_ns is None else now_ns
        return sorted(v for v, q in self._quotes.items() if now - q.ts_ns <= self._stale_ns)

    def _confidence(self, count: int, dispersion_bps: Decimal) -> float:
        coverage = min(1.0, count / self.config.full_confidence_venues)
        half = float(self.config.dispersion_half_bps)
        agreement = half / (half + float(dispersion_bps)) if half > 0 else 1.0
        return max(0.0, min(1.0, coverage * agreement))

    # -- wake-up ----------------------------------------------------------

    def _maybe_wake(self, now_ns: int) -> None:
        """Wake the clock when the fair value crossed the reprice threshold, or a venue went away."""
        if self._wake is None and not self._fair_listeners:
            return
        fair = self._compute(now_ns, count_outliers=False)
        fresh_count = fair.sources
        moved = False
        if fair.price is None:
            moved = self._last_wake_price is not None
        elif self._last_wake_price is None:
            moved = True
        else:
            threshold = self._last_wake_price * self.config.reprice_bps / Decimal(10_000)
            moved = abs(fair.price - self._last_wake_price) >= threshold
        if moved or fresh_count < self._last_fresh_count:
            self._last_wake_price = fair.price
            self._last_fresh_count = fresh_count
            self.wakes += 1
            if self._wake is not None:
                self._wake()
            if fair.price is not None:
                for listener in self._fair_listeners:
                    listener(fair.price)
        else:
            self._last_fresh_count = max(self._last_fresh_count, fresh_count)

    def summary(self, now_ns: int | None = None) -> dict[str, str]:
        fair = self.fair(now_ns)
        return {
            "price": "" if fair.price is None else str(fair.price),
            "confidence": f"{fair.confidence:.3f}",
            "sources": str(fair.sources),
            "venues": ",".join(self.fresh_venues(now_ns)),
        }


def _median(sorted_values: list[Decimal]) -> Decimal:
    n = len(sorted_values)
    middle = n // 2
    if n % 2:
        return sorted_values[middle]
    return (sorted_values[middle - 1] + sorted_values[middle]) / _TWO
