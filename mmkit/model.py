"""Value types shared by every part of mmkit.

Everything here is immutable (attrs frozen + slots) so that an event can be
handed from an I/O thread to the engine loop, logged, persisted and replayed
without anyone mutating it underneath. Money (prices, sizes, fees, PnL) is
``Decimal`` at every public boundary; no float ever reaches an order or the
ledger. Time is integer nanoseconds: ``ts_event`` is the venue's clock,
``ts_recv`` ours.

This module imports nothing from mmkit: everything else may import it.
"""

from __future__ import annotations

import enum
import functools
from bisect import bisect_right
from collections.abc import Iterable
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import TypeVar

import attrs

_K = TypeVar("_K")
_V = TypeVar("_V")

ZERO = Decimal(0)
NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000

#: The longest client order id any venue we support accepts (TrueX ClOrdID).
MAX_CLIENT_ID_LEN = 18


def to_decimal(value: Decimal | str | int) -> Decimal:
    """Convert exact inputs to Decimal and refuse floats.

    A float has already lost the exact value a user typed, so accepting one
    silently would put a rounding error into an order or the ledger.
    """
    if isinstance(value, float):
        raise TypeError(f"float {value!r} is not an exact amount; pass a str or Decimal")
    if isinstance(value, Decimal):
        return value
    return Decimal(value)


def _decimal_converter(value: Decimal | str | int) -> Decimal:
    return to_decimal(value)


def _optional_decimal_converter(value: Decimal | str | int | None) -> Decimal | None:
    return None if value is None else to_decimal(value)


class Side(enum.Enum):
    BUY = "BUY"
    SELL = "SELL"

    # Members are singletons: identity hashing is correct and avoids Enum's Python-level
    # __hash__ on the hot path, where (side, level) slot keys are hashed every tick.
    __hash__ = object.__hash__

    @property
    def sign(self) -> int:
        """+1 for a buy (position grows), -1 for a sell."""
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(enum.Enum):
    LIMIT = "LIMIT"
    MARKET = "MARKET"


