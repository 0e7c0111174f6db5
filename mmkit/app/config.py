"""The engine's YAML configuration, as attrs classes.

One file describes one engine: the quoting venue, where reference prices come
from, the controller and its parameters, risk limits, hedging and storage.
Sections that belong to a pluggable part (controller params, connector
settings, inventory and kill-switch limits) are kept as mappings here and
structured by that part's own config class in :mod:`mmkit.app.assembly`, with
the key path prefixed, so an error still reads
``strategies/x.yml: strategy.params.base_spread_bps: must be positive``.

Loading never opens a connection: a bad file fails before anything is sent.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from mmkit.conf import ConfigError, expand_secrets, read_yaml, structure
from mmkit.validators import non_negative, positive

#: Keys under which ``${ENV}`` references are allowed (secrets only).
SECRET_PATHS = frozenset(
    {
        "venue.settings.api_key",
        "venue.settings.secret_key",
        "venue.settings.password",
        "hedge.venue.settings.api_key",
        "hedge.venue.settings.secret_key",
        "hedge.venue.settings.password",
        "reference.sources[].settings.api_key",
        "reference.sources[].settings.secret_key",
        "store.url",
        "store.redis_url",
        "console.dashboard.control_token",
        "console.alerts.webhooks[].url",
    }
)


#: What an instance may be called: it names a directory, the control socket, Redis keys and the
#: client-order-id prefix sent to venues, so plain ASCII only (no path separator, space, ':' or look-alike).
_INSTANCE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@attrs.frozen
class EngineSection:
    #: Names this engine in logs, Redis keys and the store (one per running process).
    instance: str = "mmkit"
    tick_ms: int = attrs.field(default=100, validator=positive)
    #: Stop by itself after this many seconds (demos, smoke runs); None = until signalled.
    run_for_s: Decimal | None = None
    status_interval_s: Decimal = attrs.field(default=Decimal(1), validator=positive)
    risk_log_interval_s: Decimal = attrs.field(default=Decimal(5), validator=positive)
    #: Period of the PnL summary log line (PnLTracker's ``log_period_ns``).
    pnl_log_interval_s: Decimal = attrs.field(default=Decimal(30), validator=positive)
    #: The instance home: store, journal, audit trail, logs and reports (mmkit.app.paths.instance_home).
    #: Relative to this file. Unset (""): ``$MMKIT_HOME/<instance>``, else ``var/<instance>/`` beside this file.
    #: After loading it always holds the resolved absolute directory.
    output_dir: str = ""
    #: After this many failed controller ticks in a row the engine pulls its quotes and halts (0 = never).
    controller_max_failures: int = attrs.field(default=10, validator=non_negative)


@attrs.frozen
class VenueSection:
    """A venue we trade on: connector by alias or dotted name, its rules file and symbol."""

    connector: str
    symbol: str
    #: ``conf/venues/<rules>.yml`` or a path to a rules file.
    rules: str = ""
    #: Connector-specific settings, validated by the connector's own config class.
    settings: dict[str, Any] = attrs.Factory(dict)


@attrs.frozen
class ReplaySection:
    #: A recording directory or file (the Binance format of ../shared/data is supported).
    path: str
    #: Replay speed relative to recorded time in REALTIME runs (1 = as recorded). A run ends with its recording.
    speed: Decimal = attrs.field(default=Decimal(1), validator=positive)


@attrs.frozen
class RandomWalkSection:
    start_price: Decimal = attrs.field(default=Decimal(60000), validator=positive)
    #: Standard deviation of price moves, in basis points per square-root second.
    volatility_bps: Decimal = attrs.field(default=Decimal(5), validator=non_negative)
    seed: int = 7


@attrs.frozen
class ReferenceSourceSection:
    """One live reference venue (e.g. Coinbase through ccxt)."""

    name: str
    connector: str
    symbol: str
    rules: str = ""
    weight: Decimal = attrs.field(default=Decimal(1), validator=positive)
    settings: dict[str, Any] = attrs.Factory(dict)


@attrs.frozen
class ReferenceSection:
    """Where the fair price comes from. With nothing configured, the quoting venue's own mid is used."""

    sources: list[ReferenceSourceSection] = attrs.Factory(list)
    replay: ReplaySection | None = None
    random_walk: RandomWalkSection | None = None
    staleness_ms: int = attrs.field(default=2000, validator=positive)
    #: A fair-value move of at least this many basis points wakes the clock for an immediate tick.
    reprice_threshold_bps: Decimal = attrs.field(default=Decimal(1), validator=non_negative)
    #: Used when the sources' mids disagree: venues further than this from the median are ignored.
    outlier_bps: Decimal = attrs.field(default=Decimal(50), validator=positive)


