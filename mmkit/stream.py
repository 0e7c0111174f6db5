"""UserStreamTracker: our fills, order updates and balances, in one ordered stream.

Why one place: the order tracker must see an event before anyone who
reasons about orders (inventory, PnL, the controller's ``on_fill``), and a
fill must be booked exactly once even when a venue repeats it (reconnect
replays, a status query and an execution report describing the same trade,
Hummingbot #2945). So every private event goes through here, in arrival
order: first to the :class:`~mmkit.orders.tracker.ClientOrderTracker`, then
to the registered listeners. A listener that raises is logged and counted;
the others still run.

Before a fill reaches anyone it is validated (:mod:`mmkit.orders.validation`):
a repeat of a (venue, exec id) with the same content is dropped and counted;
the same key with other content (a *conflict*), a non-positive quantity or
price, an over-fill, a fill through its limit or outside the venue's price
band is *quarantined*: never booked, never hedged, handed to the quarantine
listeners (store table, alarm) and raised as a :class:`LedgerAlarm`.

A status report (or any report the connector turns into one) whose filled
quantity exceeds what the ledger holds for that venue order means fills
went missing: the difference is booked as a flagged synthetic fill (trade id
``SYN-...``, priced from CumQty/AvgPx) and a LedgerAlarm halts quoting.
Never a warning and carry on.

The other way round, a report whose filled quantity is *below* what the
ledger booked on that venue order (by more than half a lot) means the ledger
is ahead of the venue: an execution booked twice, or one the venue does not
know. Quoting halts at once (LedgerAlarm, exit 5) with the order and both
quantities; nothing is taken out of the ledger, because the venue may be the
one that is wrong: a person decides, with ``mmkit reconcile``. A fill whose
own report carries the venue's CumQty is checked before it is booked
(``beyond_venue_cum`` in :mod:`mmkit.orders.validation`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from functools import partial
from typing import Any

from loguru import logger

from mmkit.class_routes import ClassRoutes
from mmkit.connector import status_capabilities
from mmkit.instrument import Instrument
from mmkit.model import (
    ZERO,
    Balance,
    BalanceUpdate,
    Fill,
    Liquidity,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderExpired,
    OrderNotFound,
    OrderQueryFailed,
    OrderRejected,
    OrderReplaced,
    OrderStatusReport,
    VenueEvent,
)
from mmkit.orders.tracker import ClientOrderTracker
from mmkit.orders.validation import (
    FillContent,
    FillValidator,
    LedgerAlarm,
    QuarantinedFill,
    QuarantineKind,
    fill_content,
    size_tolerance,
)
from mmkit.risk.settlement import Settlement

FillListener = Callable[[Fill], None]
OrderListener = Callable[[VenueEvent], None]
BalanceListener = Callable[[BalanceUpdate], None]
QuarantineListener = Callable[[QuarantinedFill], object]
AlarmListener = Callable[[LedgerAlarm], None]

#: Trade ids of fills the engine booked from a venue's CumQty rather than from an execution report.
SYNTHETIC_PREFIX = "SYN-"
_PRICE_QUANTUM = Decimal("1e-8")

_ORDER_EVENTS = (
    OrderAccepted,
    OrderRejected,
    OrderCanceled,
    OrderExpired,
    OrderReplaced,
    OrderCancelRejected,
    OrderStatusReport,
    OrderNotFound,
    OrderQueryFailed,
)


def _check_kinds(fn: OrderListener, kinds: object) -> None:
    """Refuse an order listener's ``kinds`` unless it is a non-empty tuple of order event classes."""
    name = getattr(fn, "__qualname__", None) or repr(fn)
    if not isinstance(kinds, tuple) or not kinds:
        raise TypeError(f"order listener {name}: kinds must be a non-empty tuple of order event classes "
                        f"(or None for every order event), got {kinds!r}")
    for kind in kinds:
        if not (isinstance(kind, type) and issubclass(kind, _ORDER_EVENTS)):
            raise TypeError(f"order listener {name}: {kind!r} in kinds is not an order event class (one of "
                            f"{', '.join(k.__name__ for k in _ORDER_EVENTS)} or a subclass): it would never "
                            "be called with it")


