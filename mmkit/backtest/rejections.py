"""Orders and replaces the venue refused, counted by reason, for a backtest's report.

Why: a refused order is work the strategy wanted done and the venue would not
do: an order a spot account cannot pay for (INSUFFICIENT_FUNDS), one the rate
limit or the price band turned away. orders.csv lists each, but a report
that shows fills and PnL without the count makes a strategy that was mostly
refused look like one that quoted and was not filled.
"""

from __future__ import annotations

from typing import Any

from mmkit.model import OrderCancelRejected, OrderRejected, VenueEvent

__all__ = ["RejectionCounter"]


class RejectionCounter:
    """An order listener (``UserStreamTracker.add_order_listener``) counting refusals by reason."""

    #: The only events it counts: give them as the listener's ``kinds`` and it is not called for the others.
    ORDER_KINDS: tuple[type, ...] = (OrderRejected, OrderCancelRejected)

    def __init__(self) -> None:
        self.orders: dict[str, int] = {}
        self.replaces: dict[str, int] = {}
        self.cancels: dict[str, int] = {}

    def on_order_event(self, event: VenueEvent) -> None:
        if isinstance(event, OrderRejected):
            self.orders[event.reason.value] = self.orders.get(event.reason.value, 0) + 1
        elif isinstance(event, OrderCancelRejected):
            counts = self.replaces if event.is_replace else self.cancels
            counts[event.reason.value] = counts.get(event.reason.value, 0) + 1

    def section(self) -> dict[str, Any]:
        """``report["rejections"]``: totals and counts by reason (reasons sorted: the report is byte-stable)."""
        return {
            "orders": sum(self.orders.values()),
            "orders_by_reason": dict(sorted(self.orders.items())),
            "replaces": sum(self.replaces.values()),
            "replaces_by_reason": dict(sorted(self.replaces.items())),
            "cancels": sum(self.cancels.values()),
            "cancels_by_reason": dict(sorted(self.cancels.items())),
        }