@attrs.frozen
class StrategySection:
    #: Dotted name ``package.module:Class`` of a :class:`mmkit.strategy.Controller`.
    controller: str
    params: dict[str, Any] = attrs.Factory(dict)


@attrs.frozen
class KillSwitchSection:
    """The kill switch's limits as a desk writes them (seconds; money in ``unit``, the quote currency by default)."""

    enabled: bool = True
    max_drawdown: Decimal | None = Decimal(1000)
    max_loss: Decimal | None = Decimal(2000)
    stale_after_s: Decimal | None = Decimal(5)
    min_confidence: float = 0.3
    max_rejects: int | None = 20
    reject_window_s: Decimal = attrs.field(default=Decimal(60), validator=positive)
    #: ``manual``: stays halted until reset by hand; ``auto``: resumes after ``cooldown_s`` with every trigger clear.
    resume: str = "manual"
    cooldown_s: Decimal = attrs.field(default=Decimal(30), validator=positive)
    #: Currency of max_loss / max_drawdown: quote (default), base, or the name of one of the two (e.g. USD, BTC).
    unit: str = "quote"
    #: The deliberate choice to run with no loss limit at all: required when max_loss and max_drawdown are
    #: both null (otherwise refused at load), refused while either is set (mmkit.risk.kill_switch).
    unlimited_loss: bool = False


@attrs.frozen
class RiskSection:
    #: Fields of :class:`mmkit.risk.inventory.InventoryConfig` (max_position, hedge_threshold, ...).
    inventory: dict[str, Any] = attrs.Factory(dict)
    kill_switch: KillSwitchSection = KillSwitchSection()


@attrs.frozen
class HedgeSection:
    enabled: bool = False
    venue: VenueSection | None = None
    #: Fields of the hedge executor's config (limit timeout, min/max order size...).
    params: dict[str, Any] = attrs.Factory(dict)
    #: On stop, hedge what is left of the position (if enabled).
    flatten_on_stop: bool = False


@attrs.frozen
class StoreSection:
    #: SQLAlchemy URL; default: SQLite file in the output directory.
    url: str | None = None
    redis_url: str | None = None
    #: Append-only JSONL audit trail; default: in the output directory.
    audit_path: str | None = None
    audit_fsync: str = "interval"
    sample_top_of_book_ms: int | None = None
    #: How long the store may be unreachable before quoting halts (the journal holds everything meanwhile).
    outage_grace_s: float = 5.0


@attrs.frozen
class ConsoleMetricsSection:
    """Prometheus endpoint (``/metrics``) served from its own thread; port 0 picks a free one."""

    port: int = attrs.field(default=0, validator=non_negative)
    host: str = "127.0.0.1"
    #: How often the tick copies the engine's state into the gauges (histograms are observed every tick).
    interval_ms: int = attrs.field(default=500, validator=positive)


@attrs.frozen
class ConsoleDashboardSection:
    """The live page (served on the engine's loop, mmkit.app.console.http_server); port 0 picks a free one."""

    port: int = attrs.field(default=0, validator=non_negative)
    host: str = "127.0.0.1"
    #: ``${ENV_NAME}``: with a token the page may pause/resume/flatten/cancel-all; without, read-only.
    control_token: str | None = None
    push_interval_ms: int = attrs.field(default=1000, validator=positive)

    def __attrs_post_init__(self) -> None:
        # Why: the token lets whoever holds it flatten or cancel everything. On loopback only this host's users
        # reach the port; past it, anyone on the network can try tokens, and a short one is guessed.
        if self.control_token and not _loopback(self.host) and len(self.control_token) < MIN_NETWORK_TOKEN_LEN:
            raise ValueError(
                f"control_token is {len(self.control_token)} characters and the dashboard listens on {self.host} "
                f"(beyond this host): use a random token of at least {MIN_NETWORK_TOKEN_LEN} characters "
                "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`), or listen on 127.0.0.1")


