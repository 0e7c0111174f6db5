"""Moves the local TrueX exchange: a reference price and a crowd of simulated takers.

The reference price comes from a random walk or, when a recording is given,
from the replayed Binance best bid/ask (``mmkit.backtest.binance``). Each
step sets the exchange's reference (the centre of its ±2.5 % band), requotes
a thin layer of simulated makers around it, and sends a few IOC takers that
trade against whatever rests within ``taker_reach_bps`` of the reference —
which is how our quotes get filled in ``make demo``.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

from loguru import logger

from connectors.truex.sim.exchange import TrueXExchange
from mmkit.model import Side


class RandomWalk:
    """Geometric random walk: ``volatility_bps`` per square-root second."""

    def __init__(self, start: Decimal, volatility_bps: Decimal, seed: int = 7) -> None:
        self._price = float(start)  # a simulation input, never an order or a ledger value
        self._sigma = float(volatility_bps) / 10_000
        self._rng = random.Random(seed)

    def step(self, dt_s: float) -> Decimal:
        self._price *= math.exp(self._rng.gauss(0.0, self._sigma * math.sqrt(dt_s)))
        return Decimal(f"{self._price:.2f}")


class RecordingPrices:
    """Mid of the recorded Binance best bid/ask, advanced by wall-clock time x ``speed``; loops at the end."""

    def __init__(self, directory: Path, speed: float = 1.0) -> None:
        self._directory = directory
        self._speed = speed
        self._iter = self._mids()
        self._elapsed_ns = 0.0
        self._start_ns: int | None = None
        self._current: tuple[int, Decimal] = next(self._iter)

    def _mids(self) -> Iterator[tuple[int, Decimal]]:
        from mmkit.backtest.binance import TopOfBook, read_recording, recording_files

        while True:
            for event in read_recording(recording_files(self._directory), with_tickers=True):
                if isinstance(event, TopOfBook):
                    yield event.ts_recv, (event.bid_price + event.ask_price) / 2

    def step(self, dt_s: float) -> Decimal:
        if self._start_ns is None:
            self._start_ns = self._current[0]
        self._elapsed_ns += dt_s * self._speed * 1e9
        target = self._start_ns + int(self._elapsed_ns)
        while self._current[0] < target:
            ts, mid = next(self._iter)
            if ts < self._current[0]:  # the recording looped: restart the clock
                self._start_ns, self._elapsed_ns = ts, 0.0
                self._current = (ts, mid)
                break
            self._current = (ts, mid)
        return self._current[1]


class MarketDriver:
    """A background thread stepping the reference price, the sim makers and the takers."""

    def __init__(
        self,
        exchange: TrueXExchange,
        prices: RandomWalk | RecordingPrices,
        *,
        interval_s: float = 0.25,
        taker_probability: float = 0.3,
        taker_qty: Decimal = Decimal("0.001"),
        taker_reach_bps: Decimal = Decimal(15),
        maker_levels: int = 3,
        maker_offset_bps: Decimal = Decimal(20),
        maker_qty: Decimal = Decimal("0.05"),
        seed: int = 11,
    ) -> None:
        self.exchange = exchange
        self.prices = prices
        self.interval_s = interval_s
        self.taker_probability = taker_probability
        self.taker_qty = taker_qty
        self.taker_reach_bps = taker_reach_bps
        self.maker_levels = maker_levels
        self.maker_offset_bps = maker_offset_bps
        self.maker_qty = maker_qty
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def step(self) -> None:
        """One step (also callable directly from tests, without the thread)."""
        inst = self.exchange.instrument
        ref = self.prices.step(self.interval_s)
        self.exchange.set_reference_price(ref)
        bps = Decimal(1) / 10_000
        bids, asks = [], []
        for level in range(self.maker_levels):
            off = (self.maker_offset_bps + level * 5) * bps
            bid = inst.round_price(ref * (1 - off), Side.BUY)
            ask = inst.round_price(ref * (1 + off), Side.SELL)
            bids.append((bid, inst.round_qty(self.maker_qty, bid)))
            asks.append((ask, inst.round_qty(self.maker_qty, ask)))
        self.exchange.requote_maker(bids, asks)
        if self._rng.random() < self.taker_probability:
            side = Side.BUY if self._rng.random() < 0.5 else Side.SELL
            reach = self.taker_reach_bps * bps
            limit = ref * (1 + reach) if side is Side.BUY else ref * (1 - reach)
            limit = inst.round_price(limit, side.opposite)
            qty = inst.round_qty(self.taker_qty, limit)
            if qty > 0:
                self.exchange.submit_taker(side, qty, limit)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="truex-sim-driver", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.step()
            except Exception as exc:  # the driver must keep the exchange alive
                logger.opt(exception=exc).error("market driver step failed")
