"""The controller built step by step in docs/writing-a-strategy.md (kept here so CI runs it)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import attrs

from mmkit.model import Side, TargetQuote
from mmkit.strategy import Controller, QuoteMode, StrategyContext, venue_size

BPS = Decimal(10_000)


@attrs.frozen
class ImbalanceConfig:
    half_spread_bps: Decimal = Decimal(8)
    order_size: Decimal = Decimal("0.01")
    #: How far (in bps) a fully one-sided book shifts both quotes.
    max_shift_bps: Decimal = Decimal(4)
    depth_levels: int = 5

    def __attrs_post_init__(self) -> None:
        if self.half_spread_bps <= 0:
            raise ValueError(f"half_spread_bps must be positive, got {self.half_spread_bps}")
        if self.depth_levels < 1:
            raise ValueError("depth_levels must be at least 1")


class ImbalanceController(Controller):
    """One quote a side around fair value, shifted towards the heavier side of the venue's book."""

    config_class = ImbalanceConfig
    config: ImbalanceConfig

    def imbalance(self, ctx: StrategyContext) -> Decimal:
        """(bid size - ask size) / total over the top levels, in [-1, 1]; 0 without a book."""
        if ctx.book is None:
            return Decimal(0)
        bids = sum((q for _, q in ctx.book.depth(Side.BUY, self.config.depth_levels)), Decimal(0))
        asks = sum((q for _, q in ctx.book.depth(Side.SELL, self.config.depth_levels)), Decimal(0))
        total = bids + asks
        return (bids - asks) / total if total else Decimal(0)

    def on_tick(self, ctx: StrategyContext) -> Sequence[TargetQuote]:
        fair = ctx.fair.price
        if fair is None or ctx.fair.confidence < 0.3 or ctx.halted:
            return []
        center = fair * (1 + self.imbalance(ctx) * self.config.max_shift_bps / BPS)
        offset = center * self.config.half_spread_bps / BPS
        quotes = []
        for side, raw in ((Side.BUY, center - offset), (Side.SELL, center + offset)):
            if ctx.inventory is not None and ctx.inventory.quote_mode(side) is QuoteMode.STOP:
                continue
            price = ctx.instrument.round_price(raw, side)
            qty = venue_size(ctx.instrument, price, self.config.order_size, param="order_size")
            if ctx.instrument.check_order(price, qty, fair) is None:
                quotes.append(TargetQuote(side, 0, price, qty))
        return quotes
