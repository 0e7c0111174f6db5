"""The TrueX quote engine: a ladder around the fair price, skewed by inventory.

For fair price ``m`` with tick ``t`` (the tick valid at ``m``), inventory skew
``k`` ticks (``ctx.inventory.skew_ticks()``, positive when long) and half
spread ``h = m · base_spread_bps / 2 / 10^4``, level ``i`` is quoted at::

    bid_i = m - (h + k·t + i·level_spacing_ticks·t + w_bid·t)
    ask_i = m + (h - k·t + i·level_spacing_ticks·t + w_ask·t)

where ``w_side`` is ``widen_ticks`` when the inventory puts that side in
WIDEN mode, else 0. Being long therefore moves both quotes down: the ask
gets tighter (we want to sell), the bid wider. The innermost distance never
falls below one tick, so a large skew cannot cross the mid.

Sizes are ``base_size · size_decay^i`` rounded down to the lot. Prices are
snapped to the tick valid at that price (bids down, asks up). A quote is
dropped when the venue would refuse it (outside the price band around the
mid, an outer level decayed under the minimum notional or size); the
innermost level's ``base_size`` must be a size the venue takes, or the tick
fails with :class:`mmkit.strategy.QuoteSizeError` (``mmkit check`` and
``mmkit start`` refuse the config, naming ``strategy.params.base_size``). Nothing is quoted while the fair
value confidence is below ``min_confidence``, nor on a side whose inventory
mode is STOP.

To keep queue priority the ladder is recomputed only when the mid moved at
least ``reprice_threshold_ticks`` since the last quoted mid, or when the
inventory state (skew or a side's mode) changed since then — a fill must be
reflected at once, whatever the price did. Otherwise the previous targets
are returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import attrs

from mmkit.model import ZERO, Side, TargetQuote
from mmkit.strategy import Controller, QuoteMode, StrategyContext, venue_size

BPS = Decimal(10_000)
#: Looked up once: an enum member access goes through the enum metaclass, and on_tick runs every tick.
_BUY, _SELL = Side.BUY, Side.SELL


def _positive(_: object, attribute: attrs.Attribute[Decimal], value: Decimal) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be positive, got {value}")


def _non_negative(_: object, attribute: attrs.Attribute[Decimal], value: Decimal) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must not be negative, got {value}")


def _fraction(_: object, attribute: attrs.Attribute[Decimal], value: Decimal) -> None:
    if not 0 <= value <= 1:
        raise ValueError(f"{attribute.name} must be between 0 and 1, got {value}")


def _decay(_: object, attribute: attrs.Attribute[Decimal], value: Decimal) -> None:
    if not 0 < value <= 1:
        raise ValueError(f"{attribute.name} must be in (0, 1], got {value}")


def _levels(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not 1 <= value <= 50:
        raise ValueError(f"{attribute.name} must be between 1 and 50, got {value}")


@attrs.frozen
class SkewedLadderConfig:
    #: Total width of the innermost pair before skew, in basis points of the fair price.
    base_spread_bps: Decimal = attrs.field(default=Decimal(50), validator=_positive)
    #: Quote levels per side.
    levels: int = attrs.field(default=5, validator=_levels)
    #: Distance between consecutive levels, in ticks.
    level_spacing_ticks: Decimal = attrs.field(default=Decimal(10), validator=_non_negative)
    #: Size of the innermost level, base units.
    base_size: Decimal = attrs.field(default=Decimal("0.01"), validator=_positive)
    #: Each further level is this fraction of the previous one's size.
    size_decay: Decimal = attrs.field(default=Decimal("0.8"), validator=_decay)
    #: Quote nothing while the fair value confidence is below this.
    min_confidence: Decimal = attrs.field(default=Decimal("0.3"), validator=_fraction)
    #: Extra ticks on a side in WIDEN mode.
    widen_ticks: Decimal = attrs.field(default=Decimal(5), validator=_non_negative)
    #: Recompute only when the mid moved at least this many ticks since the last quote.
    reprice_threshold_ticks: Decimal = attrs.field(default=Decimal(2), validator=_non_negative)


class SkewedLadderController(Controller):
    """Inventory-skewed ladder with tick-aware snapping and venue-rule filtering."""

    config_class = SkewedLadderConfig
    #: on_tick reads the fair value, inventory and instrument only: idle ticks reuse its answer.
    reads = frozenset[str]()
    config: SkewedLadderConfig

    def __init__(self, config: SkewedLadderConfig | None = None) -> None:
        super().__init__(config)
        self._targets: list[TargetQuote] = []
        self._last_mid: Decimal | None = None
        self._last_state: tuple[Decimal, QuoteMode, QuoteMode] | None = None
        # Per-call work that depends only on the config, done once (decision latency, bench/bench_ladder.py):
        # the unrounded size of each level, and the last confidence seen with its verdict.
        size, sizes = self.config.base_size, []
        for _ in range(self.config.levels):
            sizes.append(size)
            size *= self.config.size_decay
        self._sizes: tuple[Decimal, ...] = tuple(sizes)
        self._confidence_seen: tuple[float, bool] | None = None
        #: With a positive threshold, a mid that has not moved at all never reprices (see _moved).
        self._threshold_positive = self.config.reprice_threshold_ticks > 0

    def on_tick(self, ctx: StrategyContext) -> Sequence[TargetQuote]:
        mid = ctx.fair.price
        if ctx.halted or mid is None or mid <= 0 or not self._confident(ctx.fair.confidence):
            self._forget()
            return []
        inventory = ctx.inventory
        if inventory is None:
            state = (ZERO, QuoteMode.NORMAL, QuoteMode.NORMAL)
        else:
            state = (inventory.skew_ticks(), inventory.quote_mode(_BUY), inventory.quote_mode(_SELL))
        if self._last_mid is not None and state == self._last_state and not self._moved(ctx, mid):
            return list(self._targets)
        self._targets = self._ladder(ctx, mid, ctx.instrument.tick_for(mid), state)
        self._last_mid = mid
        self._last_state = state
        return list(self._targets)

    def _moved(self, ctx: StrategyContext, mid: Decimal) -> bool:
        """Whether ``mid`` lies ``reprice_threshold_ticks`` (of the tick at ``mid``) or more from the last quoted mid.

        Most ticks hand over the very mid object last quoted (the fair value
        did not change), which has moved by 0 and needs no Decimal arithmetic.
        """
        last = self._last_mid
        assert last is not None
        if mid is last and self._threshold_positive:
            return False
        return abs(mid - last) >= self.config.reprice_threshold_ticks * ctx.instrument.tick_for(mid)

    def _confident(self, confidence: float) -> bool:
        """``confidence >= min_confidence``, compared exactly (as the decimal the float prints as), memoized."""
        seen = self._confidence_seen
        if seen is None or seen[0] != confidence:
            seen = (confidence, Decimal(repr(confidence)) >= self.config.min_confidence)
            self._confidence_seen = seen
        return seen[1]

    def _forget(self) -> None:
        self._targets, self._last_mid, self._last_state = [], None, None

    def _ladder(
        self, ctx: StrategyContext, mid: Decimal, tick: Decimal, state: tuple[Decimal, QuoteMode, QuoteMode]
    ) -> list[TargetQuote]:
        cfg = self.config
        inst = ctx.instrument
        skew, bid_mode, ask_mode = state
        half = mid * cfg.base_spread_bps / 2 / BPS
        spacing = cfg.level_spacing_ticks * tick
        quotes: list[TargetQuote] = []
        levels = range(cfg.levels)
        for side, mode, sign in ((Side.BUY, bid_mode, 1), (Side.SELL, ask_mode, -1)):
            if mode is QuoteMode.STOP:
                continue
            # Long (skew > 0): bid distance grows, ask distance shrinks; never closer than one tick.
            inner = half + sign * skew * tick
            if mode is QuoteMode.WIDEN:
                inner += cfg.widen_ticks * tick
            inner = max(inner, tick)
            for level, size in zip(levels, self._sizes, strict=True):
                raw = mid - sign * (inner + level * spacing)
                price = inst.round_price(raw, side)
                # The innermost level is the configured base_size: the venue must take it. Outer levels
                # decay by design and may fall under the venue's minimum: those are left out (docstring).
                qty = (venue_size(inst, price, size, param="base_size") if level == 0
                       else inst.round_qty(size, price))
                if inst.check_order(price, qty, mid) is None:
                    quotes.append(TargetQuote(side=side, level=level, price=price, qty=qty))
        return quotes
