"""Fill validation: what must be true of a fill before anything books it.

Why a gate in front of the ledger: a fill that is booked moves inventory and
PnL, is recorded and may be hedged at once (issue 11: an over-fill of 5 BTC
on a 0.004 order was booked and hedged within the tick). The venue is the
authority on what traded, but a report can be corrupt, replayed with other
content, or plainly impossible. Such a fill is *quarantined*: kept apart,
never booked, never hedged, and the ledger is halted until a person looks.

Checks, in order (the first that fails names the reason):

* ``qty``: quantity must be > 0; ``price``: price must be > 0;
* ``overfill``: the order's booked fills plus this one exceed its quantity;
* ``limit``: a buy filled above its limit, a sell below it;
* ``band``: the price is outside the venue's price band around fair value
  (``Instrument.price_band``, the same band the venue applies to orders);
* ``beyond_venue_cum``: the report carries the venue's cumulative filled
  quantity on the venue order (FIX CumQty, across replaces) and what the
  ledger booked on that venue order plus this fill exceeds it by more than
  half the instrument's finest lot: the execution is booked already (a venue
  re-sending it under a new exec id, or its quantity counted from CumQty).
  Last, so a report that is impossible on other grounds keeps that name.

The order checks need the order (our ClientOrderTracker's); a fill for an
order we do not know (a late fill after a restart) is checked on quantity,
price and band only, because we cannot tell its limit.

Duplicates are decided by :func:`fill_content` (the stream keeps the content
of every key it has seen): the same (venue, exec id) with the same content is
a harmless repeat, the same key with other content is a *conflict*.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from decimal import Decimal

import attrs

from mmkit.instrument import Instrument
from mmkit.model import ZERO, Fill, Side
from mmkit.orders.client_order import ClientOrder

#: What identifies a fill's content for dedupe: (client id, symbol, side, price, qty).
FillContent = tuple[str, str, Side, Decimal, Decimal]


def fill_content(fill: Fill) -> FillContent:
    """The parts of a fill that a true repeat of it must carry unchanged.

    Timestamps are not part of it (a replay is received later) and neither is
    the fee (a status-derived copy may compute it differently); what traded,
    at what price, for which order, is.
    """
    return (fill.client_id, fill.symbol, fill.side, fill.price, fill.qty)


class QuarantineKind(enum.Enum):
    """Why a fill was kept out of the ledger."""

    CONFLICT = "conflict"
    QTY = "qty"
    PRICE = "price"
    OVERFILL = "overfill"
    LIMIT = "limit"
    BEYOND_VENUE_CUM = "beyond_venue_cum"
    BAND = "band"


def size_tolerance(instrument: Instrument | None) -> Decimal:
    """How far a ledger may differ from a venue's filled quantity by rounding alone: half the finest lot.

    Why half a lot: every real execution is a whole number of lots, so a true
    difference is at least one lot; anything under half of one is the
    venue's decimal text or our arithmetic, not a trade. Unknown instrument: 0.
    """
    if instrument is None:
        return ZERO
    return instrument.finest_increments()[1] / 2


@attrs.frozen(slots=True)
class QuarantinedFill:
    """A fill that was not booked, with why (one sentence a person can act on)."""

    fill: Fill
    kind: QuarantineKind
    reason: str
    ts_ns: int


@attrs.frozen(slots=True)
class LedgerAlarm:
    """The ledger is in doubt: quoting must halt (sticky) and the run must end non-zero (exit 5)."""

    reason: str
    ts_ns: int
    fill: Fill | None = None


class FillValidator:
    """Checks one fill against its order, the instrument and the fair value (see the module docstring).

    ``order_of`` finds our order by client id; ``instrument_of`` the
    instrument by symbol (None when unknown); ``fair_price`` the current fair
    value (None before the first price: then the band is not checked).
    """

    def __init__(
        self,
        order_of: Callable[[str], ClientOrder | None],
        instrument_of: Callable[[str], Instrument | None],
        fair_price: Callable[[], Decimal | None] | None = None,
        booked_on: Callable[[Fill], Decimal] | None = None,
    ) -> None:
        self.order_of = order_of
        self.instrument_of = instrument_of
        self.fair_price = fair_price
        #: What the ledger booked on a fill's venue order before it (ClientOrderTracker.booked_before);
        #: None: the ``beyond_venue_cum`` check is off.
        self.booked_on = booked_on

    def check(self, fill: Fill) -> tuple[QuarantineKind, str] | None:
        """None if the fill may be booked, else (kind, reason)."""
        where = f"{fill.venue} fill {fill.trade_id} on {fill.client_id}"
        if fill.qty <= ZERO:
            return QuarantineKind.QTY, f"{where}: quantity {fill.qty} is not positive"
        if fill.price <= ZERO:
            return QuarantineKind.PRICE, f"{where}: price {fill.price} is not positive"
        order = self.order_of(fill.client_id)
        if order is not None:
            if order.filled_qty + fill.qty > order.qty:
                return (
                    QuarantineKind.OVERFILL,
                    f"{where}: {fill.qty} on top of {order.filled_qty} booked exceeds the order's {order.qty}",
                )
            limit = order.price
            if limit is not None and (
                (fill.side is Side.BUY and fill.price > limit) or (fill.side is Side.SELL and fill.price < limit)
            ):
                return (
                    QuarantineKind.LIMIT,
                    f"{where}: {fill.side.value} at {fill.price} is through its limit {limit}",
                )
        instrument = self.instrument_of(fill.symbol)
        fair = self.fair_price() if self.fair_price is not None else None
        band = instrument.price_band if instrument is not None else None
        if band is not None and fair is not None and fair > ZERO and abs(fill.price - fair) > fair * band:
            return (
                QuarantineKind.BAND,
                f"{where}: price {fill.price} is outside the venue's band of {band * 100}% around fair {fair}",
            )
        cum = fill.venue_cum_qty
        if cum is not None and self.booked_on is not None:
            booked = self.booked_on(fill)
            total = booked + fill.qty  # one lookup, one add and one compare for every honest fill
            if total > cum and total - cum > size_tolerance(instrument):
                return (
                    QuarantineKind.BEYOND_VENUE_CUM,
                    f"{where}: {fill.qty} on top of the {booked} booked on venue order {fill.venue_order_id or '?'}"
                    f" makes {total}, above the {cum} this very report says is filled on it:"
                    f" already booked (an execution re-sent under a new exec id); not booked."
                    f" Stop the engine and run `mmkit reconcile`",
                )
        return None
