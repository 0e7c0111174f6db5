"""TrueXConnector's order entry: place, cancel, replace, cancel_all and status requests as 35=D/F/G/H.

A mixin of :class:`connectors.truex.connector.TrueXConnector` (split out of
``connector.py`` by job). Submit-only: each call sends one request and
returns; the answers come back as events through ``order_answers``. A
request that cannot leave this process (OE down) becomes the matching
reject or ``OrderQueryFailed`` at once. ``_OrderInfo`` is the per-ClOrdID
registry entry that F/G/H need (side, symbol) and the engine does not pass
back.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import TYPE_CHECKING

import attrs
import quickfix as fix

from connectors.truex import builders
from connectors.truex.client_app import OE, SESSION_TYPES
from connectors.truex.config import TrueXConfig
from connectors.truex.ids import IdGenerator
from connectors.truex.session import now_ns
from connectors.truex.templates import Templates
from connectors.truex.watchdog import SessionWatchdog
from mmkit.connector import Inbox, VenueRules
from mmkit.model import (
    OrderCancelRejected,
    OrderNotFound,
    OrderQueryFailed,
    OrderRejected,
    OrderRequest,
    OrderStatusReport,
    RejectReason,
    ReplaceRequest,
    Side,
)

if TYPE_CHECKING:
    from loguru import Logger


@attrs.define(slots=True)
class _OrderInfo:
    """What F/G/H need that the engine does not pass back (side, symbol), per live ClOrdID."""

    symbol: str
    side: Side
    price: Decimal | None
    qty: Decimal
    post_only: bool = True
    #: CumQty(14) the venue last reported for this order chain (FIX counts it across replaces).
    cum_qty: Decimal = Decimal(0)


class OrderEntry:
    """Order-entry requests of the TrueX connector (see the module docstring)."""

    _cancels: dict[str, str]
    _config: TrueXConfig
    _ids: IdGenerator
    _inbox: Inbox
    _inbox_requests: set[str]
    _log: Logger
    _logged_on: dict[str, bool]
    _orders: dict[str, _OrderInfo]
    _rules: VenueRules
    _session_ids: dict[str, fix.SessionID]
    _templates: Templates
    _watchdog: SessionWatchdog

    if TYPE_CHECKING:  # provided by TrueXConnector and its other mixins; for the type checker only

        @property
        def venue(self) -> str: ...

        def _probe(
            self, client_id: str, symbol: str, future: asyncio.Future[OrderStatusReport | OrderNotFound] | None
        ) -> bool: ...

    def _send(self, kind: str, message: fix.Message, msg_type: str) -> bool:
        """True if QuickFIX took the message for sending; False = not sent (logged out, or the wrong session).

        ``msg_type`` is the message's 35 as the caller built it (asking QuickFIX would cost a call per
        order). A type the session does not carry is refused here, before QuickFIX: refusing it in
        ``toApp`` (DoNotSend) aborts the whole process with this QuickFIX build.
        """
        if msg_type not in SESSION_TYPES[kind]:
            self._log.error("refusing to send 35={} on the {} session", msg_type, kind)
            return False
        if not self._logged_on[kind]:
            return False
        try:
            return bool(fix.Session.sendToTarget(message, self._session_ids[kind]))
        except fix.SessionNotFound:
            return False

    def place(self, order: OrderRequest) -> None:
        ts = now_ns()
        symbol = self._rules.venue_symbol(order.symbol)
        message = self._templates.new_order_single(order, self._config.party_id, symbol, ts)
        self._orders[order.client_id] = _OrderInfo(symbol, order.side, order.price, order.qty, order.post_only)
        self._watchdog.sent(order.client_id, ts)
        if not self._send(OE, message, "D"):
            self._orders.pop(order.client_id, None)
            self._inbox.put(
                OrderRejected(self.venue, order.client_id, RejectReason.NOT_CONNECTED, "OE session down", ts, ts)
            )

    def cancel(self, client_id: str, symbol: str) -> None:
        ts = now_ns()
        info = self._orders.get(client_id)
        if info is None:
            self._inbox.put(
                OrderCancelRejected(self.venue, client_id, RejectReason.UNKNOWN_ORDER, "order not known", ts, ts)
            )
            return
        cancel_id = self._ids.next("c")
        message = builders.order_cancel_request(
            cancel_id, client_id, side=info.side, symbol=info.symbol, party_id=self._config.party_id, ts_ns=ts
        )
        self._cancels[cancel_id] = client_id
        self._watchdog.sent(cancel_id, ts)
        if not self._send(OE, message, "F"):
            self._cancels.pop(cancel_id, None)
            self._inbox.put(
                OrderCancelRejected(self.venue, client_id, RejectReason.NOT_CONNECTED, "OE session down", ts, ts)
            )

    def replace(self, request: ReplaceRequest) -> None:
        ts = now_ns()
        info = self._orders.get(request.orig_client_id)
        symbol = info.symbol if info is not None else self._rules.venue_symbol(request.symbol)
        post_only = info.post_only if info is not None else True
        cum_qty = info.cum_qty if info is not None else Decimal(0)
        message = builders.cancel_replace_request(
            request.client_id,
            request.orig_client_id,
            side=request.side,
            symbol=symbol,
            price=request.price,
            qty=request.qty + cum_qty,  # ReplaceRequest.qty is open quantity; OrderQty(38) is the chain's total
            party_id=self._config.party_id,
            ts_ns=ts,
            post_only=post_only,
        )
        self._orders.setdefault(
            request.client_id, _OrderInfo(symbol, request.side, request.price, request.qty, post_only, cum_qty)
        )
        self._cancels[request.client_id] = request.orig_client_id
        self._watchdog.sent(request.client_id, ts)
        if not self._send(OE, message, "G"):
            self._orders.pop(request.client_id, None)
            self._cancels.pop(request.client_id, None)
            self._inbox.put(
                OrderCancelRejected(
                    self.venue,
                    request.orig_client_id,
                    RejectReason.NOT_CONNECTED,
                    "OE session down",
                    ts,
                    ts,
                    is_replace=True,
                    new_client_id=request.client_id,
                )
            )

    def cancel_all(self, symbol: str | None = None) -> None:
        """TrueX has no mass cancel among its public messages: one 35=F per order we know to be live."""
        venue_symbol = None if symbol is None else self._rules.venue_symbol(symbol)
        pending = set(self._cancels.values())
        for client_id, info in list(self._orders.items()):
            if venue_symbol is None or info.symbol == venue_symbol:
                if client_id in pending:
                    continue
                self.cancel(client_id, info.symbol)

    def request_order_status(self, client_id: str, symbol: str) -> None:
        if not self._config.status_requests:
            if not self._probe(client_id, symbol, None):
                self._inbox.put(OrderQueryFailed(self.venue, client_id, "OE session down", now_ns()))
            return
        info = self._orders.get(client_id)
        side = info.side if info is not None else Side.BUY  # TrueX looks orders up by ClOrdID
        request_id = self._ids.next("s")
        message = builders.order_status_request(
            client_id, side, self._rules.venue_symbol(symbol), request_id, self._config.party_id
        )
        self._inbox_requests.add(request_id)
        if not self._send(OE, message, "H"):
            self._inbox_requests.discard(request_id)
            self._inbox.put(OrderQueryFailed(self.venue, client_id, "OE session down", now_ns()))
