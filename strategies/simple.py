"""The smallest useful controller: one bid and one ask around the fair price.

It exists to prove the whole path (context -> targets -> executor -> venue ->
fills -> inventory) with the fewest moving parts, and as the first example a
strategy author reads. Prices are snapped to the venue's tick (bids down,
asks up) so that it never quotes more aggressively than asked.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import attrs

from mmkit.model import Side, TargetQuote
from mmkit.strategy import Controller, QuoteMode, StrategyContext, venue_size
from mmkit.validators import positive

BPS = Decimal(10_000)


@attrs.frozen
class SimpleConfig:
    #: Distance of each quote from the fair price, in basis points.
    half_spread_bps: Decimal = attrs.field(default=Decimal(10), validator=positive)
    #: Size of each quote in base units.
    order_size: Decimal = attrs.field(default=Decimal("0.01"), validator=positive)
    #: Quote nothing when the fair price confidence is below this.
    min_confidence: float = 0.3


class SimpleController(Controller):
    """One bid at fair·(1 − s), one ask at fair·(1 + s); nothing when the price is not trusted."""

    config_class = SimpleConfig
    #: on_tick reads the fair value, inventory and instrument only: idle ticks reuse its answer.
    reads = frozenset[str]()
    config: SimpleConfig

    def on_tick(self, ctx: StrategyContext) -> Sequence[TargetQuote]:
        fair = ctx.fair.price
        if fair is None or ctx.fair.confidence < self.config.min_confidence:
            return []
        offset = fair * self.config.half_spread_bps / BPS
        quotes = []
        for side, raw in ((Side.BUY, fair - offset), (Side.SELL, fair + offset)):
            if ctx.inventory is not None and ctx.inventory.quote_mode(side) is QuoteMode.STOP:
                continue
            price = ctx.instrument.round_price(raw, side)
            qty = venue_size(ctx.instrument, price, self.config.order_size, param="order_size")
            quotes.append(TargetQuote(side, 0, price, qty))
        return quotes
