"""A hostile counterparty: the TrueX simulator sending execution reports that must not be believed.

A test-side wrapper of the simulator's hostile mode (connectors/truex/sim/hostile.py).
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
from pathlib import Path

from connectors.truex.sim.exchange import TrueXExchange
from connectors.truex.sim.hostile import send_bad_trade


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

    # -- the bad reports (built by the simulator's hostile mode) ------------------------

    def duplicate(self, fill: dict[str, str]) -> str:
        return self._send(fill, "duplicate")

    def late(self, fill: dict[str, str]) -> str:
        return self._send(fill, "late")

    def conflicting(self, fill: dict[str, str]) -> str:
        return self._send(fill, "conflicting")

    def overfill(self, fill: dict[str, str]) -> str:
        return self._send(fill, "overfill")

    def negative(self, fill: dict[str, str]) -> str:
        return self._send(fill, "negative")

    def off_price(self, fill: dict[str, str]) -> str:
        return self._send(fill, "off_price")

    def _send(self, fill: dict[str, str], kind: str) -> str:
        self.sent += 1
        return send_bad_trade(self.exchange, self.oe_comp_id, fill, kind)
