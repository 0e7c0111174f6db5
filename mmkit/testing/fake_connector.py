"""FakeConnector: an honest in-memory venue for unit tests.

Strategy authors and mmkit's own tests need a connector that behaves like a
real one (submit-only order entry, outcomes as events on the next ``drain``,
validation against the venue's rules, definitive "not found" versus
transient "could not ask") without sockets or timing. Everything is
scripted: the test decides when the book moves, when trades print, when the
session drops and when the venue "forgets" an order.

Time: events are stamped with :attr:`FakeConnector.now_ns`, which the test
sets (or advances) itself, so runs are deterministic.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Callable, Coroutine, Generator, Sequence
from decimal import Decimal
from typing import Any

import attrs

from mmkit.connector import Inbox, NotConnectedError, OrderNotFoundError, VenueRules
from mmkit.model import (
    ZERO,
    Balance,
    BalanceUpdate,
    BookSnapshot,
    ConnectionStatus,
    Fill,
    Level,
    Liquidity,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderNotFound,
    OrderQueryFailed,
    OrderRejected,
    OrderReplaced,
    OrderRequest,
    OrderStatusReport,
    OrderType,
    RejectReason,
    ReplaceRequest,
    Side,
    Trade,
    VenueEvent,
    VenueOrderStatus,
    to_decimal,
)
from mmkit.sim.fees import FeeModel


class _Done(Coroutine[Any, Any, None]):
    """An already-finished awaitable that is not a real coroutine.

    ``connect``/``disconnect`` are coroutines in the Connector protocol, but a
    test script wants to call ``fake.disconnect()`` without awaiting. The work
    is done eagerly and this object is returned: awaiting it is a no-op and
    dropping it raises no "never awaited" warning.
    """

    def send(self, value: Any) -> Any:
        raise StopIteration(None)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        raise StopIteration(None)

    def close(self) -> None:
        return None

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield


class ActionKind(enum.Enum):
    PLACE = "PLACE"
    CANCEL = "CANCEL"
    REPLACE = "REPLACE"
    CANCEL_ALL = "CANCEL_ALL"
    STATUS = "STATUS"


@attrs.frozen(slots=True)
class FakeAction:
    """One call the engine made on the connector, in call order."""

    kind: ActionKind
    client_id: str | None
    request: OrderRequest | ReplaceRequest | None
    ts: int


@attrs.define(slots=True)
class FakeOrder:
    """The fake venue's view of one order (satisfies ``OpenOrderView``)."""

    client_id: str
    venue_order_id: str
    symbol: str
    side: Side
    price: Decimal | None
    qty: Decimal
    filled_qty: Decimal = ZERO
    status: VenueOrderStatus = VenueOrderStatus.NEW
    #: False until the venue has acknowledged it (only matters with ``auto_ack=False``).
    acked: bool = True

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.filled_qty

    @property
    def is_open(self) -> bool:
        return self.status in _OPEN_STATUSES


#: ``VenueOrderStatus.is_open`` as a tuple (membership by identity; the property is a call per order).
_OPEN_STATUSES = (VenueOrderStatus.NEW, VenueOrderStatus.PARTIALLY_FILLED)
_REPLACE = ActionKind.REPLACE


