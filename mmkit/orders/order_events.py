"""How venue events move our orders: the event half of :class:`mmkit.orders.tracker.ClientOrderTracker`.

Why a module of its own: applying what a venue says (acks, rejects, cancels,
fills, replaces, status reports, "not found") to our shadow orders is one
job, separate from sending actions, querying stuck orders and reconciling
with an open-order listing, which stay in :mod:`mmkit.orders.tracker`. The
tracker inherits this mixin; both read and change the same maps of orders.

The rule that matters most (Hummingbot #8457): only a *definitive*
``OrderNotFound`` closes an order; ``OrderQueryFailed`` changes nothing.
Illegal transitions are logged and counted, never raised to the caller.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs

from mmkit.class_routes import ClassRoutes
from mmkit.connector import Connector
from mmkit.model import (
    Fill,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderExpired,
    OrderNotFound,
    OrderQueryFailed,
    OrderRejected,
    OrderReplaced,
    OrderStatusReport,
    RejectReason,
    VenueEvent,
    VenueOrderStatus,
)
from mmkit.orders.client_order import ClientOrder
from mmkit.orders.states import DONE_STATES, IllegalTransition, OrderState, Trigger

if TYPE_CHECKING:
    from loguru import Logger

__all__ = ["OrderEventHandlers"]

_STATUS_TRIGGER = {
    VenueOrderStatus.NEW: Trigger.ACCEPTED,
    VenueOrderStatus.PARTIALLY_FILLED: Trigger.ACCEPTED,
    VenueOrderStatus.FILLED: Trigger.FILL,
    VenueOrderStatus.CANCELED: Trigger.CANCELED,
    VenueOrderStatus.REJECTED: Trigger.REJECTED,
    VenueOrderStatus.EXPIRED: Trigger.EXPIRED,
}
#: Looked up once: an enum member access goes through the enum metaclass, and every ack and cancel asks.
_ACCEPTED, _CANCELED = Trigger.ACCEPTED, Trigger.CANCELED
#: (quantity, notional) filled on a venue order before its first fill (one pair, not two Decimals a fill).
_NOTHING_FILLED = (Decimal(0), Decimal(0))


def _not_an_order_event(event: VenueEvent) -> None:
    """What :meth:`ClientOrderTracker.on_event` does with an event that concerns no order: nothing."""
    return None


class OrderEventHandlers:
    """Applies venue events to the tracker's orders (a mixin of :class:`~mmkit.orders.tracker.ClientOrderTracker`)."""

    connector: Connector
    _log: Logger
    _active: dict[str, ClientOrder]
    _finished: OrderedDict[str, ClientOrder]
    _finished_cache_size: int
    _fill_keys: OrderedDict[tuple[str, str], None]
    _fill_memory: int
    _chain_filled: OrderedDict[str, tuple[Decimal, Decimal]]
    _version: int
    _members: int
    _event_handlers: dict[type, Callable[[Any], ClientOrder | None]]
    _event_routes: ClassRoutes[Callable[[Any], ClientOrder | None]]
    illegal_transitions: int
    duplicate_fills: int
    late_fills: int
    overfills: int
    unknown_events: int
    status_queries: int
    transient_query_failures: int

    def _new_event_routes(self) -> ClassRoutes[Callable[[Any], ClientOrder | None]]:
        """Each order event's handler by its class, in the order of the kinds (a Fill first)."""
        return ClassRoutes(
            [(Fill, self._on_fill), (OrderAccepted, self._on_accepted), (OrderRejected, self._on_rejected),
             (OrderCanceled, self._on_canceled), (OrderExpired, self._on_expired), (OrderReplaced, self._on_replaced),
             (OrderCancelRejected, self._on_cancel_rejected), (OrderStatusReport, self._on_status_report),
             (OrderNotFound, self._on_not_found), (OrderQueryFailed, self._on_query_failed)],
            _not_an_order_event,
        )

    def get(self, client_id: str) -> ClientOrder | None:
        return self._active.get(client_id) or self._finished.get(client_id)

    def on_events(self, events: Iterable[VenueEvent]) -> None:
        for event in events:
            self.on_event(event)

    def on_event(self, event: VenueEvent) -> ClientOrder | None:
        """Apply one normalized event; returns the order it concerned (None if unknown or not an order event)."""
        self._version += 1
        handler = self._event_handlers.get(type(event))
        if handler is None:
            handler = self._event_routes.classify(event)
        return handler(event)

    def _on_accepted(self, event: OrderAccepted) -> ClientOrder | None:
        order = self._active.get(event.client_id)  # _find's first look, inline (every order is acked)
        if order is None:
            order = self._find(event.client_id, event)
            if order is None:
                return None
        order.venue_order_id = event.venue_order_id or order.venue_order_id
        self._apply(order, _ACCEPTED, event.ts_recv)
        if order.replaces is not None:
            self._settle_replace(order, True, event.ts_recv)
        return order

    def _on_rejected(self, event: OrderRejected) -> ClientOrder | None:
        order = self._find(event.client_id, event)
        if order is not None:
            self._log.bind(client_id=order.client_id).warning("rejected: {} {}", event.reason.value, event.message)
            self._apply(order, Trigger.REJECTED, event.ts_recv)
            self._settle_replace(order, False, event.ts_recv)
        return order

    def _on_canceled(self, event: OrderCanceled) -> ClientOrder | None:
        order = self._active.get(event.client_id)  # as in _on_accepted
        if order is None:
            order = self._find(event.client_id, event)
            if order is None:
                return None
        self._apply(order, _CANCELED, event.ts_recv)
        if order.replaces is not None:
            self._settle_replace(order, True, event.ts_recv)
        return order

    def _on_expired(self, event: OrderExpired) -> ClientOrder | None:
        order = self._find(event.client_id, event)
        if order is not None:
            self._apply(order, Trigger.EXPIRED, event.ts_recv)
            self._settle_replace(order, True, event.ts_recv)
        return order

    def _on_status_report(self, event: OrderStatusReport) -> ClientOrder | None:
        order = self._find(event.client_id, event)
        if order is not None:
            self._on_status(order, event)
        return order

    def _on_not_found(self, event: OrderNotFound) -> ClientOrder | None:
        order = self._find(event.client_id, event)
        if order is not None:
            self._log.bind(client_id=order.client_id).warning("venue has no such order (was {})", order.state.value)
            self._apply(order, Trigger.NOT_FOUND, event.ts_recv)
            self._settle_replace(order, False, event.ts_recv)
        return order

    def _on_query_failed(self, event: OrderQueryFailed) -> ClientOrder | None:
        # Transient: we could not ask. Never a reason to mark anything lost (Hummingbot #8457).
        self.transient_query_failures += 1
        self._log.bind(client_id=event.client_id).info("status query failed ({}); will ask again", event.reason)
        return self.get(event.client_id)

    def _find(self, client_id: str, event: object) -> ClientOrder | None:
        order = self.get(client_id)
        if order is None:
            self.unknown_events += 1
            self._log.bind(client_id=client_id).warning("event for an unknown order: {}", type(event).__name__)
        return order

    def _apply(self, order: ClientOrder, trigger: Trigger, now_ns: int) -> bool:
        try:
            state = order.apply(trigger, now_ns)
        except IllegalTransition as exc:
            self.illegal_transitions += 1
            self._log.bind(client_id=order.client_id).error("{}", exc)
            return False
        # :meth:`_file` only when it has something to do (every event of every order comes here, and most
        # leave a live order in the active map, where it is): a finished order, or one not in the map.
        if state in DONE_STATES or order.request.client_id not in self._active:
            self._file(order)
        return True

    def _file(self, order: ClientOrder) -> None:
        """Keep finished orders in the bounded cache and live ones in the active map."""
        cid = order.request.client_id
        if order.state in DONE_STATES:
            if self._active.pop(cid, None) is not None:
                self._members += 1
                self._finished[cid] = order
                while len(self._finished) > self._finished_cache_size:
                    self._finished.popitem(last=False)
        elif cid not in self._active:  # resurrected (FAILED -> OPEN)
            self._finished.pop(cid, None)
            self._active[cid] = order
            self._members += 1

    def _settle_replace(self, order: ClientOrder, lived: bool, now_ns: int) -> None:
        """If ``order`` is the replacement leg and its fate is now known, settle the original."""
        if order.replaces is None:
            return
        orig = self.get(order.replaces)
        if orig is None or orig.state is not OrderState.PENDING_REPLACE:
            return
        if lived:
            self._apply(orig, Trigger.REPLACED, now_ns)
        else:
            orig.replaced_by = None
            self._apply(orig, Trigger.REPLACE_REJECTED, now_ns)

    def _on_fill(self, fill: Fill) -> ClientOrder | None:
        key = fill.key
        if key in self._fill_keys:
            self.duplicate_fills += 1
            return self.get(fill.client_id)
        self._fill_keys[key] = None
        if len(self._fill_keys) > self._fill_memory:
            self._fill_keys.popitem(last=False)
        order = self._find(fill.client_id, fill)
        if order is None:
            return None
        was_done = order.is_done
        trigger = order.add_fill(fill.qty, fill.price, fill.fee)
        chain_id = fill.venue_order_id or order.venue_order_id
        if chain_id:
            qty, notional = self._chain_filled.get(chain_id, _NOTHING_FILLED)
            self._chain_filled[chain_id] = (qty + fill.qty, notional + fill.qty * fill.price)
            if len(self._chain_filled) > self._finished_cache_size:
                self._chain_filled.popitem(last=False)
        # The order's logger is bound only when there is something to say (a bind builds a Logger).
        if was_done:
            self.late_fills += 1
            self._log.bind(client_id=order.client_id).warning(
                "late fill {} {}@{} after {}", fill.trade_id, fill.qty, fill.price, order.state.value
            )
        if order.filled_qty > order.qty:
            self.overfills += 1
            self._log.bind(client_id=order.client_id).error("over-filled: {} filled of {}", order.filled_qty, order.qty)
        self._apply(order, trigger, fill.ts_recv)
        return order

    def _on_replaced(self, event: OrderReplaced) -> ClientOrder | None:
        orig = self._find(event.orig_client_id, event)
        new = self.get(event.client_id)
        if new is None:
            if orig is None:
                return None
            request = attrs.evolve(orig.request, client_id=event.client_id, price=event.price, qty=event.qty)
            new = ClientOrder(request, slot=orig.slot, created_ns=event.ts_recv, updated_ns=event.ts_recv)
            new.replaces = orig.client_id
            self._active[new.client_id] = new
            self._members += 1
        new.venue_order_id = event.venue_order_id
        self._apply(new, Trigger.ACCEPTED, event.ts_recv)
        if orig is not None:
            orig.replaced_by = new.client_id
            self._apply(orig, Trigger.REPLACED, event.ts_recv)
        return new

    def _on_cancel_rejected(self, event: OrderCancelRejected) -> ClientOrder | None:
        order = self._find(event.client_id, event)
        if event.is_replace:
            new = self.get(event.new_client_id) if event.new_client_id else None
            if new is not None:
                self._apply(new, Trigger.REJECTED, event.ts_recv)
            if order is not None:
                order.replaced_by = None
                self._apply(order, Trigger.REPLACE_REJECTED, event.ts_recv)
        elif order is not None:
            self._apply(order, Trigger.CANCEL_REJECTED, event.ts_recv)
        if order is not None:
            self._log.bind(client_id=order.client_id).warning(
                "{} rejected: {} {}", "replace" if event.is_replace else "cancel", event.reason.value, event.message
            )
            if event.reason is RejectReason.UNKNOWN_ORDER and not order.is_done and self.connector.connected:
                # The venue does not know it: ask for a definitive answer rather than assume anything.
                self.status_queries += 1
                self.connector.request_order_status(order.client_id, order.symbol)
        return order

    def _on_status(self, order: ClientOrder, report: OrderStatusReport) -> None:
        now = report.ts_recv
        if report.venue_order_id:
            order.venue_order_id = report.venue_order_id
        order.venue_filled_qty = max(order.venue_filled_qty, report.filled_qty)
        # A venue filled quantity unlike the ledger's is handled before this point (UserStreamTracker: above,
        # it books the difference as a flagged synthetic fill; below, the ledger is ahead; both halt); nothing
        # to repeat here, and nothing is taken out of the ledger.
        self._apply(order, _STATUS_TRIGGER[report.status], now)
        if report.status.is_open and order.state is OrderState.PENDING_CANCEL and self.connector.connected:
            self._log.bind(client_id=order.client_id).info("still open while PENDING_CANCEL: re-sending cancel")
            self._apply(order, Trigger.CANCEL_SUBMITTED, now)
            self.connector.cancel(order.client_id, order.symbol)
        lived = report.status is not VenueOrderStatus.REJECTED
        self._settle_replace(order, lived, now)
