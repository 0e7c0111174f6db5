"""TrueXConnector's reading of order-entry answers: 35=8, 35=9, 35=j and 35=3 into order events.

A mixin of :class:`connectors.truex.connector.TrueXConnector` (split out of
``connector.py`` by job). It turns each answer into the events the engine
sees, keeps the side/symbol registry in step with the venue, charges the fee
schedule when a fill has no Commission(12), checks every CumQty against the
fills passed on (an OrderStatusReport goes out first when the venue counts
more: bytes were lost) and completes the futures of status queries. Runs on
the loop only.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import TYPE_CHECKING

import attrs

from connectors.truex import fix_tags, parsers, raw_message, rejects, report_checks
from connectors.truex.client_app import ClientApp
from connectors.truex.fix_tags import _SIDE_CODES
from connectors.truex.order_entry import _OrderInfo
from mmkit.connector import Inbox, TransientVenueError, VenueRules
from mmkit.model import (
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
    RejectReason,
    Side,
    VenueEvent,
)

if TYPE_CHECKING:
    from loguru import Logger

#: CumQty 0 (immutable: every order's registry entry may share it).
_ZERO = Decimal(0)


class OrderAnswers:
    """Order-entry answers to events, fees and CumQty checks (see the module docstring)."""

    _app: ClientApp | None
    _cancels: dict[str, str]
    _inbox: Inbox
    _inbox_requests: set[str]
    _log: Logger
    _mass_waiters: dict[str, tuple[asyncio.Future[list[OrderStatusReport]], list[OrderStatusReport]]]
    _orders: dict[str, _OrderInfo]
    _passed_fills: dict[str, tuple[set[str], Decimal]]
    _probes: dict[str, tuple[str, asyncio.Future[OrderStatusReport | OrderNotFound] | None]]
    _reconciling: set[str]
    _rules: VenueRules
    _status_waiters: dict[str, tuple[str, asyncio.Future[OrderStatusReport | OrderNotFound]]]
    cum_qty_mismatches: int

    if TYPE_CHECKING:  # provided by TrueXConnector and its other mixins; for the type checker only

        @property
        def venue(self) -> str: ...

        def _on_probe_canceled(self, msg: raw_message.RawMessage, ts_recv: int) -> None: ...

    def _on_order_accepted(self, msg: raw_message.RawMessage, ts_recv: int) -> bool:
        """An ExecutionReport New with nothing filled: ``OrderAccepted``, as ``_on_execution_report`` makes it.

        WHY a path of its own: it is the answer to nearly every order, and the
        general one (``parsers.parse_execution_report``, a list of events,
        ``_track``'s type tests, ``_check_cum_qty``) was a third of the loop's
        work per answer (bench/bench_fix.py). For such a report the general
        path does exactly this: one OrderAccepted, CumQty 0 noted on the
        order, no CumQty check (0 can never exceed what was passed on, and an
        OrderID with fills passed on, where 0 would be below, goes the general way).
        tests/unit/truex/test_order_answers_fast.py compares the two.
        False: not such a report, nothing done (the general path takes it).
        """
        get = msg.get
        if get(fix_tags.T_EXEC_TYPE) != "0" or get(fix_tags.T_ORD_STATUS) != "0":
            return False
        cum = get(fix_tags.T_CUM_QTY)
        if cum is not None and cum != "0":
            return False
        order_id = get(fix_tags.T_ORDER_ID) or ""
        if cum is not None and order_id in self._passed_fills:
            return False  # CumQty 0 on an order we passed fills of: the general path's check reports it
        client_id = get(fix_tags.T_CLORDID) or ""
        tracked = self._orders.get(client_id)
        if (
            tracked is None
            or get(fix_tags.T_SIDE) != _SIDE_CODES[tracked.side]
            or get(fix_tags.T_SYMBOL) != tracked.symbol
        ):
            return False  # not the order we sent as we sent it: the general path's checks (report_checks) say why
        if cum is not None:
            tracked.cum_qty = _ZERO
        self._inbox.put(OrderAccepted(self.venue, client_id, order_id, parsers.event_time(msg, ts_recv), ts_recv))
        return True

    def _on_execution_report(self, msg: raw_message.RawMessage, ts_recv: int) -> None:
        if msg.get(fix_tags.T_EXEC_TYPE) == "4" and (msg.get(fix_tags.T_CLORDID) or "") in self._probes:
            self._on_probe_canceled(msg, ts_recv)
            return
        why = report_checks.problem(msg, self._orders, self._cancels)
        if why is not None:
            raise raw_message.ParseError(why)  # counted, told and asked again (unreadable.py); nothing believed
        parsed = parsers.parse_execution_report(msg, self.venue, ts_recv)
        if isinstance(parsed, parsers.StatusAnswer):
            self._on_status_answer(parsed)
            return
        events = [self._with_fee(e, msg) if isinstance(e, Fill) else e for e in parsed]
        for event in events:
            if isinstance(event, Fill):
                self._note_fill(event)
            self._track(event, msg)
        self._check_cum_qty(msg, ts_recv)
        for event in events:
            self._inbox.put(event)

    def _with_fee(self, fill: Fill, msg: raw_message.RawMessage) -> Fill:
        """Without Commission(12), charge the venue's schedule (conf/venues/truex.yml)."""
        if msg.get(fix_tags.T_COMMISSION) is not None:
            return fill
        fee = self._rules.fees.fee(fill.price * fill.qty, fill.liquidity is Liquidity.MAKER)
        instrument = next((i for i in self._rules.instruments if self._rules.venue_symbol(i.symbol) == fill.symbol),
                          None)
        currency = msg.get(fix_tags.T_COMM_CCY) or (instrument.quote if instrument is not None else fill.fee_currency)
        return attrs.evolve(fill, fee=fee, fee_currency=currency)

    def _note_fill(self, fill: Fill) -> None:
        if not fill.venue_order_id:
            return
        seen, total = self._passed_fills.get(fill.venue_order_id, (set(), Decimal(0)))
        if fill.trade_id in seen:
            return
        seen.add(fill.trade_id)
        self._passed_fills[fill.venue_order_id] = (seen, total + fill.qty)
        if len(self._passed_fills) > 20_000:
            for key in list(self._passed_fills)[:10_000]:
                del self._passed_fills[key]

    def _check_cum_qty(self, msg: raw_message.RawMessage, ts_recv: int) -> None:
        """Venue's CumQty unlike the fills passed on for that OrderID: report it to the engine.

        Above (bytes were lost): the engine books the difference from the report. Below (an execution
        re-sent under a new ExecID, or CumQty going backwards across a replace): the engine sets the
        report against its ledger and halts (mmkit.stream); the connector corrects nothing itself.
        """
        cum = msg.get(fix_tags.T_CUM_QTY)
        order_id = msg.get(fix_tags.T_ORDER_ID) or ""
        if cum is None or not order_id or order_id == "NONE":
            return
        passed_entry = self._passed_fills.get(order_id)
        if cum == "0" and passed_entry is None:
            return  # every new order's answer: nothing passed on, nothing to compare (one lookup)
        venue_cum = Decimal(cum)
        passed = passed_entry[1] if passed_entry is not None else Decimal(0)
        if venue_cum == passed:
            return
        report = self._report_from(msg, msg.get(fix_tags.T_CLORDID) or "", ts_recv)
        if report is None:
            return
        self.cum_qty_mismatches += 1
        self._log.error(
            "venue counts {} filled on order {} ({}), fills passed on: {}",
            venue_cum, order_id, report.client_id, passed,
        )
        # The venue's count is now the reference: the engine books a missing difference once, and a
        # shortfall is reported once (the engine's ledger, not this count, decides whether it halts).
        seen = self._passed_fills.get(order_id, (set(), Decimal(0)))[0]
        self._passed_fills[order_id] = (seen, venue_cum)
        self._inbox.put(report)

    def _report_from(self, msg: raw_message.RawMessage, client_id: str, ts_recv: int) -> OrderStatusReport | None:
        """An OrderStatusReport from any 8/9 that carries OrdStatus and CumQty (None if it cannot be read)."""
        status = fix_tags.STATUS_FROM_CODE.get(msg.get(fix_tags.T_ORD_STATUS) or "")
        cum = msg.get(fix_tags.T_CUM_QTY)
        if status is None or cum is None:
            return None
        orig = msg.get(fix_tags.T_ORIG_CLORDID)
        if msg.msg_type == "9" or (msg.get(fix_tags.T_EXEC_TYPE) == "4" and orig):
            client_id = orig or client_id  # a cancel's ClOrdID is the cancel's; the order is OrigClOrdID
        info = self._orders.get(client_id)
        side_code = msg.get(fix_tags.T_SIDE)
        side = fix_tags.SIDE_FROM_CODE.get(side_code, info.side if info else Side.BUY) if side_code else (
            info.side if info else Side.BUY)
        qty_text, price_text, avg_text = msg.get(fix_tags.T_QTY), msg.get(fix_tags.T_PRICE), msg.get(fix_tags.T_AVG_PX)
        return OrderStatusReport(
            venue=self.venue,
            client_id=client_id,
            venue_order_id=msg.get(fix_tags.T_ORDER_ID) or "",
            symbol=msg.get(fix_tags.T_SYMBOL) or (info.symbol if info else ""),
            side=side,
            price=Decimal(price_text) if price_text else (info.price if info else None),
            qty=Decimal(qty_text) if qty_text else (info.qty if info else Decimal(cum)),
            filled_qty=Decimal(cum),
            status=status,
            ts_event=ts_recv,
            ts_recv=ts_recv,
            avg_px=Decimal(avg_text) if avg_text else None,
        )

    def _track(self, event: VenueEvent, msg: raw_message.RawMessage) -> None:
        """Keep the side/symbol registry in step with the venue (loop thread only)."""
        cum_text = msg.get(fix_tags.T_CUM_QTY)
        tracked = self._orders.get(getattr(event, "client_id", ""))
        if cum_text and tracked is not None:
            tracked.cum_qty = Decimal(cum_text)
        if isinstance(event, OrderCanceled):
            self._orders.pop(event.client_id, None)
            self._cancels.pop(msg.get(fix_tags.T_CLORDID) or "", None)
        elif isinstance(event, OrderRejected | OrderExpired):
            self._orders.pop(event.client_id, None)
        elif isinstance(event, OrderReplaced):
            self._cancels.pop(event.client_id, None)  # answered: kept, it grew by one entry per replace all run long
            old = self._orders.pop(event.orig_client_id, None)
            info = self._orders.get(event.client_id) or old
            if info is not None:
                info.price, info.qty = event.price, event.qty
                self._orders[event.client_id] = info
        elif isinstance(event, Fill) and msg.get(fix_tags.T_ORD_STATUS) == "2":
            self._orders.pop(event.client_id, None)

    def _on_status_answer(self, answer: parsers.StatusAnswer) -> None:
        event = answer.event
        if isinstance(event, OrderStatusReport):
            if event.status.is_open:
                self._orders.setdefault(
                    event.client_id, _OrderInfo(event.symbol, event.side, event.price, event.qty - event.filled_qty)
                )
            else:
                self._orders.pop(event.client_id, None)
        elif isinstance(event, OrderNotFound):
            self._orders.pop(event.client_id, None)
        if answer.status_req_id is not None:
            req = answer.status_req_id
            waiter = self._status_waiters.pop(req, None)
            if waiter is not None and event is not None and not waiter[1].done():
                waiter[1].set_result(event)
            elif req in self._inbox_requests and event is not None:
                self._inbox_requests.discard(req)
                self._inbox.put(event)
            return
        if answer.mass_req_id is not None:
            req = answer.mass_req_id
            mass = self._mass_waiters.get(req)
            if mass is not None:
                if isinstance(event, OrderStatusReport):
                    mass[1].append(event)
                if answer.last_report:
                    del self._mass_waiters[req]
                    if not mass[0].done():
                        mass[0].set_result(mass[1])
            elif req in self._inbox_requests:
                # orders already asked about one by one (35=H) are not reported twice
                if isinstance(event, OrderStatusReport) and event.client_id not in self._reconciling:
                    self._inbox.put(event)
                if answer.last_report:
                    self._inbox_requests.discard(req)
            return
        if event is not None:  # unsolicited status: still useful to the tracker
            self._inbox.put(event)

    def _on_business_reject(self, reject: parsers.BusinessReject, ts_recv: int) -> None:
        reason = rejects.map_reject(reject.reason_code if reject.reason_code != "0" else None, reject.text)
        self._reject_reference(reject.ref_msg_type, reject.ref_id, reason, reject.text or "business reject", ts_recv)

    def _on_session_reject(self, msg: raw_message.RawMessage, ts_recv: int) -> None:
        ref_seq = msg.get(45)
        sent = self._app.sent.get(int(ref_seq)) if (self._app is not None and ref_seq) else None
        text = msg.get(fix_tags.T_TEXT) or "session reject"
        if sent is None:
            self._log.warning("session reject of an unknown message: {}", text)
            return
        self._reject_reference(sent[0], sent[1], RejectReason.INVALID_MESSAGE, text, ts_recv)

    def _reject_reference(self, msg_type: str, ref_id: str, reason: RejectReason, text: str, ts_recv: int) -> None:
        """Turn a reject of one of our requests (35=j or 35=3) into the matching order event."""
        if msg_type == "D":
            self._orders.pop(ref_id, None)
            self._inbox.put(OrderRejected(self.venue, ref_id, reason, text, ts_recv, ts_recv))
        elif msg_type == "F" and ref_id in self._probes:
            client_id, probe_future = self._probes.pop(ref_id)
            if probe_future is not None and not probe_future.done():
                probe_future.set_exception(TransientVenueError(f"status probe refused: {text}"))
            elif probe_future is None:
                self._inbox.put(OrderQueryFailed(self.venue, client_id, text, ts_recv))
        elif msg_type == "F":
            orig = self._cancels.pop(ref_id, ref_id)
            self._inbox.put(OrderCancelRejected(self.venue, orig, reason, text, ts_recv, ts_recv))
        elif msg_type == "G":
            self._orders.pop(ref_id, None)
            self._log.warning("replace {} rejected: {}", ref_id, text)
            orig = self._cancels.pop(ref_id, ref_id)
            self._inbox.put(
                OrderCancelRejected(
                    self.venue, orig, reason, text, ts_recv, ts_recv, is_replace=True, new_client_id=ref_id
                )
            )
        elif msg_type == "H":
            self._inbox.put(OrderQueryFailed(self.venue, ref_id, text, ts_recv))
        else:
            self._log.warning("{} rejected by venue: {}", msg_type, text)
