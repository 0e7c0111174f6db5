"""A hostile mode of the simulated TrueX exchange: a real trade report that reaches the client damaged.

Where ``hostile.py`` sends an *extra* report the matching engine never made,
``tamper`` damages the *real* one: the fill happened (it is in the fills log,
the venue's own record, and in the order's CumQty), but the only 35=8 the
client gets about it is one it must not believe as it stands:

* ``bad_exec_type``: ExecType(150) ``Z``, a value outside the dictionary
  (QuickFIX refuses it before the application sees it);
* ``no_ord_status``: OrdStatus(39) removed (required: QuickFIX refuses it);
* ``no_last_qty``: LastQty(32) removed (optional in the dictionary: the
  connector must refuse a trade without a quantity);
* ``no_clordid``: ClOrdID(11) removed and no OrigClOrdID(41);
* ``impossible_status``: a trade (150=F) whose OrdStatus says New (39=0);
* ``wrong_side``: the other Side(54) than the order's;
* ``wrong_symbol``: Symbol(55) of another market (ETH-PYUSD);
* ``huge_qty``: LastQty(32) of a thousand digits;
* ``future_sending_time``: sent with a SendingTime(52) a day ahead (set in
  the exchange's ``toApp``, after QuickFIX stamped the header);
* ``skipped``: replaced by a SequenceReset-GapFill over its own sequence
  number (what a venue keeping no messages answers a resend request with):
  the execution is skipped, not lost in transit (``send_skipping_marked``,
  the exchange's outbox sender).

``ExchangeConfig.tamper`` damages the first real trade report of each client
(fault tests; ``python -m connectors.truex.sim --tamper KIND``).
``send_crafted`` sends any message a test builds on a client's OE or MD
session, for the cases a tampered trade report does not cover (market data).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

import quickfix as fix

from connectors.truex import builders, fix_tags, fix_values
from connectors.truex.sim.outbox import send_to_target
from connectors.truex.templates import field_by_field

if TYPE_CHECKING:
    from connectors.truex.sim.exchange import TrueXExchange


#: Marks a report ``skipped`` replaces by a gap fill, or ``future_sending_time`` stamps ahead (removed before
#: it leaves the exchange).
SKIP_MARKER = 19_999


def _set(tag: int, value: str) -> Callable[[fix.Message], None]:
    return lambda message: message.setField(tag, value)


def _remove(*tags: int) -> Callable[[fix.Message], None]:
    def apply(message: fix.Message) -> None:
        for tag in tags:
            if message.isSetField(tag):
                message.removeField(tag)

    return apply


def _flip_side(message: fix.Message) -> None:
    message.setField(fix_tags.T_SIDE, "2" if message.getField(fix_tags.T_SIDE) == "1" else "1")


TAMPERS: dict[str, Callable[[fix.Message], None]] = {
    "bad_exec_type": _set(fix_tags.T_EXEC_TYPE, "Z"),
    "no_ord_status": _remove(fix_tags.T_ORD_STATUS),
    "no_last_qty": _remove(fix_tags.T_LAST_QTY),
    "no_clordid": _remove(fix_tags.T_CLORDID, fix_tags.T_ORIG_CLORDID),
    "impossible_status": _set(fix_tags.T_ORD_STATUS, "0"),
    "wrong_side": _flip_side,
    "wrong_symbol": _set(fix_tags.T_SYMBOL, "ETH-PYUSD"),
    "huge_qty": _set(fix_tags.T_LAST_QTY, "1" * 1000),
    "skipped": lambda message: message.setField(SKIP_MARKER, "Y"),
    "future_sending_time": lambda message: message.setField(SKIP_MARKER, "T"),
}
KINDS = tuple(TAMPERS)


def send_skipping_marked(session_id: fix.SessionID, message: fix.Message) -> bool:
    """The outbox's sender for ``skipped``: a marked message goes out as a SequenceReset-GapFill over itself.

    What a venue that keeps no messages answers a resend request with, sent under the report's own
    MsgSeqNum (read in the sender thread, the only one that sends application messages), so the
    client's sequence stays whole and only the execution is gone. (Raising DoNotSend from a Python
    ``toApp`` instead aborts the process with this QuickFIX build.)
    """
    if not message.isSetField(SKIP_MARKER):
        return send_to_target(session_id, message)
    session = fix.Session.lookupSession(session_id)
    if session is None:
        return False
    # GapFillFlag, and NewSeqNo past the seq it is sent under
    gap_fill = field_by_field("4", [(123, "Y"), (36, str(session.getExpectedSenderNum() + 1))])
    return send_to_target(session_id, gap_fill)


def shift_sending_time_if_marked(message: fix.Message) -> None:
    """In the exchange's ``toApp`` (``future_sending_time`` only): a marked message leaves stamped a day ahead."""
    if message.isSetField(SKIP_MARKER):
        message.removeField(SKIP_MARKER)
        header = message.getHeader()
        header.setField(fix_tags.T_SENDING_TIME, fix_values.format_utc_timestamp(time.time_ns() + 86_400 * 10**9))


def check_kind(kind: str) -> None:
    """Raise ValueError naming the choices if ``kind`` is not a tamper kind (fails at config time, not mid-run)."""
    if kind not in TAMPERS:
        raise ValueError(f"unknown tamper kind {kind!r}; one of {', '.join(KINDS)}")


def tamper(message: fix.Message, kind: str) -> fix.Message:
    """Damage ``message`` (a real 35=8 trade report) in place as ``kind`` says; returns it."""
    check_kind(kind)
    TAMPERS[kind](message)
    return message


def send_crafted(
    exchange: TrueXExchange,
    comp_id: str,
    msg_type: str,
    fields: Iterable[tuple[int, str]],
    entries: Sequence[Sequence[tuple[int, str]]] = (),
) -> None:
    """Send a message of ``fields`` and 268 ``entries`` (each in its order) on the session of ``comp_id``.

    ``comp_id`` is a client's OE or MD SenderCompID; QuickFIX fills in the header. Each entry's first
    tag is its group's delimiter. Nothing is validated: it is what a hostile venue would write.
    """
    message = field_by_field(msg_type, list(fields))
    for entry in entries:
        group = fix.Group(fix_tags.T_NO_MD_ENTRIES, entry[0][0], builders.field_order([t for t, _ in entry] + [0]))
        for tag, value in entry:
            group.setField(tag, value)
        message.addGroup(group)
    spec = exchange._oe_sessions.get(comp_id) or exchange._md_sessions[comp_id]
    with exchange._lock:
        exchange._send(spec.session_id, message)
    exchange._log.warning("HOSTILE: sent a crafted 35={} to {}", msg_type, comp_id)
