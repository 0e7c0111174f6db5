"""Instruments: a tradable symbol's increments and order limits, and the rules that round and check orders.

Why a module of its own: :mod:`mmkit.model` holds plain value types that import
nothing of mmkit; an instrument also carries logic (price-level-dependent tick
and lot, rounding by side, the venue's order checks, bounded memos that keep
them off the decision path's profile). It imports only :mod:`mmkit.model`.
"""

from __future__ import annotations

import functools
from bisect import bisect_right
from collections.abc import Iterable
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import TypeVar

import attrs

from mmkit.model import ZERO, RejectReason, Side, decimal_converter, optional_decimal_converter

_K = TypeVar("_K")
_V = TypeVar("_V")


@attrs.frozen(slots=True)
class IncrementBand:
    """Tick and lot size that apply from ``min_price`` (inclusive) upwards.

    Venues such as TrueX change the tick with the price level, so an
    instrument carries a sorted tuple of bands rather than one constant.
    """

    min_price: Decimal = attrs.field(converter=decimal_converter)
    tick: Decimal = attrs.field(converter=decimal_converter)
    lot: Decimal = attrs.field(converter=decimal_converter)

    def __attrs_post_init__(self) -> None:
        if self.tick <= 0 or self.lot <= 0:
            raise ValueError(f"tick and lot must be positive, got tick={self.tick} lot={self.lot}")


def _to_bands(value: Iterable[IncrementBand]) -> tuple[IncrementBand, ...]:
    return tuple(value)


