"""Status by cancel: learn an order's state from a 35=F's answer when 35=H / 35=AF are not offered.

A mixin of :class:`connectors.truex.connector.TrueXConnector` (split out of
``connector.py`` by job). TrueX's published order-entry set is D, F, G, so a
probe is a cancel whose ExecutionReport (canceled) or OrderCancelReject
carries OrdStatus, CumQty and AvgPx (asking about a live order cancels it).
A reject that names the order but not its CumQty is never guessed at: it
becomes a failed query. Runs on the loop only.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import TYPE_CHECKING

import attrs
import quickfix as fix

from connectors.truex import builders, fix_tags, raw_message
from connectors.truex.client_app import OE
from connectors.truex.config import TrueXConfig
from connectors.truex.ids import IdGenerator
from connectors.truex.order_entry import _OrderInfo
from connectors.truex.session import now_ns
from mmkit.connector import Inbox, TransientVenueError, VenueRules
from mmkit.model import (
    OrderNotFound,
    OrderQueryFailed,
    OrderStatusReport,
    Side,
    VenueOrderStatus,
)


class StatusProbes:
    """Status probes by cancel (see the module docstring)."""

    _config: TrueXConfig
    _ids: IdGenerator
    _inbox: Inbox
    _orders: dict[str, _OrderInfo]
    _passed_fills: dict[str, tuple[set[str], Decimal]]
    _probes: dict[str, tuple[str, asyncio.Future[OrderStatusReport | OrderNotFound] | None]]
    _rules: VenueRules

    if TYPE_CHECKING:  # provided by TrueXConnector and its other mixins; for the type checker only

        @property
        def venue(self) -> str: ...

        def _send(self, kind: str, message: fix.Message, msg_type: str) -> bool: ...

        def _report_from(
            self, msg: raw_message.RawMessage, client_id: str, ts_recv: int
        ) -> OrderStatusReport | None: ...

    def _probe(
        self, client_id: str, symbol: str, future: asyncio.Future[OrderStatusReport | OrderNotFound] | None
    ) -> bool:
        """Send a 35=F whose answer is this order's status (see the module docstring); False if not sent."""
        info = self._orders.get(client_id)
        probe_id = self._ids.next("p")
        message = builders.order_cancel_request(
            probe_id, client_id, side=info.side if info else Side.BUY,
            symbol=info.symbol if info else self._rules.venue_symbol(symbol),
            party_id=self._config.party_id, ts_ns=now_ns(),
        )  # fmt: skip
        self._probes[probe_id] = (client_id, future)
        if not self._send(OE, message, "F"):
            self._probes.pop(probe_id, None)
            return False
        return True

    def _answer_probe(self, probe_id: str, event: OrderStatusReport | OrderNotFound) -> None:
        client_id, future = self._probes.pop(probe_id)
        if isinstance(event, OrderNotFound) or not event.status.is_open:
            self._orders.pop(client_id, None)
        if future is not None:
            if not future.done():
                future.set_result(event)
        else:
            self._inbox.put(event)

    def _on_probe_canceled(self, msg: raw_message.RawMessage, ts_recv: int) -> None:
        probe_id = msg.get(fix_tags.T_CLORDID) or ""
        client_id = self._probes[probe_id][0]
        self._check_cum_qty_quiet(msg)
        report = self._report_from(msg, client_id, ts_recv)
        if report is None:
            report = OrderStatusReport(
                self.venue, client_id, msg.get(fix_tags.T_ORDER_ID) or "", msg.get(fix_tags.T_SYMBOL) or "",
                Side.BUY, None,
                Decimal(0), Decimal(0), VenueOrderStatus.CANCELED, ts_recv, ts_recv,
            )  # fmt: skip
        self._answer_probe(probe_id, attrs.evolve(report, client_id=client_id))

    def _on_probe_reject(self, msg: raw_message.RawMessage, ts_recv: int) -> bool:
        probe_id = msg.get(fix_tags.T_CLORDID) or ""
        if probe_id not in self._probes:
            return False
        client_id, future = self._probes[probe_id]
        known = (msg.get(fix_tags.T_ORDER_ID) or "NONE") != "NONE"
        report = self._report_from(msg, client_id, ts_recv) if known else None
        if known and report is None:
            # The venue knows the order but did not say how much of it filled: never guess (a guess of 0
            # could hide a fill). Treat it as "could not ask"; recovery refuses, the tracker asks again.
            del self._probes[probe_id]
            text = "cancel reject without OrdStatus/CumQty"
            if future is not None and not future.done():
                future.set_exception(TransientVenueError(f"{client_id}: {text}"))
            elif future is None:
                self._inbox.put(OrderQueryFailed(self.venue, client_id, text, ts_recv))
        elif report is None:
            self._answer_probe(probe_id, OrderNotFound(self.venue, client_id, ts_recv))
        else:
            self._check_cum_qty_quiet(msg)
            self._answer_probe(probe_id, attrs.evolve(report, client_id=client_id))
        return True

    def _check_cum_qty_quiet(self, msg: raw_message.RawMessage) -> None:
        """A probe's own answer carries the CumQty to the engine; only move our count up to it."""
        cum, order_id = msg.get(fix_tags.T_CUM_QTY), msg.get(fix_tags.T_ORDER_ID) or ""
        if cum is not None and order_id and order_id != "NONE":
            seen, passed = self._passed_fills.get(order_id, (set(), Decimal(0)))
            self._passed_fills[order_id] = (seen, max(passed, Decimal(cum)))
