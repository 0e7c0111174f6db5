"""Config → a ready-to-run engine (nothing connected yet).

Every part named in the config is resolved and validated here, in this
order: controller class and its params, risk limits, venue rules, the
quoting connector and its settings, reference prices. Any problem raises
:class:`mmkit.conf.ConfigError` naming the file, the key path and the
reason, before a single connection is opened. ``mmkit check`` runs exactly
this and stops.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
from loguru import logger

from mmkit.app.assembly import RiskSettings, assemble
from mmkit.app.backtest_balances import demo_funds, simulated_account
from mmkit.app.config import ConfigOverrides, EngineConfig, LoadedConfig, VenueSection, load_engine_config
from mmkit.app.engine import Engine
from mmkit.app.fair_value_source import FairValueSource
from mmkit.app.resolve import resolve_dotted
from mmkit.app.simulated import REFERENCE_SIZE, REFERENCE_TICK, SimSetup, build_sim_setup
from mmkit.app.streamed_replay import StreamedReplay, stream_recording
from mmkit.backtest.binance import RecordingFormatError, read_recording, recording_files
from mmkit.backtest.replay import RecordingReplay, ReplayedReference, ReplayEvent
from mmkit.book.tracker import OrderBookTracker
from mmkit.clock import Clock
from mmkit.conf import ConfigError, structure
from mmkit.connector import Connector, ConnectorContext, VenueRules, load_venue_rules
from mmkit.instrument import Instrument
from mmkit.model import NS_PER_MS, NS_PER_S, BookDelta, BookSnapshot, ConnectionStatus, Side, Trade, VenueEvent
from mmkit.orders.ids import instance_prefix
from mmkit.pricing.aggregator import AggregatorConfig, PriceAggregator
from mmkit.risk.hedge import HedgeExecutor
from mmkit.risk.hedge_balances import HedgeBalances
from mmkit.risk.hedge_config import HedgeConfig
from mmkit.risk.inventory import InventoryConfig
from mmkit.risk.kill_switch import KillSwitchConfig, limits_unit
from mmkit.risk.settlement import Settlement
from mmkit.sim.exchange_venue import ExchangeVenue
from mmkit.sim.flow import FlowConfig, SyntheticMarket
from mmkit.sim.random_walk import RandomWalkReference
from mmkit.strategy import Controller

SIM_ALIASES = ("sim", "mmkit.sim")


@attrs.frozen
class BuiltEngine:
    """An assembled engine plus what the lifecycle needs to run and describe it."""

    engine: Engine
    config: EngineConfig
    path: Path
    rules: VenueRules
    sim: SimSetup | None = None
    random_walk: RandomWalkReference | None = None
    hedge: HedgeExecutor | None = None
    description: str = ""


def build_controller(loaded: LoadedConfig) -> Controller:
    """Resolve ``strategy.controller`` and structure ``strategy.params`` with its config class."""
    section = loaded.config.strategy
    cls = resolve_dotted(section.controller, loaded.path, "strategy.controller")
    if not (isinstance(cls, type) and issubclass(cls, Controller)):
        raise ConfigError(loaded.path, "strategy.controller", f"{section.controller} is not a Controller subclass")
    missing = sorted(getattr(cls, "__abstractmethods__", ()))
    if missing:
        raise ConfigError(loaded.path, "strategy.controller",
                          f"{cls.__name__} does not implement {', '.join(missing)}(ctx)")
    config_class = cls.config_class
    if config_class is None:
        if section.params:
            raise ConfigError(loaded.path, "strategy.params", f"{cls.__name__} takes no params")
        return cls()
    params = structure(section.params, config_class, file=loaded.path, root="$.strategy.params")
    try:
        return cls(params)
    except ValueError as exc:
        raise ConfigError(loaded.path, "strategy.params", str(exc)) from exc


def risk_settings(loaded: LoadedConfig) -> RiskSettings:
    """Inventory limits and the kill switch from ``risk``; kill-switch times in seconds."""
    risk = loaded.config.risk
    inventory = structure(risk.inventory, InventoryConfig, file=loaded.path, root="$.risk.inventory")
    ks = risk.kill_switch
    kill_switch: KillSwitchConfig | None = None
    if ks.enabled:
        try:
            kill_switch = KillSwitchConfig(
                max_drawdown=ks.max_drawdown,
                max_loss=ks.max_loss,
                stale_after_ns=None if ks.stale_after_s is None else int(ks.stale_after_s * NS_PER_S),
                min_confidence=ks.min_confidence,
                max_rejects=ks.max_rejects,
                reject_window_ns=int(ks.reject_window_s * NS_PER_S),
                resume=ks.resume,  # type: ignore[arg-type]
                cooldown_ns=int(ks.cooldown_s * NS_PER_S),
                unit=ks.unit,
                unlimited_loss=ks.unlimited_loss,
            )
        except ValueError as exc:
            raise ConfigError(loaded.path, "risk.kill_switch", str(exc)) from exc
    return RiskSettings(inventory=inventory, kill_switch=kill_switch)


def _check_money_units(loaded: LoadedConfig, risk: RiskSettings, rules: VenueRules) -> None:
    """The kill switch's money unit must be a currency of the quoted instrument (mmkit.risk.kill_switch), and
    an inverse contract (PnL in its coin) is not hedged: one ledger cannot add a linear hedge's quote PnL to it."""
    file, symbol = loaded.path, loaded.config.venue.symbol
    try:
        settlement = Settlement.of(rules.instrument(symbol))
    except ValueError as exc:
        raise ConfigError(file, "venue.rules", str(exc)) from exc
    if settlement.inverse and loaded.config.hedge.enabled:
        raise ConfigError(file, "hedge.enabled", f"{symbol} is an inverse contract (PnL in {settlement.base}): "
                          "hedging it is not modelled (its ledger cannot hold a hedge's quote-currency PnL)")
    if risk.kill_switch is None:
        return
    try:
        limits_unit(risk.kill_switch, settlement)
    except ValueError as exc:
        raise ConfigError(file, "risk.kill_switch.unit", str(exc)) from exc