@attrs.frozen(slots=True)
class Instrument:
    """A tradable symbol on one venue, with its increments and order limits."""

    venue: str
    symbol: str
    base: str
    quote: str
    increments: tuple[IncrementBand, ...] = attrs.field(converter=_to_bands)
    min_notional: Decimal = attrs.field(default=ZERO, converter=decimal_converter)
    min_qty: Decimal = attrs.field(default=ZERO, converter=decimal_converter)
    max_qty: Decimal | None = attrs.field(default=None, converter=optional_decimal_converter)
    #: Orders more than this fraction away from the mid are refused (0.025 = ±2.5 %).
    price_band: Decimal | None = attrs.field(default=None, converter=optional_decimal_converter)
    #: Quote-currency value of one contract for contract-sized instruments (Binance COIN-M BTCUSD_PERP: 100 USD);
    #: None for instruments sized in the base asset.
    contract_size: Decimal | None = attrs.field(default=None, converter=optional_decimal_converter)
    #: Inverse contract: sized in contracts of ``contract_size`` quote units, settled (PnL) in the base coin.
    inverse: bool = False
    #: A margined contract (perpetual or delivery future, linear or inverse): it is traded on margin, not paid
    #: for out of the wallet, so a simulated venue does not hold its orders to the spot balances (see ``spot``).
    derivative: bool = False

    @property
    def spot(self) -> bool:
        """Whether an order is paid for out of the wallet (a buy with the quote, a sell with the base it holds).

        Why it matters: a simulated spot venue refuses an order the balances cannot pay for
        (:mod:`mmkit.sim.venue_accounts`), as Binance, Coinbase, Kraken and TrueX do. Contracts (inverse, sized
        in contracts, or marked ``derivative``) are margined; margin is not modelled, so they are not checked.
        """
        return not (self.derivative or self.inverse or self.contract_size is not None)

    def __attrs_post_init__(self) -> None:
        if not self.increments:
            raise ValueError(f"{self.venue}:{self.symbol}: at least one increment band is required")
        prices = [band.min_price for band in self.increments]
        if prices != sorted(prices) or len(set(prices)) != len(prices):
            raise ValueError(f"{self.venue}:{self.symbol}: increment bands must be sorted by min_price")

    # The methods below run dozens of times per quote decision (bench/bench_ladder.py): they find a
    # band by bisecting the band starts, look it up as few times as the rules allow, and memoize
    # the results that repeat (a rounded price per side, a size per lot, the static check of an
    # on-tick price and size, the band limit of the last mid). Memo keys are *values*:
    # Decimal("1.5") and Decimal("1.50") share an entry, which is sound because every memoized
    # result is quantized to a tick/lot or is a reject reason; only positive inputs are memoized
    # (0 and -0 are one key, and the rules give them results of different signs).
    #
    # Why Decimal and not integer ticks: measured in bench/bench_rules.py, converting a Decimal
    # input exactly to an integer count of ticks (``as_integer_ratio``, or ``scaleb`` + ``int``)
    # costs about as much as the few C-implemented Decimal operations a rounding or a check takes,
    # and building the Decimal result back costs as much again: an int path behind this Decimal API
    # was 0.5-0.8x the speed of these rules. Integers pay where values arrive as integers (the
    # book's scaled levels), not at this boundary.

    @functools.cached_property
    def _band_starts(self) -> list[Decimal]:
        """The bands' ``min_price`` in order (computed once; attrs gives a cached_property its own slot)."""
        return [band.min_price for band in self.increments]

    @functools.cached_property
    def _memo(self) -> _InstrumentMemo:
        return _InstrumentMemo()

    def band_for(self, price: Decimal) -> IncrementBand:
        """The band whose range holds ``price`` (the first band for prices below every start)."""
        index = bisect_right(self._band_starts, price) - 1
        return self.increments[index if index > 0 else 0]

    def finest_increments(self) -> tuple[Decimal, Decimal]:
        """The smallest tick and lot across the price bands: a resolution every valid order is on."""
        return min(b.tick for b in self.increments), min(b.lot for b in self.increments)

    def tick_for(self, price: Decimal) -> Decimal:
        return self.band_for(price).tick

    def lot_for(self, price: Decimal) -> Decimal:
        return self.band_for(price).lot

    def round_price(self, price: Decimal, side: Side) -> Decimal:
        """Snap to the tick valid at that price: bids down, asks up (never more aggressive).

        Rounding can cross a band boundary (an ask just under $100,000 rounded up
        lands on the boundary); the result is re-checked against its own band.
        """
        memo = self._memo
        cache = memo.bid_prices if side is _BUY else memo.ask_prices
        snapped = cache.get(price)
        if snapped is None:
            snapped = self._round_price(price, side)
            if price > 0:
                _remember(cache, price, snapped)
        return snapped

    def _round_price(self, price: Decimal, side: Side) -> Decimal:
        """:meth:`round_price` without the memo (the reference its tests compare with)."""
        rounding = ROUND_FLOOR if side is _BUY else ROUND_CEILING
        tick = self.band_for(price).tick
        snapped = (price / tick).to_integral_value(rounding=rounding) * tick
        tick_after = self.band_for(snapped).tick
        if tick_after != tick:
            snapped = (snapped / tick_after).to_integral_value(rounding=rounding) * tick_after
            tick_after = self.band_for(snapped).tick
        return snapped.quantize(tick_after)

    def round_qty(self, qty: Decimal, price: Decimal) -> Decimal:
        """Round a size down to the lot valid at ``price``."""
        band = bisect_right(self._band_starts, price) - 1
        lot = self.increments[band if band > 0 else 0].lot
        memo = self._memo.rounded_qty
        # Keyed on the band, not the lot's value: two bands' lots may be equal values with other exponents.
        key = (qty, band)
        rounded = memo.get(key)
        if rounded is None:
            rounded = _round_qty(qty, lot)
            if qty > 0:
                _remember(memo, key, rounded)
        return rounded

    def is_on_tick(self, price: Decimal) -> bool:
        return price % self.band_for(price).tick == 0

    def is_on_lot(self, qty: Decimal, price: Decimal) -> bool:
        return qty % self.band_for(price).lot == 0

    def check_order(self, price: Decimal, qty: Decimal, mid: Decimal | None = None) -> RejectReason | None:
        """Return why a limit order would be refused by the venue's static rules, or None."""
        memo = self._memo
        static = memo.static_checks
        key = (price, qty)
        if key in static:
            reason = static[key]
        else:
            reason = self._static_check(price, qty)
            _remember(static, key, reason)
        if reason is not None:
            return reason
        price_band = self.price_band
        if mid is not None and price_band is not None and mid > 0:
            # One product per mid (callers check many orders around the same mid). The pair is one
            # attribute, replaced whole: a connector thread asking at the same time sees a matching pair.
            band = memo.band
            if mid is not band[0]:
                band = memo.band = (mid, mid * price_band)
            if abs(price - mid) > band[1]:
                return RejectReason.PRICE_BAND
        return None

    def explain(self, price: Decimal, qty: Decimal, reason: RejectReason) -> str:
        """A person's sentence for why the venue refuses ``qty`` at ``price`` (``reason``: :meth:`check_order`'s)."""
        band = self.band_for(price) if price > 0 else None
        if reason is RejectReason.INVALID_PRICE:
            return "the price is not a valid price at the venue"
        if reason is RejectReason.PRICE_BAND and self.price_band is not None:
            percent = format((self.price_band * 100).normalize(), "f")
            return f"more than {percent} % from the fair price (the venue's price band); check the spreads"
        if reason is RejectReason.MIN_NOTIONAL:
            return f"notional {price * qty} below the venue's minimum ({self.min_notional})"
        if reason is RejectReason.INVALID_QTY and band is not None:
            if qty <= 0:
                return f"the size rounds to 0 at the venue's lot ({band.lot})"
            if qty < self.min_qty:
                return f"size below the venue's minimum ({self.min_qty})"
            if self.max_qty is not None and qty > self.max_qty:
                return f"size above the venue's maximum ({self.max_qty})"
        return reason.value

    def _static_check(self, price: Decimal, qty: Decimal) -> RejectReason | None:
        """The part of :meth:`check_order` that does not depend on the mid."""
        if price <= 0:
            return RejectReason.INVALID_PRICE
        band = self.band_for(price)
        if price % band.tick != 0:
            return RejectReason.INVALID_PRICE
        if qty <= 0 or qty % band.lot != 0 or qty < self.min_qty:
            return RejectReason.INVALID_QTY
        if self.max_qty is not None and qty > self.max_qty:
            return RejectReason.INVALID_QTY
        if price * qty < self.min_notional:
            return RejectReason.MIN_NOTIONAL
        return None