#: Shortest dashboard control token accepted when the page is reachable from other hosts.
MIN_NETWORK_TOKEN_LEN = 24


def _loopback(host: str) -> bool:
    """Whether ``host`` is only reachable from this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name that resolves elsewhere, or 0.0.0.0-style wildcards written oddly: not loopback


@attrs.frozen
class WebhookSection:
    url: str
    #: Extra HTTP headers (e.g. an authorization header expected by the receiver).
    headers: dict[str, str] = attrs.Factory(dict)


@attrs.frozen
class ConsoleAlertsSection:
    """Webhooks (JSON POST) on trips, venue outages, refused starts, ledger and store problems, failed hedges."""

    webhooks: list[WebhookSection] = attrs.Factory(list)
    retries: int = attrs.field(default=3, validator=non_negative)
    backoff_s: Decimal = attrs.field(default=Decimal("0.5"), validator=positive)
    timeout_s: Decimal = attrs.field(default=Decimal(5), validator=positive)
    #: The same alert (kind + subject) is sent at most once per this many seconds; repeats are counted.
    min_interval_s: Decimal = attrs.field(default=Decimal(60), validator=non_negative)
    #: Alert when the quoting venue has been disconnected this long.
    venue_down_after_s: Decimal = attrs.field(default=Decimal(30), validator=positive)
    max_queued: int = attrs.field(default=1000, validator=positive)


@attrs.frozen
class ConsoleSection:
    """The operator console (docs/operations.md, "Operator console"): every part is off unless configured."""

    metrics: ConsoleMetricsSection | None = None
    dashboard: ConsoleDashboardSection | None = None
    alerts: ConsoleAlertsSection | None = None


@attrs.frozen
class SimulationSection:
    """What a simulated run of this file starts with: backtests, sweeps, paper trading, the sim connector.

    A section of its own, not a key of ``venue``: the same file is started live, where the account is the
    venue's and nothing here applies; under ``venue`` (a section ``hedge.venue`` shares) it would read as if
    it set or checked a real account. Amounts are checked at load (mmkit.app.backtest_balances.check_amounts);
    the assets against the quoted instrument once it is known (``mmkit backtest``: the run's, which may be
    the recording's; ``mmkit start``/``check``: the venue's).
    """

    #: Asset -> starting amount of the simulated quoting venue's account (an asset left out starts at 0);
    #: None: the documented default (mmkit.app.backtest_balances: DEFAULT_RULE for a backtest, DEMO_FUNDS_* else).
    #: Typed loosely on purpose: mmkit.app.backtest_balances.check_amounts reads it (after structuring) and
    #: names ``simulation.balances.<ASSET>`` in every refusal; after loading it is ``dict[str, Decimal]`` or None.
    balances: Any = None


@attrs.frozen
class EngineConfig:
    venue: VenueSection
    strategy: StrategySection
    engine: EngineSection = EngineSection()
    reference: ReferenceSection = ReferenceSection()
    risk: RiskSection = RiskSection()
    hedge: HedgeSection = HedgeSection()
    store: StoreSection = StoreSection()
    console: ConsoleSection = ConsoleSection()
    simulation: SimulationSection = SimulationSection()


@attrs.frozen
class LoadedConfig:
    """A validated config and where it came from (for error messages of later passes)."""

    config: EngineConfig
    path: Path
    paper: bool = False


@attrs.frozen
class ConfigOverrides:
    """Command-line changes for offline runs and demos, applied before validation and secrets."""

    reference_replay: str | None = None
    replay_speed: Decimal | None = None
    sim_hedge: bool = False
    output_dir: str | None = None
    #: Paper trading: live reference data, the quoting venue simulated (no orders reach it).
    paper: bool = False
    #: A backtest connects to nothing: every value at a secret path (venue keys, store URLs) is dropped
    #: before secrets are looked up, so a production file backtests without them in the environment.
    backtest: bool = False
    #: Demos: serve the dashboard and metrics on free loopback ports unless the file configures them.
    console: bool = False

    def apply(self, data: dict[str, Any]) -> dict[str, Any]:
        data = dict(data)
        if self.console:
            console = dict(data.get("console") or {})
            console.setdefault("dashboard", {"port": 0})
            console.setdefault("metrics", {"port": 0})
            data["console"] = console
        if self.backtest:
            data = _without_secrets(data)
        if self.paper:  # the quoting venue is simulated: its credentials are neither needed nor read
            for path in SECRET_PATHS:
                if path.startswith("venue."):
                    data = _without(data, path.split("."))
        if self.reference_replay is not None:
            replay: dict[str, Any] = {"path": self.reference_replay}
            if self.replay_speed is not None:
                replay["speed"] = self.replay_speed
            reference = {k: v for k, v in dict(data.get("reference") or {}).items() if k not in ("random_walk",)}
            data["reference"] = {**reference, "sources": [], "replay": replay}
        hedge = dict(data.get("hedge") or {})
        if self.sim_hedge and isinstance(hedge.get("venue"), dict):
            hedge["venue"] = {**hedge["venue"], "connector": "sim", "settings": {}}
            data["hedge"] = hedge
        if self.output_dir is not None:
            data["engine"] = {**dict(data.get("engine") or {}), "output_dir": self.output_dir}
        return data


def _without_secrets(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` without a value at any of :data:`SECRET_PATHS`: what a run that connects to nothing must not demand."""
    for path in SECRET_PATHS:
        data = _without(data, path.split("."))
    return data


