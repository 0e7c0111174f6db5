"""Per-tick samples of a running engine, for the report and the plots.

A post-iterator: it runs after the strategy and the executor on every tick
and records, in compact float arrays, what a desk wants to see over time:
the fair mid, our best resting bid and ask, the position and the PnL parts.
Floats are fine here: these series feed charts and summary statistics, never
an order or the ledger (exact figures come from :class:`PnLTracker`).

It also listens to order events to count what we offered (accepted orders
and their size), which is the denominator of the fill ratio.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable
from decimal import Decimal

from mmkit.clock import Clock
from mmkit.model import FairValue, OrderAccepted, OrderReplaced, Side, VenueEvent
from mmkit.orders.tracker import ClientOrderTracker
from mmkit.risk.inventory import InventoryManager
from mmkit.risk.pnl import PnLTracker

NAN = math.nan


class BacktestSampler:
    """Records one row per tick: time, mid, our best bid/ask, position, realized, unrealized, fees, total."""

    def __init__(
        self,
        pnl: PnLTracker,
        inventory: InventoryManager,
        orders: ClientOrderTracker,
        symbol: str,
        fair: Callable[[], FairValue],
    ) -> None:
        self._pnl = pnl
        self._inventory = inventory
        self._orders = orders
        self._symbol = symbol
        self._fair = fair
        self.ts = array("q")
        self.mid = array("d")
        self.bid = array("d")
        self.ask = array("d")
        self.position = array("d")
        self.realized = array("d")
        self.unrealized = array("d")
        self.fees = array("d")
        self.total = array("d")
        self.accepted_orders = 0
        self.accepted_qty = Decimal(0)

    # -- order listener ---------------------------------------------------------

    def on_order_event(self, event: VenueEvent) -> None:
        """Count accepted orders and replacements and their size (``UserStreamTracker.add_order_listener``).

        A replacement re-offers its whole new size, so the offered quantity
        counts it again: the fill ratio is filled / offered, never above 1.
        """
        if isinstance(event, OrderReplaced):
            self.accepted_orders += 1
            self.accepted_qty += event.qty
        elif isinstance(event, OrderAccepted):
            order = self._orders.get(event.client_id)
            if order is not None:
                self.accepted_orders += 1
                self.accepted_qty += order.qty

    # -- TimeIterator -----------------------------------------------------------

    def start(self, clock: Clock, ts_ns: int) -> None:
        return None

    def stop(self, clock: Clock) -> None:
        return None

    def tick(self, ts_ns: int) -> None:
        fair = self._fair().price
        best_bid = NAN
        best_ask = NAN
        for order in self._orders.open_orders(self._symbol):
            price = order.price
            if price is None or not order.is_live:
                continue
            value = float(price)
            if order.side is Side.BUY:
                if not value <= best_bid:  # also true while best_bid is NaN
                    best_bid = value
            elif not value >= best_ask:
                best_ask = value
        pnl = self._pnl
        realized = pnl.realized()
        fees = pnl.fees()
        unrealized = pnl.unrealized()
        self.ts.append(ts_ns)
        self.mid.append(NAN if fair is None else float(fair))
        self.bid.append(best_bid)
        self.ask.append(best_ask)
        self.position.append(float(self._inventory.position))
        self.realized.append(float(realized))
        self.unrealized.append(float(unrealized))
        self.fees.append(float(fees))
        self.total.append(float(realized - fees + unrealized))

    def __len__(self) -> int:
        return len(self.ts)