def venue_rules(section: VenueSection, file: Path, key_path: str) -> VenueRules:
    name = section.rules or ("sim" if section.connector in SIM_ALIASES else "")
    if not name:
        raise ConfigError(file, f"{key_path}.rules", "required: a file in conf/venues (e.g. truex) or a path")
    rules = load_venue_rules(name)
    try:
        rules.instrument(section.symbol)
    except KeyError as exc:
        raise ConfigError(file, f"{key_path}.symbol", str(exc.args[0])) from exc
    return rules


def build_connector(
    section: VenueSection, rules: VenueRules, file: Path, key_path: str, config: EngineConfig, now_ns: Callable[[], int]
) -> Connector:
    """Resolve a dotted connector class and let it validate its own settings."""
    cls = resolve_dotted(section.connector, file, f"{key_path}.connector")
    factory = getattr(cls, "from_config", None)
    if factory is None:
        raise ConfigError(file, f"{key_path}.connector", f"{section.connector} has no from_config(...) factory")
    context = ConnectorContext(
        file=str(file),
        key_path=f"{key_path}.settings",
        now_ns=now_ns,
        output_dir=config.engine.output_dir,
        instance=config.engine.instance,
    )
    connector = factory(dict(section.settings), rules=rules, symbol=section.symbol, context=context)
    if not isinstance(connector, Connector):
        raise ConfigError(file, f"{key_path}.connector", f"{section.connector}.from_config did not return a Connector")
    return connector


def replay_files(path_text: str, file: Path) -> list[Path]:
    """The files of ``reference.replay.path`` (relative paths are relative to the working directory)."""
    path = Path(path_text)
    if not path.exists():
        raise ConfigError(file, "reference.replay.path", f"no such recording: {path.resolve()}")
    files = recording_files(path) if path.is_dir() else [path]
    if not files:
        raise ConfigError(file, "reference.replay.path", f"no recording files in {path.resolve()}")
    return files


