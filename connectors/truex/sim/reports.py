"""The FIX messages the simulated exchange answers with: 35=8, 35=9 and 35=j.

A mixin of :class:`connectors.truex.sim.exchange.TrueXExchange` (split out of
``exchange.py`` by job): building a report is separate from deciding to send it.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import TYPE_CHECKING

import quickfix as fix

from connectors.truex import fix_tags, fix_values, raw_message
from connectors.truex.rejects import VenueReject
from connectors.truex.session import session_key
from connectors.truex.sim.records import ExchangeConfig, ExchangeStats, _owner, _Record
from connectors.truex.templates import Templates, execution_report_new_text
from mmkit.instrument import Instrument
from mmkit.model import Side, VenueOrderStatus


class ReportBuilder:
    """Execution reports, cancel rejects and business rejects (see the module docstring)."""

    config: ExchangeConfig
    instrument: Instrument
    #: Pre-rendered messages (connectors/truex/templates.py); used under the exchange's lock only.
    templates: Templates
    stats: ExchangeStats
    _records: dict[tuple[str, str], _Record]

    if TYPE_CHECKING:  # provided by TrueXExchange; declared for the type checker only (never shadow it)

        def _send(self, session_id: fix.SessionID, message: fix.Message) -> None: ...

    def _exec_report(
        self,
        record: _Record,
        exec_type: str,
        *,
        exec_id: str,
        client_id: str | None = None,
        orig_client_id: str | None = None,
        text: str = "",
        rej_code: str = "",
        last_px: Decimal | None = None,
        last_qty: Decimal | None = None,
        leaves: Decimal | None = None,
        maker: bool = True,
        fee: Decimal | None = None,
    ) -> fix.Message:
        status = record.status
        open_leaves = record.qty - record.cum_qty if status.is_open else Decimal(0)
        values: list[tuple[int, str]] = [
            (fix_tags.T_ORDER_ID, record.order_id),
            (fix_tags.T_CLORDID, client_id or record.client_id),
            (fix_tags.T_EXEC_ID, exec_id),
            (fix_tags.T_EXEC_TYPE, exec_type),
            (fix_tags.T_ORD_STATUS, fix_tags.ORD_STATUS_CODE[status]),
            (fix_tags.T_SYMBOL, self.config.symbol),
            (fix_tags.T_SIDE, "1" if record.side is Side.BUY else "2"),
            (fix_tags.T_QTY, fix_values.fmt_decimal(record.qty)),
            (fix_tags.T_PRICE, fix_values.fmt_decimal(record.price)),
            (fix_tags.T_LEAVES_QTY, fix_values.fmt_decimal(leaves if leaves is not None else open_leaves)),
            (fix_tags.T_CUM_QTY, fix_values.fmt_decimal(record.cum_qty)),
            (fix_tags.T_TRANSACT_TIME, fix_values.format_utc_timestamp(time.time_ns())),
        ]
        if record.cum_qty > 0:
            values.append((fix_tags.T_AVG_PX, fix_values.fmt_decimal(record.notional / record.cum_qty)))
        if orig_client_id:
            values.append((fix_tags.T_ORIG_CLORDID, orig_client_id))
        if text:
            values.append((fix_tags.T_TEXT, text))
        if rej_code:
            values.append((fix_tags.T_ORD_REJ_REASON, rej_code))
        if last_px is not None and last_qty is not None:
            values += [
                (fix_tags.T_LAST_PX, fix_values.fmt_decimal(last_px)),
                (fix_tags.T_LAST_QTY, fix_values.fmt_decimal(last_qty)),
                (fix_tags.T_LIQUIDITY, "1" if maker else "2"),
            ]
        if fee is not None:
            values += [
                (fix_tags.T_COMMISSION, fix_values.fmt_decimal(fee)),
                (fix_tags.T_COMM_CCY, self.instrument.quote),
            ]
        return self.templates.build("8", values)  # one parse, byte-equal to setField per value

    def _new_report(self, record: _Record, exec_id: str) -> fix.Message:
        """``_exec_report(record, "0", exec_id=exec_id)`` for an order just accepted and resting untouched.

        The answer to nearly every order, so it skips the generic field list
        (templates.execution_report_new_text; equal to the generic report,
        tests/unit/truex/test_templates.py).
        """
        if record.cum_qty or record.status is not VenueOrderStatus.NEW:
            return self._exec_report(record, "0", exec_id=exec_id)
        text = execution_report_new_text(
            record.order_id,
            record.client_id,
            exec_id,
            self.config.symbol,
            "1" if record.side is Side.BUY else "2",
            fix_values.fmt_decimal(record.qty),
            fix_values.fmt_decimal(record.price),
            fix_values.format_utc_timestamp(time.time_ns()),
        )
        if text is None:
            return self._exec_report(record, "0", exec_id=exec_id)
        return self.templates.message(text)

    def _cancel_reject(
        self, sid: fix.SessionID, client_id: str, orig: str, *, response_to: str, reject: VenueReject, detail: str = ""
    ) -> None:
        self.stats.rejects[reject.name] = self.stats.rejects.get(reject.name, 0) + 1
        record = self._records.get((_owner(session_key(sid)[1]), orig))
        values = [
            (fix_tags.T_ORDER_ID, record.order_id if record is not None else "NONE"),
            (fix_tags.T_CLORDID, client_id),
            (fix_tags.T_ORIG_CLORDID, orig),
            (fix_tags.T_ORD_STATUS, fix_tags.ORD_STATUS_CODE[record.status] if record is not None else "8"),
            # What a cancel's answer tells a client that may not ask 35=H: the order's side, symbol and
            # how much of it is filled (CumQty, AvgPx).
            *(
                ()
                if record is None
                else (
                    (fix_tags.T_SIDE, "1" if record.side is Side.BUY else "2"),
                    (fix_tags.T_SYMBOL, self.config.symbol),
                    (fix_tags.T_QTY, fix_values.fmt_decimal(record.qty)),
                    (fix_tags.T_PRICE, fix_values.fmt_decimal(record.price)),
                    (fix_tags.T_CUM_QTY, fix_values.fmt_decimal(record.cum_qty)),
                    *(
                        ((fix_tags.T_AVG_PX, fix_values.fmt_decimal(record.notional / record.cum_qty)),)
                        if record.cum_qty > 0
                        else ()
                    ),
                )
            ),
            (fix_tags.T_CXL_REJ_RESPONSE_TO, response_to),
            (fix_tags.T_CXL_REJ_REASON, "1" if reject is VenueReject.UNKNOWN_ORDER else "99"),
            (fix_tags.T_TEXT, f"{reject.text}: {detail}" if detail else reject.text),
        ]
        self._send(sid, self.templates.build("9", values))

    def _business_reject(
        self, sid: fix.SessionID, msg: raw_message.RawMessage, text: str, code: str, ref_id: str = ""
    ) -> None:
        message = fix.Message()
        header = message.getHeader()
        header.setField(fix.BeginString(fix_tags.BEGIN_STRING))
        header.setField(fix.MsgType("j"))
        message.setField(45, msg.get(fix_tags.T_SEQ) or "0")
        message.setField(fix_tags.T_REF_MSG_TYPE, msg.msg_type)
        message.setField(fix_tags.T_BIZ_REJECT_REASON, code)
        if ref_id:
            message.setField(fix_tags.T_BIZ_REJECT_REF_ID, ref_id)
        message.setField(fix_tags.T_TEXT, text)
        self._send(sid, message)
