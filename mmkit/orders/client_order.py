"""ClientOrder: our shadow of one order, advanced only through the state table.

It is mutable on purpose (one object per order, updated in place by the
tracker) but changes state only via :meth:`ClientOrder.apply`, so every
change goes through :data:`mmkit.orders.states.TRANSITIONS`.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

from mmkit.model import ZERO, OrderRequest, Side
from mmkit.orders.states import TRANSITIONS, IllegalTransition, OrderState, Trigger

Slot = tuple[Side, int]
_TRANSITIONS_GET = TRANSITIONS.get
_OPEN = OrderState.OPEN
_PARTIALLY_FILLED = OrderState.PARTIALLY_FILLED


@attrs.define(slots=True, eq=False)
class ClientOrder:
    """One order as we believe it to be (satisfies ``mmkit.strategy.OpenOrderView``)."""

    request: OrderRequest
    state: OrderState = OrderState.PENDING_CREATE
    venue_order_id: str = ""
    filled_qty: Decimal = ZERO
    avg_price: Decimal | None = None
    fees: Decimal = ZERO
    #: The (side, level) slot the executor placed this order for; None for adopted/stray orders.
    slot: Slot | None = None
    created_ns: int = 0
    #: Last time the state changed (pending timeouts count from here).
    updated_ns: int = 0
    #: For a replacement: the client id it replaces; on the old order: the id that replaced it.
    replaces: str | None = None
    replaced_by: str | None = None
    #: Status-query bookkeeping for PENDING_* timeouts.
    query_attempts: int = 0
    next_query_ns: int = 0
    #: Fills booked while the order was already CANCELED / FAILED.
    late_fills: int = 0
    #: What the last status report said was filled (may run ahead of the fills we have).
    venue_filled_qty: Decimal = ZERO
    #: Not placed by us in this run: found at the venue during reconciliation.
    adopted: bool = False

    # -- OpenOrderView ------------------------------------------------------

    @property
    def client_id(self) -> str:
        return self.request.client_id

    @property
    def side(self) -> Side:
        return self.request.side

    @property
    def price(self) -> Decimal | None:
        return self.request.price

    @property
    def qty(self) -> Decimal:
        return self.request.qty

    @property
    def symbol(self) -> str:
        return self.request.symbol

    @property
    def remaining(self) -> Decimal:
        remaining = self.request.qty - self.filled_qty
        return remaining if remaining > ZERO else ZERO

    @property
    def is_done(self) -> bool:
        return self.state.is_done

    @property
    def is_pending(self) -> bool:
        return self.state.is_pending

    @property
    def is_live(self) -> bool:
        return self.state.is_live

    # -- changes ------------------------------------------------------------

    def apply(self, trigger: Trigger, now_ns: int) -> OrderState:
        """Advance through the table (raises IllegalTransition, leaving the order unchanged).

        :func:`mmkit.orders.states.next_state` inlined (every order event and action comes here): the
        filled quantity is compared only when the table says OPEN, the one case it decides.
        """
        state = self.state
        new = _TRANSITIONS_GET((state, trigger))
        if new is None:
            raise IllegalTransition(state, trigger, self.request.client_id)
        if new is _OPEN and self.filled_qty > ZERO:
            new = _PARTIALLY_FILLED
        if new is not state:
            self.state = new
            self.updated_ns = now_ns
            self.query_attempts = 0
            self.next_query_ns = 0
        return new

    def add_fill(self, qty: Decimal, price: Decimal, fee: Decimal) -> Trigger:
        """Book a fill's quantity and average price; return FILL if it completes the order."""
        total = self.filled_qty + qty
        if self.avg_price is None or self.filled_qty == 0:
            self.avg_price = price
        else:
            self.avg_price = (self.avg_price * self.filled_qty + price * qty) / total
        self.filled_qty = total
        self.fees += fee
        return Trigger.FILL if total >= self.qty else Trigger.PARTIAL_FILL