def _without(node: Any, keys: list[str]) -> Any:
    """``node`` (copied where changed) without the value at ``keys`` (``name[]``: in every item of a list).

    Anything missing or malformed on the way is left as it is, for validation to name.
    """
    if not isinstance(node, dict):
        return node
    head, *rest = keys
    name = head.removesuffix("[]")
    if name not in node:
        return node
    if not rest:
        return {key: value for key, value in node.items() if key != name}
    child = node[name]
    if head.endswith("[]"):
        child = [_without(item, rest) for item in child] if isinstance(child, list) else child
    else:
        child = _without(child, rest)
    return {**node, name: child}


def load_engine_config(path: str | Path, overrides: ConfigOverrides | None = None) -> LoadedConfig:
    """Read and validate an engine config file; raises ConfigError naming file, key and reason."""
    file = Path(path)
    data = read_yaml(file)
    if not isinstance(data, dict):
        raise ConfigError(file, "", "the file must contain a mapping of sections")
    if overrides is not None:
        data = overrides.apply(data)
    check_secret_literals(data, file)
    check_secret_values(data, file)
    data = expand_secrets(data, set(SECRET_PATHS), file)
    config = structure(data, EngineConfig, file=file)
    config = _checked_simulation(config, file)
    _check_cross_fields(config, file)
    config = _resolve_paths(config, file, overrides)
    return LoadedConfig(config=config, path=file, paper=overrides is not None and overrides.paper)


def check_secret_literals(data: dict[str, Any], file: Path) -> None:
    """A secret is written one way only, ``"${NAME}"``; a literal value at a secret path is an error.

    Store URLs are the exception that proves the rule: a URL without a password is not a secret and
    may be written as is; one with a password inside must come from the environment.
    """
    for path in sorted(SECRET_PATHS):
        for key_path, value in _values_at(data, path.split("."), ""):
            if value is None or (isinstance(value, str) and _ENV_REFERENCE.match(value)):
                continue
            if path.startswith("store.") and not _url_has_password(value):
                continue
            raise ConfigError(file, key_path, "a secret must not be written in the file; put it in the "
                              "environment and write \"${NAME}\" here")


_ENV_REFERENCE = re.compile(r"^\$\{([A-Z_][A-Z0-9_]*)\}$")


