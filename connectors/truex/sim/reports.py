"""The FIX messages the simulated exchange answers with: 35=8, 35=9 and 35=j.

A mixin of :class:`connectors.truex.sim.exchange.TrueXExchange` (split out of
``exchange.py`` by job): building a report is separate from deciding to send it.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import TYPE_CHECKING

import quickfix as fix

from connectors.truex import messages as m
from connectors.truex.messages import VenueReject
from connectors.truex.session import session_key
from connectors.truex.sim.records import ExchangeConfig, ExchangeStats, _owner, _Record
from connectors.truex.templates import Templates
from mmkit.model import Instrument, Side


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
            (m.T_ORDER_ID, record.order_id),
            (m.T_CLORDID, client_id or record.client_id),
            (m.T_EXEC_ID, exec_id),
            (m.T_EXEC_TYPE, exec_type),
            (m.T_ORD_STATUS, m.ORD_STATUS_CODE[status]),
            (m.T_SYMBOL, self.config.symbol),
            (m.T_SIDE, "1" if record.side is Side.BUY else "2"),
            (m.T_QTY, m.fmt_decimal(record.qty)),
            (m.T_PRICE, m.fmt_decimal(record.price)),
            (m.T_LEAVES_QTY, m.fmt_decimal(leaves if leaves is not None else open_leaves)),
            (m.T_CUM_QTY, m.fmt_decimal(record.cum_qty)),
            (m.T_TRANSACT_TIME, m.format_utc_timestamp(time.time_ns())),
        ]
        if record.cum_qty > 0:
            values.append((m.T_AVG_PX, m.fmt_decimal(record.notional / record.cum_qty)))
        if orig_client_id:
            values.append((m.T_ORIG_CLORDID, orig_client_id))
        if text:
            values.append((m.T_TEXT, text))
        if rej_code:
            values.append((m.T_ORD_REJ_REASON, rej_code))
        if last_px is not None and last_qty is not None:
            values += [
                (m.T_LAST_PX, m.fmt_decimal(last_px)),
                (m.T_LAST_QTY, m.fmt_decimal(last_qty)),
                (m.T_LIQUIDITY, "1" if maker else "2"),
            ]
        if fee is not None:
            values += [(m.T_COMMISSION, m.fmt_decimal(fee)), (m.T_COMM_CCY, self.instrument.quote)]
        return self.templates.build("8", values)  # one parse, byte-equal to setField per value

    def _cancel_reject(
        self, sid: fix.SessionID, client_id: str, orig: str, *, response_to: str, reject: VenueReject, detail: str = ""
    ) -> None:
        self.stats.rejects[reject.name] = self.stats.rejects.get(reject.name, 0) + 1
        record = self._records.get((_owner(session_key(sid)[1]), orig))
        values = [
            (m.T_ORDER_ID, record.order_id if record is not None else "NONE"),
            (m.T_CLORDID, client_id),
            (m.T_ORIG_CLORDID, orig),
            (m.T_ORD_STATUS, m.ORD_STATUS_CODE[record.status] if record is not None else "8"),
            # What a cancel's answer tells a client that may not ask 35=H: the order's side, symbol and
            # how much of it is filled (CumQty, AvgPx).
            *(
                ()
                if record is None
                else (
                    (m.T_SIDE, "1" if record.side is Side.BUY else "2"),
                    (m.T_SYMBOL, self.config.symbol),
                    (m.T_QTY, m.fmt_decimal(record.qty)),
                    (m.T_PRICE, m.fmt_decimal(record.price)),
                    (m.T_CUM_QTY, m.fmt_decimal(record.cum_qty)),
                    *(((m.T_AVG_PX, m.fmt_decimal(record.notional / record.cum_qty)),) if record.cum_qty > 0 else ()),
                )
            ),
            (m.T_CXL_REJ_RESPONSE_TO, response_to),
            (m.T_CXL_REJ_REASON, "1" if reject is VenueReject.UNKNOWN_ORDER else "99"),
            (m.T_TEXT, f"{reject.text}: {detail}" if detail else reject.text),
        ]
        self._send(sid, self.templates.build("9", values))

    def _business_reject(self, sid: fix.SessionID, msg: m.RawMessage, text: str, code: str, ref_id: str = "") -> None:
        message = fix.Message()
        header = message.getHeader()
        header.setField(fix.BeginString(m.BEGIN_STRING))
        header.setField(fix.MsgType("j"))
        message.setField(45, msg.get(m.T_SEQ) or "0")
        message.setField(m.T_REF_MSG_TYPE, msg.msg_type)
        message.setField(m.T_BIZ_REJECT_REASON, code)
        if ref_id:
            message.setField(m.T_BIZ_REJECT_REF_ID, ref_id)
        message.setField(m.T_TEXT, text)
        self._send(sid, message)