class TimeInForce(enum.Enum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"
    DAY = "DAY"


class Liquidity(enum.Enum):
    MAKER = "MAKER"
    TAKER = "TAKER"


class VenueOrderStatus(enum.Enum):
    """An order's status as the venue reports it in a status query or snapshot."""

    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"

    @property
    def is_open(self) -> bool:
        return self in (VenueOrderStatus.NEW, VenueOrderStatus.PARTIALLY_FILLED)


class RejectReason(enum.Enum):
    """Normalized reason codes so that trackers and risk can count rejects by kind."""

    RATE_LIMIT = "RATE_LIMIT"
    INVALID_PRICE = "INVALID_PRICE"  # off tick
    INVALID_QTY = "INVALID_QTY"  # off lot, zero, too small or too large
    MIN_NOTIONAL = "MIN_NOTIONAL"
    PRICE_BAND = "PRICE_BAND"
    POST_ONLY_WOULD_CROSS = "POST_ONLY_WOULD_CROSS"
    DUPLICATE_ORDER = "DUPLICATE_ORDER"
    DUPLICATE_CLIENT_ID = "DUPLICATE_CLIENT_ID"
    INVALID_CLIENT_ID = "INVALID_CLIENT_ID"
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    UNKNOWN_ORDER = "UNKNOWN_ORDER"
    NOT_CONNECTED = "NOT_CONNECTED"  # never left this process: safe to treat as not live
    INVALID_MESSAGE = "INVALID_MESSAGE"
    OTHER = "OTHER"


# --------------------------------------------------------------------------
# Instruments and price/size increments
# --------------------------------------------------------------------------


@attrs.frozen(slots=True)
class IncrementBand:
    """Tick and lot size that apply from ``min_price`` (inclusive) upwards.

    Venues such as TrueX change the tick with the price level, so an
    instrument carries a sorted tuple of bands rather than one constant.
    """

    min_price: Decimal = attrs.field(converter=_decimal_converter)
    tick: Decimal = attrs.field(converter=_decimal_converter)
    lot: Decimal = attrs.field(converter=_decimal_converter)

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
    min_notional: Decimal = attrs.field(default=ZERO, converter=_decimal_converter)
    min_qty: Decimal = attrs.field(default=ZERO, converter=_decimal_converter)
    max_qty: Decimal | None = attrs.field(default=None, converter=_optional_decimal_converter)
    #: Orders more than this fraction away from the mid are refused (0.025 = ±2.5 %).
    price_band: Decimal | None = attrs.field(default=None, converter=_optional_decimal_converter)
    #: Quote-currency value of one contract for contract-sized instruments (Binance COIN-M BTCUSD_PERP: 100 USD);
    #: None for instruments sized in the base asset.
    contract_size: Decimal | None = attrs.field(default=None, converter=_optional_decimal_converter)
    #: Inverse contract: sized in contracts of ``contract_size`` quote units, settled (PnL) in the base coin.
    inverse: bool = False

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


# --------------------------------------------------------------------------
# Market data
# --------------------------------------------------------------------------

#: One price level: (price, size). A size of zero deletes the level.
Level = tuple[Decimal, Decimal]


@attrs.frozen(slots=True)
class ScaledLevels:
    """A snapshot's or delta's levels as integers: prices in ``price_increment``, sizes in ``size_increment``.

    Why: a reader that parses the venue's text can produce these for little
    more than a dict hit per level, and then a book on the same grid applies
    them without converting a Decimal per level (the hottest loop of a
    backtest). It is an optional companion of the public Decimal levels, which
    stay authoritative: a consumer on another grid ignores it and converts the
    Decimals as before. A producer attaches it only when every level is
    exactly on the grid, with prices > 0 and sizes >= 0.
    """

    price_increment: Decimal
    size_increment: Decimal
    bids: tuple[tuple[int, int], ...]
    asks: tuple[tuple[int, int], ...]


@attrs.frozen(slots=True)
class BookSnapshot:
    """A full L2 picture at sequence ``seq`` (e.g. Binance ``lastUpdateId``)."""

    venue: str
    symbol: str
    seq: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    ts_event: int
    ts_recv: int
    checksum: int | None = None
    #: Optional integer form of ``bids``/``asks`` (see :class:`ScaledLevels`); not part of equality.
    scaled: ScaledLevels | None = attrs.field(default=None, eq=False, repr=False)


@attrs.frozen(slots=True)
class BookDelta:
    """A batch of level changes covering sequence numbers ``first_seq..seq``.

    Venues that number every message (TrueX MD, Coinbase) use
    ``first_seq == seq``; Binance diffs cover a range (``U..u``).
    ``checksum`` is the venue's checksum of the book after applying this delta,
    where the venue sends one (Kraken).
    """

    venue: str
    symbol: str
    first_seq: int
    seq: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    ts_event: int
    ts_recv: int
    checksum: int | None = None
    #: Optional integer form of ``bids``/``asks`` (see :class:`ScaledLevels`); not part of equality.
    scaled: ScaledLevels | None = attrs.field(default=None, eq=False, repr=False)


@attrs.frozen(slots=True)
class Trade:
    """A public trade printed by a venue. ``aggressor`` is the taker's side, if known."""

    venue: str
    symbol: str
    trade_id: str
    price: Decimal
    qty: Decimal
    aggressor: Side | None
    ts_event: int
    ts_recv: int


@attrs.frozen(slots=True)
class FairValue:
    """A reference price with a confidence in [0, 1] (0 = do not quote off this)."""

    price: Decimal | None
    confidence: float
    ts: int
    sources: int = 0


# --------------------------------------------------------------------------
# Orders and their events
# --------------------------------------------------------------------------


@attrs.frozen(slots=True)
class TargetQuote:
    """What a controller wants resting: one order per (side, level) slot.

    ``level`` 0 is the innermost quote. The executor keeps, replaces, places or
    cancels live orders to match the targets it is given.
    """

    side: Side
    level: int
    price: Decimal = attrs.field(converter=_decimal_converter)
    qty: Decimal = attrs.field(converter=_decimal_converter)

    @property
    def slot(self) -> tuple[Side, int]:
        return (self.side, self.level)


@attrs.frozen(slots=True)
class OrderRequest:
    """A new order as handed to a connector."""

    client_id: str
    venue: str
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal | None
    order_type: OrderType = OrderType.LIMIT
    tif: TimeInForce = TimeInForce.GTC
    post_only: bool = False
    ts_created: int = 0

    def __attrs_post_init__(self) -> None:
        if not self.client_id or len(self.client_id) > MAX_CLIENT_ID_LEN:
            raise ValueError(f"client id {self.client_id!r} must be 1..{MAX_CLIENT_ID_LEN} characters")
        if self.order_type is OrderType.LIMIT and self.price is None:
            raise ValueError("a limit order needs a price")


@attrs.frozen(slots=True)
class ReplaceRequest:
    """Cancel/replace ``orig_client_id`` with a new price/size under ``client_id``.

    ``qty`` is the new *open* quantity: what should rest after the replace.
    The replacement starts unfilled; fills before the replace stay with the
    original order. A FIX connector sends OrderQty(38) = ``qty`` + the
    original's cumulative filled quantity, as FIX counts the total.
    """

    client_id: str
    orig_client_id: str
    venue: str
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal
    ts_created: int = 0


@attrs.frozen(slots=True)
class OrderAccepted:
    venue: str
    client_id: str
    venue_order_id: str
    ts_event: int
    ts_recv: int


@attrs.frozen(slots=True)
class OrderRejected:
    """The venue (or a local pre-send check) refused a new order: it is not live."""

    venue: str
    client_id: str
    reason: RejectReason
    message: str
    ts_event: int
    ts_recv: int


@attrs.frozen(slots=True)
class OrderCanceled:
    venue: str
    client_id: str
    ts_event: int
    ts_recv: int
    #: Quantity that was still open when the cancel took effect.
    leaves_qty: Decimal | None = None


@attrs.frozen(slots=True)
class OrderExpired:
    venue: str
    client_id: str
    ts_event: int
    ts_recv: int


@attrs.frozen(slots=True)
class OrderReplaced:
    """``orig_client_id`` now lives on as ``client_id`` with the new price/size."""

    venue: str
    client_id: str
    orig_client_id: str
    venue_order_id: str
    price: Decimal
    qty: Decimal
    ts_event: int
    ts_recv: int


@attrs.frozen(slots=True)
class OrderCancelRejected:
    """A cancel (or, with ``is_replace``, a cancel/replace) was refused; the order stands as it was."""

    venue: str
    client_id: str
    reason: RejectReason
    message: str
    ts_event: int
    ts_recv: int
    is_replace: bool = False
    #: For a refused replace: the client id the replacement would have had.
    new_client_id: str | None = None


@attrs.frozen(slots=True)
class Fill:
    """One execution of one of our orders. Deduplicated by ``(venue, trade_id)``."""

    venue: str
    trade_id: str
    client_id: str
    symbol: str
    side: Side
    price: Decimal
    qty: Decimal
    fee: Decimal
    fee_currency: str
    liquidity: Liquidity
    ts_event: int
    ts_recv: int
    venue_order_id: str = ""
    #: True for fills of hedge orders (kept apart in PnL).
    is_hedge: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.venue, self.trade_id)

    @property
    def notional(self) -> Decimal:
        return self.price * self.qty


