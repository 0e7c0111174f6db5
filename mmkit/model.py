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
from decimal import Decimal
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


def decimal_converter(value: Decimal | str | int) -> Decimal:
    """:func:`to_decimal` as an attrs converter (shared with :mod:`mmkit.instrument`)."""
    return to_decimal(value)


def optional_decimal_converter(value: Decimal | str | int | None) -> Decimal | None:
    """:func:`to_decimal` for an optional field (None stays None)."""
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
    price: Decimal = attrs.field(converter=decimal_converter)
    qty: Decimal = attrs.field(converter=decimal_converter)

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
    #: The venue's cumulative filled quantity on the venue order after this execution, when the report
    #: carries it (FIX CumQty(14), counted across a replace chain); None when the venue does not say.
    #: A fill that would take the ledger above it was booked already (mmkit.orders.validation).
    venue_cum_qty: Decimal | None = None

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