def check_secret_values(data: dict[str, Any], file: Path) -> None:
    """A secret from the environment with spaces or a newline around it is refused, naming the variable.

    Why: ``export KEY="$(cat key.txt) "`` or a pasted line end would be sent to the venue as part of the
    key; the logon then fails far from here, with the venue's own words, after connecting. (An unset or
    empty variable is named by :func:`mmkit.conf.expand_secrets`.)
    """
    for path in sorted(SECRET_PATHS):
        for key_path, value in _values_at(data, path.split("."), ""):
            match = _ENV_REFERENCE.match(value) if isinstance(value, str) else None
            if match is None:
                continue
            secret = os.environ.get(match.group(1))
            if secret and secret != secret.strip():
                raise ConfigError(file, key_path, f"secret environment variable {match.group(1)} has leading or "
                                  "trailing whitespace (a pasted newline or space?); it would be sent as part of "
                                  "the secret")


def _url_has_password(value: object) -> bool:
    if not isinstance(value, str):
        return False
    from sqlalchemy.engine import make_url

    try:
        return make_url(value).password is not None
    except Exception:
        return "@" in value  # unparseable: be safe if it looks like it carries credentials


def _values_at(node: Any, keys: list[str], prefix: str) -> list[tuple[str, Any]]:
    """(key path, value) of every value at ``keys`` (``name[]``: every item of a list)."""
    if not isinstance(node, dict) or not keys:
        return []
    head, *rest = keys
    name = head.removesuffix("[]")
    if name not in node:
        return []
    child = node[name]
    path = f"{prefix}.{name}" if prefix else name
    if head.endswith("[]"):
        if not isinstance(child, list):
            return []
        found: list[tuple[str, Any]] = []
        for index, item in enumerate(child):
            found += _values_at(item, rest, f"{path}[{index}]") if rest else [(f"{path}[{index}]", item)]
        return found
    return _values_at(child, rest, path) if rest else [(path, child)]


def _resolve_paths(config: EngineConfig, file: Path, overrides: ConfigOverrides | None) -> EngineConfig:
    """Paths in the file are read against the file's folder; ``engine.output_dir`` becomes the instance home."""
    from mmkit.app import paths

    engine = config.engine
    home = paths.instance_home(file, engine.instance, overrides.output_dir if overrides else None,
                               configured=engine.output_dir or None)
    config = attrs.evolve(config, engine=attrs.evolve(engine, output_dir=str(home)))
    ref = config.reference
    if ref.replay is not None:
        replay = attrs.evolve(ref.replay, path=str(paths.resolve_config_path(file, ref.replay.path)))
        config = attrs.evolve(config, reference=attrs.evolve(ref, replay=replay))
    store = config.store
    if store.audit_path is not None:
        config = attrs.evolve(config, store=attrs.evolve(
            store, audit_path=str(paths.resolve_config_path(file, store.audit_path))))
    if store.url is not None and store.url.startswith("sqlite:///") and not store.url.startswith("sqlite:////"):
        database = store.url.removeprefix("sqlite:///")
        if database and database != ":memory:":
            resolved = paths.resolve_config_path(file, database)
            config = attrs.evolve(config, store=attrs.evolve(config.store, url=f"sqlite:///{resolved}"))
    return config


def _check_values(config: EngineConfig, file: Path) -> None:
    """Values of the right type that a run would still get wrong (checked here to name the whole key path)."""
    instance = config.engine.instance
    if not _INSTANCE_NAME.fullmatch(instance):
        raise ConfigError(file, "engine.instance", f"{instance!r} is not an instance name: 1 to 64 ASCII letters, "
                          "digits, '.', '_' or '-', starting with a letter or digit (it names a directory, the "
                          "control socket, Redis keys and the client order ids sent to the venue)")
    if config.engine.run_for_s is not None and config.engine.run_for_s <= 0:
        raise ConfigError(file, "engine.run_for_s", f"must be positive when set, got {config.engine.run_for_s} "
                          "(leave it out to run until stopped)")
    for name in ("metrics", "dashboard"):
        part = getattr(config.console, name)
        if part is not None and part.port > 65535:  # negative ports are refused by the section itself
            raise ConfigError(file, f"console.{name}.port", f"must be a TCP port (0 to 65535; 0 picks a free one), "
                              f"got {part.port}")
    grace = config.store.outage_grace_s
    if not math.isfinite(grace):  # NaN compares false with every elapsed time: a store outage would never halt
        raise ConfigError(file, "store.outage_grace_s", f"must be a finite number of seconds, got {grace}")
    if grace < 0:
        raise ConfigError(file, "store.outage_grace_s", f"must not be negative, got {grace}")


