"""The one interface every venue implements, and the venue's rules as data.

Order entry is *submit-only* on the tick path: ``place``, ``cancel``,
``replace``, ``cancel_all`` and ``request_order_status`` return at once and
their outcome arrives later as an event in the connector's inbox (accepted,
rejected, canceled, fill, status report, not found, query failed). That keeps
the tick synchronous, lets the same executor drive a FIX session, a REST API
and the simulator, and makes a backtest deterministic.

The ``fetch_*`` coroutines are for start-up and reconciliation only, where
the engine may await. They raise :class:`OrderNotFoundError` when the venue
definitively has no such order and :class:`TransientVenueError` when we
could not ask: the two must never be confused (a network error is not a
lost order).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import attrs

from mmkit.conf import ConfigError, load_yaml, shipped_conf_dir
from mmkit.instrument import IncrementBand, Instrument
from mmkit.model import NS_PER_MS, NS_PER_S, Balance, Fill, OrderRequest, OrderStatusReport, ReplaceRequest, VenueEvent

if TYPE_CHECKING:
    import asyncio


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


class ConnectorError(Exception):
    """Base class for connector failures."""


class OrderNotFoundError(ConnectorError):
    """Definitive: the venue answered that it has no such order."""


class TransientVenueError(ConnectorError):
    """We could not ask (timeout, disconnect, 5xx, rate limited). The order's state is unknown, not lost."""


class NotConnectedError(TransientVenueError):
    """The session is down; nothing was sent."""


# --------------------------------------------------------------------------
# Venue rules
# --------------------------------------------------------------------------


@attrs.frozen(slots=True)
class RateLimit:
    """At most ``max_count`` order actions in any window of ``window_ms``."""

    max_count: int
    window_ms: int

    @property
    def window_ns(self) -> int:
        return self.window_ms * NS_PER_MS


@attrs.frozen(slots=True)
class PenaltyStep:
    """Extra order-rate cost of acting on an order younger than ``max_age_ms``."""

    max_age_ms: int
    cost: Decimal


@attrs.frozen(slots=True)
class OrderRateCounterConfig:
    """A venue's decaying per-pair order-rate counter (Kraken's trading rate limit).

    Each place adds ``place_cost``; a cancel adds the first ``cancel_penalties``
    step the order's age is under; a replace adds ``replace_cost`` plus its own
    step; the counter decays by ``decay_per_s``; the venue refuses what would
    take it past ``max_count``. The model lives in ``mmkit.execution.rate_models``.
    """

    max_count: Decimal
    decay_per_s: Decimal
    place_cost: Decimal = Decimal(1)
    replace_cost: Decimal = Decimal(1)
    cancel_penalties: list[PenaltyStep] = attrs.Factory(list)
    replace_penalties: list[PenaltyStep] = attrs.Factory(list)


@attrs.frozen(slots=True)
class FeeSchedule:
    """Fees in basis points of notional; negative maker fee = rebate."""

    maker_bps: Decimal = Decimal(0)
    taker_bps: Decimal = Decimal(0)

    def fee(self, notional: Decimal, is_maker: bool) -> Decimal:
        return notional * (self.maker_bps if is_maker else self.taker_bps) / Decimal(10_000)


@attrs.frozen(slots=True)
class IncrementBandConfig:
    min_price: Decimal
    tick: Decimal
    lot: Decimal


@attrs.frozen(slots=True)
class InstrumentConfig:
    symbol: str
    base: str
    quote: str
    increments: list[IncrementBandConfig]
    min_notional: Decimal = Decimal(0)
    min_qty: Decimal = Decimal(0)
    max_qty: Decimal | None = None
    price_band_pct: Decimal | None = None
    #: The venue's own name for the symbol when it differs (e.g. Kraken "XBT/USD").
    venue_symbol: str | None = None
    #: Contract-sized instruments (futures): quote value of one contract, and whether it is inverse.
    contract_size: Decimal | None = None
    inverse: bool = False
    #: A margined contract (perpetual or future): a simulated venue does not check its orders against the spot
    #: balances (``Instrument.derivative``). Inverse and contract-sized instruments are derivatives anyway.
    derivative: bool = False