class FakeConnector:
    """In-memory :class:`mmkit.connector.Connector` with script helpers.

    Knobs:
      * ``auto_ack`` (default True): accept / cancel / replace outcomes are
        emitted at once and seen on the next ``drain``. With False, actions
        are only recorded; the test answers with :meth:`ack`,
        :meth:`confirm_cancel`, :meth:`confirm_replace` or :meth:`reject`.
      * ``validate`` (default True): new orders and replaces are checked with
        ``rules.instrument(symbol).check_order`` (and post-only against the
        scripted book); an invalid one gets ``OrderRejected``.
    """

    def __init__(
        self,
        rules: VenueRules,
        venue: str | None = None,
        *,
        auto_ack: bool = True,
        validate: bool = True,
        connected: bool = True,
        start_ns: int = 0,
    ) -> None:
        self._rules = rules
        self._venue = venue or rules.venue
        self.auto_ack = auto_ack
        self.validate = validate
        self._connected = connected
        self.now_ns = start_ns
        self._inbox = Inbox()
        self._orders: dict[str, FakeOrder] = {}
        self._lost: set[str] = set()
        self._venue_ids = itertools.count(1)
        self._trade_ids = itertools.count(1)
        self._book_seq = 0
        self._reject_next: list[tuple[RejectReason, str]] = []
        self._fail_queries = 0
        self.bids: tuple[Level, ...] = ()
        self.asks: tuple[Level, ...] = ()
        self.balances: dict[str, Balance] = {}
        self.placed: list[OrderRequest] = []
        self.canceled: list[str] = []
        self.replaced: list[ReplaceRequest] = []
        self.status_requests: list[str] = []
        self.actions: list[FakeAction] = []
        self.book_subscriptions: list[str] = []
        self.trade_subscriptions: list[str] = []
        #: Replaces not yet confirmed (``auto_ack=False``), by new client id.
        self._pending_replaces: dict[str, ReplaceRequest] = {}
        self._fills: list[Fill] = []
        #: The venue's acks of the actions so far, as (event class, its fields): built into events when the
        #: engine reads them (drain) or before any other event is emitted, so the order of events is as if
        #: they were emitted at once (see _reply).
        self._replies: list[tuple[Callable[..., VenueEvent], tuple[Any, ...]]] = []

    # ------------------------------------------------------------------
    # Connector protocol: identity and session
    # ------------------------------------------------------------------

    @property
    def venue(self) -> str:
        return self._venue

    @property
    def rules(self) -> VenueRules:
        return self._rules

    @property
    def connected(self) -> bool:
        return self._connected

    def connect(self) -> Coroutine[Any, Any, None]:
        """Bring the session up (eagerly; awaiting the result is optional)."""
        self.reconnect()
        return _Done()

    def disconnect(self) -> Coroutine[Any, Any, None]:
        """Drop the session: emits ConnectionStatus(connected=False). Awaiting is optional."""
        if self._connected:
            self._connected = False
            self._emit(ConnectionStatus(self._venue, "OE", False, "scripted disconnect", self.now_ns))
        return _Done()

    def reconnect(self) -> None:
        if not self._connected:
            self._connected = True
            self._emit(ConnectionStatus(self._venue, "OE", True, "scripted reconnect", self.now_ns))

    def subscribe_book(self, symbol: str) -> None:
        self.book_subscriptions.append(symbol)

    def subscribe_trades(self, symbol: str) -> None:
        self.trade_subscriptions.append(symbol)

    def drain(self) -> list[VenueEvent]:
        if self._replies:
            self._build_replies()
        return self._inbox.drain()

    # ------------------------------------------------------------------
    # Connector protocol: order entry
    # ------------------------------------------------------------------

    def place(self, order: OrderRequest) -> None:
        self.placed.append(order)
        self._record(ActionKind.PLACE, order.client_id, order)
        reason = self._check_new(order)
        if reason is not None:
            self._emit(OrderRejected(self._venue, order.client_id, reason[0], reason[1], self.now_ns, self.now_ns))
            return
        fake = FakeOrder(
            client_id=order.client_id,
            venue_order_id=f"V{next(self._venue_ids)}",
            symbol=order.symbol,
            side=order.side,
            price=order.price,
            qty=order.qty,
            acked=self.auto_ack,
        )
        self._orders[order.client_id] = fake
        if self.auto_ack:
            now = self.now_ns
            self._replies.append((OrderAccepted, (self._venue, fake.client_id, fake.venue_order_id, now, now)))

    def cancel(self, client_id: str, symbol: str) -> None:
        self.canceled.append(client_id)
        self._record(ActionKind.CANCEL, client_id, None)
        if not self._connected:
            self._cancel_reject(client_id, RejectReason.NOT_CONNECTED, "not connected")
            return
        order = self._live(client_id)
        if order is None:
            self._cancel_reject(client_id, RejectReason.UNKNOWN_ORDER, "unknown or closed order")
            return
        if self.auto_ack:
            self._do_cancel(order)

    def replace(self, request: ReplaceRequest) -> None:
        self.replaced.append(request)
        orig_id = request.orig_client_id
        self.actions.append(FakeAction(_REPLACE, orig_id, request, self.now_ns))
        # The checks of _check_replace, asked in one expression for the usual case (connected, replace
        # supported, nothing scripted, the original open, the new id unused, no validation); any other
        # case goes through _check_replace, which words the reject.
        orders = self._orders
        orig = orders.get(orig_id)
        if (
            orig is not None
            and orig.status in _OPEN_STATUSES
            and not self.validate
            and self._connected
            and not self._reject_next
            and self._rules.supports_replace
            and request.client_id not in orders
            and orig_id not in self._lost
        ):
            reason = None
        else:
            reason = self._check_replace(request)
        if reason is not None:
            self._cancel_reject(orig_id, reason[0], reason[1], request.client_id)
            return
        if self.auto_ack:
            self._do_replace(request)
        else:
            self._pending_replaces[request.client_id] = request

    def cancel_all(self, symbol: str | None = None) -> None:
        self._record(ActionKind.CANCEL_ALL, None, None)
        if not self._connected:
            return
        for order in list(self._orders.values()):
            if order.is_open and order.client_id not in self._lost and symbol in (None, order.symbol):
                self.canceled.append(order.client_id)
                self._do_cancel(order)

    def request_order_status(self, client_id: str, symbol: str) -> None:
        self.status_requests.append(client_id)
        self._record(ActionKind.STATUS, client_id, None)
        if not self._connected:
            self._emit(OrderQueryFailed(self._venue, client_id, "not connected", self.now_ns))
            return
        if self._fail_queries > 0:
            self._fail_queries -= 1
            self._emit(OrderQueryFailed(self._venue, client_id, "scripted query failure", self.now_ns))
            return
        order = self._known(client_id)
        if order is None:
            self._emit(OrderNotFound(self._venue, client_id, self.now_ns))
        else:
            self._emit(self._report(order))

    # ------------------------------------------------------------------
    # Connector protocol: reconciliation
    # ------------------------------------------------------------------

    async def fetch_order_status(self, client_id: str, symbol: str) -> OrderStatusReport:
        self._require_connected()
        order = self._known(client_id)
        if order is None:
            raise OrderNotFoundError(f"{self._venue}: no order {client_id}")
        return self._report(order)

    async def fetch_open_orders(self, symbol: str | None = None) -> list[OrderStatusReport]:
        self._require_connected()
        return [self._report(order) for order in self.open_orders if symbol in (None, order.symbol)]

    async def fetch_balances(self) -> list[Balance]:
        self._require_connected()
        return list(self.balances.values())

    async def fetch_fills(self, symbol: str, since_ns: int) -> list[Fill]:
        self._require_connected()
        if not self._rules.supports_fill_history:
            return []
        return [f for f in self.fills if f.symbol == symbol and f.ts_event >= since_ns]

    # ------------------------------------------------------------------
    # Views
    # ------------------------------------------------------------------

    @property
    def open_orders(self) -> list[FakeOrder]:
        """Orders resting at the fake venue (acknowledged or not), not counting lost ones."""
        return [o for o in self._orders.values() if o.is_open and o.client_id not in self._lost]

    def order(self, client_id: str) -> FakeOrder | None:
        return self._orders.get(client_id)

    @property
    def fills(self) -> list[Fill]:
        """Every fill the fake venue has produced, in order."""
        return list(self._fills)

    # ------------------------------------------------------------------
    # Script helpers
    # ------------------------------------------------------------------

    def advance(self, ns: int) -> int:
        self.now_ns += ns
        return self.now_ns

    def set_book(
        self,
        bids: Sequence[tuple[Decimal | str | int, Decimal | str | int]],
        asks: Sequence[tuple[Decimal | str | int, Decimal | str | int]],
        symbol: str | None = None,
    ) -> BookSnapshot:
        """Replace the scripted book and emit a BookSnapshot (used for post-only and price-band checks)."""
        self.bids = tuple(sorted(((to_decimal(p), to_decimal(q)) for p, q in bids), reverse=True))
        self.asks = tuple(sorted((to_decimal(p), to_decimal(q)) for p, q in asks))
        self._book_seq += 1
        sym = symbol or self._default_symbol()
        snapshot = BookSnapshot(self._venue, sym, self._book_seq, self.bids, self.asks, self.now_ns, self.now_ns)
        self._emit(snapshot)
        return snapshot

    @property
    def mid(self) -> Decimal | None:
        if not self.bids or not self.asks:
            return None
        return (self.bids[0][0] + self.asks[0][0]) / 2

    def print_trade(
        self,
        price: Decimal | str | int,
        qty: Decimal | str | int,
        aggressor: Side,
        symbol: str | None = None,
    ) -> list[Fill]:
        """Emit a public Trade and fill our resting orders it crosses.

        A SELL aggressor at ``p`` fills our bids priced ``>= p``; a BUY
        aggressor fills our asks priced ``<= p``; best-priced first, each at its
        own limit price (maker), until the trade's size is used up.
        """
        px, size = to_decimal(price), to_decimal(qty)
        sym = symbol or self._default_symbol()
        self._emit(Trade(self._venue, sym, f"T{next(self._trade_ids)}", px, size, aggressor, self.now_ns, self.now_ns))
        ours = aggressor.opposite
        crossing = [
            o
            for o in self.open_orders
            if o.symbol == sym
            and o.side is ours
            and o.price is not None
            and (o.price >= px if ours is Side.BUY else o.price <= px)
        ]
        crossing.sort(key=lambda o: o.price or ZERO, reverse=ours is Side.BUY)
        fills = []
        left = size
        for order in crossing:
            if left <= 0:
                break
            take = min(left, order.remaining)
            left -= take
            fills.append(self._do_fill(order, take, order.price or px, Liquidity.MAKER))
        return fills

    def fill(
        self, client_id: str, qty: Decimal | str | int | None = None, price: Decimal | str | int | None = None
    ) -> Fill:
        """Force a fill of ``qty`` (default: all that remains) at ``price`` (default: the order's price)."""
        order = self._orders.get(client_id)
        if order is None or not order.is_open:
            raise KeyError(f"no open order {client_id} at the fake venue")
        take = order.remaining if qty is None else to_decimal(qty)
        if take <= 0 or take > order.remaining:
            raise ValueError(f"cannot fill {take} of {client_id}: {order.remaining} remains")
        px = to_decimal(price) if price is not None else order.price
        if px is None:
            raise ValueError("a market order needs an explicit fill price")
        return self._do_fill(order, take, px, Liquidity.MAKER)

    def reject_next(self, reason: RejectReason = RejectReason.OTHER, message: str = "scripted reject") -> None:
        """The next new order (or replace) is rejected with ``reason``."""
        self._reject_next.append((reason, message))

    def fail_next_queries(self, count: int = 1) -> None:
        """The next ``count`` status requests answer OrderQueryFailed (transient)."""
        self._fail_queries += count

    def lose_order(self, client_id: str) -> None:
        """The venue forgets the order: status queries answer OrderNotFound, it no longer rests."""
        self._lost.add(client_id)

    def set_balance(self, asset: str, total: Decimal | str | int, available: Decimal | str | int | None = None) -> None:
        """Set one balance and emit a BalanceUpdate."""
        tot = to_decimal(total)
        bal = Balance(asset, tot, tot if available is None else to_decimal(available))
        self.balances[asset] = bal
        self._emit(BalanceUpdate(self._venue, (bal,), self.now_ns))

    def purge_closed(self) -> int:
        """Forget finished orders, as real venues do after a while (status queries then say NotFound)."""
        closed = [cid for cid, order in self._orders.items() if not order.is_open]
        for cid in closed:
            del self._orders[cid]
        return len(closed)

    def clear_records(self) -> None:
        """Empty the recorded action lists (long runs, benchmarks)."""
        self.placed.clear()
        self.canceled.clear()
        self.replaced.clear()
        self.status_requests.clear()
        self.actions.clear()

    def emit(self, event: VenueEvent) -> None:
        """Inject any event as if the venue had sent it (late fills, duplicates, odd orderings)."""
        self._emit(event)

    # -- answers when auto_ack is off ----------------------------------

    def ack(self, client_id: str) -> None:
        order = self._orders[client_id]
        order.acked = True
        self._emit(OrderAccepted(self._venue, client_id, order.venue_order_id, self.now_ns, self.now_ns))

    def ack_all(self) -> None:
        for order in list(self._orders.values()):
            if not order.acked and order.is_open:
                self.ack(order.client_id)
        for new_id in list(self._pending_replaces):
            self.confirm_replace(new_id)

    def confirm_cancel(self, client_id: str) -> None:
        order = self._live(client_id)
        if order is None:
            self._cancel_reject(client_id, RejectReason.UNKNOWN_ORDER, "unknown or closed order")
        else:
            self._do_cancel(order)

    def confirm_replace(self, new_client_id: str) -> None:
        request = self._pending_replaces.pop(new_client_id)
        reason = self._check_replace(request)
        if reason is not None:
            self._cancel_reject(request.orig_client_id, reason[0], reason[1], request.client_id)
        else:
            self._do_replace(request)

    def reject(self, client_id: str, reason: RejectReason = RejectReason.OTHER, message: str = "scripted") -> None:
        """Reject a not-yet-acknowledged new order."""
        order = self._orders.pop(client_id)
        order.status = VenueOrderStatus.REJECTED
        self._emit(OrderRejected(self._venue, client_id, reason, message, self.now_ns, self.now_ns))

    # ------------------------------------------------------------------
    # Internals
    # ------------------------------------------------------------------

    def _emit(self, event: VenueEvent) -> None:
        if self._replies:
            self._build_replies()
        self._inbox.put(event)

    def _build_replies(self) -> None:
        """Turn the recorded acks into events, in order.

        Why acks are recorded rather than built in the call: the fake stands in
        for a connector, whose call builds and sends *its* message (here: the
        recorded FakeAction, the checks, the venue-side order book); the venue's
        answer is built on the receiving side, when the engine reads it. Every
        field is taken at call time, so the events are the same objects' values
        as if built at once, and every other emit builds the recorded ones first.
        """
        replies, self._replies = self._replies, []
        put = self._inbox.put
        for make, fields in replies:
            put(make(*fields))

    def _record(self, kind: ActionKind, client_id: str | None, request: OrderRequest | ReplaceRequest | None) -> None:
        self.actions.append(FakeAction(kind, client_id, request, self.now_ns))

    def _default_symbol(self) -> str:
        return self._rules.instruments[0].symbol

    def _require_connected(self) -> None:
        if not self._connected:
            raise NotConnectedError(f"{self._venue}: not connected")

    def _known(self, client_id: str) -> FakeOrder | None:
        if client_id in self._lost:
            return None
        return self._orders.get(client_id)

    def _live(self, client_id: str) -> FakeOrder | None:
        order = self._known(client_id)
        return order if order is not None and order.is_open else None

    def _take_scripted_reject(self) -> tuple[RejectReason, str] | None:
        return self._reject_next.pop(0) if self._reject_next else None

    def _check_new(self, order: OrderRequest) -> tuple[RejectReason, str] | None:
        if not self._connected:
            return (RejectReason.NOT_CONNECTED, "not connected")
        scripted = self._take_scripted_reject()
        if scripted is not None:
            return scripted
        if order.client_id in self._orders:
            return (RejectReason.DUPLICATE_CLIENT_ID, f"client id {order.client_id} already used")
        if not self.validate:
            return None
        try:
            instrument = self._rules.instrument(order.symbol)
        except KeyError as exc:
            return (RejectReason.INVALID_MESSAGE, str(exc))
        if order.order_type is OrderType.MARKET:
            if not self._rules.supports_market_orders:
                return (RejectReason.INVALID_MESSAGE, "market orders not supported")
            return None
        assert order.price is not None
        reason = instrument.check_order(order.price, order.qty, self.mid)
        if reason is not None:
            return (reason, f"{reason.value} price={order.price} qty={order.qty}")
        if order.post_only and self._would_cross(order.side, order.price):
            return (RejectReason.POST_ONLY_WOULD_CROSS, f"post-only {order.side.value} at {order.price} would cross")
        return None

    def _check_replace(self, request: ReplaceRequest) -> tuple[RejectReason, str] | None:
        if not self._connected:
            return (RejectReason.NOT_CONNECTED, "not connected")
        if not self._rules.supports_replace:
            return (RejectReason.INVALID_MESSAGE, f"{self._venue} does not support cancel/replace")
        scripted = self._take_scripted_reject()
        if scripted is not None:
            return scripted
        if self._live(request.orig_client_id) is None:
            return (RejectReason.UNKNOWN_ORDER, f"no open order {request.orig_client_id}")
        if request.client_id in self._orders:
            return (RejectReason.DUPLICATE_CLIENT_ID, f"client id {request.client_id} already used")
        if self.validate:
            reason = self._rules.instrument(request.symbol).check_order(request.price, request.qty, self.mid)
            if reason is not None:
                return (reason, f"{reason.value} price={request.price} qty={request.qty}")
        return None

    def _would_cross(self, side: Side, price: Decimal) -> bool:
        if side is Side.BUY:
            return bool(self.asks) and price >= self.asks[0][0]
        return bool(self.bids) and price <= self.bids[0][0]

    def _cancel_reject(
        self, client_id: str, reason: RejectReason, message: str, new_client_id: str | None = None
    ) -> None:
        self._emit(
            OrderCancelRejected(
                self._venue,
                client_id,
                reason,
                message,
                self.now_ns,
                self.now_ns,
                is_replace=new_client_id is not None,
                new_client_id=new_client_id,
            )
        )

    def _do_cancel(self, order: FakeOrder) -> None:
        order.status = VenueOrderStatus.CANCELED
        now = self.now_ns
        # (venue, client_id, ts_event, ts_recv, leaves_qty): see _build_replies.
        self._replies.append((OrderCanceled, (self._venue, order.client_id, now, now, order.remaining)))

    def _do_replace(self, request: ReplaceRequest) -> None:
        """The old id is closed; the order lives on under the new id with ``qty`` open (same venue id)."""
        old = self._orders[request.orig_client_id]
        old.status = VenueOrderStatus.CANCELED
        new_id, venue_order_id, now = request.client_id, old.venue_order_id, self.now_ns
        self._orders[new_id] = FakeOrder(
            new_id, venue_order_id, request.symbol, request.side, request.price, request.qty
        )
        self._replies.append(
            (OrderReplaced, (self._venue, new_id, old.client_id, venue_order_id, request.price, request.qty, now, now))
        )

    def _do_fill(self, order: FakeOrder, qty: Decimal, price: Decimal, liquidity: Liquidity) -> Fill:
        order.filled_qty += qty
        if order.filled_qty >= order.qty:
            order.status = VenueOrderStatus.FILLED
        else:
            order.status = VenueOrderStatus.PARTIALLY_FILLED
        instrument = self._rules.instrument(order.symbol)
        # The simulated venue's fee model: quote on price x qty, or the coin on an inverse contract's coin value.
        fee, fee_currency = FeeModel(self._rules.fees).charge(instrument, price, qty, liquidity)
        fill = Fill(
            venue=self._venue,
            trade_id=f"F{next(self._trade_ids)}",
            client_id=order.client_id,
            symbol=order.symbol,
            side=order.side,
            price=price,
            qty=qty,
            fee=fee,
            fee_currency=fee_currency,
            liquidity=liquidity,
            ts_event=self.now_ns,
            ts_recv=self.now_ns,
            venue_order_id=order.venue_order_id,
        )
        self._fills.append(fill)
        self._emit(fill)
        return fill

    def _report(self, order: FakeOrder) -> OrderStatusReport:
        return OrderStatusReport(
            venue=self._venue,
            client_id=order.client_id,
            venue_order_id=order.venue_order_id,
            symbol=order.symbol,
            side=order.side,
            price=order.price,
            qty=order.qty,
            filled_qty=order.filled_qty,
            status=order.status,
            ts_event=self.now_ns,
            ts_recv=self.now_ns,
        )
