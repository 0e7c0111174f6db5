"""Small conversions between ccxt's unified structures and mmkit's values.

ccxt hands numbers over as floats or strings and statuses as its own words;
these helpers turn them into exact Decimals and mmkit statuses in one place.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs

from mmkit.model import (
    ZERO,
    Level,
    OrderRequest,
    VenueOrderStatus,
)


def _dec(value: Any) -> Decimal:
    """ccxt hands numbers over as floats; ``str`` recovers the venue's decimal text."""
    if value is None:
        return ZERO
    if isinstance(value, Decimal):
        return value
    return Decimal(str(value))


def _levels(side: Any, count: int) -> tuple[Level, ...]:
    """The best ``count`` levels of one side of ccxt's book; ValueError naming a level no book can hold.

    ccxt stores what the venue sends: a NaN, infinite, zero or negative price or a negative
    size reached the engine's book, which raises on it (a crash in the tick, not a resync).
    """
    levels = tuple((_dec(level[0]), _dec(level[1])) for level in side[:count])
    for price, size in levels:
        if not (price.is_finite() and size.is_finite() and price > 0 and size > 0):
            raise ValueError(f"malformed book level: price {price}, size {size}")
    return levels


_STATUS = {
    "open": VenueOrderStatus.NEW,
    "closed": VenueOrderStatus.FILLED,
    "canceled": VenueOrderStatus.CANCELED,
    "cancelled": VenueOrderStatus.CANCELED,
    "expired": VenueOrderStatus.EXPIRED,
    "rejected": VenueOrderStatus.REJECTED,
}


@attrs.define(slots=True)
class _Tracked:
    """Our shadow of one order: enough to turn cumulative venue state into fill deltas."""

    request: OrderRequest
    venue_order_id: str | None = None
    filled: Decimal = ZERO
    notional: Decimal = ZERO
    fee_paid: Decimal = ZERO
    open: bool = True
    #: The create call failed without an answer: the order may or may not exist.
    unknown: bool = False
    #: When we sent it (wall clock, ns): the venue's trades of this order are at or after it.
    sent_ns: int = 0
    #: The venue's latest view of the order; applied again once its trades are booked.
    last_raw: Any = None
    #: The venue's filled quantity last reported below what we passed on (None: never): each shortfall
    #: goes to the engine once, not once per poll.
    reported_short: Decimal | None = None
    #: What we had passed on when a finished order's venue answer last agreed with it (None: never):
    #: a trade booked on the order after that is checked against the venue again (ledger_check.py).
    verified_filled: Decimal | None = None
    #: Wall-clock ns since which the venue's answers count more filled than the trades passed on (None: not).
    behind_since_ns: int | None = None
    #: The venue's filled quantity last reported as more than the trades passed on (each figure once).
    reported_behind: Decimal | None = None

