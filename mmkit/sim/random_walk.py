"""A seeded random-walk reference market, for running without any recording.

Each tick the mid moves by a log-normal step (``volatility_bps`` per
square-root second) and, with Poisson arrivals, the reference prints trades
on either side. It publishes the same things a replayed recording does (a
mid and trades), so the synthetic market and the strategy's fair value are
driven identically in both cases.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from decimal import Decimal

from mmkit.clock import Clock
from mmkit.model import NS_PER_S, FairValue, Side, Trade

BPS = 10_000


class RandomWalkReference:
    """A TimeIterator that moves a reference mid and prints reference trades."""

    def __init__(
        self,
        start_price: Decimal,
        volatility_bps: Decimal,
        seed: int,
        *,
        trades_per_s: float = 5.0,
        trade_qty: Decimal = Decimal("0.05"),
        price_increment: Decimal = Decimal("0.01"),
        venue: str = "random_walk",
        symbol: str = "REF",
    ) -> None:
        self._rng = random.Random(seed)
        self.mid = start_price
        self._sigma = float(volatility_bps) / BPS
        self._trades_per_s = trades_per_s
        self._trade_qty = trade_qty
        self._increment = price_increment
        self.venue = venue
        self.symbol = symbol
        self._mid_listeners: list[Callable[[Decimal], None]] = []
        self._trade_listeners: list[Callable[[Trade], None]] = []
        self._last_ns = 0
        self._trade_seq = 0

    def on_mid(self, listener: Callable[[Decimal], None]) -> None:
        self._mid_listeners.append(listener)

    def on_trade(self, listener: Callable[[Trade], None]) -> None:
        self._trade_listeners.append(listener)

    def fair(self, now_ns: int) -> FairValue:
        return FairValue(self.mid, 1.0 if self._last_ns else 0.0, self._last_ns, sources=1)

    def start(self, clock: Clock, ts_ns: int) -> None:
        self._last_ns = ts_ns
        for listener in self._mid_listeners:
            listener(self.mid)

    def stop(self, clock: Clock) -> None:
        return None

    def tick(self, ts_ns: int) -> None:
        dt = max(0, ts_ns - self._last_ns) / NS_PER_S
        self._last_ns = ts_ns
        if dt <= 0:
            return
        step = self._rng.gauss(0.0, self._sigma * math.sqrt(dt))
        raw = self.mid * Decimal(repr(math.exp(step)))
        self.mid = raw.quantize(self._increment)
        for listener in self._mid_listeners:
            listener(self.mid)
        arrivals = self._poisson(self._trades_per_s * dt)
        for _ in range(arrivals):
            aggressor = Side.BUY if self._rng.random() < 0.5 else Side.SELL
            half_tick = self._increment if aggressor is Side.BUY else -self._increment
            self._trade_seq += 1
            trade = Trade(self.venue, self.symbol, f"RW{self._trade_seq}", self.mid + half_tick,
                          self._trade_qty, aggressor, ts_ns, ts_ns)
            for trade_listener in self._trade_listeners:
                trade_listener(trade)

    def _poisson(self, lam: float) -> int:
        # Knuth's method: fine for the small rates of a tick.
        limit, k, p = math.exp(-lam), 0, 1.0
        while True:
            p *= self._rng.random()
            if p <= limit:
                return k
            k += 1
