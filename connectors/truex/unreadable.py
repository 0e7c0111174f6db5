"""What the TrueX connector does after a venue message it could not believe: count it, say so, ask again.

A mixin of :class:`connectors.truex.connector.TrueXConnector`. Two ways a
venue message is lost to the application:

* QuickFIX refuses it before any callback (a value outside the dictionary,
  a required tag missing, a bad number): all that is left of it is the
  session Reject (35=3) QuickFIX sends back, which ``client_app`` copies here;
* the connector cannot read it or cannot believe it (``parsers``,
  ``report_checks``): a trade with no LastQty, a report naming no order or
  contradicting the order we sent.

A third: a SequenceReset (gap fill) over messages we never received, which
QuickFIX accepts without a word (``gap_fills``).

Either way it is counted (``malformed``, and ``refused_by_session`` for the
first), logged at ERROR and handed to the engine as a ``MalformedMessage``.
An order-entry answer (8, 9, or one QuickFIX refused before we could see its
type) may have carried an execution, so every live order is asked about at
once (status by cancel, or 35=H/35=AF where offered): the answer's CumQty
books what was lost and the engine halts on it, instead of the fill missing
silently until some later report. A market-data message asks for a fresh
snapshot. Runs on the loop only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from connectors.truex import fix_tags, raw_message
from connectors.truex.client_app import MD, OE, field_value
from connectors.truex.config import TrueXConfig
from connectors.truex.order_entry import _OrderInfo
from connectors.truex.session import now_ns
from mmkit.connector import Inbox
from mmkit.model import MalformedMessage, OrderNotFound, OrderQueryFailed, OrderStatusReport

if TYPE_CHECKING:
    import asyncio

    from loguru import Logger

_SOH = fix_tags.SOH
#: Order-entry message types that can carry an execution or an order's state.
_ORDER_ANSWERS = frozenset({"8", "9"})


class UnreadableAnswers:
    """Count, report and re-ask after a venue message that was refused or not believed (module docstring)."""

    _config: TrueXConfig
    _inbox: Inbox
    _log: Logger
    _logged_on: dict[str, bool]
    _md_symbols: set[str]
    _orders: dict[str, _OrderInfo]
    _probes: dict[str, tuple[str, asyncio.Future[OrderStatusReport | OrderNotFound] | None]]
    malformed: int
    refused_by_session: int
    gap_fills: int
    rechecks: int
    cum_qty_mismatches: int
    watchdog_drops: int

    if TYPE_CHECKING:  # provided by TrueXConnector and its other mixins; for the type checker only

        @property
        def venue(self) -> str: ...

        def reconcile(self) -> None: ...

        def _probe(
            self, client_id: str, symbol: str, future: asyncio.Future[OrderStatusReport | OrderNotFound] | None
        ) -> bool: ...

        def _send_md_request(self, symbol: str) -> None: ...

    def health_counters(self) -> dict[str, int]:
        """What this connector caught by itself (mmkit.connector.health_counters: into the final report)."""
        return {
            "malformed": self.malformed,
            "refused_by_session": self.refused_by_session,
            "gap_fills": self.gap_fills,
            "rechecks": self.rechecks,
            "cum_qty_mismatches": self.cum_qty_mismatches,
            "watchdog_drops": self.watchdog_drops,
        }

    def _on_unreadable(self, kind: str, raw: str, error: str, ts_recv: int) -> None:
        """A venue message on ``kind`` we could not read or believe: count, say, re-ask."""
        self.malformed += 1
        msg_type = field_value(_SOH + raw, f"{_SOH}{fix_tags.T_MSG_TYPE}=")  # 35 may lead the text
        redacted = raw_message.redact(raw)
        self._log.error("malformed {} message 35={}: {} | {}", kind, msg_type or "?", error, redacted)
        self._inbox.put(MalformedMessage(self.venue, f"{kind} 35={msg_type or '?'}: {error}", redacted, ts_recv))
        self._recheck(kind, msg_type)

    def _on_refused(self, kind: str, reject_raw: str, ts_recv: int) -> None:
        """QuickFIX refused a venue message (``reject_raw`` is the 35=3 it sent back): the message is gone."""
        reject = raw_message.RawMessage(reject_raw)
        ref_type = reject.get(fix_tags.T_REF_MSG_TYPE) or ""
        error = (
            f"35={ref_type or '?'} seq {reject.get(45) or '?'} refused by the FIX session"
            f" (tag {reject.get(371) or '?'}, reason {reject.get(373) or '?'}): {reject.get(fix_tags.T_TEXT) or ''}"
        )
        self.malformed += 1
        self.refused_by_session += 1
        self._log.error("{} message lost: {}", kind, error)
        self._inbox.put(MalformedMessage(self.venue, f"{kind} {error}", raw_message.redact(reject_raw), ts_recv))
        self._recheck(kind, ref_type)

    def _on_sequence_reset(self, kind: str, msg: raw_message.RawMessage, ts_recv: int) -> None:
        """A SequenceReset that moves past messages we never received: what they said is unknown.

        With ``PersistMessages=N`` on both sides, a venue answers our resend request (after a gap) with a
        gap fill: an execution it sent and we lost is skipped, not resent, and QuickFIX accepts that quietly.
        """
        first, new = msg.get(fix_tags.T_SEQ), msg.get(36)
        if not first or not new or not first.isdigit() or not new.isdigit() or int(new) <= int(first):
            return
        self.gap_fills += 1
        error = f"venue messages {first}..{int(new) - 1} skipped by a SequenceReset (never received)"
        self._log.error("{} {}: what they said is unknown", kind, error)
        self._inbox.put(MalformedMessage(self.venue, f"{kind} {error}", "", ts_recv))
        self._recheck(kind, "")

    def _recheck(self, kind: str, msg_type: str) -> None:
        """Ask the venue again about what the lost message may have told."""
        if kind == MD:
            for symbol in sorted(self._md_symbols):
                self._send_md_request(symbol)
            return
        if kind != OE or (msg_type and msg_type not in _ORDER_ANSWERS) or not self._logged_on[OE]:
            return  # not an order answer; or OE is down, and its next logon asks about every order anyway
        self.rechecks += 1
        self._log.warning("an order-entry answer was lost: asking the venue about {} live order(s)", len(self._orders))
        if self._config.status_requests:
            self.reconcile()
            return
        probed = {client_id for client_id, _ in self._probes.values()}
        for client_id, info in list(self._orders.items()):
            if client_id not in probed and not self._probe(client_id, info.symbol, None):
                self._inbox.put(OrderQueryFailed(self.venue, client_id, "OE session down", now_ns()))
