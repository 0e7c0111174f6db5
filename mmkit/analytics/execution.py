"""How our orders fared: fill rate per quote level and the order-to-trade ratio.

* **fill rate of a level**: filled quantity / offered quantity of the orders
  placed for that level (a replacement offers its whole new size again), in
  percent, with the order and fill counts beside it. Level 0 is the innermost
  quote; orders without a level (adopted, hedges) are under ``"none"``.
* **order-to-trade ratio**: order messages (new orders the venue accepted or
  rejected, replacements, confirmed cancels) per fill. Venues cap it; a
  strategy that re-quotes on every tick shows it here first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import attrs

from mmkit.model import ZERO, Fill, Side


@attrs.define
class OrderRow:
    """One order of the run as the report lists it (``orders.csv``); money as Decimal."""

    client_id: str
    side: Side
    level: int | None
    price: Decimal | None
    qty: Decimal
    created_ns: int
    accepted_ns: int | None = None
    ended_ns: int | None = None
    #: open, canceled, rejected, expired, replaced (by ``replaced_by``), filled
    state: str = "open"
    replaces: str = ""
    replaced_by: str = ""
    filled_qty: Decimal = ZERO
    reason: str = ""


def attach_fills(orders: Iterable[OrderRow], fills: Sequence[Fill]) -> None:
    """Set each order's ``filled_qty`` from the fills (by client id) and mark fully filled ones."""
    filled: dict[str, Decimal] = {}
    for f in fills:
        filled[f.client_id] = filled.get(f.client_id, ZERO) + f.qty
    for order in orders:
        order.filled_qty = filled.get(order.client_id, ZERO)
        if order.qty > 0 and order.filled_qty >= order.qty and order.state in ("open", "canceled"):
            order.state = "filled"


def fill_rate_by_level(orders: Sequence[OrderRow], fills: Sequence[Fill]) -> dict[str, dict[str, Any]]:
    """Per level (``"0"``, ``"1"``, …, ``"none"``): orders, offered and filled quantity, fills, fill rate %."""
    level_of = {o.client_id: o.level for o in orders}
    out: dict[str, dict[str, Any]] = {}

    def row(level: int | None) -> dict[str, Any]:
        key = "none" if level is None else str(level)
        return out.setdefault(key, {"orders": 0, "offered_qty": ZERO, "filled_qty": ZERO, "fills": 0})

    for o in orders:
        if o.state == "rejected":
            continue
        r = row(o.level)
        r["orders"] += 1
        r["offered_qty"] += o.qty
    for f in fills:
        if f.is_hedge:
            continue
        r = row(level_of.get(f.client_id))
        r["fills"] += 1
        r["filled_qty"] += f.qty
    result: dict[str, dict[str, Any]] = {}
    for key in sorted(out, key=lambda k: (k == "none", int(k) if k != "none" else 0)):
        r = out[key]
        offered = r["offered_qty"]
        result[key] = {
            "orders": r["orders"],
            "fills": r["fills"],
            "offered_qty": str(offered),
            "filled_qty": str(r["filled_qty"]),
            "fill_rate_pct": None if offered == 0 else round(float(r["filled_qty"] / offered) * 100, 3),
        }
    return result


def order_to_trade(order_messages: int, fill_count: int) -> float | None:
    """Order messages per fill (None without fills)."""
    return None if fill_count == 0 else round(order_messages / fill_count, 3)