@attrs.frozen(slots=True)
class VenueRulesConfig:
    """The YAML shape of ``conf/venues/<venue>.yml``."""

    venue: str
    instruments: list[InstrumentConfig]
    fees: FeeSchedule = FeeSchedule()
    rate_limits: list[RateLimit] = attrs.Factory(list)
    order_rate_counter: OrderRateCounterConfig | None = None
    duplicate_order_window_ms: int = 0
    supports_replace: bool = False
    supports_post_only: bool = True
    supports_market_orders: bool = True
    supports_fill_history: bool = True
    cancel_on_disconnect: bool = False
    #: Seconds an order may stay PENDING_* before its status is queried.
    pending_timeout_s: Decimal = Decimal(5)
    #: Seconds between re-syncs of every open order's status with the venue (0 disables). Only on venues
    #: whose status query leaves the order alone (StatusCapabilities.passive_status).
    resync_interval_s: Decimal = Decimal(30)


@attrs.frozen(slots=True)
class VenueRules:
    """Everything the engine must know about how a venue treats orders."""

    venue: str
    instruments: tuple[Instrument, ...]
    fees: FeeSchedule = FeeSchedule()
    rate_limits: tuple[RateLimit, ...] = ()
    #: A decaying per-pair counter on top of (or instead of) the windows; None where the venue has none.
    order_rate_counter: OrderRateCounterConfig | None = None
    duplicate_order_window_ns: int = 0
    supports_replace: bool = False
    supports_post_only: bool = True
    supports_market_orders: bool = True
    supports_fill_history: bool = True
    cancel_on_disconnect: bool = False
    pending_timeout_ns: int = 5 * NS_PER_S
    venue_symbols: tuple[tuple[str, str], ...] = ()
    #: Period of the open-order re-sync (0: none); see VenueRulesConfig.resync_interval_s.
    resync_interval_ns: int = 30 * NS_PER_S

    def instrument(self, symbol: str) -> Instrument:
        for instrument in self.instruments:
            if instrument.symbol == symbol:
                return instrument
        raise KeyError(f"{self.venue} has no instrument {symbol!r}")

    def venue_symbol(self, symbol: str) -> str:
        return dict(self.venue_symbols).get(symbol, symbol)

    @classmethod
    def from_config(cls, config: VenueRulesConfig) -> VenueRules:
        instruments = tuple(
            Instrument(
                venue=config.venue,
                symbol=item.symbol,
                base=item.base,
                quote=item.quote,
                increments=[IncrementBand(b.min_price, b.tick, b.lot) for b in item.increments],
                min_notional=item.min_notional,
                min_qty=item.min_qty,
                max_qty=item.max_qty,
                price_band=None if item.price_band_pct is None else item.price_band_pct / 100,
                contract_size=item.contract_size,
                inverse=item.inverse,
                derivative=item.derivative,
            )
            for item in config.instruments
        )
        return cls(
            venue=config.venue,
            instruments=instruments,
            fees=config.fees,
            rate_limits=tuple(config.rate_limits),
            order_rate_counter=config.order_rate_counter,
            duplicate_order_window_ns=config.duplicate_order_window_ms * NS_PER_MS,
            supports_replace=config.supports_replace,
            supports_post_only=config.supports_post_only,
            supports_market_orders=config.supports_market_orders,
            supports_fill_history=config.supports_fill_history,
            cancel_on_disconnect=config.cancel_on_disconnect,
            pending_timeout_ns=int(config.pending_timeout_s * NS_PER_S),
            venue_symbols=tuple((i.symbol, i.venue_symbol) for i in config.instruments if i.venue_symbol),
            resync_interval_ns=int(config.resync_interval_s * NS_PER_S),
        )


#: Where the shipped venue rule files live (the checkout's conf/venues, or the installed package's copy).
DEFAULT_VENUES_DIR = shipped_conf_dir("venues")


def load_venue_rules(venue_or_path: str | Path, venues_dir: Path | None = None) -> VenueRules:
    """Load ``conf/venues/<venue>.yml`` (or an explicit path) into VenueRules.

    Errors name the file, the key path and the reason (see :mod:`mmkit.conf`).
    """
    path = Path(venue_or_path)
    if path.suffix not in (".yml", ".yaml"):
        path = (venues_dir or DEFAULT_VENUES_DIR) / f"{venue_or_path}.yml"
    config = load_yaml(path, VenueRulesConfig)
    try:
        return VenueRules.from_config(config)
    except ValueError as exc:
        raise ConfigError(path, "instruments", str(exc)) from exc