def _checked_simulation(config: EngineConfig, file: Path) -> EngineConfig:
    """``simulation.balances`` as exact Decimals: numbers as the rest of the file reads them, finite, not
    negative; anything else refused naming ``simulation.balances.<ASSET>``."""
    from mmkit.app.backtest_balances import BalanceError, check_amounts

    balances = config.simulation.balances
    if balances is None:
        return config
    try:
        amounts = check_amounts(balances, "simulation.balances")
    except BalanceError as exc:
        raise ConfigError(file, exc.key, exc.reason) from None
    return attrs.evolve(config, simulation=attrs.evolve(config.simulation, balances=amounts))


def _check_cross_fields(config: EngineConfig, file: Path) -> None:
    _check_values(config, file)
    if config.hedge.enabled and config.hedge.venue is None:
        raise ConfigError(file, "hedge.venue", "hedging is enabled but no hedge venue is configured")
    ref = config.reference
    if ref.replay is not None and ref.random_walk is not None:
        raise ConfigError(file, "reference", "choose one of replay and random_walk, not both")
    if ref.sources and (ref.replay is not None or ref.random_walk is not None):
        # mmkit.app.build: a live venue prices off the sources, the simulated venue off the replay or walk
        other = "replay" if ref.replay is not None else "random_walk"
        raise ConfigError(file, "reference", f"choose one of sources, replay and random_walk: with sources and "
                          f"{other} one of them is silently unused (a live venue prices off the sources, the sim "
                          f"venue off {other}); --reference-replay replaces the sources for an offline run")
    if ":" not in config.strategy.controller:
        raise ConfigError(
            file, "strategy.controller", "expected a dotted name like 'strategies.simple:SimpleController'"
        )
    if config.store.audit_fsync not in ("always", "interval", "never"):
        raise ConfigError(file, "store.audit_fsync", "must be one of always, interval, never")
    _check_hedge_market(config, file)
    if config.hedge.flatten_on_stop and not config.hedge.enabled:
        raise ConfigError(file, "hedge.flatten_on_stop", "flatten_on_stop is true but hedge.enabled is false: "
                          "a stop would leave the position as it is; enable hedging or set flatten_on_stop: false")
    _check_reference_sources(config.reference.sources, file)
    _check_risk_limits(config, file)


def _check_hedge_market(config: EngineConfig, file: Path) -> None:
    """Hedging on the market we quote is refused: hedge orders would trade against our own quotes (a wash
    trade), and a second session with the quoting session's credentials may log it out (FIX comp ids).

    Two simulated venues are two separate exchanges (mmkit.app.build), so they may share rules and symbol.
    """
    hedge = config.hedge.venue
    if not config.hedge.enabled or hedge is None or hedge.connector in ("sim", "mmkit.sim"):
        return
    venue = config.venue
    if (hedge.connector, hedge.rules, hedge.symbol) == (venue.connector, venue.rules, venue.symbol):
        raise ConfigError(file, "hedge.venue", f"the same market ({venue.rules or venue.connector} {venue.symbol}) "
                          "as venue: hedges would trade against our own quotes; hedge on another venue or symbol")


def _check_reference_sources(sources: list[ReferenceSourceSection], file: Path) -> None:
    """Each reference market once, under one name.

    The price aggregator keys its venues by name, so a second source with a taken name silently replaced
    the first; one market under two names counted twice in the fair value and could outvote the outlier
    filter (``outlier_bps``) with a single venue's bad price.
    """
    names: dict[str, int] = {}
    markets: dict[tuple[str, str, str], int] = {}
    for index, source in enumerate(sources):
        key = f"reference.sources[{index}]"
        if source.name in names:
            raise ConfigError(file, f"{key}.name", f"{source.name!r} is also the name of "
                              f"reference.sources[{names[source.name]}]: each source needs its own name")
        names[source.name] = index
        market = (source.connector, source.rules or source.name, source.symbol)
        if market in markets:
            raise ConfigError(file, key, f"the same market ({market[1]} {source.symbol}) as "
                              f"reference.sources[{markets[market]}]: it would count twice in the fair value")
        markets[market] = index


