"""Steps 1-2 of the tick (DESIGN.md §2): drain every connector's inbox and route each event once.

Why a module of its own: the router is the one place where connector I/O
meets the engine's state. Keeping it apart from the strategy step and the
engine's start/stop sequences makes it plain that no venue event reaches
strategy code except through the trackers it feeds.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from loguru import logger

from mmkit.book.tracker import OrderBookTracker
from mmkit.class_routes import ClassRoutes
from mmkit.clock import Clock
from mmkit.connector import Connector
from mmkit.model import BookDelta, BookSnapshot, ConnectionStatus, MalformedMessage, Trade, VenueEvent

MarketListener = Callable[[VenueEvent], None]


class _Kind(enum.Enum):
    """Where the router sends an event."""

    SNAPSHOT = "snapshot"
    DELTA = "delta"
    TRADE = "trade"
    CONNECTION = "connection"
    MALFORMED = "malformed"
    PRIVATE = "private"  # order events, fills, balances: the venue's UserStreamTracker


#: Looked up once: an enum member read through its class goes through the enum metaclass.
_SNAPSHOT, _DELTA, _TRADE, _CONNECTION, _MALFORMED, _PRIVATE = (
    _Kind.SNAPSHOT, _Kind.DELTA, _Kind.TRADE, _Kind.CONNECTION, _Kind.MALFORMED, _Kind.PRIVATE)


class OrderEventSink(Protocol):
    """Where a venue's order events, fills and balances go (a UserStreamTracker, or a hedge executor)."""

    def process(self, events: Iterable[VenueEvent]) -> None: ...


class EventRouter:
    """Drains every connector's inbox in a fixed order and routes each event once.

    Market data goes to the book tracker registered for (venue, symbol) and to
    market listeners (fair-value sources, simulators); order events, fills and
    balances go to the venue's UserStreamTracker; connection changes and
    malformed messages are logged and counted. I/O never reaches strategy code.
    """

    def __init__(self) -> None:
        self._connectors: list[Connector] = []
        self._books: dict[tuple[str, str], OrderBookTracker] = {}
        self._streams: dict[str, OrderEventSink] = {}
        self._market_listeners: list[MarketListener] = []
        self._connection_listeners: list[Callable[[ConnectionStatus], None]] = []
        self._event_counts: Counter[type] = Counter()
        #: Each event's route, by its class (mmkit.class_routes: the isinstance checks once per class).
        self._routes: ClassRoutes[_Kind] = ClassRoutes(
            [(BookSnapshot, _SNAPSHOT), (BookDelta, _DELTA), (Trade, _TRADE), (ConnectionStatus, _CONNECTION),
             (MalformedMessage, _MALFORMED)],
            _PRIVATE,
        )
        self._kinds = self._routes.memo
        self.malformed = 0

    @property
    def events(self) -> Counter[str]:
        """Events routed so far, by type name (counted by type on the hot path)."""
        return Counter({kind.__name__: count for kind, count in self._event_counts.items()})

    def add_connector(self, connector: Connector, stream: OrderEventSink | None = None) -> None:
        self._connectors.append(connector)
        if stream is not None:
            self._streams[connector.venue] = stream

    def add_book(self, tracker: OrderBookTracker) -> None:
        self._books[(tracker.venue, tracker.symbol)] = tracker

    def add_market_listener(self, listener: MarketListener) -> None:
        self._market_listeners.append(listener)

    def add_connection_listener(self, listener: Callable[[ConnectionStatus], None]) -> None:
        self._connection_listeners.append(listener)

    def start(self, clock: Clock, ts_ns: int) -> None:
        return None

    def stop(self, clock: Clock) -> None:
        return None

    def tick(self, ts_ns: int) -> None:
        for connector in self._connectors:
            events = connector.drain()
            if events:
                self.route(connector.venue, events)

    def route(self, venue: str, events: Sequence[VenueEvent]) -> None:
        counts = self._event_counts
        kinds = self._kinds
        order_events: list[VenueEvent] = []
        event: Any  # its kind (from the isinstance checks of self._routes) says which class it is
        for event in events:
            cls = type(event)
            counts[cls] += 1
            kind = kinds.get(cls)
            if kind is None:
                kind = self._routes.classify(event)
            if kind is _PRIVATE:
                order_events.append(event)
            elif kind is _SNAPSHOT or kind is _DELTA:
                tracker = self._books.get((event.venue, event.symbol))
                if tracker is not None:
                    if kind is _SNAPSHOT:
                        tracker.on_snapshot(event)
                    else:
                        tracker.on_delta(event)
                for listener in self._market_listeners:
                    listener(event)
            elif kind is _TRADE:
                for listener in self._market_listeners:
                    listener(event)
            elif kind is _CONNECTION:
                self._on_connection(event)
            else:
                self.malformed += 1
                logger.bind(venue=event.venue).warning("malformed message ({}): {:.200}", event.error, event.raw)
        if order_events:
            stream = self._streams.get(venue)
            if stream is None:
                logger.bind(venue=venue).warning("{} order events from a venue we do not trade on", len(order_events))
            else:
                # Every event private (a venue's usual batch): hand over the batch itself, not a copy of it.
                stream.process(events if len(order_events) == len(events) else order_events)

    def _on_connection(self, event: ConnectionStatus) -> None:
        log = logger.bind(venue=event.venue, session=event.session)
        if event.connected:
            log.info("session up: {}", event.reason)
        else:
            log.warning("session down: {}", event.reason)
        for conn_listener in self._connection_listeners:
            conn_listener(event)