def load_replay_events(path_text: str, file: Path) -> list[ReplayEvent]:
    """Read a whole recording for replay (the simulated venue's setup needs every event; a live reference streams)."""
    files = replay_files(path_text, file)
    try:
        return [e for e in read_recording(files) if isinstance(e, BookSnapshot | BookDelta | Trade)]
    except RecordingFormatError as exc:
        raise ConfigError(file, "reference.replay.path", str(exc)) from exc


def build(loaded: LoadedConfig, clock: Clock, *, events: list[ReplayEvent] | None = None) -> BuiltEngine:
    """Assemble the engine a config describes, on ``clock``. Opens no connection."""
    config, file = loaded.config, loaded.path
    controller = build_controller(loaded)
    risk = risk_settings(loaded)
    rules = venue_rules(config.venue, file, "venue")
    _check_money_units(loaded, risk, rules)
    staleness_ns = config.reference.staleness_ms * NS_PER_MS
    ref = config.reference

    if config.venue.connector in SIM_ALIASES:
        if ref.replay is not None:
            replay_events = events if events is not None else load_replay_events(ref.replay.path, file)
            setup = build_sim_setup(
                clock, controller, replay_events, rules, config.venue.symbol,
                risk=risk, speed=float(ref.replay.speed), staleness_ns=staleness_ns,
                initial_balances=simulated_account(loaded, rules, config.venue.symbol),
            )
            built = BuiltEngine(setup.engine, config, file, rules, sim=setup,
                                description=f"sim venue, reference replayed from {ref.replay.path}")
            return _attach_hedge(built, loaded, clock, mid_source=setup.reference)
        if ref.random_walk is not None:
            built = _build_random_walk(loaded, clock, controller, risk, rules, staleness_ns)
            return _attach_hedge(built, loaded, clock, mid_source=built.random_walk)
        raise ConfigError(file, "reference", "the sim venue needs reference.replay or reference.random_walk")

    reference = _build_reference(loaded, clock, staleness_ns, events)
    if loaded.paper:
        connector: Connector = _paper_venue(rules, config.venue.symbol, clock, reference, file,
                                            simulated_account(loaded, rules, config.venue.symbol))
    else:
        connector = build_connector(config.venue, rules, file, "venue", config, lambda: clock.now_ns)
    engine = assemble(
        clock, connector, config.venue.symbol, controller,
        fair_source=reference.fair_source, risk=risk, staleness_ns=staleness_ns,
        pre_iterators=reference.pre_iterators, client_id_prefix=_client_id_prefix(config.engine.instance),
    )
    for feed, symbol in reference.feeds:
        engine.router.add_connector(feed)
        engine.add_feed(feed, [symbol])
    via = "PAPER (simulated fills)" if loaded.paper else f"via {config.venue.connector}"
    built = BuiltEngine(engine, config, file, rules, description=f"{connector.venue} {via}; {reference.description}")
    return _attach_hedge(built, loaded, clock, mid_source=reference.mid_source)


def run_epoch() -> str:
    """A tag unique to this start (microseconds since the epoch, hex) for the trade ids of the simulated venues
    a live process runs: their ids restart at 1 each run, and the store keys fills on (venue, trade id)."""
    return f"{time.time_ns() // 1000:x}"


def _paper_venue(rules: VenueRules, symbol: str, clock: Clock, reference: _Reference, file: Path,
                 funds: dict[str, Decimal]) -> Connector:
    """The configured venue's rules on a simulated exchange that follows the live reference.

    Makers re-quote around the reference mid and takers are derived from the
    reference venues' trades (see mmkit.sim.flow), so paper fills come from
    live market data while no order reaches a real venue.
    """
    if reference.mid_source is None or reference.on_trade is None:
        raise ConfigError(file, "reference", "paper trading needs reference prices (sources, replay or random_walk)")
    venue = ExchangeVenue(rules, lambda: clock.now_ns, initial_balances=funds, trade_id_epoch=run_epoch())
    market = SyntheticMarket(venue, symbol)
    reference.mid_source.on_mid(market.on_reference_mid)
    reference.on_trade(market.on_reference_trade)
    return venue


