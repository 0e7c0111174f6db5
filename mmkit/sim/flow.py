"""Synthetic market participants for an ExchangeVenue priced off a reference venue.

This is the documented, seeded model behind "quote on a simulated venue,
priced from a recorded reference venue, with taker flow derived from the
recorded trades" (the demo and backtest setup (b)):

* **Makers**: whenever the reference mid moves, the synthetic makers re-quote
  a ladder of ``maker_levels`` a side at ``mid ± maker_half_spread_bps`` (one
  tick apart), ``maker_qty`` each. They give the venue a two-sided book and a
  mid for its price band; a strategy quoting inside them is at the top.
* **Takers**: every reference trade (price p, size q, aggressor side a) sends,
  with probability ``participation``, an IOC order on side a of size
  ``q · size_scale`` (rounded down to the lot, capped at ``max_taker_qty``),
  limited at ``p · (1 ± reach_bps)``: a taker willing to pay up to ``reach``
  worse than the reference print. Our quotes fill when they are the best
  price within that reach, so fills come when the reference moves towards
  us: adverse selection is in the model, not bolted on.
* Randomness comes only from ``random.Random(seed)``; the same inputs and
  seed give the same flow.
* :attr:`SyntheticMarket.tape` records, per distance from the mid, what the
  tape printed and what the takers did (:mod:`mmkit.sim.calibration`); the
  backtest reports it. Backtests use ``reach_bps`` 0 (a taker pays no worse
  than the recorded print) unless asked otherwise.

Not modelled: takers reacting to our quotes, hidden liquidity, cross-venue
latency between the reference and this venue (the reference is seen at the
same instant by the makers, the takers and the strategy's price feed).
"""

from __future__ import annotations

import random
from decimal import Decimal

import attrs
from loguru import logger

from mmkit.model import Side, Trade
from mmkit.sim.calibration import TapeStats
from mmkit.sim.exchange_venue import ExchangeVenue

BPS = Decimal(10_000)


@attrs.frozen
class FlowConfig:
    maker_half_spread_bps: Decimal = Decimal(40)
    maker_qty: Decimal = Decimal("0.5")
    maker_levels: int = 5
    #: Re-quote the makers when the reference mid moved at least this much.
    maker_requote_bps: Decimal = Decimal("0.5")
    participation: float = 0.5
    size_scale: Decimal = Decimal("0.2")
    max_taker_qty: Decimal = Decimal("0.05")
    reach_bps: Decimal = Decimal(30)
    seed: int = 7


class SyntheticMarket:
    """Drives makers and takers on ``venue`` from reference mids and trades (a replay sink)."""

    def __init__(self, venue: ExchangeVenue, symbol: str, config: FlowConfig | None = None) -> None:
        self.venue = venue
        self.symbol = symbol
        self.config = config or FlowConfig()
        self.instrument = venue.rules.instrument(symbol)
        self._rng = random.Random(self.config.seed)
        self._last_maker_mid: Decimal | None = None
        self.reference_mid: Decimal | None = None
        self.taker_orders = 0
        self.taker_fills = 0
        self.taker_errors = 0
        self.tape = TapeStats()

    def on_reference_mid(self, mid: Decimal) -> None:
        self.reference_mid = mid
        last = self._last_maker_mid
        if last is not None and abs(mid - last) * BPS < self.config.maker_requote_bps * last:
            return
        self._last_maker_mid = mid
        half = mid * self.config.maker_half_spread_bps / BPS
        self.venue.quote_around(mid, half, self.config.maker_qty, levels=self.config.maker_levels, symbol=self.symbol)

    def on_reference_trade(self, trade: Trade) -> None:
        if trade.aggressor is None or self.reference_mid is None:
            return
        index = self.tape.on_trade(trade.price, trade.qty, trade.aggressor is Side.BUY, self.reference_mid)
        if self._rng.random() >= self.config.participation:
            return
        cfg = self.config
        reach = trade.price * cfg.reach_bps / BPS
        limit = trade.price + reach if trade.aggressor is Side.BUY else trade.price - reach
        limit = self.instrument.round_price(limit, trade.aggressor.opposite)  # never more generous than the reach
        qty = self.instrument.round_qty(min(trade.qty * cfg.size_scale, cfg.max_taker_qty), limit)
        if qty <= 0:
            return
        self.taker_orders += 1
        try:
            executions = self.venue.take(trade.aggressor, qty, limit, symbol=self.symbol)
        except ValueError as exc:  # e.g. outside the venue's price band: the taker simply does not trade
            self.taker_errors += 1
            logger.debug("synthetic taker refused: {}", exc)
            return
        self.taker_fills += len(executions)
        self.tape.on_taker(index, len(executions))