@attrs.frozen
class ConnectorContext:
    """What the engine gives a connector factory besides its own settings.

    A connector class named in a config (``connectors.truex:TrueXConnector``)
    provides ``from_config(settings, *, rules, symbol, context) -> Connector``
    and validates ``settings`` itself, raising ``mmkit.conf.ConfigError`` with
    ``context.file`` and ``context.key_path`` so that errors stay located.
    """

    file: str
    key_path: str
    now_ns: Callable[[], int]
    output_dir: str = "var"
    instance: str = "mmkit"


# --------------------------------------------------------------------------
# Inbox
# --------------------------------------------------------------------------


class Inbox:
    """Events from I/O, in arrival order, drained once per tick.

    ``put`` is for code already on the engine loop; ``put_threadsafe`` is for
    foreign threads (quickfix callbacks): it hands the event to the loop with
    ``call_soon_threadsafe`` so ordering with loop-side events is preserved.
    """

    def __init__(self) -> None:
        self._events: deque[VenueEvent] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._taps: list[Callable[[VenueEvent], None]] = []
        self.received = 0
        self.tap_errors = 0

    def add_tap(self, tap: Callable[[VenueEvent], None]) -> None:
        """Call ``tap`` with every event as it arrives, on the engine loop, before the next tick.

        For cheap, non-strategy work that must not wait for the tick, such as
        feeding the price aggregator so a big move can ``wake()`` the clock.
        A failing tap is counted and never stops the event from being queued.
        """
        self._taps.append(tap)

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._loop_thread = threading.get_ident()

    def put(self, event: VenueEvent) -> None:
        self.received += 1
        self._events.append(event)
        for tap in self._taps:
            try:
                tap(event)
            except Exception:
                self.tap_errors += 1

    def put_threadsafe(self, event: VenueEvent) -> None:
        loop = self._loop
        if loop is None or threading.get_ident() == self._loop_thread:
            self.put(event)
            return
        try:
            loop.call_soon_threadsafe(self.put, event)
        except RuntimeError:  # loop closed during shutdown: keep the event rather than lose it
            self.put(event)

    def drain(self) -> list[VenueEvent]:
        events = list(self._events)
        self._events.clear()
        return events

    def __len__(self) -> int:
        return len(self._events)


# --------------------------------------------------------------------------
# The protocol
# --------------------------------------------------------------------------


@runtime_checkable
class Connector(Protocol):
    """A normalized venue. See the module docstring for the submit/event contract."""

    @property
    def venue(self) -> str: ...

    @property
    def rules(self) -> VenueRules: ...

    @property
    def connected(self) -> bool: ...

    async def connect(self) -> None: ...

    async def disconnect(self) -> None: ...

    def subscribe_book(self, symbol: str) -> None: ...

    def subscribe_trades(self, symbol: str) -> None: ...

    def place(self, order: OrderRequest) -> None:
        """Submit a new order. Outcome: OrderAccepted / OrderRejected (+ Fill) events."""

    def cancel(self, client_id: str, symbol: str) -> None:
        """Submit a cancel. Outcome: OrderCanceled / OrderCancelRejected events."""

    def replace(self, request: ReplaceRequest) -> None:
        """Submit a cancel/replace (if ``rules.supports_replace``).

        Outcome: OrderReplaced / OrderCancelRejected.
        """

    def cancel_all(self, symbol: str | None = None) -> None:
        """Cancel every order of ours (on ``symbol``); outcome as OrderCanceled events."""

    def request_order_status(self, client_id: str, symbol: str) -> None:
        """Ask for one order's status. Outcome: OrderStatusReport / OrderNotFound / OrderQueryFailed."""

    async def fetch_order_status(self, client_id: str, symbol: str) -> OrderStatusReport: ...

    async def fetch_open_orders(self, symbol: str | None = None) -> list[OrderStatusReport]: ...

    async def fetch_balances(self) -> list[Balance]: ...

    async def fetch_fills(self, symbol: str, since_ns: int) -> list[Fill]:
        """Our fills since ``since_ns`` (empty when ``rules.supports_fill_history`` is False)."""

    def drain(self) -> list[VenueEvent]:
        """Every event received since the last drain, in arrival order."""


