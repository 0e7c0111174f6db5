"""Symmetric layers of quotes around the fair price, refreshed on a fixed interval.

With fair price ``P``, ``base_spread_pct`` ``b`` and ``price_step_pct`` ``s``
(both in percent of ``P``), level ``i`` (0 = innermost) is quoted at::

    bid_i = P - P · (b/2 + i·s) / 100
    ask_i = P + P · (b/2 + i·s) / 100

so the innermost pair is ``b`` percent wide in total. Example: P = 50000,
3 levels, b = 0.1, s = 0.05 gives bids 49975 / 49950 / 49925 and asks
50025 / 50050 / 50075. Prices are snapped to the venue tick (bids down, asks
up, never more aggressive than computed) and sizes to the lot.

Targets are recomputed at most every ``update_interval`` seconds; in between
the previous targets are returned unchanged, so the executor leaves resting
orders (and their queue priority) alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import attrs

from mmkit.model import NS_PER_S, Side, TargetQuote
from mmkit.strategy import Controller, QuoteMode, StrategyContext, venue_size
from mmkit.validators import non_negative, positive

HUNDRED = Decimal(100)


def _levels(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not 1 <= value <= 50:
        raise ValueError(f"{attribute.name} must be between 1 and 50, got {value}")


@attrs.frozen
class LayeredConfig:
    #: Quote levels per side.
    levels: int = attrs.field(default=3, validator=_levels)
    #: Total width of the innermost pair, in percent of the fair price (0.1 = 0.1 %).
    base_spread_pct: Decimal = attrs.field(default=Decimal("0.1"), validator=positive)
    #: Extra distance of each further level, in percent of the fair price.
    price_step_pct: Decimal = attrs.field(default=Decimal("0.05"), validator=non_negative)
    #: Size of every order, base units.
    order_size: Decimal = attrs.field(default=Decimal("0.01"), validator=positive)
    #: Seconds between recomputations; 0 recomputes every tick.
    update_interval: Decimal = attrs.field(default=Decimal(5), validator=non_negative)
    #: Quote nothing while the fair price confidence is below this.
    min_confidence: Decimal = attrs.field(default=Decimal("0.3"), validator=non_negative)


class LayeredController(Controller):
    """``levels`` bids and asks at fixed percentage distances from the fair price."""

    config_class = LayeredConfig
    config: LayeredConfig

    def __init__(self, config: LayeredConfig | None = None) -> None:
        super().__init__(config)
        self._targets: list[TargetQuote] = []
        self._last_update_ns: int | None = None

    def on_tick(self, ctx: StrategyContext) -> Sequence[TargetQuote]:
        fair = ctx.fair.price
        if ctx.halted or fair is None or fair <= 0 or Decimal(repr(ctx.fair.confidence)) < self.config.min_confidence:
            self._targets, self._last_update_ns = [], None  # requote at once when things are sane again
            return []
        interval_ns = int(self.config.update_interval * NS_PER_S)
        if self._last_update_ns is not None and ctx.now_ns - self._last_update_ns < interval_ns:
            return list(self._targets)
        self._targets = self._compute(ctx, fair)
        self._last_update_ns = ctx.now_ns
        return list(self._targets)

    def _compute(self, ctx: StrategyContext, fair: Decimal) -> list[TargetQuote]:
        cfg = self.config
        inst = ctx.instrument
        quotes: list[TargetQuote] = []
        for side in (Side.BUY, Side.SELL):
            if ctx.inventory is not None and ctx.inventory.quote_mode(side) is QuoteMode.STOP:
                continue
            for level in range(cfg.levels):
                offset = fair * (cfg.base_spread_pct / 2 + level * cfg.price_step_pct) / HUNDRED
                price = inst.round_price(fair - side.sign * offset, side)
                qty = venue_size(inst, price, cfg.order_size, param="order_size")
                if inst.check_order(price, qty, fair) is None:
                    quotes.append(TargetQuote(side=side, level=level, price=price, qty=qty))
        return quotes
