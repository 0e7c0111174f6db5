"""One engine: the iterators of a tick, wired in DESIGN.md's order, and its lifecycle.

The Engine owns no trading logic of its own. It composes the parts (trackers,
controller runner, executor, risk, hedge, recorder) into the fixed tick order
and runs the start sequence (connect → sync state → quote) and the stop
sequence (pull quotes → cancel all → confirm nothing is open → report). The
same Engine runs REALTIME and BACKTEST; only the clock and the connectors
differ.

The iterators it wires live in modules of their own, one job each: the
EventRouter (mmkit.app.event_router), the StrategyRunner
(mmkit.app.strategy_runner) and the fair-value sources it reads
(mmkit.app.fair_value_source).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal

from loguru import logger

from mmkit.app.event_router import EventRouter
from mmkit.app.outcome import ProblemKind, RunOutcome
from mmkit.app.strategy_runner import StrategyRunner
from mmkit.clock import Clock, ClockMode
from mmkit.connector import Connector, TransientVenueError
from mmkit.model import ZERO, Fill
from mmkit.orders.tracker import ClientOrderTracker
from mmkit.orders.validation import LedgerAlarm
from mmkit.risk.inventory import InventoryManager
from mmkit.risk.pnl import PnLTracker
from mmkit.stream import UserStreamTracker

#: Back-off of a reference source that was down at start: first retry after this long, doubling up to the max (s).
FEED_RETRY_FIRST_S = 1.0
FEED_RETRY_MAX_S = 30.0


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class EngineStartError(Exception):
    """The engine refused to start quoting (e.g. reconciliation with the venue failed)."""


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

        Returns the client ids the venue still lists as open (empty = clean). Once the market claim is lost
        (``orders.venue_wide_cancel`` off), "everything" is our own orders: no cancel-all on the symbol, and
        the venue's other orders on it are another instance's, not ours left open.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        remaining: list[str] = []
        venue_wide = self.orders.venue_wide_cancel  # off when the market may be another instance's now
        while True:
            self.pull_quotes()
            if venue_wide:
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
                remaining = [r.client_id for r in venue_open if venue_wide or self.orders.get(r.client_id) is not None]
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
            clock.tick_until(end_ns)
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

