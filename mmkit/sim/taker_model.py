"""FittedTakers: seeded synthetic taker arrivals drawn from a :class:`~mmkit.sim.calibration.TapeFit` alone.

Why a model apart from the venue: what the takers are (when they come, which
side, how far from the mid they are willing to trade, how big) must follow
the fitted table exactly and be testable without a book. The draws:

* arrivals are a Poisson process at the fitted total rate (times ``share``,
  1 = the tape's own rate): exponential gaps in recorded time;
* each arrival picks a bucket in proportion to the buckets' rates, then a
  side by the bucket's share of buys, then a distance and a size by inverse
  transform sampling of the bucket's quantiles (linear between knots). So a
  drawn size or distance lies between the smallest and the largest the tape
  printed in that bucket, and never beyond them.

Randomness comes only from ``random.Random(seed)``: the same fit and seed give
the same arrivals.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import NamedTuple

from mmkit.sim.calibration import NS_PER_S, QUANTILES, TapeFit

__all__ = ["Arrival", "FittedTakers"]

_KNOTS: tuple[float, ...] = tuple(p / 100 for p in QUANTILES)


class Arrival(NamedTuple):
    """One synthetic taker: at ``ts_ns``, from ``bucket``, willing to trade up to ``distance_bps`` from the mid.

    A named tuple: thousands are drawn a second of simulated time, and most
    reach no order, so the size is drawn (``size_u``, a uniform) but only
    turned into one by :meth:`FittedTakers.size` for a taker that may trade.
    """

    ts_ns: int
    #: The bucket's index among :data:`~mmkit.sim.calibration.BIN_EDGES_BPS`'s buckets.
    bucket: int
    buy: bool
    distance_bps: float
    size_u: float
    #: The bucket's position in the fit's ``buckets``.
    slot: int


def _inverse(knots: Sequence[float], u: float) -> float:
    """The value at cumulative probability ``u`` of a distribution given by its values at :data:`QUANTILES`."""
    k = min(bisect.bisect_right(_KNOTS, u) - 1, len(_KNOTS) - 2)
    lo, hi = _KNOTS[k], _KNOTS[k + 1]
    a, b = knots[k], knots[k + 1]
    return min(max(a + (b - a) * (u - lo) / (hi - lo), a), b)


class FittedTakers:
    """Arrivals in recorded time, from ``start_ns`` on, drawn from ``fit``."""

    def __init__(self, fit: TapeFit, *, seed: int, start_ns: int, share: float = 1.0) -> None:
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"share of the fitted rate must be within [0, 1], got {share}")
        self.fit = fit
        self._rng = random.Random(seed)
        buckets = fit.buckets
        self._sizes = [tuple(float(q) for q in b.size_q) for b in buckets]
        self._size_max = [b.size_q[-1] for b in buckets]
        rates = [b.rate_per_s for b in buckets]
        total_rate = sum(rates)
        self._cumulative: list[float] = []
        running = 0.0
        for rate in rates:
            running += rate
            self._cumulative.append(running / total_rate)
        self._draw = [(b.index, b.buy_share, b.distance_q) for b in buckets]
        self.max_distance_bps = fit.max_distance_bps
        #: Mean gap between arrivals in ns; None when the fit (or the share) leaves no taker at all.
        total = total_rate * share
        self._mean_gap_ns = NS_PER_S / total if total > 0 else None
        self._next_ns = start_ns + self._gap() if self._mean_gap_ns is not None else None

    def _gap(self) -> int:
        assert self._mean_gap_ns is not None
        return max(1, round(self._rng.expovariate(1.0) * self._mean_gap_ns))

    @property
    def next_ns(self) -> int | None:
        """When the next taker arrives (None: never)."""
        return self._next_ns

    def size(self, arrival: Arrival) -> Decimal:
        """The arrival's size: its bucket's size distribution at ``size_u``, never above the largest recorded."""
        slot = arrival.slot
        return min(Decimal(_inverse(self._sizes[slot], arrival.size_u)), self._size_max[slot])

    def until(self, ts_ns: int) -> Iterator[Arrival]:
        """Every arrival at or before ``ts_ns`` not handed out yet, in time order."""
        at = self._next_ns
        if at is None or at > ts_ns:
            return
        rng_random, cumulative, draw, last = self._rng.random, self._cumulative, self._draw, len(self._draw) - 1
        while at is not None and at <= ts_ns:
            slot = min(bisect.bisect_left(cumulative, rng_random()), last)
            index, buy_share, distances = draw[slot]
            buy = rng_random() < buy_share
            distance = _inverse(distances, rng_random())
            size_u = rng_random()
            self._next_ns = at + self._gap()
            yield Arrival(at, index, buy, distance, size_u, slot)
            at = self._next_ns
