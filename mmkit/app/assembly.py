"""Put one engine together from its parts.

``assemble`` is the single place where trackers, executor, risk and the
controller runner are wired, used alike by ``mmkit start`` (from a config),
backtests, the demo and the :mod:`mmkit.testing` harness, so that what a
strategy author tests is what runs live.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
from loguru import logger

from mmkit.app.engine import Engine
from mmkit.app.event_router import EventRouter
from mmkit.app.fair_value_source import BookMidFairValue, FairValueSource
from mmkit.app.strategy_runner import StrategyRunner
from mmkit.book.tracker import OrderBookTracker
from mmkit.clock import Clock, ClockMode
from mmkit.connector import Connector, quoting_guard
from mmkit.execution.circuit_breaker import CircuitBreaker
from mmkit.execution.executor import Executor
from mmkit.execution.rate_limiter import RateLimiter
from mmkit.instrument import Instrument
from mmkit.model import NS_PER_S, OrderCancelRejected, OrderRejected, RejectReason, VenueEvent
from mmkit.orders.ids import ClientIdGenerator, Sequencer
from mmkit.orders.tracker import ClientOrderTracker
from mmkit.risk.inventory import InventoryConfig, InventoryManager
from mmkit.risk.kill_switch import KillSwitch, KillSwitchConfig
from mmkit.risk.pnl import PnLConfig, PnLTracker
from mmkit.strategy import Controller
from mmkit.stream import UserStreamTracker


def book_tracker_for(connector: Connector, instrument: Instrument) -> OrderBookTracker:
    """A book tracker whose resync re-subscribes (the connector answers with a fresh snapshot)."""
    tick, lot = instrument.finest_increments()

    resync_request = getattr(connector, "request_resync", None)

    def resync(reason: str) -> None:
        logger.bind(venue=connector.venue, symbol=instrument.symbol).warning("book resync: {}", reason)
        if callable(resync_request):  # connectors that can re-request a snapshot (TrueX MD)
            resync_request(instrument.symbol)
        else:  # re-subscribing makes the others send a fresh snapshot
            connector.subscribe_book(instrument.symbol)

    return OrderBookTracker(connector.venue, instrument.symbol, tick, lot, request_resync=resync)


#: The events :func:`_counts_as_reject` may count.
_REJECTS = (OrderRejected, OrderCancelRejected)


def _counts_as_reject(event: VenueEvent) -> bool:
    """Rejects that say something is wrong with what we send (for the kill switch's reject limit).

    Not counted: orders refused locally because the session is down (they never left), and a
    cancel/replace refused because the order had just filled or gone (a race, not a fault).
    """
    if isinstance(event, OrderRejected):
        return event.reason is not RejectReason.NOT_CONNECTED
    if isinstance(event, OrderCancelRejected):
        return event.reason not in (RejectReason.UNKNOWN_ORDER, RejectReason.NOT_CONNECTED)
    return False


@attrs.frozen
class RiskSettings:
    inventory: InventoryConfig = attrs.Factory(InventoryConfig)
    kill_switch: KillSwitchConfig | None = attrs.Factory(KillSwitchConfig)
    pnl: PnLConfig = attrs.Factory(PnLConfig)


def assemble(
    clock: Clock,
    venue: Connector,
    symbol: str,
    controller: Controller,
    *,
    fair_source: FairValueSource | None = None,
    risk: RiskSettings | None = None,
    feeds: Sequence[Connector] = (),
    feed_books: Sequence[OrderBookTracker] = (),
    pre_iterators: Sequence[tuple[str, object]] = (),
    post_iterators: Sequence[tuple[str, object]] = (),
    client_id_prefix: str = "mm",
    staleness_ns: int = 2 * NS_PER_S,
) -> Engine:
    """Wire one controller quoting ``symbol`` on ``venue`` into ``clock``.

    With no ``fair_source`` the controller prices off the quoting venue's own
    book mid (confidence 0 while that book is invalid or stale).
    """
    risk = risk or RiskSettings()
    instrument = venue.rules.instrument(symbol)
    # Live ids must be unique across restarts (wall clock); backtest ids must repeat run to run (sim clock).
    sequencer = Sequencer(lambda: clock.now_ns) if clock.mode is ClockMode.BACKTEST else None
    orders = ClientOrderTracker(venue, id_generator=ClientIdGenerator(prefix=client_id_prefix, sequencer=sequencer))
    stream = UserStreamTracker(orders)
    router = EventRouter()
    router.add_connector(venue, stream)
    for feed in feeds:
        router.add_connector(feed)
    venue_book = book_tracker_for(venue, instrument)
    router.add_book(venue_book)
    for tracker in feed_books:
        router.add_book(tracker)
    if fair_source is None:
        mid_source = BookMidFairValue(venue_book, staleness_ns)

        def touch_on_venue_data(event: VenueEvent) -> None:
            if event.venue == venue.venue:
                mid_source.touch(clock.now_ns)

        router.add_market_listener(touch_on_venue_data)
        fair_source = mid_source

    limiter = RateLimiter.from_rules(venue.rules)
    breaker = CircuitBreaker(max_failures=10, window_ns=10 * NS_PER_S, cooldown_ns=5 * NS_PER_S)
    executor = Executor(venue, orders, instrument, venue.rules, limiter, breaker=breaker)
    inventory = InventoryManager(risk.inventory, symbol_base=instrument.base)
    executor.position_limit = inventory  # the worst case of resting orders stays within max_position
    pnl = PnLTracker(risk.pnl.for_instrument(instrument))  # linear or inverse: the ledger's unit
    kill_switch = KillSwitch(risk.kill_switch, pnl.settlement) if risk.kill_switch is not None else None

    def on_order_event(event: VenueEvent) -> None:
        executor.on_event(event)
        # The class test first, inline: every ack and cancel comes here and none of them is a reject.
        if kill_switch is not None and isinstance(event, _REJECTS) and _counts_as_reject(event):
            kill_switch.on_reject(event.ts_recv or clock.now_ns)

    stream.add_order_listener(on_order_event)
    runner = StrategyRunner(
        controller, instrument, executor, orders, fair_source, inventory, pnl, kill_switch, book=venue_book
    )
    guard = quoting_guard(venue)
    if guard is not None:  # the venue's own protection of resting quotes (a dead man's switch) must hold
        runner.add_gate(lambda _ts_ns: guard(), f"venue {venue.venue}")
    return Engine(
        clock,
        venue,
        symbol,
        router,
        orders,
        stream,
        runner,
        inventory,
        pnl,
        feeds=feeds,
        extra_iterators=pre_iterators,
        post_iterators=post_iterators,
    )