def _check_loss_limits(ks: KillSwitchSection, file: Path) -> None:
    """No loss limit at all only on purpose: both PnL limits null needs ``unlimited_loss: true``, which needs both null.

    Why refused rather than warned: a config whose limits were nulled (a template, a test setting left in)
    ran a live engine with no loss protection and said nothing. Checked even when the switch is disabled,
    like its other values. One limit null is fine: the other still protects.
    """
    unset = ks.max_loss is None and ks.max_drawdown is None
    if unset and not ks.unlimited_loss:
        raise ConfigError(file, "risk.kill_switch.max_loss",
                          "max_loss and max_drawdown are both null: the engine would run with no loss limit at all; "
                          "set at least one, or write risk.kill_switch.unlimited_loss: true to run without one on "
                          "purpose")
    if ks.unlimited_loss and not unset:
        limits = ", ".join(f"{name} {getattr(ks, name)}" for name in ("max_loss", "max_drawdown")
                           if getattr(ks, name) is not None)
        raise ConfigError(file, "risk.kill_switch.unlimited_loss",
                          f"is true but a loss limit is set ({limits}; a limit left out takes its default): "
                          "write max_loss: null and max_drawdown: null to run with no loss limit, or drop "
                          "unlimited_loss")


def _check_risk_limits(config: EngineConfig, file: Path) -> None:
    """Limits that are each valid alone but contradict each other (the reason names both values)."""
    from mmkit.risk.inventory import InventoryConfig

    inventory = structure(config.risk.inventory, InventoryConfig, file=file, root="$.risk.inventory")
    hedge, limit, emergency = inventory.hedge_threshold, inventory.max_position, inventory.emergency_position
    if hedge > 0 and hedge >= limit:
        raise ConfigError(file, "risk.inventory.hedge_threshold",
                          f"hedge_threshold ({hedge}) must be below max_position ({limit}): "
                          "a hedge must start before quoting stops")
    if emergency <= limit:
        raise ConfigError(file, "risk.inventory.emergency_position",
                          f"emergency_position ({emergency}) must be above max_position ({limit})")
    # Checked even when disabled: a switch turned back on in a hurry must already hold sane limits.
    ks = config.risk.kill_switch
    for name in ("max_drawdown", "max_loss", "stale_after_s"):
        value = getattr(ks, name)
        if value is not None and value <= 0:
            raise ConfigError(file, f"risk.kill_switch.{name}", f"must be positive when set, got {value}")
    if ks.max_rejects is not None and ks.max_rejects < 1:
        raise ConfigError(file, "risk.kill_switch.max_rejects", f"must be at least 1 when set, got {ks.max_rejects}")
    _check_loss_limits(ks, file)
    if not 0 <= ks.min_confidence <= 1:
        raise ConfigError(file, "risk.kill_switch.min_confidence", f"must be in [0, 1], got {ks.min_confidence}")
    if ks.resume not in ("manual", "auto"):
        raise ConfigError(file, "risk.kill_switch.resume", f"must be manual or auto, got {ks.resume!r}")
    tick_s = Decimal(config.engine.tick_ms) / 1000
    if ks.stale_after_s is not None and ks.stale_after_s <= tick_s:
        raise ConfigError(file, "risk.kill_switch.stale_after_s",
                          f"stale_after_s ({ks.stale_after_s}) must be longer than one tick ({tick_s} s)")
    if ks.max_drawdown is not None and ks.max_loss is not None and ks.max_loss < ks.max_drawdown / 10:
        raise ConfigError(file, "risk.kill_switch.max_loss",
                          f"max_loss ({ks.max_loss}) is less than a tenth of max_drawdown ({ks.max_drawdown}):"
                          " check the units (both are in the quote currency)")