_MEMO_SIZE = 4096
#: Looked up once: an enum member access goes through the enum metaclass.
_BUY = Side.BUY


def _round_qty(qty: Decimal, lot: Decimal) -> Decimal:
    """:meth:`Instrument.round_qty` without the memo: down to a whole number of ``lot``."""
    return ((qty / lot).to_integral_value(rounding=ROUND_FLOOR) * lot).quantize(lot)


class _InstrumentMemo:
    """Per-instrument memo tables (bounded: cleared when full, as prices wander)."""

    __slots__ = ("ask_prices", "band", "bid_prices", "rounded_qty", "static_checks")

    def __init__(self) -> None:
        self.bid_prices: dict[Decimal, Decimal] = {}
        self.ask_prices: dict[Decimal, Decimal] = {}
        self.rounded_qty: dict[tuple[Decimal, int], Decimal] = {}
        self.static_checks: dict[tuple[Decimal, Decimal], RejectReason | None] = {}
        #: The last mid ``check_order`` saw and ``mid * price_band`` for it.
        self.band: tuple[Decimal | None, Decimal] = (None, ZERO)


def _remember(memo: dict[_K, _V], key: _K, value: _V) -> None:
    if len(memo) >= _MEMO_SIZE:
        memo.clear()
    memo[key] = value
