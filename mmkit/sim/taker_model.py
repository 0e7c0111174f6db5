"""FittedTakers: seeded synthetic taker arrivals drawn from a :class:`~mmkit.sim.calibration.TapeFit` alone.

Why a model apart from the venue: what the takers are (when they come, which
side, how far from the mid they are willing to trade, how big) must follow
the fit exactly and be testable without a book. The draws:

* arrivals are a Poisson process at the fitted total rate (times ``share``,
  1 = the tape's own rate): exponential gaps in recorded time;
* each arrival is one print of the fitted tape, drawn uniformly and taken
  whole: its side, its distance from the mid, its size. So each bucket gets
  its fitted rate, share of buys and size and distance distributions, the
  joint shape (big prints reaching further) is kept, and no drawn size or
  distance is one the tape did not print.

Why not interpolate between the printed quantiles: the tails are thin (most
prints are at the touch, a few sweep several bps), and a straight line from
the 90th percentile to the largest print would make a tenth of the takers
several times bigger and further-reaching than the tape's.

Randomness comes only from ``random.Random(seed)``: the same fit and seed give
the same arrivals.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from decimal import Decimal
from typing import NamedTuple

from mmkit.sim.calibration import NS_PER_S, TapeFit

__all__ = ["Arrival", "FittedTakers"]


class Arrival(NamedTuple):
    """One synthetic taker: at ``ts_ns``, from ``bucket``, willing to trade up to ``distance_bps`` from the mid.

    A named tuple: thousands are drawn a second of simulated time.
    """

    ts_ns: int
    #: The bucket's index among :data:`~mmkit.sim.calibration.BIN_EDGES_BPS`'s buckets.
    bucket: int
    buy: bool
    distance_bps: float
    size: Decimal


class FittedTakers:
    """Arrivals in recorded time, from ``start_ns`` on, drawn from ``fit``."""

    def __init__(self, fit: TapeFit, *, seed: int, start_ns: int, share: float = 1.0) -> None:
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"share of the fitted rate must be within [0, 1], got {share}")
        self.fit = fit
        self._rng = random.Random(seed)
        self._prints = [(b.index, buy, distance, size) for b in fit.buckets for buy, distance, size in b.samples]
        if len(self._prints) != fit.trades:
            raise ValueError("the fit carries no prints to draw from (built without fit_tape?)")
        total = fit.rate_per_s * share
        #: Mean gap between arrivals in ns; None when the fit (or the share) leaves no taker at all.
        self._mean_gap_ns = NS_PER_S / total if total > 0 else None
        self._next_ns = start_ns + self._gap() if self._mean_gap_ns is not None else None

    def _gap(self) -> int:
        assert self._mean_gap_ns is not None
        return max(1, round(self._rng.expovariate(1.0) * self._mean_gap_ns))

    @property
    def next_ns(self) -> int | None:
        """When the next taker arrives (None: never)."""
        return self._next_ns

    def until(self, ts_ns: int) -> Iterator[Arrival]:
        """Every arrival at or before ``ts_ns`` not handed out yet, in time order."""
        at = self._next_ns
        if at is None or at > ts_ns:
            return
        prints, rng_random, expovariate = self._prints, self._rng.random, self._rng.expovariate
        count = len(prints)
        mean_gap = self._mean_gap_ns
        assert mean_gap is not None  # a next arrival exists only with a rate
        while at is not None and at <= ts_ns:
            index, buy, distance, size = prints[min(int(rng_random() * count), count - 1)]
            self._next_ns = at + max(1, round(expovariate(1.0) * mean_gap))  # :meth:`_gap`, inlined: per taker
            yield Arrival(at, index, buy, distance, size)
            at = self._next_ns