@attrs.frozen
class _Reference:
    fair_source: FairValueSource | None
    description: str
    pre_iterators: list[tuple[str, object]] = attrs.Factory(list)
    feeds: list[tuple[Connector, str]] = attrs.Factory(list)
    #: Something with ``on_mid(listener)`` that publishes reference mids (drives a simulated hedge venue).
    mid_source: Any = None
    #: Registers a listener for the reference venues' trades (drives paper-trading takers).
    on_trade: Callable[[Callable[[Trade], None]], None] | None = None


def _build_reference(
    loaded: LoadedConfig, clock: Clock, staleness_ns: int, events: list[ReplayEvent] | None
) -> _Reference:
    """Where the fair price comes from when the quoting venue is real (or a separate simulator)."""
    config, file = loaded.config, loaded.path
    ref = config.reference
    if ref.sources:
        aggregator = PriceAggregator(
            AggregatorConfig(
                stale_ms=ref.staleness_ms,
                outlier_bps=ref.outlier_bps,
                reprice_bps=ref.reprice_threshold_bps,
                weights={s.name: s.weight for s in ref.sources},
            ),
            wake=clock.wake,
            now_ns=lambda: clock.now_ns,
        )
        feeds: list[tuple[Connector, str]] = []
        trades = _TradeFanout()
        for index, source in enumerate(ref.sources):
            key = f"reference.sources[{index}]"
            section = VenueSection(source.connector, source.symbol, source.rules or source.name, source.settings)
            source_rules = venue_rules(section, file, key)
            feed = build_connector(section, source_rules, file, key, config, lambda: clock.now_ns)
            _tap(feed, _aggregator_tap(aggregator, source.name, source.symbol))
            _tap(feed, trades.tap(source.symbol))
            if loaded.paper:
                feed.subscribe_trades(source.symbol)
            feeds.append((feed, source.symbol))
        names = ", ".join(s.name for s in ref.sources)
        return _Reference(aggregator, f"fair value from {names}", feeds=feeds, mid_source=_AggregatorMids(aggregator),
                          on_trade=trades.add)
    if ref.replay is not None:
        replay: RecordingReplay | StreamedReplay
        if events is not None:
            replay = RecordingReplay(events, speed=float(ref.replay.speed))
        else:  # a live run: read as played, never the whole recording in memory (mmkit.app.streamed_replay)
            stream = stream_recording(replay_files(ref.replay.path, file))
            try:  # the first peek runs the clock fit over every file: a damaged or disordered one fails here
                replay = StreamedReplay(stream, speed=float(ref.replay.speed))
            except RecordingFormatError as exc:
                raise ConfigError(file, "reference.replay.path", str(exc)) from exc
        first = replay.peek(1)
        venue, symbol = (first[0].venue, first[0].symbol) if first else ("reference", "REF")
        tracker = OrderBookTracker(venue, symbol, REFERENCE_TICK, REFERENCE_SIZE, request_resync=lambda reason: None)
        reference = ReplayedReference(tracker, staleness_ns)
        reference.bind(replay)
        replay.add_sink(reference)
        return _Reference(reference, f"reference replayed from {ref.replay.path}", pre_iterators=[("replay", replay)],
                          mid_source=reference, on_trade=reference.on_trade)
    if ref.random_walk is not None:
        walk_cfg = ref.random_walk
        walk = RandomWalkReference(walk_cfg.start_price, walk_cfg.volatility_bps, walk_cfg.seed)
        return _Reference(walk, "random-walk reference", pre_iterators=[("random_walk", walk)], mid_source=walk,
                          on_trade=walk.on_trade)
    return _Reference(None, "fair value from the venue's own book")


class _TradeFanout:
    """Hands the reference venues' public trades (seen by an inbox tap) to listeners."""

    def __init__(self) -> None:
        self._listeners: list[Callable[[Trade], None]] = []

    def add(self, listener: Callable[[Trade], None]) -> None:
        self._listeners.append(listener)

    def tap(self, symbol: str) -> Callable[[VenueEvent], None]:
        def on_event(event: VenueEvent) -> None:
            if isinstance(event, Trade) and event.symbol == symbol:
                for listener in self._listeners:
                    listener(event)

        return on_event


