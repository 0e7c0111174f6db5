"""The simulated exchange's order entry: 35=D, 35=F, 35=G, 35=H and 35=AF from a client.

A mixin of :class:`connectors.truex.sim.exchange.TrueXExchange` (split out of
``exchange.py`` by job): deciding what the venue does with a client's order
message (checks, matching, the answer to queue) is separate from running the
sessions. Callers hold the exchange's lock; answers are queued with ``_send``,
never sent from here.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

import quickfix as fix

from connectors.truex import fix_tags, raw_message
from connectors.truex.rejects import VenueReject
from connectors.truex.sim.records import ExchangeConfig, ExchangeStats, _owner, _Record
from connectors.truex.sim.reports import ReportBuilder
from connectors.truex.sim.rules import DuplicateGuard, SlidingWindowLimiter, check_clordid, check_static
from mmkit.instrument import Instrument
from mmkit.model import Side, TimeInForce, VenueOrderStatus
from mmkit.sim.matching import Execution, MatchResult, RestingOrder, SimOrder


class OrderEntryHandler(ReportBuilder):
    """Order-entry messages of the simulated exchange (see the module docstring)."""

    config: ExchangeConfig
    instrument: Instrument
    stats: ExchangeStats
    _records: dict[tuple[str, str], _Record]
    _limiters: dict[str, SlidingWindowLimiter]
    _dupes: DuplicateGuard
    _ids: itertools.count[int]
    _enforce_rate_limits: bool

    if TYPE_CHECKING:  # provided by TrueXExchange and its other mixins; declared for the type checker only
        # (_send, _exec_report, _cancel_reject and _business_reject come from ReportBuilder, the base)

        def _band_mid(self) -> Decimal | None: ...

        def _next_id(self) -> str: ...

        def _after_match(self, result: MatchResult) -> None: ...

        def _engine_submit(self, order: SimOrder, ts: int) -> MatchResult: ...

        def _engine_cancel(self, order_id: str, ts: int) -> RestingOrder | None: ...

        def _engine_replace(
            self, order_id: str, new_order_id: str, new_client_id: str, price: Decimal, qty: Decimal, ts: int
        ) -> MatchResult: ...

        def _publish_md(self, executions: Sequence[Execution]) -> None: ...

    # -- order entry ---------------------------------------------------------------

    def _on_oe_message(self, msg: raw_message.RawMessage, comp_id: str, sid: fix.SessionID) -> None:
        msg_type = msg.msg_type
        if msg_type == "D":
            self._on_new_order(msg, comp_id, sid)
        elif msg_type == "F":
            self._on_cancel(msg, comp_id, sid)
        elif msg_type == "G":
            self._on_replace(msg, comp_id, sid)
        elif msg_type in ("H", "AF") and self.config.strict:
            ref_id = msg.get(fix_tags.T_CLORDID if msg_type == "H" else fix_tags.T_MASS_STATUS_REQ_ID) or ""
            self._business_reject(sid, msg, "Unsupported message type", "3", ref_id=ref_id)
        elif msg_type == "H":
            self._on_status_request(msg, comp_id, sid)
        elif msg_type == "AF":
            self._on_mass_status(msg, comp_id, sid)
        else:
            self._business_reject(sid, msg, "Unsupported message type", "3")

    def _on_new_order(self, msg: raw_message.RawMessage, comp_id: str, sid: fix.SessionID) -> None:
        ts = time.time_ns()
        self.stats.orders += 1
        owner = _owner(comp_id)
        client_id = msg.req(fix_tags.T_CLORDID)
        side = fix_tags.SIDE_FROM_CODE[msg.req(fix_tags.T_SIDE)]
        qty = Decimal(msg.req(fix_tags.T_QTY))
        price_text = msg.get(fix_tags.T_PRICE)
        price = Decimal(price_text) if price_text else Decimal(0)
        reject = self._precheck(msg, client_id, owner, ts)
        if reject is None and (msg.get(fix_tags.T_ORD_TYPE) != fix_tags.ORD_TYPE_LIMIT or price_text is None):
            reject = VenueReject.UNSUPPORTED
        if reject is None and (owner, client_id) in self._records:
            reject = VenueReject.DUPLICATE_CLORDID
        if reject is None:
            reject = check_static(self.instrument, price, qty, self._band_mid())
        if reject is None and self._dupes.is_duplicate((owner, side, price, qty), ts):
            reject = VenueReject.DUPLICATE_ORDER
        record = _Record("NONE", client_id, owner, side, price, qty, Decimal(0), VenueOrderStatus.REJECTED)
        if reject is not None:
            self._reject_order(sid, record, reject, msg)
            return
        order_id = self._next_id()
        post_only = fix_tags.EXEC_INST_POST_ONLY in (msg.get(fix_tags.T_EXEC_INST) or "").split()
        tif = fix_tags.TIF_FROM_CODE.get(msg.get(fix_tags.T_TIF) or "1", TimeInForce.GTC)
        result = self._engine_submit(SimOrder(order_id, owner, client_id, side, price, qty, post_only, tif), ts)
        if not result.accepted:
            self._reject_order(sid, record, VenueReject.POST_ONLY, msg, result.reject_text)
            return
        record.order_id, record.status = order_id, VenueOrderStatus.NEW
        self._records[(owner, client_id)] = record
        self._send(sid, self._new_report(record, f"{order_id}-0"))
        self._after_match(result)
        if result.canceled_qty > 0 and record.status.is_open:  # IOC remainder
            record.status = VenueOrderStatus.CANCELED
            self._send(sid, self._exec_report(record, "4", exec_id=f"{order_id}-x"))

    def _precheck(self, msg: raw_message.RawMessage, client_id: str, owner: str, ts: int) -> VenueReject | None:
        """Checks shared by D and G: tag 122, ClOrdID length, symbol, rate limit."""
        if msg.get(fix_tags.T_ORIG_SENDING_TIME) is not None:
            return VenueReject.ORIG_SENDING_TIME
        clordid = check_clordid(client_id)
        if clordid is not None:
            return clordid
        if msg.get(fix_tags.T_SYMBOL) != self.config.symbol:
            return VenueReject.UNKNOWN_SYMBOL
        if self._enforce_rate_limits:
            limiter = self._limiters.setdefault(owner, SlidingWindowLimiter(self.config.rules.rate_limits))
            if not limiter.allow(ts):
                return VenueReject.RATE_LIMIT
        return None

    def _reject_order(
        self, sid: fix.SessionID, record: _Record, reject: VenueReject, msg: raw_message.RawMessage, detail: str = ""
    ) -> None:
        self.stats.rejects[reject.name] = self.stats.rejects.get(reject.name, 0) + 1
        text = f"{reject.text}: {detail}" if detail else reject.text
        report = self._exec_report(record, "8", exec_id=f"R{next(self._ids)}", text=text, rej_code=reject.code)
        self._send(sid, report)

    def _on_cancel(self, msg: raw_message.RawMessage, comp_id: str, sid: fix.SessionID) -> None:
        ts = time.time_ns()
        owner = _owner(comp_id)
        cancel_id, orig = msg.req(fix_tags.T_CLORDID), msg.req(fix_tags.T_ORIG_CLORDID)
        if msg.get(fix_tags.T_ORIG_SENDING_TIME) is not None:
            self._cancel_reject(sid, cancel_id, orig, response_to="1", reject=VenueReject.ORIG_SENDING_TIME)
            return
        record = self._records.get((owner, orig))
        resting = self._engine_cancel(record.order_id, ts) if record is not None and record.status.is_open else None
        if record is None or resting is None:
            self._cancel_reject(sid, cancel_id, orig, response_to="1", reject=VenueReject.UNKNOWN_ORDER)
            return
        record.status = VenueOrderStatus.CANCELED
        self._send(
            sid,
            self._exec_report(
                record, "4", exec_id=f"{record.order_id}-c{next(self._ids)}", client_id=cancel_id, orig_client_id=orig
            ),
        )
        self._publish_md(())

    def _on_replace(self, msg: raw_message.RawMessage, comp_id: str, sid: fix.SessionID) -> None:
        ts = time.time_ns()
        owner = _owner(comp_id)
        new_id, orig = msg.req(fix_tags.T_CLORDID), msg.req(fix_tags.T_ORIG_CLORDID)
        price, qty = Decimal(msg.req(fix_tags.T_PRICE)), Decimal(msg.req(fix_tags.T_QTY))
        reject = self._precheck(msg, new_id, owner, ts)
        record = self._records.get((owner, orig))
        if reject is None and (record is None or not record.status.is_open):
            reject = VenueReject.UNKNOWN_ORDER
        if reject is None and (owner, new_id) in self._records:
            reject = VenueReject.DUPLICATE_CLORDID
        if reject is None:
            reject = check_static(self.instrument, price, qty, self._band_mid())
        if reject is not None or record is None:
            self._cancel_reject(sid, new_id, orig, response_to="2", reject=reject or VenueReject.UNKNOWN_ORDER)
            return
        result = self._engine_replace(record.order_id, record.order_id, new_id, price, qty, ts)
        if not result.accepted:
            venue_reject = (
                VenueReject.POST_ONLY
                if result.reject_reason is not None and result.reject_reason.name == "POST_ONLY_WOULD_CROSS"
                else VenueReject.UNKNOWN_ORDER
            )
            self._cancel_reject(sid, new_id, orig, response_to="2", reject=venue_reject, detail=result.reject_text)
            return
        record.status = VenueOrderStatus.CANCELED  # the old ClOrdID is gone
        new_record = _Record(
            record.order_id,
            new_id,
            owner,
            record.side,
            price,
            qty,
            record.cum_qty,
            VenueOrderStatus.PARTIALLY_FILLED if record.cum_qty > 0 else VenueOrderStatus.NEW,
            record.notional,
        )
        self._records[(owner, new_id)] = new_record
        self._send(
            sid,
            self._exec_report(new_record, "5", exec_id=f"{record.order_id}-r{next(self._ids)}", orig_client_id=orig),
        )
        self._after_match(result)

    def _on_status_request(self, msg: raw_message.RawMessage, comp_id: str, sid: fix.SessionID) -> None:
        client_id = msg.req(fix_tags.T_CLORDID)
        req_id = msg.get(fix_tags.T_ORD_STATUS_REQ_ID)
        record = self._records.get((_owner(comp_id), client_id))
        if record is None:
            side = fix_tags.SIDE_FROM_CODE.get(msg.get(fix_tags.T_SIDE) or "1", Side.BUY)
            unknown = _Record(
                "NONE", client_id, "", side, Decimal(0), Decimal(0), Decimal(0), VenueOrderStatus.REJECTED
            )
            report = self._exec_report(
                unknown,
                "I",
                exec_id=f"S{next(self._ids)}",
                text=VenueReject.UNKNOWN_ORDER.text,
                rej_code=VenueReject.UNKNOWN_ORDER.code,
            )
        else:
            report = self._exec_report(record, "I", exec_id=f"S{next(self._ids)}")
        if req_id:
            report.setField(fix_tags.T_ORD_STATUS_REQ_ID, req_id)
        self._send(sid, report)

    def _on_mass_status(self, msg: raw_message.RawMessage, comp_id: str, sid: fix.SessionID) -> None:
        req_id = msg.req(fix_tags.T_MASS_STATUS_REQ_ID)
        owner = _owner(comp_id)
        open_records = [r for r in self._records.values() if r.owner == owner and r.status.is_open]
        if not open_records:
            empty = _Record(
                "NONE", "NONE", owner, Side.BUY, Decimal(0), Decimal(0), Decimal(0), VenueOrderStatus.REJECTED
            )
            report = self._exec_report(empty, "I", exec_id=f"S{next(self._ids)}")
            for tag, value in (
                (fix_tags.T_MASS_STATUS_REQ_ID, req_id),
                (fix_tags.T_TOT_NUM_REPORTS, "0"),
                (fix_tags.T_LAST_RPT_REQUESTED, "Y"),
            ):
                report.setField(tag, value)
            self._send(sid, report)
            return
        for index, record in enumerate(open_records, start=1):
            report = self._exec_report(record, "I", exec_id=f"S{next(self._ids)}")
            report.setField(fix_tags.T_MASS_STATUS_REQ_ID, req_id)
            report.setField(fix_tags.T_TOT_NUM_REPORTS, str(len(open_records)))
            report.setField(fix_tags.T_LAST_RPT_REQUESTED, "Y" if index == len(open_records) else "N")
            self._send(sid, report)
