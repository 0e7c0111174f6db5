"""Config → a ready-to-run engine (nothing connected yet).

Every part named in the config is resolved and validated here, in this
order: controller class and its params, risk limits, venue rules, the
quoting connector and its settings, reference prices. Any problem raises
:class:`mmkit.conf.ConfigError` naming the file, the key path and the
reason, before a single connection is opened. ``mmkit check`` runs exactly
this and stops.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from mmkit.app.assembly import RiskSettings, assemble
from mmkit.app.config import EngineConfig, LoadedConfig, VenueSection, load_engine_config
from mmkit.app.engine import Engine
from mmkit.app.resolve import resolve_dotted
from mmkit.app.simulated import SimSetup, build_sim_setup
from mmkit.backtest.binance import read_recording, recording_files
from mmkit.backtest.replay import ReplayEvent
from mmkit.clock import Clock
from mmkit.conf import ConfigError, structure
from mmkit.connector import Connector, ConnectorContext, VenueRules, load_venue_rules
from mmkit.model import NS_PER_MS, NS_PER_S, BookDelta, BookSnapshot, Trade
from mmkit.risk.inventory import InventoryConfig
from mmkit.risk.kill_switch import KillSwitchConfig
from mmkit.sim.flow import SyntheticMarket
from mmkit.sim.random_walk import RandomWalkReference
from mmkit.sim.venue import ExchangeVenue
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
    description: str = ""


def build_controller(loaded: LoadedConfig) -> Controller:
    """Resolve ``strategy.controller`` and structure ``strategy.params`` with its config class."""
    section = loaded.config.strategy
    cls = resolve_dotted(section.controller, loaded.path, "strategy.controller")
    if not (isinstance(cls, type) and issubclass(cls, Controller)):
        raise ConfigError(loaded.path, "strategy.controller", f"{section.controller} is not a Controller subclass")
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
            )
        except ValueError as exc:
            raise ConfigError(loaded.path, "risk.kill_switch", str(exc)) from exc
    return RiskSettings(inventory=inventory, kill_switch=kill_switch)


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


def load_replay_events(path_text: str, file: Path) -> list[ReplayEvent]:
    """Read a recording for replay (relative paths are relative to the working directory)."""
    path = Path(path_text)
    if not path.exists():
        raise ConfigError(file, "reference.replay.path", f"no such recording: {path.resolve()}")
    files = recording_files(path) if path.is_dir() else [path]
    if not files:
        raise ConfigError(file, "reference.replay.path", f"no recording files in {path.resolve()}")
    return [e for e in read_recording(files) if isinstance(e, BookSnapshot | BookDelta | Trade)]


def build(loaded: LoadedConfig, clock: Clock, *, events: list[ReplayEvent] | None = None) -> BuiltEngine:
    """Assemble the engine a config describes, on ``clock``. Opens no connection."""
    config, file = loaded.config, loaded.path
    controller = build_controller(loaded)
    risk = risk_settings(loaded)
    rules = venue_rules(config.venue, file, "venue")
    staleness_ns = config.reference.staleness_ms * NS_PER_MS
    instance_prefix = _client_id_prefix(config.engine.instance)

    if config.venue.connector in SIM_ALIASES:
        ref = config.reference
        if ref.replay is not None:
            replay_events = events if events is not None else load_replay_events(ref.replay.path, file)
            setup = build_sim_setup(
                clock,
                controller,
                replay_events,
                rules,
                config.venue.symbol,
                risk=risk,
                speed=float(ref.replay.speed),
                staleness_ns=staleness_ns,
            )
            return BuiltEngine(setup.engine, config, file, rules, sim=setup,
                               description=f"sim venue, reference replayed from {ref.replay.path}")
        if ref.random_walk is not None:
            return _build_random_walk(loaded, clock, controller, risk, rules, staleness_ns)
        raise ConfigError(file, "reference", "the sim venue needs reference.replay or reference.random_walk")

    if config.reference.sources:
        raise ConfigError(file, "reference.sources", "live reference venues are wired by the ccxt integration")
    connector = build_connector(config.venue, rules, file, "venue", config, lambda: clock.now_ns)
    engine = assemble(clock, connector, config.venue.symbol, controller, risk=risk, staleness_ns=staleness_ns,
                      client_id_prefix=instance_prefix)
    return BuiltEngine(engine, config, file, rules, description=f"{connector.venue} via {config.venue.connector}")


def _build_random_walk(
    loaded: LoadedConfig, clock: Clock, controller: Controller, risk: RiskSettings, rules: VenueRules, staleness_ns: int
) -> BuiltEngine:
    config = loaded.config
    walk_cfg = config.reference.random_walk
    assert walk_cfg is not None
    walk = RandomWalkReference(walk_cfg.start_price, walk_cfg.volatility_bps, walk_cfg.seed)
    venue = ExchangeVenue(rules, lambda: clock.now_ns)
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
    """Two characters of the instance name keep ids from two engines apart on one account."""
    letters = "".join(ch for ch in instance.lower() if ch.isalnum())
    return (letters[:2] or "mm").ljust(2, "x")


def check_config(path: str | Path) -> str:
    """Validate everything a run would need, without connecting; returns a summary."""
    loaded = load_engine_config(path)
    config = loaded.config
    controller = build_controller(loaded)
    risk_settings(loaded)
    rules = venue_rules(config.venue, loaded.path, "venue")
    if config.venue.connector not in SIM_ALIASES:
        from mmkit.clock import ClockMode

        clock = Clock(ClockMode.REALTIME)
        build_connector(config.venue, rules, loaded.path, "venue", config, lambda: clock.now_ns)
    elif config.reference.replay is not None and not Path(config.reference.replay.path).exists():
        raise ConfigError(loaded.path, "reference.replay.path", f"no such recording: {config.reference.replay.path}")
    if config.hedge.enabled and config.hedge.venue is not None:
        venue_rules(config.hedge.venue, loaded.path, "hedge.venue")
    return (
        f"{loaded.path}: OK\n"
        f"  controller {controller.name} on {rules.venue}:{config.venue.symbol} via {config.venue.connector}\n"
        f"  tick {config.engine.tick_ms} ms, instance {config.engine.instance}"
    )


def describe_params(obj: Any) -> dict[str, str]:
    """Parameters of an attrs config as strings, for reports."""
    if obj is None or not attrs.has(type(obj)):
        return {}
    return {f.name: str(getattr(obj, f.name)) for f in attrs.fields(type(obj))}


__all__ = ["BuiltEngine", "build", "build_controller", "check_config", "describe_params", "risk_settings"]