class UserStreamTracker:
    """Delivers private events once, in order: order tracker first, then listeners."""

    def __init__(self, order_tracker: ClientOrderTracker | None = None, fill_memory: int = 200_000) -> None:
        self.order_tracker = order_tracker
        self._fill_listeners: list[FillListener] = []
        self._order_listeners: list[OrderListener] = []
        #: The event classes each order listener takes (None: every order event), beside ``_order_listeners``.
        self._order_kinds: list[tuple[type, ...] | None] = []
        self._balance_listeners: list[BalanceListener] = []
        #: (venue, exec id) -> the content first seen under it (None: known from a restart, content unknown).
        self._seen_fills: OrderedDict[tuple[str, str], FillContent | None] = OrderedDict()
        self._fill_memory = fill_memory
        self._balances: dict[str, dict[str, Balance]] = {}
        self._quarantine_listeners: list[QuarantineListener] = []
        self._alarm_listeners: list[AlarmListener] = []
        #: The current fair price, for the price-band check (the engine sets it; None: band not checked).
        self.fair_price: Callable[[], Decimal | None] | None = None
        self.validator = FillValidator(
            order_tracker.get if order_tracker is not None else (lambda _cid: None),
            self._instrument_of,
            lambda: self.fair_price() if self.fair_price is not None else None,
            order_tracker.booked_before if order_tracker is not None else None,
        )
        self.quarantined: list[QuarantinedFill] = []
        self.synthetic_fills = 0
        #: Reports that said the venue has less filled on an order than the ledger booked (each alarmed).
        self.ledger_ahead = 0
        #: venue order (or client) id -> (venue filled, ledger booked) last alarmed: a venue that repeats the
        #: same answer is one finding, not one per report.
        self._ahead_seen: dict[str, tuple[Decimal, Decimal]] = {}
        self.duplicate_fills = 0
        self.listener_errors = 0
        self.ignored_events = 0
        self.delivered = 0
        #: Each event's handler, by its class (mmkit.class_routes: the isinstance checks once per class). The
        #: handler of an order event class (status reports included) is the route bound to that class's own
        #: order listeners (:meth:`_handler_of`): a listener that takes only some classes (``kinds``) is not
        #: called for the others at all. Adding an order listener drops these (:meth:`add_order_listener`).
        self._routes: ClassRoutes[Callable[[Any], bool]] = ClassRoutes(
            [(Fill, self._push_fill), (OrderStatusReport, self._push_status), (_ORDER_EVENTS, self._push_order),
             (BalanceUpdate, self._push_balance)],
            self._ignore,
        )
        self._handlers = self._routes.memo

    # -- registration ---------------------------------------------------

    def add_fill_listener(self, fn: FillListener) -> None:
        self._fill_listeners.append(fn)

    def add_order_listener(self, fn: OrderListener, kinds: tuple[type, ...] | None = None) -> None:
        """Called with every non-fill order event (accepted, rejected, canceled, replaced, status...).

        ``kinds``: only with the events that are instances of these classes. Why: a listener that
        counts rejects (the backtest's :class:`~mmkit.backtest.rejections.RejectionCounter`) would
        otherwise be called, and return at once, for each of the thousands of acks and cancels.
        A ``kinds`` that is not a non-empty tuple of order event classes is refused here (TypeError): a
        list would raise on the first order event, outside the listeners' error handling, and a class
        no order event is would leave the listener silently never called.
        """
        if kinds is not None:
            _check_kinds(fn, kinds)
        self._order_listeners.append(fn)
        self._order_kinds.append(kinds)
        self._handlers.clear()  # the handlers carry each class's listeners: make them again with this one

    def add_balance_listener(self, fn: BalanceListener) -> None:
        self._balance_listeners.append(fn)

    def add_quarantine_listener(self, fn: QuarantineListener) -> None:
        """Called with every fill kept out of the ledger (store it apart, audit it)."""
        self._quarantine_listeners.append(fn)

    def add_alarm_listener(self, fn: AlarmListener) -> None:
        """Called when the ledger is in doubt: the engine halts quoting (sticky) and records exit 5."""
        self._alarm_listeners.append(fn)

    # -- input ----------------------------------------------------------

    def remember_fills(self, keys: Iterable[tuple[str, str] | Fill]) -> None:
        """Treat these fills as already delivered (restart recovery pre-loads the ledger's).

        Given a Fill, its content is kept too, so that a later report under the
        same key with other content is a conflict; given only a (venue, trade
        id) key, a later report under it is taken as a repeat.
        """
        for item in keys:
            if isinstance(item, Fill):
                if item.key not in self._seen_fills and self.order_tracker is not None:
                    self.order_tracker.remember_filled(item)
                self._seen_fills[item.key] = fill_content(item)
            else:
                self._seen_fills.setdefault(item, None)
        while len(self._seen_fills) > self._fill_memory:
            self._seen_fills.popitem(last=False)

    def process(self, events: Iterable[VenueEvent]) -> None:
        handlers = self._handlers
        for event in events:
            handler = handlers.get(type(event))
            if handler is None:
                handler = self._handler_of(event)
            handler(event)

    def push(self, event: VenueEvent) -> bool:
        """Handle one event; returns False for duplicates and events that are not ours to handle."""
        handler = self._handlers.get(type(event))
        if handler is None:
            handler = self._handler_of(event)
        return handler(event)

    def _handler_of(self, event: VenueEvent) -> Callable[[Any], bool]:
        """The route of ``event`` (:attr:`_routes`); an order event's bound to the listeners of its class.

        Kept per class in :attr:`_handlers` (as :class:`ClassRoutes` keeps it: not for an object whose
        ``__class__`` is not its type, which is classified afresh each time).
        """
        route = self._routes.classify(event)
        if route in (self._push_order, self._push_status):
            listeners = tuple(fn for fn, kinds in zip(self._order_listeners, self._order_kinds, strict=True)
                              if kinds is None or isinstance(event, kinds))
            route = partial(self._deliver if route == self._push_order else self._push_status_to, listeners)
            if event.__class__ is type(event):
                self._handlers[type(event)] = route
        return route

    def _push_order(self, event: VenueEvent) -> bool:
        """An order event other than a fill or a status report: the tracker, then every listener taking it."""
        return self._handler_of(event)(event)

    def _push_status(self, report: OrderStatusReport) -> bool:
        return self._handler_of(report)(report)

    def _push_status_to(self, listeners: Sequence[OrderListener], report: OrderStatusReport) -> bool:
        self._check_venue_filled(report)
        return self._deliver(listeners, report)

    def _push_balance(self, event: BalanceUpdate) -> bool:
        venue_balances = self._balances.setdefault(event.venue, {})
        for balance in event.balances:
            venue_balances[balance.asset] = balance
        self._notify(self._balance_listeners, event)
        return True

    def _ignore(self, event: VenueEvent) -> bool:
        self.ignored_events += 1
        return False

    # -- views ----------------------------------------------------------

    def balances(self, venue: str) -> dict[str, Balance]:
        """Latest balance per asset on ``venue`` (a copy)."""
        return dict(self._balances.get(venue, {}))

    def balance(self, venue: str, asset: str) -> Balance | None:
        return self._balances.get(venue, {}).get(asset)

    # -- internals ------------------------------------------------------

    def _push_fill(self, fill: Fill) -> bool:
        key = fill.key
        content = fill_content(fill)
        if key in self._seen_fills:
            seen = self._seen_fills[key]
            if seen is None or seen == content:
                self.duplicate_fills += 1
                logger.bind(venue=fill.venue, client_id=fill.client_id).info("duplicate fill {} dropped", key[1])
                return False
            self._quarantine(
                fill,
                QuarantineKind.CONFLICT,
                f"{fill.venue} fill {fill.trade_id} conflicts with the fill first reported under that id: "
                f"{fill.side.value} {fill.qty}@{fill.price} on {fill.client_id}, "
                f"was {seen[2].value} {seen[4]}@{seen[3]} on {seen[0]}",
            )
            return False
        self._seen_fills[key] = content
        if len(self._seen_fills) > self._fill_memory:
            self._seen_fills.popitem(last=False)
        verdict = self.validator.check(fill)
        if verdict is not None:
            self._quarantine(fill, verdict[0], verdict[1])
            return False
        return self._deliver(self._fill_listeners, fill)

    def _quarantine(self, fill: Fill, kind: QuarantineKind, reason: str) -> None:
        ts = fill.ts_recv or fill.ts_event
        item = QuarantinedFill(fill, kind, reason, ts)
        self.quarantined.append(item)
        logger.bind(venue=fill.venue, client_id=fill.client_id).error("fill QUARANTINED ({}): {}", kind.value, reason)
        self._notify(self._quarantine_listeners, item)
        self._alarm(LedgerAlarm(f"quarantined fill ({kind.value}): {reason}", ts, fill))

    def _alarm(self, alarm: LedgerAlarm) -> None:
        for fn in self._alarm_listeners:
            try:
                fn(alarm)
            except Exception:
                self.listener_errors += 1
                logger.opt(exception=True).error("ledger alarm listener failed on {}", alarm.reason)

    def _check_venue_filled(self, report: OrderStatusReport) -> None:
        """Venue says more is filled than the ledger holds: book the difference (flagged) and alarm."""
        tracker = self.order_tracker
        if tracker is None:
            return
        held, held_notional = tracker.ledger_filled(report.client_id, report.venue_order_id)
        missing = report.filled_qty - held
        if missing <= ZERO:
            if missing < ZERO:
                self._check_ledger_ahead(report, held, tracker)
            return
        avg = report.avg_px
        if avg is not None and avg > ZERO:
            price = ((report.filled_qty * avg - held_notional) / missing).quantize(_PRICE_QUANTUM)
        else:
            price = report.price if report.price is not None else ZERO
        instrument = self._instrument_of(report.symbol)
        fee, fee_currency = self._taker_fee(instrument, price, missing)
        fill = Fill(
            venue=report.venue,
            trade_id=f"{SYNTHETIC_PREFIX}{report.venue_order_id or report.client_id}-{report.filled_qty}",
            client_id=report.client_id,
            symbol=report.symbol,
            side=report.side,
            price=price,
            qty=missing,
            fee=fee,
            fee_currency=fee_currency,
            liquidity=Liquidity.TAKER,
            ts_event=report.ts_event,
            ts_recv=report.ts_recv,
            venue_order_id=report.venue_order_id,
        )
        reason = (
            f"{report.venue} reports {report.filled_qty} filled on {report.client_id}"
            f" (order {report.venue_order_id or '?'}), the ledger held {held}: fills missing;"
            f" booked synthetic fill {fill.trade_id} {missing}@{price}"
        )
        logger.bind(venue=report.venue, client_id=report.client_id).error("LEDGER MISMATCH: {}", reason)
        self.synthetic_fills += 1
        self._push_fill(fill)
        self._alarm(LedgerAlarm(reason, report.ts_recv or report.ts_event, fill))

    def _check_ledger_ahead(self, report: OrderStatusReport, held: Decimal, tracker: ClientOrderTracker) -> None:
        """The venue reports less filled than the ledger booked on the order: halt, name it, remove nothing.

        What is compared: the ledger's whole venue order (``held``, across its ClOrdIDs) where the venue's
        figure spans replaces (FIX CumQty: ``StatusCapabilities.filled_spans_replaces``), else only what
        was booked under the ClOrdID asked about: a venue that counts per ClOrdID (the simulator) reports
        less than the chain after every replace, and that is no finding. Within half a lot it is rounding
        (:func:`size_tolerance`), not a trade. The ledger is not corrected: either side may be the wrong
        one (a re-sent execution booked twice, or a venue that lost one), so a person decides with
        ``mmkit reconcile`` after stopping.
        """
        if not status_capabilities(tracker.connector).filled_spans_replaces:
            order = tracker.get(report.client_id)
            if order is None:
                return  # nothing booked under that ClOrdID by this run: nothing the venue could fall short of
            held = order.filled_qty
        excess = held - report.filled_qty
        if excess <= size_tolerance(self._instrument_of(report.symbol)):
            return
        order_key = report.venue_order_id or report.client_id
        if self._ahead_seen.get(order_key) == (report.filled_qty, held):
            return  # the same finding again (a repeated answer): alarmed and counted once
        self._ahead_seen[order_key] = (report.filled_qty, held)
        self.ledger_ahead += 1
        reason = (
            f"ledger ahead of venue: {report.venue} reports {report.filled_qty} filled on {report.client_id}"
            f" (order {report.venue_order_id or '?'}), the ledger booked {held} on it ({excess} more): a fill"
            f" booked twice or one the venue does not know; nothing was removed from the ledger."
            f" Stop the engine and run `mmkit reconcile` to decide"
        )
        logger.bind(venue=report.venue, client_id=report.client_id).error("LEDGER AHEAD OF VENUE: {}", reason)
        self._alarm(LedgerAlarm(reason, report.ts_recv or report.ts_event))

    def _taker_fee(self, instrument: Instrument | None, price: Decimal, qty: Decimal) -> tuple[Decimal, str]:
        """The fee of an inferred fill at the taker rate, on its value in the ledger's unit, and its currency.

        Linear: on ``price·qty`` in the quote currency. Inverse (COIN-M): on the
        fill's coin value ``qty·contract_size/price``, in the base coin, as the
        venue charges it; the linear formula would book contracts × price as
        if it were coin and overstate the fee by a factor of price²/size.
        """
        assert self.order_tracker is not None
        fees = self.order_tracker.rules.fees
        if instrument is None:
            return fees.fee(price * qty, is_maker=False), ""
        if instrument.inverse and price > ZERO:
            try:
                settlement = Settlement.of(instrument)
            except ValueError as exc:  # no contract size: the fill is still booked (and alarmed), its fee unknown
                logger.error("synthetic fill on {}: fee not charged: {}", instrument.symbol, exc)
                return ZERO, instrument.base
            return fees.fee(settlement.value(price, qty), is_maker=False), instrument.base
        return fees.fee(price * qty, is_maker=False), instrument.quote

    def _instrument_of(self, symbol: str) -> Instrument | None:
        tracker = self.order_tracker
        if tracker is None:
            return None
        for instrument in tracker.rules.instruments:
            if instrument.symbol == symbol or tracker.rules.venue_symbol(instrument.symbol) == symbol:
                return instrument
        return None

    def _deliver(self, listeners: Sequence[Callable[..., object]], event: VenueEvent) -> bool:
        """An event we keep: to the order tracker first, then to ``listeners`` (:meth:`_notify`, inline: every
        order event and fill comes here)."""
        tracker = self.order_tracker
        if tracker is not None:
            try:
                tracker.on_event(event)
            except Exception:  # the tracker is built not to raise; if it does, keep the stream flowing
                self.listener_errors += 1
                logger.opt(exception=True).error("order tracker failed on {}", type(event).__name__)
        self.delivered += 1
        for fn in listeners:
            try:
                fn(event)
            except Exception:
                self.listener_errors += 1
                logger.opt(exception=True).error("listener {} failed on {}", getattr(fn, "__qualname__", fn), event)
        return True

    def _notify(self, listeners: Sequence[Callable[..., object]], event: VenueEvent | QuarantinedFill) -> None:
        self.delivered += 1
        for fn in listeners:
            try:
                fn(event)
            except Exception:
                self.listener_errors += 1
                logger.opt(exception=True).error("listener {} failed on {}", getattr(fn, "__qualname__", fn), event)
