"""HedgeOrder: one working hedge order as the hedger tracks it, from send to its end.

Why its own type and module: what makes hedging safe is counting what is
still working. The exposure the hedger asks about is position plus the
signed *remaining* size of its working hedges, so a slow fill never triggers
a second hedge for the same exposure; a timed-out limit sends only what the
venue confirms unfilled to market; and the balance a hedge reserved is
given back for its unfilled rest when it ends. Each of those reads this
record, so it is kept in one place, apart from the executor's decisions.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

from mmkit.model import ZERO, OrderRequest, OrderType


@attrs.define(slots=True)
class HedgeOrder:
    """One working hedge order as the executor tracks it."""

    request: OrderRequest
    placed_ns: int
    #: The hedge venue's mid when it was sent: what its fills' cost is measured against.
    mid_at_send: Decimal | None = None
    filled: Decimal = ZERO
    accepted: bool = False
    cancel_sent: bool = False
    #: What sending it reserved on the hedge venue, per unit of size: (asset, amount). Released for the
    #: unfilled rest when it ends, so a timed-out limit does not starve its own market fallback.
    reserved: tuple[str, Decimal] | None = None

    @property
    def remaining(self) -> Decimal:
        return self.request.qty - self.filled

    @property
    def is_market(self) -> bool:
        return self.request.order_type is OrderType.MARKET
