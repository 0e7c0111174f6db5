"""UserStreamTracker: our fills, order updates and balances, in one ordered stream.

Why one place: the order tracker must see an event before anyone who
reasons about orders (inventory, PnL, the controller's ``on_fill``), and a
fill must be booked exactly once even when a venue repeats it (reconnect
replays, a status query and an execution report describing the same trade,
Hummingbot #2945). So every private event goes through here, in arrival
order: first to the :class:`~mmkit.orders.tracker.ClientOrderTracker`, then
to the registered listeners. A listener that raises is logged and counted;
the others still run.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable

from loguru import logger

from mmkit.model import (
    Balance,
    BalanceUpdate,
    Fill,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderExpired,
    OrderNotFound,
    OrderQueryFailed,
    OrderRejected,
    OrderReplaced,
    OrderStatusReport,
    VenueEvent,
)
from mmkit.orders.tracker import ClientOrderTracker

FillListener = Callable[[Fill], None]
OrderListener = Callable[[VenueEvent], None]
BalanceListener = Callable[[BalanceUpdate], None]

_ORDER_EVENTS = (
    OrderAccepted,
    OrderRejected,
    OrderCanceled,
    OrderExpired,
    OrderReplaced,
    OrderCancelRejected,
    OrderStatusReport,
    OrderNotFound,
    OrderQueryFailed,
)


class UserStreamTracker:
    """Delivers private events once, in order: order tracker first, then listeners."""

    def __init__(self, order_tracker: ClientOrderTracker | None = None, fill_memory: int = 200_000) -> None:
        self.order_tracker = order_tracker
        self._fill_listeners: list[FillListener] = []
        self._order_listeners: list[OrderListener] = []
        self._balance_listeners: list[BalanceListener] = []
        self._seen_fills: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._fill_memory = fill_memory
        self._balances: dict[str, dict[str, Balance]] = {}
        self.duplicate_fills = 0
        self.listener_errors = 0
        self.ignored_events = 0
        self.delivered = 0

    # -- registration ---------------------------------------------------

    def add_fill_listener(self, fn: FillListener) -> None:
        self._fill_listeners.append(fn)

    def add_order_listener(self, fn: OrderListener) -> None:
        """Called with every non-fill order event (accepted, rejected, canceled, replaced, status...)."""
        self._order_listeners.append(fn)

    def add_balance_listener(self, fn: BalanceListener) -> None:
        self._balance_listeners.append(fn)

    # -- input ----------------------------------------------------------

    def remember_fills(self, keys: Iterable[tuple[str, str]]) -> None:
        """Treat these (venue, trade id) fills as already delivered (restart recovery pre-loads the ledger's)."""
        for key in keys:
            self._seen_fills[key] = None
        while len(self._seen_fills) > self._fill_memory:
            self._seen_fills.popitem(last=False)

    def process(self, events: Iterable[VenueEvent]) -> None:
        for event in events:
            self.push(event)

    def push(self, event: VenueEvent) -> bool:
        """Handle one event; returns False for duplicates and events that are not ours to handle."""
        if isinstance(event, Fill):
            key = event.key
            if key in self._seen_fills:
                self.duplicate_fills += 1
                logger.bind(venue=event.venue, client_id=event.client_id).info("duplicate fill {} dropped", key[1])
                return False
            self._seen_fills[key] = None
            if len(self._seen_fills) > self._fill_memory:
                self._seen_fills.popitem(last=False)
            self._to_tracker(event)
            self._notify(self._fill_listeners, event)
            return True
        if isinstance(event, _ORDER_EVENTS):
            self._to_tracker(event)
            self._notify(self._order_listeners, event)
            return True
        if isinstance(event, BalanceUpdate):
            venue_balances = self._balances.setdefault(event.venue, {})
            for balance in event.balances:
                venue_balances[balance.asset] = balance
            self._notify(self._balance_listeners, event)
            return True
        self.ignored_events += 1
        return False

    # -- views ----------------------------------------------------------

    def balances(self, venue: str) -> dict[str, Balance]:
        """Latest balance per asset on ``venue`` (a copy)."""
        return dict(self._balances.get(venue, {}))

    def balance(self, venue: str, asset: str) -> Balance | None:
        return self._balances.get(venue, {}).get(asset)

    # -- internals ------------------------------------------------------

    def _to_tracker(self, event: VenueEvent) -> None:
        if self.order_tracker is None:
            return
        try:
            self.order_tracker.on_event(event)
        except Exception:  # the tracker is built not to raise; if it does, keep the stream flowing
            self.listener_errors += 1
            logger.opt(exception=True).error("order tracker failed on {}", type(event).__name__)

    def _notify(self, listeners: list[Callable[..., None]], event: VenueEvent) -> None:
        self.delivered += 1
        for fn in listeners:
            try:
                fn(event)
            except Exception:
                self.listener_errors += 1
                logger.opt(exception=True).error("listener {} failed on {}", getattr(fn, "__qualname__", fn), event)
