"""Prometheus metrics of a running instance: collected on the tick, served from a thread.

Why this split: the tick must never wait on a scrape. The engine's state is
copied into ``prometheus_client`` metrics by :class:`MetricsCollector`, a
post-iterator of the clock: histograms (decision latency, price move to
order sent) are observed on every tick from values the engine already
computed; gauges and monotonic counters are refreshed every
``interval_ms`` (a few dozen attribute reads and lock-protected sets, no
I/O). Order events (acks, rejects by reason) arrive through the user
stream's order listener. The HTTP endpoint is ``prometheus_client``'s own
server on its own thread: a scrape renders under the metrics' locks and
never runs on the engine's loop.

Names follow the Prometheus conventions: ``mmkit_`` prefix, base units
(seconds; quantities in the instrument's base asset, money in its quote
currency, named in the ``_base``/``_quote`` suffix), ``_total`` for
counters. Every series carries ``instance`` (the engine's name) so several
instances can be scraped into one Prometheus. docs/operations.md lists them
all; docs/grafana-mmkit.json is a dashboard built on them.

Units of an inverse contract (Binance COIN-M, :mod:`mmkit.risk.settlement`):
its ledger is in the base coin and its sizes in contracts, yet a series
named ``_quote`` or ``_base`` must hold what its name says, or an alert
written in USD compares a BTC figure and never fires. So ``mmkit_pnl_quote``
is the coin PnL converted at the PnL's mark (``PnLTracker.to_quote``) and
NaN while there is no mark (a recovered ledger before the first price: no
made-up number; NaN fails every comparison, so no threshold alert fires on
it). ``mmkit_pnl_settlement{unit}`` keeps the ledger's own figures (BTC),
``_base`` sizes are coins (a fill's at its price, the position's at the
mark), ``_quote`` volume is ``contracts · contract_size``, and the raw
contract counts get ``_contracts`` series (inverse contracts only).
Linear instruments publish what they always did.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from loguru import logger
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from mmkit.clock import Clock
from mmkit.model import (
    NS_PER_MS,
    NS_PER_S,
    Fill,
    OrderAccepted,
    OrderCancelRejected,
    OrderRejected,
    OrderReplaced,
    VenueEvent,
)
from mmkit.orders.states import OrderState

#: Decision path: well under a millisecond when healthy (bench/bench_decision.py: p99 < 1 ms).
DECISION_BUCKETS = (25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 0.1)
#: Network round trips and reaction times: milliseconds to seconds.
LATENCY_BUCKETS = (1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: PnL components, in the order the console shows them.
PNL_COMPONENTS = ("realized", "unrealized", "fees", "total")


class Metrics:
    """Every metric of one instance, in its own registry (so tests and several engines never clash)."""

    def __init__(self, instance: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.instance = instance
        r, i = self.registry, ["instance"]

        def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
            return Gauge(name, doc, [*i, *labels], registry=r)

        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(name, doc, [*i, *labels], registry=r)

        # Clock
        self.ticks = counter("mmkit_clock_ticks", "Ticks run by the engine's clock.")
        self.missed_ticks = counter("mmkit_clock_missed_ticks", "Whole tick periods that went by without a tick.")
        self.tick_lag = gauge("mmkit_clock_tick_lag_seconds", "How late the last scheduled tick ran.")
        self.tick_duration = gauge("mmkit_clock_tick_duration_seconds", "Wall time spent in the last whole tick.")
        self.iterator_errors = counter("mmkit_clock_iterator_errors", "Iterator failures (logged).", ("iterator",))
        # Decision path
        self.decision = Histogram(
            "mmkit_decision_latency_seconds",
            "Strategy step of a tick: fair value, risk gates, controller, "
            "executor reconcile, up to the orders handed to the connector.",
            i,
            registry=r,
            buckets=DECISION_BUCKETS,
        )
        self.price_to_order = Histogram(
            "mmkit_price_to_order_latency_seconds",
            "From the fair value's last update to the orders it caused "
            "being handed to the connector (ticks where the fair price moved and orders were sent).",
            i,
            registry=r,
            buckets=LATENCY_BUCKETS,
        )
        self.ack = Histogram(
            "mmkit_order_ack_latency_seconds",
            "Order round trip measured by the tracker: from the request "
            "being handed to the connector to the venue's acknowledgement being received.",
            [*i, "venue", "action"],
            registry=r,
            buckets=LATENCY_BUCKETS,
        )
        # Orders
        self.orders = gauge("mmkit_orders", "Our orders at the quoting venue by state.", ("state",))
        self.actions = counter("mmkit_order_actions", "Order actions sent by the executor.", ("action",))
        self.rejects = counter(
            "mmkit_order_rejects", "Venue rejects by what was rejected and the reason.", ("action", "reason")
        )
        self.rate_denials = counter("mmkit_rate_limit_denials", "Actions the rate limiter refused (deferred).")
        self.deferred = counter(
            "mmkit_executor_deferred_actions", "Actions deferred (rate limit, duplicate guard, circuit breaker)."
        )
        # Fills, position, PnL
        self.fills = counter("mmkit_fills", "Fills booked, by side and book (quote or hedge).", ("side", "book"))
        self.volume = counter("mmkit_fill_volume_base", "Filled quantity in the base asset.", ("side", "book"))
        self.volume_quote = counter(
            "mmkit_fill_volume_quote",
            "Filled notional in the quote currency (contracts times contract size for an inverse contract).",
            ("side", "book"),
        )
        self.volume_contracts = counter(
            "mmkit_fill_volume_contracts", "Filled quantity in contracts (inverse contracts only).", ("side", "book")
        )
        self.position = gauge(
            "mmkit_position_base",
            "Net position (quoting and hedge books) in the base asset "
            "(an inverse contract's worth in the coin at the mark, NaN before a mark).",
        )
        self.position_limit = gauge(
            "mmkit_position_limit_base",
            "Inventory limit (max_position) in the base asset (inverse contract: at the mark, NaN before a mark).",
        )
        self.position_contracts = gauge(
            "mmkit_position_contracts", "Net position in contracts (inverse contracts only)."
        )
        self.position_limit_contracts = gauge(
            "mmkit_position_limit_contracts", "Inventory limit (max_position) in contracts (inverse contracts only)."
        )
        self.inventory_utilization = gauge("mmkit_inventory_utilization_ratio", "abs(position) / max_position.")
        self.pnl = gauge(
            "mmkit_pnl_quote",
            "PnL in the quote currency by component (realized, unrealized, fees, total); an inverse contract's "
            "coin PnL converted at the PnL's mark price, NaN until there is one.",
            ("component",),
        )
        self.pnl_settlement = gauge(
            "mmkit_pnl_settlement",
            "PnL in the ledger's settlement currency, named by the unit label (the base coin of an inverse "
            "contract, else the quote currency), by component.",
            ("component", "unit"),
        )
        self.pnl_mark = gauge(
            "mmkit_pnl_mark_price_quote",
            "Mark price of the PnL: unrealized PnL and an inverse contract's conversion to quote (NaN before one).",
        )
        # Risk
        self.kill_halted = gauge("mmkit_kill_switch_halted", "1 while the kill switch holds quoting halted.")
        self.kill_reason = gauge(
            "mmkit_kill_switch_info", "1 for the kill switch's current reason (empty when clear).", ("reason",)
        )
        self.quoting = gauge("mmkit_quoting_enabled", "0 while quoting is paused by an operator or stopping.")
        self.gate_held = gauge(
            "mmkit_quoting_gate_held",
            "1 while this runner gate holds quoting (the venue's guard, the market claim, the journal).",
            ("gate",),
        )
        self.connected = gauge("mmkit_venue_connected", "1 while the venue's session is up.", ("venue", "role"))
        self.book_valid = gauge("mmkit_book_valid", "1 while the tracked order book is valid.", ("venue",))
        # Reference
        self.fair = gauge("mmkit_reference_price_quote", "The fair (reference) price.")
        self.confidence = gauge("mmkit_reference_confidence_ratio", "Confidence of the fair price (0..1).")
        self.staleness = gauge("mmkit_reference_staleness_seconds", "Age of the fair price's last update.")
        self.sources = gauge("mmkit_reference_sources", "Reference sources agreeing in the fair price.")
        # Persistence
        self.queue = gauge("mmkit_recorder_queue_depth", "Records queued for the store writer thread.")
        self.store_errors = counter("mmkit_store_write_failures", "Failed store writes (database errors).")
        self.store_outage = gauge("mmkit_store_outage", "1 while the store writer is in an outage.")
        self.records_dropped = counter("mmkit_recorder_dropped_records", "Records the recorder dropped.")
        self.audit_errors = counter("mmkit_audit_write_failures", "Failed audit-trail writes.")
        self.problems = counter("mmkit_run_problems", "Problems recorded on the run's outcome, by kind.", ("kind",))
        # Hedge
        self.hedge_working = gauge("mmkit_hedge_orders_working", "Hedge orders working.")
        self.hedge_stopped = gauge("mmkit_hedge_stopped", "1 while the hedge gate stops hedging.")
        self.hedge_problems = counter(
            "mmkit_hedge_problems", "Hedge problems (rejected, unfunded, timed out).", ("event",)
        )


class MetricsCollector:
    """Copies the engine's state into :class:`Metrics` (a post-iterator of the clock)."""

    def __init__(self, metrics: Metrics, built: Any, persistence: Any = None, interval_ms: int = 500) -> None:
        self.m = metrics
        self.built = built
        self.engine = built.engine
        self.persistence = persistence
        self.interval_ns = interval_ms * NS_PER_MS
        self._next = 0
        self._last_ts = 0
        self._last_fair_price: object = None
        self._totals: dict[object, float] = {}
        self._kill_reason = ""
        self._pnl_unit = ""
        inst = metrics.instance
        self._decision = metrics.decision.labels(inst)
        self._price_to_order = metrics.price_to_order.labels(inst)
        self._tick_lag = metrics.tick_lag.labels(inst)
        self._tick_duration = metrics.tick_duration.labels(inst)
        self._actions = {k: metrics.actions.labels(inst, k) for k in ("place", "replace", "cancel")}

    # -- listeners (on the tick, from the user stream) ---------------------

    def attach(self) -> None:
        """Register the order, fill and hedge listeners and the clock iterator."""
        engine = self.engine
        engine.stream.add_order_listener(self.on_order_event)
        engine.stream.add_fill_listener(lambda fill: self.on_fill(fill, "quote"))
        hedge = self.built.hedge
        if hedge is not None:
            hedge.listeners.append(lambda fill: self.on_fill(fill, "hedge"))
            hedge.problem_listeners.append(self.on_hedge_problem)
        engine.clock.add_iterator(self, name="metrics")

    def on_order_event(self, event: VenueEvent) -> None:
        m, inst = self.m, self.m.instance
        if isinstance(event, OrderAccepted | OrderReplaced):
            order = self.engine.orders.get(event.client_id)
            if order is not None and order.created_ns and event.ts_recv >= order.created_ns:
                action = "replace" if isinstance(event, OrderReplaced) else "place"
                m.ack.labels(inst, event.venue, action).observe((event.ts_recv - order.created_ns) / NS_PER_S)
        elif isinstance(event, OrderRejected):
            m.rejects.labels(inst, "place", event.reason.name.lower()).inc()
        elif isinstance(event, OrderCancelRejected):
            action = "replace" if event.is_replace else "cancel"
            m.rejects.labels(inst, action, event.reason.name.lower()).inc()

    def on_fill(self, fill: Fill, book: str) -> None:
        m, inst, side = self.m, self.m.instance, fill.side.name.lower()
        # The ledger's settlement (one for both books: an inverse contract is never hedged, app/build.py).
        settlement = self.engine.pnl.settlement
        m.fills.labels(inst, side, book).inc()
        m.volume.labels(inst, side, book).inc(float(settlement.base_qty(fill.price, fill.qty)))
        m.volume_quote.labels(inst, side, book).inc(float(settlement.notional_quote(fill.price, fill.qty)))
        if settlement.inverse:
            m.volume_contracts.labels(inst, side, book).inc(float(fill.qty))

    def on_hedge_problem(self, event: str, detail: dict[str, Any]) -> None:
        self.m.hedge_problems.labels(self.m.instance, event).inc()

    # -- the clock iterator ------------------------------------------------

    def start(self, clock: Clock, ts_ns: int) -> None:
        self._last_ts = ts_ns
        self.refresh(ts_ns)

    def stop(self, clock: Clock) -> None:
        self.refresh(clock.now_ns)

    def tick(self, ts_ns: int) -> None:
        runner = self.engine.runner
        stats = runner.stats
        clock = self.engine.clock
        decision_ns = getattr(stats, "last_decision_ns", 0)
        if decision_ns:
            self._decision.observe(decision_ns / NS_PER_S)
            actions = getattr(stats, "last_actions", ())
            fair = runner.last_fair
            if actions:
                for action in actions:
                    self._actions[action.kind.name.lower()].inc()
                if fair.price is not None and fair.price != self._last_fair_price and fair.ts:
                    waited = ts_ns - fair.ts + decision_ns
                    if 0 <= waited < 60 * NS_PER_S:
                        self._price_to_order.observe(waited / NS_PER_S)
            self._last_fair_price = fair.price
            stats.last_decision_ns = 0
            stats.last_actions = ()
        gap = ts_ns - self._last_ts
        self._last_ts = ts_ns
        if gap > clock.tick_ns:
            self._tick_lag.set((gap - clock.tick_ns) / NS_PER_S)
        else:
            self._tick_lag.set(0.0)
        self._tick_duration.set(clock.last_tick_duration_ns / NS_PER_S)
        if ts_ns >= self._next:
            self._next = ts_ns + self.interval_ns
            self.refresh(ts_ns)

    def _count(self, key: object, value: float, counter: Callable[[], Any]) -> None:
        """Advance a Prometheus counter to a cumulative total the engine keeps (never backwards)."""
        last = self._totals.get(key, 0.0)
        if value > last:
            counter().inc(value - last)
            self._totals[key] = value

    def refresh(self, ts_ns: int) -> None:
        """The periodic part: gauges and counters from totals the engine keeps anyway."""
        m, inst, engine = self.m, self.m.instance, self.engine
        clock, runner = engine.clock, engine.runner
        self._count("ticks", clock.tick_count, lambda: m.ticks.labels(inst))
        self._count("missed", clock.missed_ticks, lambda: m.missed_ticks.labels(inst))
        for label, errors in clock.iterator_errors.items():
            self._count(("iter", label), errors, _bind(m.iterator_errors, inst, label))
        executor = runner.executor
        self._count("denied", executor.limiter.denied, lambda: m.rate_denials.labels(inst))
        self._count("deferred", executor.deferred_actions, lambda: m.deferred.labels(inst))
        counts = dict.fromkeys(OrderState, 0)
        for order in engine.orders.open_orders(engine.symbol):
            counts[order.state] += 1
        for state, count in counts.items():
            m.orders.labels(inst, state.name.lower()).set(count)
        self._refresh_money()
        kill = runner.kill_switch
        halted = kill is not None and kill.halted
        m.kill_halted.labels(inst).set(1 if halted else 0)
        reason = kill.reason if (kill is not None and halted) else ""
        if reason != self._kill_reason:
            with contextlib.suppress(KeyError):
                m.kill_reason.remove(inst, self._kill_reason)
            self._kill_reason = reason
        m.kill_reason.labels(inst, reason).set(1)
        m.quoting.labels(inst).set(1 if runner.quoting_enabled else 0)
        holding = {hold.gate for hold in runner.gate_holds}  # every gate holding, not only the first
        for gate in runner.gates:  # every gate, 0 while it lets quoting through: an alert can rely on the series
            name = runner.gate_name(gate)
            m.gate_held.labels(inst, name).set(1 if name in holding else 0)
        m.connected.labels(inst, engine.venue.venue, "quote").set(1 if engine.venue.connected else 0)
        for feed in engine.feeds:
            if feed is not engine.venue:
                m.connected.labels(inst, feed.venue, "feed").set(1 if feed.connected else 0)
        book = runner.book
        if book is not None:
            m.book_valid.labels(inst, book.venue).set(1 if book.is_valid else 0)
        fair = runner.last_fair
        if fair.price is not None:
            m.fair.labels(inst).set(float(fair.price))
        m.confidence.labels(inst).set(fair.confidence)
        m.sources.labels(inst).set(fair.sources)
        if fair.ts:
            m.staleness.labels(inst).set(max(ts_ns - fair.ts, 0) / NS_PER_S)
        outcome = engine.outcome
        for (kind, _reason), count in outcome.counts.items():
            self._count(("problem", kind, _reason), count, _bind(m.problems, inst, kind.name.lower()))
        self._refresh_persistence()
        hedge = self.built.hedge
        if hedge is not None:
            m.hedge_working.labels(inst).set(len(hedge.working))
            m.hedge_stopped.labels(inst).set(1 if hedge.stop_reason else 0)

    def _refresh_money(self) -> None:
        """Position and PnL, each series in the unit its name says (module docstring: inverse contracts)."""
        m, inst = self.m, self.m.instance
        inv, pnl = self.engine.inventory, self.engine.pnl
        settlement, mark = pnl.settlement, pnl.mark_price
        position, limit = inv.position, inv.max_position
        if settlement.inverse:
            m.position_contracts.labels(inst).set(float(position))
            m.position_limit_contracts.labels(inst).set(float(limit))
            m.position.labels(inst).set(_or_nan(None if mark is None else settlement.base_qty(mark, position)))
            m.position_limit.labels(inst).set(_or_nan(None if mark is None else settlement.base_qty(mark, limit)))
        else:
            m.position.labels(inst).set(float(position))
            m.position_limit.labels(inst).set(float(limit))
        m.inventory_utilization.labels(inst).set(float(inv.utilization()))
        unit = pnl.unit
        if unit != self._pnl_unit:  # the ledger's unit is fixed once it has fills; never leave a stale series
            for component in PNL_COMPONENTS:
                with contextlib.suppress(KeyError):
                    m.pnl_settlement.remove(inst, component, self._pnl_unit)
            self._pnl_unit = unit
        values = (pnl.realized(), pnl.unrealized(), pnl.fees(), pnl.total())
        for component, value in zip(PNL_COMPONENTS, values, strict=True):
            m.pnl_settlement.labels(inst, component, unit).set(float(value))
            m.pnl.labels(inst, component).set(_or_nan(pnl.to_quote(value)))
        m.pnl_mark.labels(inst).set(_or_nan(mark))

    def _refresh_persistence(self) -> None:
        persistence = self.persistence
        if persistence is None:
            return
        m, inst = self.m, self.m.instance
        stats = persistence.recorder.stats()
        m.queue.labels(inst).set(stats.backlog)
        m.store_outage.labels(inst).set(1 if stats.in_outage else 0)
        self._count("db_errors", stats.db_errors, lambda: m.store_errors.labels(inst))
        self._count("dropped", stats.dropped, lambda: m.records_dropped.labels(inst))
        audit_errors = getattr(persistence.audit.trail, "errors", 0)
        if isinstance(audit_errors, int):
            self._count("audit", audit_errors, lambda: m.audit_errors.labels(inst))


def _or_nan(value: Decimal | None) -> float:
    """A gauge's value; NaN (valid in the exposition format) for a figure that cannot be known yet."""
    return math.nan if value is None else float(value)


def _bind(metric: Counter, *labels: str) -> Callable[[], Any]:
    return lambda: metric.labels(*labels)


class MetricsServer:
    """``prometheus_client``'s HTTP server on its own daemon thread, bound to a loopback port."""

    def __init__(self, metrics: Metrics, host: str, port: int) -> None:
        self.metrics = metrics
        self.host = host
        self.requested_port = port
        self.port = 0
        self._server: Any = None
        self._thread: Any = None

    def start(self) -> str:
        """Bind and serve; returns the URL of ``/metrics``. Raises OSError when the port is taken."""
        self._server, self._thread = start_http_server(
            self.requested_port, addr=self.host, registry=self.metrics.registry
        )
        self.port = int(self._server.server_address[1])
        url = f"http://{self.host}:{self.port}/metrics"
        logger.info("metrics served on {}", url)
        return url

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
