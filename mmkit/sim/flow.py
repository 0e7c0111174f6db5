"""Synthetic market participants for an ExchangeVenue priced off a reference venue.

This is the documented, seeded model behind "quote on a simulated venue,
priced from a recorded reference venue, with taker flow derived from the
recorded trades" (the demo and backtest setup (b)):

* **Makers**: whenever the reference mid moves, the synthetic makers re-quote
  a ladder of ``maker_levels`` a side at ``mid ± maker_half_spread_bps`` (one
  tick apart), ``maker_qty`` each. They give the venue a two-sided book and a
  mid for its price band; a strategy quoting inside them is at the top.
* **Takers fitted on a recording** (a :class:`~mmkit.sim.calibration.TapeFit`
  is given: backtests and the replayed demo): takers arrive as
  :class:`~mmkit.sim.taker_model.FittedTakers` draws them from the run's own
  tape (Poisson arrivals at its rate, each a recorded print resampled whole:
  side, distance from the mid, size). A
  taker is an IOC at ``mid ± (distance + reach_bps)`` from the reference mid
  of its arrival time (rounded to the tick towards the mid), of the drawn
  size (rounded down to the lot). With ``reach_bps`` 0 no taker trades
  further from the mid than the tape's farthest print. Our quotes fill when
  they are within a taker's distance, typically when the reference moved
  towards them before we re-quoted: adverse selection is in the model.
* **Takers following a live tape** (no fit: paper trading, the random-walk
  reference): every reference trade (price p, size q, aggressor side a)
  sends, with probability ``participation``, an IOC order on side a of size
  ``q · size_scale`` (rounded down to the lot, capped at ``max_taker_qty``),
  limited at ``p · (1 ± reach_bps)``.
* Randomness comes only from ``random.Random(seed)``; the same inputs and
  seed give the same flow.

Not modelled: takers reacting to our quotes, hidden liquidity, cross-venue
latency between the reference and this venue (the reference is seen at the
same instant by the makers, the takers and the strategy's price feed), and
clustering of the tape's trades in time (fitted arrivals are Poisson).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import attrs
from loguru import logger

from mmkit.clock import Clock
from mmkit.model import Side, Trade
from mmkit.sim.base_venue import OUR_OWNER
from mmkit.sim.calibration import BIN_EDGES_BPS, TapeFit
from mmkit.sim.exchange_venue import ExchangeVenue
from mmkit.sim.taker_model import Arrival, FittedTakers

BPS = Decimal(10_000)

#: What report.json says the fitted takers are.
FITTED_MODEL = ("Poisson arrivals at the tape's rate; each one a recorded print of the window drawn uniformly and "
                "taken whole (side, distance from the mid, size); IOC at the reference mid of the arrival time "
                "plus that distance (and reach_bps), of that size")


@attrs.frozen
class FlowConfig:
    maker_half_spread_bps: Decimal = Decimal(40)
    maker_qty: Decimal = Decimal("0.5")
    maker_levels: int = 5
    #: Re-quote the makers when the reference mid moved at least this much.
    maker_requote_bps: Decimal = Decimal("0.5")
    #: Live-tape takers only: the share of reference trades copied, their size factor and cap.
    participation: float = 0.5
    size_scale: Decimal = Decimal("0.2")
    max_taker_qty: Decimal = Decimal("0.05")
    #: How much further than the tape (fitted: than the drawn distance; live: than the print) a taker trades.
    reach_bps: Decimal = Decimal(30)
    #: Fitted takers only: the share of the fitted arrival rate sent (1 = the tape's own rate).
    rate_share: float = 1.0
    seed: int = 7


class SyntheticMarket:
    """Drives makers and takers on ``venue`` from reference mids (and trades, or a fitted tape)."""

    def __init__(
        self,
        venue: ExchangeVenue,
        symbol: str,
        config: FlowConfig | None = None,
        *,
        fit: TapeFit | None = None,
        start_ns: int = 0,
        recorded_now: Callable[[int], int] | None = None,
    ) -> None:
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
        self.fit = fit
        self.takers = (FittedTakers(fit, seed=self.config.seed, start_ns=start_ns, share=self.config.rate_share)
                       if fit is not None else None)
        self._recorded_now = recorded_now or (lambda ts: ts)
        self._reach = float(self.config.reach_bps)
        # Per distance bucket: takers arrived (with a mid), their executions, the executions against our orders.
        buckets = len(BIN_EDGES_BPS) + 1
        self.sent = [0] * buckets
        self.executions = [0] * buckets
        self.our_fills = [0] * buckets
        #: Takers that could reach a resting order but whose drawn size is under the venue's lot (not entered).
        self.too_small = 0
        #: Takers that arrived before the reference had a mid (not entered).
        self.without_mid = 0
        self.farthest_bps = 0.0

    # -- reference events ------------------------------------------------------

    def on_reference_mid(self, mid: Decimal, ts_ns: int | None = None) -> None:
        """A new reference mid (recorded at ``ts_ns``): fitted takers due before it trade at the old one."""
        if self.takers is not None and ts_ns is not None:
            self._arrivals_until(ts_ns - 1)
        self.reference_mid = mid
        last = self._last_maker_mid
        if last is not None and abs(mid - last) * BPS < self.config.maker_requote_bps * last:
            return
        self._last_maker_mid = mid
        half = mid * self.config.maker_half_spread_bps / BPS
        self.venue.quote_around(mid, half, self.config.maker_qty, levels=self.config.maker_levels, symbol=self.symbol)

    def on_reference_trade(self, trade: Trade) -> None:
        """Live-tape takers: copy a share of the reference's prints (nothing to do when the flow is fitted)."""
        if self.takers is not None or trade.aggressor is None or self.reference_mid is None:
            return
        if self._rng.random() >= self.config.participation:
            return
        cfg = self.config
        reach = trade.price * cfg.reach_bps / BPS
        limit = trade.price + reach if trade.aggressor is Side.BUY else trade.price - reach
        limit = self.instrument.round_price(limit, trade.aggressor)  # towards the print: never beyond the reach
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

    # -- fitted takers (a TimeIterator after the replay: arrivals up to each tick) ----------------------

    def start(self, clock: Clock, ts_ns: int) -> None:
        return None

    def tick(self, ts_ns: int) -> None:
        if self.takers is not None:
            self._arrivals_until(self._recorded_now(ts_ns))

    def stop(self, clock: Clock) -> None:
        return None

    def _arrivals_until(self, recorded_ns: int) -> None:
        takers = self.takers
        assert takers is not None
        next_ns = takers.next_ns
        if next_ns is None or next_ns > recorded_ns:
            return
        mid = self.reference_mid
        if mid is None:
            self.without_mid += sum(1 for _ in takers.until(recorded_ns))
            return
        # How far from the mid (bps) a buyer and a seller must reach to meet a resting order: most takers reach
        # nothing (their limit is within a tick of the mid), so they are told apart in floats before any Decimal.
        need_buy, need_sell = self._needs(mid)
        sent = self.sent
        reach = self._reach
        for arrival in takers.until(recorded_ns):
            sent[arrival.bucket] += 1
            if arrival.distance_bps + reach < (need_buy if arrival.buy else need_sell) - 1e-6:
                continue
            if self._take(arrival, mid):
                need_buy, need_sell = self._needs(mid)  # the book changed

    def _needs(self, mid: Decimal) -> tuple[float, float]:
        """Distances (bps) from ``mid`` to the best ask and bid now (inf where there is none)."""
        mid_f = float(mid)
        bid, ask = self.venue.best_prices(self.symbol)
        need_buy = (float(ask) - mid_f) / mid_f * 10_000.0 if ask is not None else math.inf
        need_sell = (mid_f - float(bid)) / mid_f * 10_000.0 if bid is not None else math.inf
        return need_buy, need_sell

    def _take(self, arrival: Arrival, mid: Decimal) -> bool:
        """Send one taker that may reach a resting order; True when it traded."""
        side = Side.BUY if arrival.buy else Side.SELL
        offset = mid * Decimal(arrival.distance_bps + self._reach) / BPS
        # Rounded towards the mid (a buyer's limit down, a seller's up): never further than drawn.
        limit = self.instrument.round_price(mid + offset if arrival.buy else mid - offset, side)
        qty = self.instrument.round_qty(arrival.size, mid)
        if qty <= 0:
            self.too_small += 1
            return False
        self.taker_orders += 1
        try:
            executions = self.venue.take(side, qty, limit, symbol=self.symbol)
        except ValueError as exc:  # e.g. outside the venue's price band: the taker simply does not trade
            self.taker_errors += 1
            logger.debug("synthetic taker refused: {}", exc)
            return False
        if not executions:
            return False
        bucket = arrival.bucket
        self.taker_fills += len(executions)
        self.executions[bucket] += len(executions)
        self.our_fills[bucket] += sum(1 for ex in executions if ex.maker_owner == OUR_OWNER)
        for ex in executions:
            away_bps = float(((ex.price - mid) if arrival.buy else (mid - ex.price)) / mid) * 10_000.0
            self.farthest_bps = max(self.farthest_bps, away_bps)
        return True

    # -- report ------------------------------------------------------------------------

    def flow_report(self) -> dict[str, Any]:
        """report.json's ``taker_flow``: the fitted table, and per bucket what the takers sent and filled."""
        cfg = self.config
        if self.fit is None:
            return {"model": "live tape", "reach_bps": str(cfg.reach_bps), "participation": cfg.participation,
                    "size_scale": str(cfg.size_scale), "max_taker_qty": str(cfg.max_taker_qty),
                    "takers_sent": self.taker_orders, "taker_fills": self.taker_fills}
        table = self.fit.as_dict()
        for row, bucket in zip(table["bins"], self.fit.buckets, strict=True):
            row["takers_sent"] = self.sent[bucket.index]
            row["taker_fills"] = self.executions[bucket.index]
            row["our_fills"] = self.our_fills[bucket.index]
        return {
            "model": FITTED_MODEL,
            "reach_bps": str(cfg.reach_bps),
            "participation": cfg.rate_share,
            "seed": cfg.seed,
            **table,
            "takers_sent": sum(self.sent),
            "takers_entered": self.taker_orders,
            "takers_below_lot": self.too_small,
            "takers_without_mid": self.without_mid,
            "takers_refused": self.taker_errors,
            "taker_fills": self.taker_fills,
            "farthest_fill_bps": round(self.farthest_bps, 4),
        }


__all__ = ["FITTED_MODEL", "FlowConfig", "SyntheticMarket"]
