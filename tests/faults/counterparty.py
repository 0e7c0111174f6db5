"""A hostile counterparty: the TrueX simulator sending execution reports that must not be believed.

It wraps a running :class:`connectors.truex.sim.exchange.TrueXExchange` and
sends, on a client's real order-entry session, 35=8 trade reports the
matching engine never produced (issue 11, cases 3 and 4):

* ``duplicate``: a real fill's report again, unchanged (a harmless repeat);
* ``late``: the same, after the order is finished (a late repeat);
* ``conflicting``: a real fill's ExecID with another quantity and price;
* ``overfill``: a trade larger than the order;
* ``negative``: a trade with a negative quantity;
* ``off_price``: a trade far outside the venue's price band (999,999,999).

None of them is in the venue's fills log (its own record), so a ledger that
books any of them no longer equals the venue's fills.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from connectors.truex.sim.exchange import TrueXExchange
from connectors.truex.sim.records import _owner, _Record
from mmkit.model import Side, VenueOrderStatus


class HostileCounterparty:
    """Injects crafted trade reports into one client's OE session of ``exchange``."""

    def __init__(self, exchange: TrueXExchange, oe_comp_id: str, fills_log: Path) -> None:
        self.exchange = exchange
        self.oe_comp_id = oe_comp_id
        self.fills_log = fills_log
        self.sent = 0

    def real_fills(self) -> list[dict[str, str]]:
        """The venue's own fills of this client (its fills log)."""
        lines = self.fills_log.read_text().splitlines() if self.fills_log.exists() else []
        return [f for f in map(json.loads, lines) if f["comp_id"] == self.oe_comp_id]

    # -- the bad reports -----------------------------------------------------------

    def duplicate(self, fill: dict[str, str]) -> str:
        return self._send(fill, fill["exec_id"], Decimal(fill["qty"]), Decimal(fill["price"]))

    def late(self, fill: dict[str, str]) -> str:
        return self.duplicate(fill)

    def conflicting(self, fill: dict[str, str]) -> str:
        return self._send(fill, fill["exec_id"], Decimal(fill["qty"]) * 3, Decimal(fill["price"]) - 5)

    def overfill(self, fill: dict[str, str], qty: Decimal = Decimal(5)) -> str:
        return self._send(fill, f"{fill['exec_id']}-OVER", qty, Decimal(fill["price"]))

    def negative(self, fill: dict[str, str]) -> str:
        return self._send(fill, f"{fill['exec_id']}-NEG", -Decimal(fill["qty"]), Decimal(fill["price"]))

    def off_price(self, fill: dict[str, str], price: Decimal = Decimal(999_999_999)) -> str:
        return self._send(fill, f"{fill['exec_id']}-PX", Decimal(fill["qty"]), price)

    # -- sending -------------------------------------------------------------------

    def _send(self, fill: dict[str, str], exec_id: str, qty: Decimal, price: Decimal) -> str:
        """One 35=F report built like the venue's own, for the order of ``fill``; returns its ExecID."""
        exchange = self.exchange
        with exchange._lock:
            real = exchange._records.get((_owner(self.oe_comp_id), fill["clordid"]))
            side = Side(fill["side"])
            record = _Record(
                fill["order_id"], fill["clordid"], _owner(self.oe_comp_id), side,
                real.price if real is not None else price, real.qty if real is not None else qty,
                real.cum_qty if real is not None else qty, VenueOrderStatus.PARTIALLY_FILLED,
                real.notional if real is not None else qty * price,
            )  # fmt: skip
            report = exchange._exec_report(
                record, "F", exec_id=exec_id, last_px=price, last_qty=qty, leaves=Decimal(0),
                maker=fill["liquidity"] == "MAKER", fee=Decimal(0),
            )  # fmt: skip
            spec = exchange._oe_sessions[self.oe_comp_id]
            exchange._send(spec.session_id, report)
        self.sent += 1
        return exec_id