class _AggregatorMids:
    """Publishes the aggregator's fair value as reference mids (for a simulated hedge venue)."""

    def __init__(self, aggregator: PriceAggregator) -> None:
        self.aggregator = aggregator

    def on_mid(self, listener: Callable[[Decimal], None]) -> None:
        self.aggregator.add_fair_listener(listener)


def _aggregator_tap(aggregator: PriceAggregator, name: str, symbol: str) -> Callable[[VenueEvent], None]:
    def tap(event: VenueEvent) -> None:
        if isinstance(event, BookSnapshot) and event.symbol == symbol:
            bid = event.bids[0][0] if event.bids else None
            ask = event.asks[0][0] if event.asks else None
            aggregator.on_book(name, bid, ask, event.ts_recv)
        elif isinstance(event, ConnectionStatus) and not event.connected and event.session.startswith("book"):
            aggregator.mark_down(name)

    return tap


def _tap(connector: Connector, tap: Callable[[VenueEvent], None]) -> None:
    add = getattr(connector, "add_event_tap", None)
    if not callable(add):
        raise TypeError(f"{type(connector).__name__} cannot feed a price aggregator (no add_event_tap)")
    add(tap)


def _attach_hedge(built: BuiltEngine, loaded: LoadedConfig, clock: Clock, mid_source: Any) -> BuiltEngine:
    """HedgeExecutor on the configured hedge venue, after the strategy in the tick."""
    _engine_settings(built.engine, loaded.config)
    hedge = loaded.config.hedge
    if not hedge.enabled or hedge.venue is None:
        return built
    file, engine = loaded.path, built.engine
    section = hedge.venue
    rules = venue_rules(section, file, "hedge.venue")
    params = structure({"symbol": section.symbol, **hedge.params}, HedgeConfig, file=file, root="$.hedge.params")
    if section.connector in SIM_ALIASES:
        venue: Connector = _simulated_hedge_venue(rules, section.symbol, clock, mid_source, file)
    else:
        venue = build_connector(section, rules, file, "hedge.venue", loaded.config, lambda: clock.now_ns)
    instrument = rules.instrument(section.symbol)
    _check_hedge_sizes(params, instrument, engine.inventory.config, file)
    tick, lot = instrument.finest_increments()
    tracker = OrderBookTracker(venue.venue, section.symbol, tick, lot,
                               request_resync=lambda reason: venue.subscribe_book(section.symbol))

    def touch(side: Side) -> Decimal | None:
        if not tracker.is_valid:
            return None
        level = tracker.book.best_bid() if side is Side.SELL else tracker.book.best_ask()
        return level[0] if level is not None else None

    balances = HedgeBalances()  # the hedge gate's funding check (issue 11); kept current by the venue's events
    executor = HedgeExecutor(
        venue, engine.inventory, touch, config=params, kill_switch=engine.runner.kill_switch,
        listeners=[engine.on_hedge_fill], balances=balances, instance=loaded.config.engine.instance,
    )
    engine.start_hooks.insert(0, _fetch_hedge_balances(executor))
    engine.router.add_connector(venue, _HedgeStream(executor))
    engine.router.add_book(tracker)
    engine.add_feed(venue, [section.symbol])
    engine.required_feeds.append(venue)  # hedging is a risk control: no start without its venue
    engine.clock.add_iterator(executor, name="hedge")
    return attrs.evolve(built, hedge=executor, description=f"{built.description}; hedging on {venue.venue}")


