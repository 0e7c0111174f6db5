"""What must be true of a TrueX ExecutionReport before anything in it is believed.

QuickFIX checks a report against the dictionary (types, enums, required
tags), but the dictionary allows reports that cannot be true of the order we
sent: a trade whose OrdStatus says the order is New, a cancel that names no
order, the other Side than the order's, another market's Symbol. Such a
report is not turned into events: the connector counts it as malformed and
asks the venue about its live orders, whose answers (CumQty) tell the engine
what really happened (connectors/truex/order_answers.py).

Kept apart from the parsers (which turn a *believable* report into events)
so each has one job; the table is the one place that says which OrdStatus
each ExecType may carry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from connectors.truex import fix_tags
from connectors.truex.raw_message import RawMessage
from mmkit.model import Side

#: ExecType(150) -> the OrdStatus(39) values a report of it may carry (FIX 5.0 SP2, Volume 4, the order
#: state change matrices). An ExecType not listed (pending states, restated, order status) is not checked.
ORD_STATUS_OF_EXEC_TYPE: dict[str, frozenset[str]] = {
    "0": frozenset({"0", "A"}),  # New
    "F": frozenset({"1", "2", "4", "C"}),  # Trade: partly or wholly filled (an IOC's rest canceled, expired)
    "4": frozenset({"4"}),  # Canceled
    "5": frozenset({"0", "1", "2", "5"}),  # Replaced
    "8": frozenset({"8"}),  # Rejected
    "C": frozenset({"C"}),  # Expired
}
#: ExecTypes that are about one of our orders, so they must name it (ClOrdID or OrigClOrdID).
_NAMES_AN_ORDER = frozenset({"0", "F", "1", "2", "4", "5", "8", "C"})


class KnownOrder(Protocol):
    """What the connector remembers of an order it sent (``order_entry._OrderInfo``)."""

    symbol: str
    side: Side


def problem(msg: RawMessage, orders: Mapping[str, KnownOrder], requests: Mapping[str, str]) -> str | None:
    """Why ``msg`` (a 35=8) cannot be believed as it stands, or None.

    ``orders``: the live orders the connector sent, by ClOrdID; a report about
    one of them must agree with it on Side and Symbol. ``requests``: our
    cancel and replace requests awaiting their answer, their ClOrdID -> the
    order they were for; a report answering one must name that order as
    OrigClOrdID, and a replace answer (150=5) must answer one (else a replace
    would close another of our orders, still live at the venue).
    """
    exec_type = msg.get(fix_tags.T_EXEC_TYPE) or ""
    client_id = msg.get(fix_tags.T_CLORDID) or ""
    orig = msg.get(fix_tags.T_ORIG_CLORDID) or ""
    if exec_type in _NAMES_AN_ORDER and not client_id and not orig:
        return f"ExecType {exec_type} names no order (no ClOrdID, no OrigClOrdID)"
    allowed = ORD_STATUS_OF_EXEC_TYPE.get(exec_type)
    status = msg.get(fix_tags.T_ORD_STATUS) or ""
    if allowed is not None and status not in allowed:
        return f"ExecType {exec_type} with OrdStatus {status!r} is impossible (expected one of {sorted(allowed)})"
    meant = requests.get(client_id)
    if exec_type == "5" and meant is None:
        return f"a replace answer for {client_id or '?'}, which is no replace of ours awaiting its answer"
    if meant is not None and orig and orig != meant:
        return f"OrigClOrdID {orig} on {client_id}, which we sent for {meant}"
    order = orders.get(client_id) or orders.get(orig)
    if order is None:
        return None
    side = fix_tags.SIDE_FROM_CODE.get(msg.get(fix_tags.T_SIDE) or "")
    if side is not None and side is not order.side:
        return f"Side {side.value} on {client_id or orig}, which we sent as {order.side.value}"
    symbol = msg.get(fix_tags.T_SYMBOL)
    if symbol is not None and symbol != order.symbol:
        return f"Symbol {symbol} on {client_id or orig}, which we sent on {order.symbol}"
    return None