# --------------------------------------------------------------------------
# Capability profile (additive: a connector without one gets FULL_STATUS_QUERIES)
# --------------------------------------------------------------------------


@attrs.frozen(slots=True)
class StatusCapabilities:
    """Which status queries a venue really offers, so recovery and run-time checks know what they lean on.

    ``order_status`` / ``open_orders``: the venue has a passive query for
    one order's status and for the list of open orders (FIX 35=H / 35=AF, a
    REST endpoint). ``status_by_cancel``: without them the connector learns
    an order's state from a cancel's answer (its ExecutionReport or
    OrderCancelReject carries OrdStatus and CumQty), so *asking about a live
    order cancels it*; ``fetch_open_orders`` is then the connector's own view
    (orders it saw acknowledged and not finished), which a venue with
    ``cancel_on_disconnect`` keeps truthful across restarts.
    ``filled_spans_replaces``: a status answer's filled quantity counts the
    whole venue order across replaces (FIX CumQty), not only the ClOrdID
    asked about (the simulator's), so it is set against the ledger's per
    venue order id (mmkit.stream, "ledger ahead of venue").
    """

    order_status: bool = True
    open_orders: bool = True
    status_by_cancel: bool = False
    filled_spans_replaces: bool = False

    @property
    def passive_status(self) -> bool:
        """True when asking about an order leaves it alone (so periodic re-syncs may ask)."""
        return self.order_status and not self.status_by_cancel


#: What a connector that declares nothing is assumed to offer (every connector before the profile existed).
FULL_STATUS_QUERIES = StatusCapabilities()


@runtime_checkable
class DeclaresCapabilities(Protocol):
    """A connector that declares its :class:`StatusCapabilities` (optional; see :func:`status_capabilities`)."""

    @property
    def status_capabilities(self) -> StatusCapabilities: ...


def status_capabilities(connector: object) -> StatusCapabilities:
    """The connector's declared status capabilities, or :data:`FULL_STATUS_QUERIES` when it declares none."""
    declared = getattr(connector, "status_capabilities", None)
    return declared if isinstance(declared, StatusCapabilities) else FULL_STATUS_QUERIES


@runtime_checkable
class QuotingGuard(Protocol):
    """A connector that can say why quotes must not rest on its venue now (optional; see :func:`quoting_guard`).

    Why: some venues protect resting quotes with something the connector keeps
    alive (a venue-side dead man's switch refreshed over REST). While that
    protection is failing, the session may still answer, so ``connected`` stays
    True (cancels and hedges must go on), but quoting must stop: the engine
    reads the reason every tick, before the controller, and a reason pulls the
    quotes and keeps them off until it clears. The connector logs the reason
    when it appears.
    """

    def quoting_halt_reason(self) -> str | None: ...


def quoting_guard(connector: object) -> Callable[[], str | None] | None:
    """The connector's ``quoting_halt_reason``, or None when it declares none (nothing to check per tick)."""
    guard = getattr(connector, "quoting_halt_reason", None)
    return guard if callable(guard) else None


def health_counters(connector: object) -> dict[str, int] | None:
    """The connector's optional ``health_counters()``: what it caught and handled by itself, or None.

    Why: a connector survives a lot without the engine hearing of it (a malformed trade skipped and
    re-read, a ledger sweep that failed and was retried, a loop that died and was restarted, a stale
    REST answer ignored). Each is logged once, but a log scrolls; these counts go into the final
    report so that a run that "went fine" says how much went wrong underneath.
    """
    method = getattr(connector, "health_counters", None)
    if not callable(method):
        return None
    counters = method()
    return {str(k): int(v) for k, v in counters.items()}


def rules_for(instruments: Iterable[Instrument], venue: str, **kwargs: object) -> VenueRules:
    """Build VenueRules in code (tests, simple sims) with the same type the YAML produces."""
    return VenueRules(venue=venue, instruments=tuple(instruments), **kwargs)  # type: ignore[arg-type]