def _check_hedge_sizes(params: HedgeConfig, instrument: Instrument, inventory: InventoryConfig, file: Path) -> None:
    """Hedge clip sizes the hedge venue takes, and a ``min_qty`` that lets hedging act at its threshold.

    Why: each was accepted and went wrong without a word. A ``min_qty`` under
    the venue's minimum order sent clips the venue refuses (a reject, a
    cool-down, again); a ``max_qty`` over its maximum did the same for every
    large hedge; and a ``min_qty`` above what crossing ``hedge_threshold``
    asks for (``hedge_threshold - hedge_target``) left the position past the
    threshold, unhedged, until it had grown by ``min_qty``.
    """
    key = "hedge.params"
    where = f"{instrument.venue} {instrument.symbol}"
    if params.min_qty < instrument.min_qty:
        raise ConfigError(file, f"{key}.min_qty", f"{params.min_qty} is below {where}'s minimum order size "
                                                  f"({instrument.min_qty}): hedges that small would be refused")
    if instrument.max_qty is not None and params.max_qty > instrument.max_qty:
        raise ConfigError(file, f"{key}.max_qty", f"{params.max_qty} is above {where}'s maximum order size "
                                                  f"({instrument.max_qty}): larger clips would be refused")
    first = inventory.hedge_threshold - inventory.hedge_target
    if inventory.hedge_threshold > 0 and params.min_qty > first:
        raise ConfigError(file, f"{key}.min_qty",
                          f"{params.min_qty} is more than crossing risk.inventory.hedge_threshold "
                          f"({inventory.hedge_threshold}) asks to hedge (down to hedge_target "
                          f"{inventory.hedge_target}: {first}): the position would stay past the threshold, "
                          "unhedged, until it grew by min_qty")


def _engine_settings(engine: Engine, config: EngineConfig) -> None:
    """``engine`` settings that belong to parts assembled without the config (every key accepted is used)."""
    engine.runner.max_consecutive_failures = config.engine.controller_max_failures
    engine.pnl.config = attrs.evolve(engine.pnl.config, log_period_ns=int(config.engine.pnl_log_interval_s * NS_PER_S))


def _fetch_hedge_balances(executor: HedgeExecutor) -> Callable[[], Awaitable[None]]:
    """Start hook: what the hedge venue holds, before the first hedge (a failure is reported, not fatal)."""

    async def fetch() -> None:
        if executor.balances is None:
            return
        try:
            await executor.balances.refresh(executor.connector)
        except Exception as exc:  # the hedge gate reports unfunded hedges while balances stay unknown
            logger.bind(venue=executor.connector.venue).error("cannot read the hedge venue's balances: {}", exc)
            return
        logger.bind(venue=executor.connector.venue).info("hedge venue balances: {}", executor.balances.as_dict())

    return fetch


class _HedgeStream:
    """Routes the hedge venue's order events to the HedgeExecutor (it keeps its own book of hedges)."""

    def __init__(self, executor: HedgeExecutor) -> None:
        self.executor = executor

    def process(self, events: Iterable[VenueEvent]) -> None:
        for event in events:
            self.executor.on_event(event)


def _simulated_hedge_venue(rules: VenueRules, symbol: str, clock: Clock, mid_source: Any, file: Path) -> Connector:
    if mid_source is None:
        raise ConfigError(file, "hedge.venue", "a simulated hedge venue needs a reference price to follow")
    # A funded demo account, so the hedge gate's balance check passes as it would on a funded desk.
    venue = ExchangeVenue(rules, lambda: clock.now_ns, initial_balances=demo_funds(rules, symbol),
                          trade_id_epoch=run_epoch())
    market = SyntheticMarket(venue, symbol, FlowConfig(maker_half_spread_bps=Decimal(2), maker_qty=Decimal(5),
                                                       participation=0.0))
    mid_source.on_mid(market.on_reference_mid)
    return venue


def _build_random_walk(
    loaded: LoadedConfig, clock: Clock, controller: Controller, risk: RiskSettings, rules: VenueRules, staleness_ns: int
) -> BuiltEngine:
    config = loaded.config
    walk_cfg = config.reference.random_walk
    assert walk_cfg is not None
    walk = RandomWalkReference(walk_cfg.start_price, walk_cfg.volatility_bps, walk_cfg.seed)
    venue = ExchangeVenue(rules, lambda: clock.now_ns,
                          initial_balances=simulated_account(loaded, rules, config.venue.symbol),
                          trade_id_epoch=run_epoch())
    market = SyntheticMarket(venue, config.venue.symbol)
    walk.on_mid(market.on_reference_mid)
    walk.on_trade(market.on_reference_trade)
    engine = assemble(
        clock, venue, config.venue.symbol, controller, fair_source=walk, risk=risk,
        pre_iterators=[("random_walk", walk)], staleness_ns=staleness_ns,
    )
    return BuiltEngine(engine, config, loaded.path, rules, random_walk=walk,
                       description=f"sim venue, random-walk reference from {walk_cfg.start_price}")


