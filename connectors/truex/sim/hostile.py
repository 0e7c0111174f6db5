"""A hostile mode of the simulated TrueX exchange: trade reports the matching engine never produced.

For fault tests (issue 11, cases 3 and 4): given one of a client's real fills
(as the fills log records it), send on that client's order-entry session a
35=8 trade report that must not be believed, built exactly like the venue's
own reports:

* ``duplicate`` / ``late``: the real report again, unchanged;
* ``conflicting``: the real ExecID with 3x the quantity at another price;
* ``overfill``: 5 BTC on the order, whatever its size;
* ``negative``: the real quantity, negated;
* ``off_price``: the real quantity at 999,999,999;
* ``resent``: the real execution again under a new ExecID, with the order's
  true CumQty (a venue re-sending an execution after a reconnect).

``ExchangeConfig.hostile`` makes the exchange send one of them right after
the first real fill of each client, so an engine in another process can be
tested against it (``python -m connectors.truex.sim --hostile overfill``).
None of these reports is in the fills log, the venue's own record.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from connectors.truex.sim.records import _owner, _Record
from mmkit.model import Side, VenueOrderStatus

if TYPE_CHECKING:
    from connectors.truex.sim.exchange import TrueXExchange

KINDS = ("duplicate", "late", "conflicting", "overfill", "negative", "off_price", "resent")


def bad_trade(kind: str, fill: dict[str, str]) -> tuple[str, Decimal, Decimal]:
    """(ExecID, quantity, price) of the bad report of ``kind`` derived from the real ``fill``."""
    exec_id, qty, price = fill["exec_id"], Decimal(fill["qty"]), Decimal(fill["price"])
    if kind in ("duplicate", "late"):
        return exec_id, qty, price
    if kind == "conflicting":
        return exec_id, qty * 3, price - 5
    if kind == "overfill":
        return f"{exec_id}-OVER", Decimal(5), price
    if kind == "negative":
        return f"{exec_id}-NEG", -qty, price
    if kind == "off_price":
        return f"{exec_id}-PX", qty, Decimal(999_999_999)
    if kind == "resent":
        return f"{exec_id}-RESENT", qty, price
    raise ValueError(f"unknown hostile report kind {kind!r}; one of {', '.join(KINDS)}")


def send_bad_trade(exchange: TrueXExchange, oe_comp_id: str, fill: dict[str, str], kind: str) -> str:
    """Send the bad report of ``kind`` for ``fill`` to the client ``oe_comp_id``; returns its ExecID."""
    exec_id, qty, price = bad_trade(kind, fill)
    with exchange._lock:
        real = exchange._records.get((_owner(oe_comp_id), fill["clordid"]))
        record = _Record(
            fill["order_id"], fill["clordid"], _owner(oe_comp_id), Side(fill["side"]),
            real.price if real is not None else price, real.qty if real is not None else qty,
            real.cum_qty if real is not None else qty, VenueOrderStatus.PARTIALLY_FILLED,
            real.notional if real is not None else qty * price,
        )  # fmt: skip
        report = exchange._exec_report(
            record, "F", exec_id=exec_id, last_px=price, last_qty=qty, leaves=Decimal(0),
            maker=fill["liquidity"] == "MAKER", fee=Decimal(0),
        )  # fmt: skip
        spec = exchange._oe_sessions[oe_comp_id]
        exchange._send(spec.session_id, report)
    exchange._log.warning("HOSTILE: sent a {} trade report {} to {}", kind, exec_id, oe_comp_id)
    return exec_id