@attrs.frozen(slots=True)
class OrderStatusReport:
    """What the venue says about one order (answer to a status query or an open-orders listing).

    ``filled_qty`` is the venue's own figure. FIX venues count it across a
    replace chain (CumQty spans every ClOrdID of one OrderID), so compare it
    per ``venue_order_id``, not per client id (see mmkit.app.recovery).
    """

    venue: str
    client_id: str
    venue_order_id: str
    symbol: str
    side: Side
    price: Decimal | None
    qty: Decimal
    filled_qty: Decimal
    status: VenueOrderStatus
    ts_event: int
    ts_recv: int
    #: The venue's average price of what is filled (FIX AvgPx), when it says; prices a fill the ledger missed.
    avg_px: Decimal | None = None


@attrs.frozen(slots=True)
class OrderNotFound:
    """Definitive answer: the venue says it has no such order."""

    venue: str
    client_id: str
    ts_recv: int


@attrs.frozen(slots=True)
class OrderQueryFailed:
    """Transient: we could not ask (timeout, disconnect, 5xx). Never means the order is lost."""

    venue: str
    client_id: str
    reason: str
    ts_recv: int


@attrs.frozen(slots=True)
class Balance:
    asset: str
    total: Decimal
    available: Decimal


@attrs.frozen(slots=True)
class BalanceUpdate:
    venue: str
    balances: tuple[Balance, ...]
    ts_recv: int


@attrs.frozen(slots=True)
class ConnectionStatus:
    """A session of a connector went up or down (``session`` e.g. "OE", "MD", "ws")."""

    venue: str
    session: str
    connected: bool
    reason: str
    ts_recv: int


@attrs.frozen(slots=True)
class MalformedMessage:
    """A venue message we could not parse: logged and counted, never fatal."""

    venue: str
    error: str
    raw: str
    ts_recv: int


OrderEvent = (
    OrderAccepted
    | OrderRejected
    | OrderCanceled
    | OrderExpired
    | OrderReplaced
    | OrderCancelRejected
    | Fill
    | OrderStatusReport
    | OrderNotFound
    | OrderQueryFailed
)
MarketEvent = BookSnapshot | BookDelta | Trade
VenueEvent = OrderEvent | MarketEvent | BalanceUpdate | ConnectionStatus | MalformedMessage
