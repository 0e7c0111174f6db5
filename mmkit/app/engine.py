"""One engine: the iterators of a tick, wired in DESIGN.md's order, and its lifecycle.

The Engine owns no trading logic of its own. It composes the parts (trackers,
controller runner, executor, risk, hedge, recorder) into the fixed tick order
and runs the start sequence (connect → sync state → quote) and the stop
sequence (pull quotes → cancel all → confirm nothing is open → report). The
same Engine runs REALTIME and BACKTEST; only the clock and the connectors
differ.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from decimal import Decimal
from time import perf_counter_ns
from typing import Protocol

import attrs
from loguru import logger

from mmkit.app import logs
from mmkit.app.outcome import ProblemKind, RunOutcome
from mmkit.book.tracker import OrderBookTracker
from mmkit.clock import Clock, ClockMode
from mmkit.connector import Connector, TransientVenueError
from mmkit.execution.executor import Executor
from mmkit.model import (
    ZERO,
    BookDelta,
    BookSnapshot,
    ConnectionStatus,
    FairValue,
    Fill,
    Instrument,
    MalformedMessage,
    Side,
    TargetQuote,
    Trade,
    VenueEvent,
)
from mmkit.orders.tracker import ClientOrderTracker
from mmkit.orders.validation import LedgerAlarm
from mmkit.risk.inventory import InventoryManager
from mmkit.risk.kill_switch import KillSwitch
from mmkit.risk.pnl import PnLTracker
from mmkit.strategy import Controller, QuoteMode, StrategyContext
from mmkit.stream import UserStreamTracker

#: Enum members looked up once: ``Side.BUY`` goes through the enum metaclass, and the gate runs every tick.
_BUY, _SELL, _STOP = Side.BUY, Side.SELL, QuoteMode.STOP
#: Back-off of a reference source that was down at start: first retry after this long, doubling up to the max (s).
FEED_RETRY_FIRST_S = 1.0
FEED_RETRY_MAX_S = 30.0


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class EngineStartError(Exception):
    """The engine refused to start quoting (e.g. reconciliation with the venue failed)."""


class FairValueSource(Protocol):
    """Where the controller's fair price comes from (aggregator, a book's mid, a replay)."""

    def fair(self, now_ns: int) -> FairValue: ...


class BookMidFairValue:
    """Fair value = mid of one tracked book; confidence 1 while valid and fresh, else 0."""

    def __init__(self, tracker: OrderBookTracker, staleness_ns: int) -> None:
        self.tracker = tracker
        self.staleness_ns = staleness_ns
        self.last_update_ns = 0

    def touch(self, ts_ns: int) -> None:
        self.last_update_ns = ts_ns

    def fair(self, now_ns: int) -> FairValue:
        if not self.tracker.is_valid:
            return FairValue(None, 0.0, now_ns)
        mid = self.tracker.book.mid()
        fresh = now_ns - self.last_update_ns <= self.staleness_ns
        return FairValue(mid, 1.0 if (mid is not None and fresh) else 0.0, self.last_update_ns, sources=1)


# --------------------------------------------------------------------------
# Step 1-2: drain connectors and route their events
# --------------------------------------------------------------------------

MarketListener = Callable[[VenueEvent], None]


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
        order_events: list[VenueEvent] = []
        for event in events:
            self._event_counts[type(event)] += 1
            if isinstance(event, BookSnapshot | BookDelta):
                tracker = self._books.get((event.venue, event.symbol))
                if tracker is not None:
                    if isinstance(event, BookSnapshot):
                        tracker.on_snapshot(event)
                    else:
                        tracker.on_delta(event)
                for listener in self._market_listeners:
                    listener(event)
            elif isinstance(event, Trade):
                for listener in self._market_listeners:
                    listener(event)
            elif isinstance(event, ConnectionStatus):
                log = logger.bind(venue=event.venue, session=event.session)
                if event.connected:
                    log.info("session up: {}", event.reason)
                else:
                    log.warning("session down: {}", event.reason)
                for conn_listener in self._connection_listeners:
                    conn_listener(event)
            elif isinstance(event, MalformedMessage):
                self.malformed += 1
                logger.bind(venue=event.venue).warning("malformed message ({}): {:.200}", event.error, event.raw)
            else:
                order_events.append(event)
        if order_events:
            stream = self._streams.get(venue)
            if stream is None:
                logger.bind(venue=venue).warning("{} order events from a venue we do not trade on", len(order_events))
            else:
                stream.process(order_events)


# --------------------------------------------------------------------------
# Steps 4-6: fair value, risk, controller, executor
# --------------------------------------------------------------------------


@attrs.define
class RunnerStats:
    ticks: int = 0
    quoting_ticks: int = 0
    halted_ticks: int = 0
    disconnected_ticks: int = 0
    #: Every exception a controller raised (on_start, on_tick, on_fill, on_stop) and every bad on_tick result.
    controller_errors: int = 0
    #: Failed on_tick calls in a row; a good tick resets it. At the runner's limit quoting halts for good.
    consecutive_errors: int = 0
    last_targets: tuple[TargetQuote, ...] = ()
    #: The last strategy step's wall time and the actions it sent (read by the console's metrics).
    last_decision_ns: int = 0
    last_actions: Sequence[object] = ()


#: Consecutive failed ticks after which the engine pulls quotes and halts (``engine.controller_max_failures``).
DEFAULT_MAX_CONSECUTIVE_FAILURES = 10


class ControllerResultError(TypeError):
    """``on_tick`` returned something that is not a sequence of TargetQuote (checked where it comes back)."""


def checked_targets(controller: Controller, result: object) -> Sequence[TargetQuote]:
    """``result`` if it is a list or tuple of :class:`TargetQuote`; else an error naming the class and what it got.

    Checked here, where the value comes back, so that a wrong return counts as a controller
    failure (not as an anonymous failure of a later iterator), and the message says whose it is.
    """
    name = type(controller).__name__
    if not isinstance(result, list | tuple):
        raise ControllerResultError(
            f"{name}.on_tick must return a list of TargetQuote, got {_describe(result)}"
        )
    for index, item in enumerate(result):
        if not isinstance(item, TargetQuote):
            raise ControllerResultError(
                f"{name}.on_tick must return a list of TargetQuote, got {_describe(item)} at index {index}"
            )
    return result


def _describe(value: object) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60] + '...' if len(text) > 60 else text}"


class StrategyRunner:
    """Builds the controller's context, asks for targets, applies risk gates, hands them to the executor.

    Risk gates sit here, between the controller and the executor, so no
    controller can bypass them: a tripped kill switch or an emergency
    position turns any targets into "nothing resting", and inventory STOP
    removes the accumulating side.

    A broken controller must not look like a working one (DESIGN.md §3b):
    every exception it raises and every malformed ``on_tick`` result is
    counted and recorded on the run's outcome as an engine failure (exit
    code 4); after ``max_consecutive_failures`` failed ticks in a row the
    runner pulls the quotes and halts quoting for the rest of the run, with
    the reason in the status block and the report. Failures of the other
    iterators (counted by the clock) are recorded on the outcome at stop.
    """

    def __init__(
        self,
        controller: Controller,
        instrument: Instrument,
        executor: Executor,
        orders: ClientOrderTracker,
        fair_source: FairValueSource,
        inventory: InventoryManager,
        pnl: PnLTracker,
        kill_switch: KillSwitch | None = None,
        book: OrderBookTracker | None = None,
    ) -> None:
        self.controller = controller
        self.instrument = instrument
        self.executor = executor
        self.orders = orders
        self.fair_source = fair_source
        self.inventory = inventory
        self.pnl = pnl
        self.kill_switch = kill_switch
        self.book = book
        self.stats = RunnerStats()
        self.quoting_enabled = True
        #: Checked first every tick, before the controller and the executor act; a returned reason halts
        #: quoting this tick. The write-ahead journal's fsync runs here (mmkit.app.persistence).
        self.gates: list[Callable[[int], str | None]] = []
        self.last_fair = FairValue(None, 0.0, 0)
        self.max_consecutive_failures = DEFAULT_MAX_CONSECUTIVE_FAILURES
        #: Set when the controller failed too often: quoting stays off for the rest of the run.
        self.failure_halt: str | None = None
        #: The run's outcome (the Engine hands its own over); problems found here make the exit code non-zero.
        self.outcome = RunOutcome()
        #: The last controller exception, kept for callers that want it raised (the test Harness).
        self.last_error: BaseException | None = None
        self._started = False
        self._log = logger.bind(strategy=controller.name, venue=instrument.venue, symbol=instrument.symbol)
        reads = controller.reads
        unknown = set(reads) - {"book", "time"}
        if unknown:
            raise ValueError(f"{controller.name}.reads names unknown inputs {sorted(unknown)} (book, time)")
        #: Skipping on_tick when its inputs did not change is impossible for a controller that reads time.
        self._memo_ticks = "time" not in reads
        self._reads_book = "book" in reads
        #: The inputs of the last good on_tick and its (checked) answer; None: ask again next tick.
        self._last_inputs: tuple[object, ...] | None = None
        self._last_answer: tuple[TargetQuote, ...] = ()
        #: on_tick calls saved because nothing it reads had changed (for tests and the bench).
        self.skipped_ticks = 0

    def context(self, now_ns: int, fair: FairValue, halted: bool) -> StrategyContext:
        book = self.book.book if (self.book is not None and self.book.is_valid) else None
        return StrategyContext(
            now_ns=now_ns,
            instrument=self.instrument,
            book=book,
            fair=fair,
            position=self.inventory.position,
            inventory=self.inventory,
            open_orders=self.orders.open_orders_view(self.instrument.symbol),
            halted=halted,
        )

    def halted_reason(self, now_ns: int, fair: FairValue) -> str | None:
        if self.failure_halt is not None:
            return self.failure_halt
        if not self.quoting_enabled:
            return "quoting disabled"
        emergency = self.inventory.emergency()
        if self.kill_switch is not None and self.kill_switch.evaluate(now_ns, fair, self.pnl.total(), emergency):
            return f"kill switch: {self.kill_switch.reason}"
        if emergency:
            return f"emergency position {self.inventory.position}"
        return None

    def start(self, clock: Clock, ts_ns: int) -> None:
        if clock.mode is ClockMode.BACKTEST:
            logs.use_simulated_time(lambda: clock.now_ns)  # log lines of a backtest carry simulated time
        fair = self.fair_source.fair(ts_ns)
        try:
            self.controller.on_start(self.context(ts_ns, fair, halted=False))
        except Exception as exc:
            self._controller_failed("on_start", exc, ts_ns)
        self._started = True

    def stop(self, clock: Clock) -> None:
        if self._started:
            try:
                self.controller.on_stop(self.context(clock.now_ns, self.last_fair, halted=True))
            except Exception as exc:
                self._controller_failed("on_stop", exc, clock.now_ns)
            self._started = False
        for label, count in clock.iterator_errors.items():
            self.outcome.record(ProblemKind.ENGINE_FAILURE, f"iterator {label} failed ({count} times)", clock.now_ns)
        if clock.mode is ClockMode.BACKTEST:
            logs.use_simulated_time(None)

    def on_fill(self, fill: Fill) -> None:
        """Hands a fill to the controller; an exception is counted like any other controller failure."""
        self._last_inputs = None  # the controller heard something: ask it again
        try:
            self.controller.on_fill(fill)
        except Exception as exc:
            self._controller_failed("on_fill", exc, fill.ts_recv)

    def tick(self, ts_ns: int) -> None:
        self.stats.ticks += 1
        gated = None
        for gate in self.gates:  # every gate runs (each may have work to do, e.g. an fsync)
            why = gate(ts_ns)
            if gated is None:
                gated = why
        if not self.executor.connector.connected:
            # Nothing can be sent; the venue pulls our quotes where it supports it, and the order
            # tracker re-syncs on reconnect. Acting now would only produce NOT_CONNECTED rejects.
            self.stats.disconnected_ticks += 1
            return
        began = perf_counter_ns()
        fair = self.fair_source.fair(ts_ns)
        self.last_fair = fair
        if fair.price is not None:
            self.pnl.mark(fair.price, ts_ns)
        reason = gated or self.halted_reason(ts_ns, fair)
        targets: Sequence[TargetQuote] = ()
        if reason is None:
            inputs = self._inputs(fair)
            last = self._last_inputs
            # Prices by identity (an equal Decimal of another exponent could change the answer's
            # digits), the rest by value.
            if (
                inputs is not None and last is not None and inputs[0] is last[0] and inputs[1] is last[1]
                and inputs[2:] == last[2:]
            ):
                self.skipped_ticks += 1
                targets = self._last_answer  # already through the inventory gate (same position)
            else:
                self._last_inputs = None
                try:
                    targets = checked_targets(
                        self.controller, self.controller.on_tick(self.context(ts_ns, fair, False)))
                except Exception as exc:
                    self.stats.consecutive_errors += 1
                    self._controller_failed("on_tick", exc, ts_ns)
                    targets = ()
                else:
                    self.stats.consecutive_errors = 0
                    # The gate reads the inventory's quote modes, a function of the position (in the key).
                    self._last_answer = targets = tuple(self._apply_inventory_gate(targets))
                    self._last_inputs = inputs
            self.stats.quoting_ticks += 1
        else:
            self.stats.halted_ticks += 1
        self.stats.last_targets = targets if type(targets) is tuple else tuple(targets)
        self.stats.last_actions = self.executor.reconcile(targets, ts_ns, fair.price)
        self.stats.last_decision_ns = perf_counter_ns() - began

    def _inputs(self, fair: FairValue) -> tuple[object, ...] | None:
        """Everything ``on_tick`` may read this tick, as values; None when it reads time (never skipped).

        The fair value is its price, confidence and source count; its ``ts`` (when the source last
        moved) is time, which a controller that reads it declares.

        The open orders are the order tracker's version (bumped by every change to our orders); the
        book, for a controller that reads it, is its validity, sequence number and venue time. A fill
        resets the memo in :meth:`on_fill` (the controller may keep state of its own).
        """
        if not self._memo_ticks:
            return None
        book: object = None
        if self._reads_book and self.book is not None:
            book = (self.book.is_valid, self.book.book.seq, self.book.book.ts_event)
        return (fair.price, self.inventory.position, fair.confidence, fair.sources, self.orders.version, book)

    def _controller_failed(self, where: str, exc: Exception, ts_ns: int) -> None:
        """Count, record and log (the log sink folds repeats into one line with a count)."""
        self.stats.controller_errors += 1
        self.last_error = exc
        name = self.controller.name
        reason = f"controller {name}.{where} failed: {type(exc).__name__}"
        self.outcome.record(ProblemKind.ENGINE_FAILURE, reason, ts_ns)
        self._log.opt(exception=exc).error("controller {}.{} failed; no quotes this tick", name, where)
        limit = self.max_consecutive_failures
        if self.failure_halt is None and limit > 0 and self.stats.consecutive_errors >= limit:
            self.failure_halt = f"controller {name} failed {limit} ticks in a row ({type(exc).__name__}: {exc})"
            self.outcome.record(ProblemKind.ENGINE_FAILURE, f"quoting halted: {self.failure_halt}", ts_ns)
            self._log.error("quoting halted: {}; pulling quotes", self.failure_halt)
            self.executor.cancel_all(ts_ns)

    def take_error(self) -> BaseException | None:
        """The last controller exception since the previous call (the Harness re-raises it)."""
        error, self.last_error = self.last_error, None
        return error

    def _apply_inventory_gate(self, targets: Sequence[TargetQuote]) -> Sequence[TargetQuote]:
        stop_bids = self.inventory.quote_mode(_BUY) is _STOP
        stop_asks = self.inventory.quote_mode(_SELL) is _STOP
        if not (stop_bids or stop_asks):
            return targets
        return [t for t in targets if not (stop_bids if t.side is _BUY else stop_asks)]


# --------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------


class Engine:
    """A clock with its iterators, the connectors it owns and the start/stop sequences."""

    def __init__(
        self,
        clock: Clock,
        venue: Connector,
        symbol: str,
        router: EventRouter,
        orders: ClientOrderTracker,
        stream: UserStreamTracker,
        runner: StrategyRunner,
        inventory: InventoryManager,
        pnl: PnLTracker,
        *,
        feeds: Sequence[Connector] = (),
        extra_iterators: Sequence[tuple[str, object]] = (),
        post_iterators: Sequence[tuple[str, object]] = (),
    ) -> None:
        self.clock = clock
        self.venue = venue
        self.symbol = symbol
        self.router = router
        self.orders = orders
        self.stream = stream
        self.runner = runner
        self.inventory = inventory
        self.pnl = pnl
        self.feeds = list(feeds)
        #: Symbols whose books each feed must subscribe at start (reference prices, hedge touch).
        self.feed_symbols: dict[str, list[str]] = {}
        #: Feeds the engine must not start without (the hedge venue); any other feed that cannot be
        #: reached at start is left out with a warning (a reference source: lower confidence).
        self.required_feeds: list[Connector] = []
        self.fills: list[Fill] = []
        #: What went wrong in this run and decides its exit code (mmkit.app.outcome): every part
        #: that must make the run end non-zero records here, through the app layer's wiring.
        self.outcome = RunOutcome()
        runner.outcome = self.outcome  # controller and iterator failures decide the exit code too
        #: Async steps run by :meth:`start` after the venue connects and before the open-order
        #: reconciliation (restart recovery: restore the ledger, reconcile with the venue). One that
        #: raises EngineStartError keeps the engine from quoting.
        self.start_hooks: list[Callable[[], Awaitable[None]]] = []
        #: Called once by the lifecycle when the run ends, cleanly or not (flush the recorder...).
        self.closers: list[Callable[[], object]] = [self._cancel_feed_retries]
        #: Reference sources down at start being retried in the background (see :meth:`_retry_feed`).
        self._feed_retries: list[asyncio.Task[None]] = []
        stream.add_fill_listener(self._on_fill)
        # Fill validation (issue 11): the stream checks fills against the fair price and raises ledger alarms.
        stream.fair_price = lambda: self.runner.last_fair.price
        stream.add_alarm_listener(self._on_ledger_alarm)
        # The fixed tick order of DESIGN.md §2.
        for name, iterator in extra_iterators:  # drivers that feed connectors (replay, simulators)
            clock.add_iterator(iterator, name=name)  # type: ignore[arg-type]
        clock.add_iterator(router, name="router")
        clock.add_iterator(orders, name="orders")
        clock.add_iterator(runner, name="strategy")
        for name, iterator in post_iterators:  # hedge, recorder, status
            clock.add_iterator(iterator, name=name)  # type: ignore[arg-type]

    def add_feed(self, connector: Connector, symbols: Sequence[str] = ()) -> None:
        """A connector the engine connects before the venue and disconnects at stop."""
        if connector not in self.feeds:
            self.feeds.append(connector)
        self.feed_symbols.setdefault(connector.venue, []).extend(symbols)

    def on_hedge_fill(self, fill: Fill) -> None:
        """Hedge fills move inventory and PnL (in the hedge book) like any other fill."""
        self.fills.append(fill)
        self.inventory.on_fill(fill)
        self.pnl.on_fill(fill, None)

    def _on_ledger_alarm(self, alarm: LedgerAlarm) -> None:
        """The ledger is in doubt: halt quoting (sticky) and make the run exit 5 with the reason."""
        self.outcome.record(ProblemKind.LEDGER_HALT, alarm.reason, alarm.ts_ns or self.clock.now_ns)
        kill_switch = self.runner.kill_switch
        if kill_switch is not None:
            kill_switch.halt_ledger(alarm.ts_ns or self.clock.now_ns, alarm.reason)
        else:
            self.runner.quoting_enabled = False  # no switch configured: still never quote on a doubted ledger

    def _on_fill(self, fill: Fill) -> None:
        self.fills.append(fill)
        self.inventory.on_fill(fill)
        self.pnl.on_fill(fill, self.runner.last_fair.price)
        self.runner.on_fill(fill)

    # -- start ------------------------------------------------------------

    async def start(self) -> None:
        """Connect feeds, connect the venue, reconcile open orders; refuse to quote if that fails."""
        for feed in self.feeds:
            try:
                await feed.connect()
            except Exception as exc:  # degrade: quote on the other sources, with lower confidence
                if feed in self.required_feeds:
                    raise EngineStartError(f"cannot connect to {feed.venue}: {_first_line(exc)}") from exc
                logger.bind(venue=feed.venue).warning(
                    "{} unreachable at start ({}): starting without it", feed.venue, _first_line(exc))
                self._retry_feed(feed)
                continue
            for symbol in self.feed_symbols.get(feed.venue, ()):
                feed.subscribe_book(symbol)
        try:
            await self.venue.connect()
        except Exception as exc:  # the quoting venue is the one part we cannot do without
            raise EngineStartError(
                f"cannot connect to the quoting venue {self.venue.venue}: {_first_line(exc)}") from exc
        self.venue.subscribe_book(self.symbol)
        self.venue.subscribe_trades(self.symbol)
        for hook in self.start_hooks:
            await hook()
        await self.sync_state()

    def _retry_feed(self, feed: Connector) -> None:
        """Keep trying a reference source that was down at start, as one that drops at run time reconnects.

        Why: a source that was unreachable for the first second would otherwise be
        gone for the whole run, and the fair value would rest on fewer venues than
        configured with nothing to say so. Retries back off to ``FEED_RETRY_MAX_S``;
        the task ends once connected (its books are subscribed then) and is
        cancelled when the run ends.
        """

        async def retry() -> None:
            delay = FEED_RETRY_FIRST_S
            while True:
                await asyncio.sleep(delay)
                try:
                    await feed.connect()
                except Exception as exc:
                    logger.bind(venue=feed.venue).debug("{} still unreachable: {}", feed.venue, _first_line(exc))
                    delay = min(delay * 2, FEED_RETRY_MAX_S)
                    continue
                for symbol in self.feed_symbols.get(feed.venue, ()):
                    feed.subscribe_book(symbol)
                logger.bind(venue=feed.venue).info("{} reachable again: its prices count from now", feed.venue)
                return

        task = asyncio.get_running_loop().create_task(retry(), name=f"retry {feed.venue}")
        self._feed_retries.append(task)

    def _cancel_feed_retries(self) -> None:
        for task in self._feed_retries:
            task.cancel()
        self._feed_retries.clear()

    async def sync_state(self) -> None:
        try:
            reports = await self.venue.fetch_open_orders(self.symbol)
        except TransientVenueError as exc:
            raise EngineStartError(f"cannot list open orders on {self.venue.venue}: {exc}") from exc
        result = self.orders.reconcile(reports, self.clock.now_ns, symbol=self.symbol)
        logger.bind(venue=self.venue.venue).info("start-up reconciliation: {}", result)

    # -- stop -------------------------------------------------------------

    def pull_quotes(self) -> None:
        self.runner.quoting_enabled = False
        self.runner.executor.cancel_all(self.clock.now_ns)

    def open_order_count(self) -> int:
        return len(self.orders.open_orders_view(self.symbol))

    async def confirm_flat_book(self, timeout_s: float = 10.0) -> list[str]:
        """Cancel everything and wait until both we and the venue agree nothing is open.

        Returns the client ids the venue still lists as open (empty = clean).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        remaining: list[str] = []
        while True:
            self.pull_quotes()
            self.venue.cancel_all(self.symbol)
            await asyncio.sleep(0.05)
            self.router.tick(self.clock.now_ns)
            self.orders.tick(self.clock.now_ns)
            try:
                venue_open = await self.venue.fetch_open_orders(self.symbol)
            except TransientVenueError as exc:
                logger.warning("could not list open orders while stopping: {}", exc)
                venue_open = None
            if venue_open is not None:
                remaining = [r.client_id for r in venue_open]
                if not remaining and self.open_order_count() == 0:
                    return []
            if loop.time() >= deadline:
                return remaining or [o.client_id for o in self.orders.open_orders(self.symbol)]

    async def run_backtest(self, end_ns: int, settle_ticks: int = 100) -> int:
        """BACKTEST: start, tick simulated time to ``end_ns``, then pull quotes and keep ticking
        until every cancel is confirmed (or ``settle_ticks`` run out). Returns the orders still open."""
        assert self.clock.mode is ClockMode.BACKTEST
        await self.start()
        clock = self.clock
        clock.start()
        try:
            while not clock.stop_requested and clock.now_ns + clock.tick_ns <= end_ns:
                clock.tick_once(clock.now_ns + clock.tick_ns)
            self.pull_quotes()
            for _ in range(settle_ticks):
                if self.open_order_count() == 0:
                    break
                clock.tick_once(clock.now_ns + clock.tick_ns)
        finally:
            clock.stop()
        return self.open_order_count()

    @property
    def position(self) -> Decimal:
        return self.inventory.position

    def fill_position(self) -> Decimal:
        """Position recomputed from the fills seen, for cross-checks."""
        return sum((f.qty * f.side.sign for f in self.fills), ZERO)

