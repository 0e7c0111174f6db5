"""Avellaneda–Stoikov quoting with a rolling horizon and a rolling volatility.

Formulas (Avellaneda & Stoikov, 2008, arithmetic Brownian mid)::

    r = s - q · γ · σ² · τ                         reservation price
    δ = γ · σ² · τ + (2/γ) · ln(1 + γ/κ)           total optimal spread
    bid = r - δ/2        ask = r + δ/2

* ``s`` the fair price; ``q`` the inventory in units of ``order_size``
  (``ctx.position / order_size``), so γ's scale does not depend on the lot;
* ``γ`` risk aversion, ``κ`` order-arrival decay (both per price unit);
* ``τ = T - t``: the original model ends the session at ``T``. A desk quotes
  around the clock, so we use the **rolling-horizon** variant: ``τ`` is held
  at ``horizon_s`` seconds on every tick, i.e. the quotes always carry the
  inventory risk of the next ``horizon_s`` seconds. It keeps the formulas
  stationary (no collapse of the spread as t → T);
* ``σ`` the volatility of the price per √second, in price units:
  ``σ = s · σ_log``. ``σ_log`` is a realized-volatility estimate over the last
  ``volatility_window`` mid samples taken every ``sample_interval_s``:
  ``σ_log² = Σ ln(m_i / m_{i-1})² / Σ Δt_i`` (zero-drift; dividing by the real
  elapsed seconds keeps it per second even when ticks arrive late). A fixed
  ``sigma`` in the config overrides the estimate (useful for tests and
  for pinning a volatility during a news window).

No quotes until ``min_samples`` returns exist (or ``sigma`` is set), while the
fair-value confidence is below ``min_confidence``, or on a side whose
inventory mode is STOP. Each quote is kept at least one tick away from the
mid so that a large reservation shift never turns a maker quote into a
taker order; prices are snapped bids down / asks up.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from decimal import Decimal

import attrs

from mmkit.model import NS_PER_S, ZERO, Side, TargetQuote
from mmkit.strategy import Controller, QuoteMode, StrategyContext, venue_size
from mmkit.validators import fraction, optional_positive, positive


def _count(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be at least 1, got {value}")


@attrs.frozen
class AvellanedaConfig:
    #: Risk aversion γ (per price unit).
    gamma: Decimal = attrs.field(default=Decimal("0.01"), validator=positive)
    #: Order-arrival decay κ (per price unit).
    kappa: Decimal = attrs.field(default=Decimal("0.05"), validator=positive)
    #: Rolling horizon τ = T - t, seconds.
    horizon_s: Decimal = attrs.field(default=Decimal(10), validator=positive)
    #: Size of each quote; also the unit of q.
    order_size: Decimal = attrs.field(default=Decimal("0.01"), validator=positive)
    #: Number of mid returns in the volatility window.
    volatility_window: int = attrs.field(default=60, validator=_count)
    #: Seconds between mid samples.
    sample_interval_s: Decimal = attrs.field(default=Decimal(1), validator=positive)
    #: Returns needed before quoting off the estimate.
    min_samples: int = attrs.field(default=10, validator=_count)
    #: Fixed σ in price units per √s; overrides the rolling estimate when set.
    sigma: Decimal | None = attrs.field(default=None, validator=optional_positive)
    #: Quote nothing while the fair value confidence is below this.
    min_confidence: Decimal = attrs.field(default=Decimal("0.3"), validator=fraction)

    def __attrs_post_init__(self) -> None:
        if self.min_samples > self.volatility_window:
            raise ValueError(
                f"min_samples ({self.min_samples}) cannot exceed volatility_window ({self.volatility_window})"
            )


class RollingVolatility:
    """Realized volatility of log returns per √second over the last ``window`` samples."""

    def __init__(self, window: int, interval_ns: int) -> None:
        self.interval_ns = interval_ns
        self._returns: deque[tuple[Decimal, Decimal]] = deque(maxlen=window)  # (log return, seconds)
        self._last: tuple[int, Decimal] | None = None

    def __len__(self) -> int:
        return len(self._returns)

    def update(self, ts_ns: int, price: Decimal) -> None:
        """Take a sample if ``interval_ns`` passed since the last one."""
        if self._last is None:
            self._last = (ts_ns, price)
            return
        last_ts, last_price = self._last
        if ts_ns - last_ts < self.interval_ns:
            return
        self._returns.append(((price / last_price).ln(), Decimal(ts_ns - last_ts) / NS_PER_S))
        self._last = (ts_ns, price)

    def sigma_log(self) -> Decimal | None:
        """sqrt(Σ r² / Σ Δt), None without samples."""
        if not self._returns:
            return None
        squares = sum((r * r for r, _ in self._returns), ZERO)
        seconds = sum((dt for _, dt in self._returns), ZERO)
        return (squares / seconds).sqrt()


@attrs.frozen
class Quotes:
    """The model's unsnapped output, exposed for tests and diagnostics."""

    reservation: Decimal
    spread: Decimal
    bid: Decimal
    ask: Decimal


class AvellanedaStoikovController(Controller):
    """One bid and one ask at the Avellaneda–Stoikov optimum (see the module docstring)."""

    config_class = AvellanedaConfig
    config: AvellanedaConfig

    def __init__(self, config: AvellanedaConfig | None = None) -> None:
        super().__init__(config)
        self.volatility = RollingVolatility(
            self.config.volatility_window, int(self.config.sample_interval_s * NS_PER_S)
        )

    def sigma(self, mid: Decimal) -> Decimal | None:
        """σ in price units per √s: the fixed one, or ``mid · σ_log`` once enough samples exist."""
        if self.config.sigma is not None:
            return self.config.sigma
        if len(self.volatility) < self.config.min_samples:
            return None
        sigma_log = self.volatility.sigma_log()
        return None if sigma_log is None else mid * sigma_log

    def model(self, mid: Decimal, position: Decimal, sigma: Decimal) -> Quotes:
        """Reservation price, spread, and the raw bid/ask for these inputs."""
        cfg = self.config
        q = position / cfg.order_size
        risk = cfg.gamma * sigma * sigma * cfg.horizon_s
        reservation = mid - q * risk
        spread = risk + (2 / cfg.gamma) * (1 + cfg.gamma / cfg.kappa).ln()
        return Quotes(reservation, spread, reservation - spread / 2, reservation + spread / 2)

    def on_tick(self, ctx: StrategyContext) -> Sequence[TargetQuote]:
        mid = ctx.fair.price
        if mid is None or mid <= 0:
            return []
        self.volatility.update(ctx.now_ns, mid)
        if ctx.halted or Decimal(repr(ctx.fair.confidence)) < self.config.min_confidence:
            return []
        sigma = self.sigma(mid)
        if sigma is None:
            return []
        quotes = self.model(mid, ctx.position, sigma)
        inst = ctx.instrument
        tick = inst.tick_for(mid)
        out: list[TargetQuote] = []
        for side, raw in ((Side.BUY, min(quotes.bid, mid - tick)), (Side.SELL, max(quotes.ask, mid + tick))):
            if ctx.inventory is not None and ctx.inventory.quote_mode(side) is QuoteMode.STOP:
                continue
            price = inst.round_price(raw, side)
            qty = venue_size(inst, price, self.config.order_size, param="order_size")
            if inst.check_order(price, qty, mid) is None:
                out.append(TargetQuote(side=side, level=0, price=price, qty=qty))
        return out
