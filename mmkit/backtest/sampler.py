"""Per-tick samples of a running engine, for the report and the plots.

A post-iterator: it runs after the strategy and the executor on every tick
and records, in compact float arrays, what a desk wants to see over time:
the fair mid, our best resting bid and ask, the position and the PnL parts.
Floats are fine here: these series feed charts and summary statistics, never
an order or the ledger (exact figures come from :class:`PnLTracker`).

Funding: a perpetual run that books funding into the PnL (``--funding``,
:mod:`mmkit.backtest.funding_settler`) has a ninth column, ``funding``: the
funding booked so far (``PnLFigures.cash_flows``; funding is the only cash
flow a backtest books), so each row reads ``total = realized - fees +
unrealized + funding`` instead of leaving funding to be guessed from the
difference. Any other run (spot; a perpetual without a funding file, whose
PnL holds no funding) has no such column at all, not a column of zeros: its
rows, report and tearsheet stay byte for byte what they were, and a zero
there would read as "funding was nothing" where it was not booked.

It also listens to order events to count what we offered (accepted orders
and their size), which is the denominator of the fill ratio, and to keep one
:class:`~mmkit.analytics.execution.OrderRow` per order (``orders.csv``, fill
rate per level, order-to-trade ratio). Order events are rare next to ticks,
so this costs the hot path nothing.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from mmkit.analytics.execution import OrderRow
from mmkit.class_routes import ClassRoutes
from mmkit.clock import Clock
from mmkit.model import (
    FairValue,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderRejected,
    OrderReplaced,
    Side,
    VenueEvent,
)
from mmkit.orders.client_order import ClientOrder
from mmkit.orders.states import LIVE_STATES
from mmkit.orders.tracker import ClientOrderTracker
from mmkit.risk.inventory import InventoryManager
from mmkit.risk.pnl import PnLFigures, PnLTracker

NAN = math.nan
#: Floats per row of :attr:`BacktestSampler._rows` (mid, bid, ask, position, realized, unrealized, fees, total);
#: one more (funding) when the run books funding.
_COLUMNS = 8
#: Orders whose price the sampler keeps as a float (a run rests a few at a time; the bound only caps memory).
_PRICE_FLOATS_KEPT = 1024
_BUY = Side.BUY


class BacktestSampler:
    """Records one row per tick: time, mid, our best bid/ask, position, realized, unrealized, fees, total
    (and funding, with ``funding=True``)."""

    #: The order events :meth:`on_order_event` counts (the listener's ``kinds``): not status reports,
    #: cancel rejects or "not found", which it would be called for and do nothing with.
    ORDER_KINDS: tuple[type, ...] = (OrderReplaced, OrderAccepted, OrderRejected, OrderCanceled, OrderExpired)

    def __init__(
        self,
        pnl: PnLTracker,
        inventory: InventoryManager,
        orders: ClientOrderTracker,
        symbol: str,
        fair: Callable[[], FairValue],
        *,
        funding: bool = False,
    ) -> None:
        """``funding``: the run books funding into ``pnl`` (a funding settler is attached): record it per row."""
        self._pnl = pnl
        self.has_funding = funding
        self._width = _COLUMNS + 1 if funding else _COLUMNS
        self._inventory = inventory
        self._orders = orders
        self._symbol = symbol
        self._fair = fair
        self.ts = array("q")
        #: mid, bid, ask, position, realized, unrealized, fees, total of each tick, row after row: one
        #: ``extend`` a tick instead of eight appends; the columns are read through the properties below.
        self._rows = array("d")
        self._columns: dict[int, tuple[int, array[float]]] = {}
        self.accepted_orders = 0
        self.accepted_qty = Decimal(0)
        #: One row per order we placed (replacements included), in placement order.
        self.orders: dict[str, OrderRow] = {}
        #: Order messages: new orders answered (accepted or rejected), replacements, confirmed cancels.
        self.order_messages = 0
        #: What the last row was made from, by identity (Decimals and PnLFigures are immutable; the order
        #: tracker's version moves with every change to our orders): fair price, orders version, position,
        #: PnL figures (four attributes, not a tuple: compared every tick). While all four stand, a tick
        #: appends the last row again without converting anything.
        self._key_fair: Decimal | None = None
        self._key_version = -1
        self._key_position: Decimal | None = None
        self._key_figures: PnLFigures | None = None
        self._last_row: tuple[float, ...] = ()
        #: Ticks since the last row written to ``_rows`` that repeat it and are not written yet: a tick that
        #: changes nothing counts here, and the run is written in one ``extend`` when a row differs or a
        #: column is read (:meth:`_flush`). ``ts`` always has every tick.
        self._repeats = 0
        # Float conversions, each reused while its own source is unchanged (a fill moves the position and the
        # PnL but not the mid): (order tracker version, best bid, best ask) of our live orders;
        self._quotes: tuple[int, float, float] | None = None
        #: (PnLFigures object, (realized, unrealized, fees, total[, funding])): figures() returns the same
        #: object until a fill, a new mark or a funding payment changes it;
        self._pnl_floats: tuple[PnLFigures, tuple[float, ...]] | None = None
        #: (Decimal, float) of the last mid and of the last position (identity: Decimals are immutable).
        self._mid: tuple[Decimal | None, float] = (None, NAN)
        self._position: tuple[Decimal | None, float] = (None, NAN)
        #: Each order event's handler, by its class (the isinstance checks once per class).
        self._event_routes: ClassRoutes[Callable[[Any], None]] = ClassRoutes(
            [(OrderReplaced, self._on_replaced), (OrderAccepted, self._on_accepted),
             (OrderRejected, self._on_rejected), (OrderCanceled, self._on_canceled),
             (OrderExpired, self._on_expired)],
            self._on_other,
        )
        self._event_handlers = self._event_routes.memo
        #: Each order's price as a float, by the order (identity: a ClientOrder's price never changes); at most
        #: ``_PRICE_FLOATS_KEPT`` of them, dropped all at once when full.
        self._price_floats: dict[ClientOrder, float] = {}

    # -- order listener ---------------------------------------------------------

    def on_order_event(self, event: VenueEvent) -> None:
        """Count accepted orders and replacements and their size (``UserStreamTracker.add_order_listener``).

        A replacement re-offers its whole new size, so the offered quantity
        counts it again: the fill ratio is filled / offered, never above 1.
        Each event goes to its kind's handler, looked up by its class
        (:mod:`mmkit.class_routes`): every order event of a run comes here, and
        a chain of isinstance checks cost more than the handlers themselves.
        """
        handler = self._event_handlers.get(type(event))
        if handler is None:
            handler = self._event_routes.classify(event)
        handler(event)

    def _on_replaced(self, event: OrderReplaced) -> None:
        self.accepted_orders += 1
        self.accepted_qty += event.qty
        self.order_messages += 1
        old = self.orders.get(event.orig_client_id)
        if old is not None:
            old.state, old.replaced_by, old.ended_ns = "replaced", event.client_id, event.ts_recv
        order = self._orders.get(event.client_id)
        if order is not None and order.slot is not None:
            level: int | None = order.slot[1]
        else:
            level = old.level if old is not None else None
        side = old.side if old is not None else (order.side if order is not None else Side.BUY)
        self.orders[event.client_id] = OrderRow(
            event.client_id, side, level, event.price, event.qty, event.ts_recv,
            accepted_ns=event.ts_recv, replaces=event.orig_client_id,
        )

    def _on_accepted(self, event: OrderAccepted) -> None:
        client_id = event.client_id
        order = self._orders.get(client_id)
        if order is not None:
            self.accepted_orders += 1
            self.accepted_qty += order.request.qty
            self.order_messages += 1
            row = self.orders.get(client_id)
            if row is None:  # :meth:`_row` with the order already in hand
                self.orders[client_id] = self._new_row(client_id, order, event.ts_recv)
            else:
                row.accepted_ns = event.ts_recv

    def _on_rejected(self, event: OrderRejected) -> None:
        self.order_messages += 1
        row = self._row(event.client_id)
        if row is not None:
            row.state, row.ended_ns, row.reason = "rejected", event.ts_recv, event.reason.value

    def _on_canceled(self, event: OrderCanceled) -> None:
        self.order_messages += 1
        row = self.orders.get(event.client_id)
        if row is not None and row.state == "open":
            row.state = "canceled"
            row.ended_ns = event.ts_recv

    def _on_expired(self, event: OrderExpired) -> None:
        row = self.orders.get(event.client_id)
        if row is not None and row.state == "open":
            row.state = "expired"
            row.ended_ns = event.ts_recv

    def _on_other(self, event: VenueEvent) -> None:
        """Status reports, cancel rejects, "not found"...: nothing to count."""
        return None

    def _row(self, client_id: str) -> OrderRow | None:
        """The order's row, made from the order tracker on first sight (None for an order it does not know)."""
        row = self.orders.get(client_id)
        if row is None:
            order = self._orders.get(client_id)
            if order is None:
                return None
            row = self.orders[client_id] = self._new_row(client_id, order, None)
        return row

    @staticmethod
    def _new_row(client_id: str, order: ClientOrder, accepted_ns: int | None) -> OrderRow:
        request = order.request
        slot = order.slot
        return OrderRow(client_id, request.side, None if slot is None else slot[1], request.price,
                        request.qty, order.created_ns, accepted_ns)

    # -- TimeIterator -----------------------------------------------------------

    def start(self, clock: Clock, ts_ns: int) -> None:
        return None

    def stop(self, clock: Clock) -> None:
        return None

    def tick(self, ts_ns: int) -> None:
        fair = self._fair().price
        version = self._orders.version
        position = self._inventory.position
        figures = self._pnl.figures()
        if (
            fair is not self._key_fair
            or version != self._key_version
            or position is not self._key_position
            or figures is not self._key_figures
        ):
            self._key_fair, self._key_version, self._key_position, self._key_figures = fair, version, position, figures
            if self._repeats:
                self._flush()
            self._last_row = row = self._make_row(fair, version, position, figures)
            self._rows.extend(row)
        else:
            self._repeats += 1
        self.ts.append(ts_ns)

    def _flush(self) -> None:
        """Write the repeated rows counted since the last written one (see ``_repeats``).

        Repeated as an array, not as a tuple: the copies are made and appended as
        raw doubles, not as float objects converted one by one.
        """
        self._rows.extend(array("d", self._last_row) * self._repeats)
        self._repeats = 0

    def _make_row(
        self, fair: Decimal | None, version: int, position: Decimal, figures: PnLFigures
    ) -> tuple[float, ...]:
        """The floats of one row, converting only the parts whose source changed since the last row."""
        mid = self._mid
        if mid[0] is not fair:
            mid = self._mid = (fair, NAN if fair is None else float(fair))
        quotes = self._quotes
        if quotes is None or quotes[0] != version:
            quotes = self._quotes = (version, *self._best_quotes())
        held = self._position
        if held[0] is not position:
            held = self._position = (position, float(position))
        pnl = self._pnl_floats
        if pnl is None or pnl[0] is not figures:
            floats: tuple[float, ...] = (
                float(figures.realized), float(figures.unrealized), float(figures.fees), float(figures.total))
            if self.has_funding:
                floats += (float(figures.cash_flows),)
            pnl = self._pnl_floats = (figures, floats)
        return (mid[1], quotes[1], quotes[2], held[1]) + pnl[1]

    # -- columns ----------------------------------------------------------------

    def _column(self, index: int) -> array[float]:
        """Column ``index`` of the rows (cached until a row is added; read it, do not change it)."""
        if self._repeats:
            self._flush()
        rows = len(self._rows)
        held = self._columns.get(index)
        if held is None or held[0] != rows:
            held = self._columns[index] = (rows, self._rows[index::self._width])
        return held[1]

    @property
    def mid(self) -> array[float]:
        return self._column(0)

    @property
    def bid(self) -> array[float]:
        return self._column(1)

    @property
    def ask(self) -> array[float]:
        return self._column(2)

    @property
    def position(self) -> array[float]:
        return self._column(3)

    @property
    def realized(self) -> array[float]:
        return self._column(4)

    @property
    def unrealized(self) -> array[float]:
        return self._column(5)

    @property
    def fees(self) -> array[float]:
        return self._column(6)

    @property
    def total(self) -> array[float]:
        return self._column(7)

    @property
    def funding(self) -> array[float] | None:
        """Funding booked so far, per tick, in the PnL unit; None when the run books none (no such column)."""
        return self._column(8) if self.has_funding else None

    def _best_quotes(self) -> tuple[float, float]:
        """Best price of our live bids and asks (NaN for a side with none).

        The states, sides and prices are read off the orders directly (no
        property per order), and each order's price is converted to a float
        once (``_price_floats``): a ClientOrder's request, so its price, never
        changes, and the same few orders are scanned on every row they rest.
        """
        best_bid = NAN
        best_ask = NAN
        floats = self._price_floats
        for order in self._orders.open_orders_view(self._symbol):
            if order.state not in LIVE_STATES:
                continue
            value = floats.get(order)
            if value is None:
                request = order.request
                if request.price is None:
                    continue
                if len(floats) >= _PRICE_FLOATS_KEPT:
                    floats.clear()  # a bound, not an invalidation: what is kept stays true for good
                value = floats[order] = float(request.price)
            if order.request.side is _BUY:
                if not value <= best_bid:  # also true while best_bid is NaN
                    best_bid = value
            elif not value >= best_ask:
                best_ask = value
        return best_bid, best_ask

    def __len__(self) -> int:
        return len(self.ts)