def _client_id_prefix(instance: str) -> str:
    """Ids of two engines on one account stay apart, and say whose they are: mmkit.orders.ids.instance_prefix."""
    return instance_prefix(instance)


def check_config(path: str | Path, overrides: ConfigOverrides | None = None, *, fair: Decimal | None = None) -> str:
    """Validate everything a run would need by assembling it, without trading; returns a summary.

    Beyond the config itself: the controller is imported, must implement
    ``on_tick``, and is run once on a synthetic context built from the
    config's instrument (a one-level book around ``fair``), so a controller
    that raises or returns the wrong type fails here, not on the first live
    tick. The store (and Redis) the run would write to are opened and
    probed: a URL that ``start`` could not use fails ``check`` too.
    """
    from mmkit.clock import ClockMode

    loaded = load_engine_config(path, overrides)
    built = build(loaded, Clock(ClockMode.REALTIME))
    config = loaded.config
    price = fair if fair is not None else _synthetic_fair(config)
    _run_controller_once(built, loaded.path, price)
    store = _probe_store(loaded, overrides)
    kill = config.risk.kill_switch
    unlimited = ("\n  WARNING: no loss limit: risk.kill_switch.unlimited_loss is true (max_loss and max_drawdown "
                 "are null)") if kill.unlimited_loss else ""
    return (
        f"{loaded.path}: OK\n"
        f"  controller {built.engine.runner.controller.name} on {built.rules.venue}:{config.venue.symbol}"
        f" (ran once on a synthetic context at fair {price})\n"
        f"  {built.description}\n"
        f"  store {store}\n"
        f"  tick {config.engine.tick_ms} ms, instance {config.engine.instance}"
        f"{unlimited}"
    )


def _synthetic_fair(config: EngineConfig) -> Decimal:
    from mmkit.app.start_checks import synthetic_fair

    return synthetic_fair(config)


def _run_controller_once(built: BuiltEngine, file: Path, fair: Decimal) -> None:
    """One ``on_tick`` on a synthetic context; the checks live in mmkit.app.start_checks (``start`` runs them too)."""
    from mmkit.app.start_checks import check_first_quotes

    runner = built.engine.runner
    check_first_quotes(runner.controller, runner.instrument, runner.inventory, file, fair, built.engine.clock.now_ns)


def _probe_store(loaded: LoadedConfig, overrides: ConfigOverrides | None) -> str:
    """Open the store and Redis the run would use; a ConfigError naming the key when they cannot be used."""
    from mmkit.app import paths

    store = loaded.config.store
    instance = loaded.config.engine.instance
    home = paths.instance_home(loaded.path, instance, overrides.output_dir if overrides else None,
                               configured=loaded.config.engine.output_dir or None)
    problem = paths.probe_store(store, instance, home)
    if problem is not None:
        key, reason = problem
        raise ConfigError(loaded.path, key, reason)
    return paths.describe_store(store, instance, home)


def apply_overrides(loaded: LoadedConfig, overrides: ConfigOverrides | None) -> LoadedConfig:
    """Re-load with command-line overrides (they apply before secrets are looked up)."""
    if overrides is None:
        return loaded
    return load_engine_config(loaded.path, overrides)


def describe_params(obj: Any) -> dict[str, str]:
    """Parameters of an attrs config as strings, for reports."""
    if obj is None or not attrs.has(type(obj)):
        return {}
    return {f.name: str(getattr(obj, f.name)) for f in attrs.fields(type(obj))}


__all__ = ["BuiltEngine", "ConfigOverrides", "apply_overrides", "build", "build_controller", "check_config",
           "describe_params", "risk_settings"]
