"""HedgeExecutor: turn InventoryManager's hedge signals into orders on the hedge venue.

Why its own component: hedging is where a market maker loses money fastest
by mistake. The rules it enforces, each for a reason:

* **In-flight hedges count.** The exposure asked about is position plus the
  signed remaining size of hedges still working (including a market fallback
  not yet sent), so a slow fill never triggers a second hedge for the same
  exposure.
* **Marketable but protected.** The first try is a limit that crosses the
  hedge venue's touch by at most ``protection_bps``: it fills like a market
  order in a normal book but cannot sweep a thin one.
* **Fallback to market after ``limit_timeout_ms``.** A hedge that does not
  fill is cancelled; only the quantity the venue confirms as not filled
  goes out again, as a market order (no double hedge on a cancel/fill race).
* **Venue limits.** Orders are cut into ``max_qty`` clips, anything under
  ``min_qty`` is left alone, and the venue's order rate limits are respected.
* **Kill switch.** When it fires the executor cancels its working hedges and
  places nothing more.

Fills of hedge orders are re-stamped ``is_hedge=True`` and handed to the
listeners (InventoryManager.on_fill, PnLTracker.on_fill).
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Sequence
from decimal import ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING, Protocol

import attrs
from loguru import logger

from mmkit.model import (
    NS_PER_MS,
    ZERO,
    Fill,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderExpired,
    OrderRejected,
    OrderRequest,
    OrderStatusReport,
    OrderType,
    RejectReason,
    Side,
    TimeInForce,
    VenueEvent,
)
from mmkit.risk.inventory import HedgeSignal

if TYPE_CHECKING:
    from mmkit.clock import Clock
    from mmkit.connector import Connector


class HedgeSignalSource(Protocol):
    """What the executor needs of InventoryManager."""

    def should_hedge(self, in_flight: Decimal = ZERO) -> HedgeSignal | None: ...


class Halt(Protocol):
    """Anything with a ``halted`` flag (KillSwitch)."""

    @property
    def halted(self) -> bool: ...


#: Price of the touch we would trade against: best bid for a SELL, best ask for a BUY.
TouchSource = Callable[[Side], Decimal | None]
FillListener = Callable[[Fill], None]


@attrs.frozen(slots=True)
class HedgeConfig:
    symbol: str = "BTC/USD"
    limit_timeout_ms: int = 5_000
    #: How far past the touch the protective limit may trade.
    protection_bps: Decimal = Decimal(10)
    min_qty: Decimal = Decimal("0.001")
    max_qty: Decimal = Decimal("1.0")
    #: After a reject, wait this long before trying again (a reject loop is a rate-limit ban).
    reject_cooldown_ms: int = 1_000
    client_id_prefix: str = "H"

    def __attrs_post_init__(self) -> None:
        if not ZERO < self.min_qty <= self.max_qty:
            raise ValueError(f"need 0 < min_qty <= max_qty, got {self.min_qty} / {self.max_qty}")
        if self.limit_timeout_ms <= 0 or self.protection_bps < 0:
            raise ValueError("limit_timeout_ms must be positive and protection_bps not negative")


@attrs.define(slots=True)
class HedgeOrder:
    """One working hedge order as the executor tracks it."""

    request: OrderRequest
    placed_ns: int
    filled: Decimal = ZERO
    accepted: bool = False
    cancel_sent: bool = False

    @property
    def remaining(self) -> Decimal:
        return self.request.qty - self.filled

    @property
    def is_market(self) -> bool:
        return self.request.order_type is OrderType.MARKET


class HedgeExecutor:
    """A TimeIterator: each tick, act on the hedge signal; ``on_event`` consumes the hedge venue's events."""

    def __init__(
        self,
        connector: Connector,
        inventory: HedgeSignalSource,
        touch: TouchSource,
        *,
        config: HedgeConfig | None = None,
        kill_switch: Halt | None = None,
        listeners: Sequence[FillListener] = (),
        drain_connector: bool = False,
    ) -> None:
        self.connector = connector
        self.inventory = inventory
        self.touch = touch
        self.config = config or HedgeConfig()
        self.kill_switch = kill_switch
        self.listeners = list(listeners)
        #: When True (a connector used only for hedging), ``tick`` drains it itself.
        self.drain_connector = drain_connector
        self.instrument = connector.rules.instrument(self.config.symbol)
        self._working: dict[str, HedgeOrder] = {}
        #: Signed quantity confirmed unfilled by a timed-out limit, to go out as market next tick.
        self._fallback: Decimal = ZERO
        self._actions: deque[int] = deque()
        self._seen_fills: set[tuple[str, str]] = set()
        self._cooldown_until = 0
        self._ids = itertools.count(1)
        self._id_stem = ""
        self.orders_sent: list[OrderRequest] = []
        self.hedge_fills: list[Fill] = []
        self._log = logger.bind(component="hedge", venue=connector.venue, symbol=self.config.symbol)

    # -- TimeIterator -------------------------------------------------------

    def start(self, clock: Clock, ts_ns: int) -> None:
        self._id_stem = _base36(ts_ns // NS_PER_MS)[-7:]

    def stop(self, clock: Clock) -> None:
        for hedge in self._working.values():
            if not hedge.cancel_sent:
                hedge.cancel_sent = True
                self.connector.cancel(hedge.request.client_id, hedge.request.symbol)

    def tick(self, ts_ns: int) -> None:
        if self.drain_connector:
            for event in self.connector.drain():
                self.on_event(event)
        if self.kill_switch is not None and self.kill_switch.halted:
            self._cancel_all_working("kill switch")
            self._fallback = ZERO
            return
        self._time_out_limits(ts_ns)
        if ts_ns < self._cooldown_until:
            return
        if self._fallback != 0:
            self._send_fallback(ts_ns)
        signal = self.inventory.should_hedge(self.in_flight)
        if signal is None:
            return
        self._hedge(signal, ts_ns)

    def flatten(self, ts_ns: int, position: Decimal) -> Decimal:
        """Stop sequence: hedge what is left of ``position``, below the threshold too.

        Limit first, market after the timeout, as for any hedge; in-flight
        hedges count, so calling it again does not hedge twice. Returns the
        exposure not yet covered by working hedges.
        """
        exposure = position + self.in_flight
        if abs(exposure) < self.config.min_qty or self._halted():
            return exposure
        side = Side.SELL if exposure > 0 else Side.BUY
        self._hedge(HedgeSignal(side, abs(exposure), position, "flatten on stop"), ts_ns)
        return position + self.in_flight

    # -- state --------------------------------------------------------------

    @property
    def in_flight(self) -> Decimal:
        """Signed size still working (+ buying, - selling), including a pending market fallback."""
        working = sum((h.request.side.sign * h.remaining for h in self._working.values()), ZERO)
        return working + self._fallback

    @property
    def working(self) -> list[HedgeOrder]:
        return list(self._working.values())

    # -- events -------------------------------------------------------------

    def on_event(self, event: VenueEvent) -> None:
        """Consume one event of the hedge venue; events of other orders are ignored."""
        client_id = getattr(event, "client_id", None)
        if client_id is None or getattr(event, "venue", None) != self.connector.venue:
            return
        hedge = self._working.get(client_id)
        if isinstance(event, Fill):
            self._on_fill(event, hedge)
        elif hedge is None:
            return
        elif isinstance(event, OrderAccepted):
            hedge.accepted = True
        elif isinstance(event, OrderCanceled | OrderExpired):
            self._on_done(hedge, event.ts_recv, "canceled" if isinstance(event, OrderCanceled) else "expired")
        elif isinstance(event, OrderRejected):
            del self._working[client_id]
            self._cooldown_until = event.ts_recv + self.config.reject_cooldown_ms * NS_PER_MS
            self._log.bind(client_id=client_id).warning("hedge rejected ({}): {}", event.reason.value, event.message)
        elif isinstance(event, OrderCancelRejected):
            if event.reason is RejectReason.UNKNOWN_ORDER:
                # The venue no longer knows it: it filled or died; a status query settles which.
                self.connector.request_order_status(client_id, hedge.request.symbol)
            else:
                hedge.cancel_sent = False  # try again next tick
        elif isinstance(event, OrderStatusReport) and not event.status.is_open:
            if event.filled_qty > hedge.filled:
                self._log.bind(client_id=client_id).warning("status shows fills not yet booked; waiting for fills")
                return
            self._on_done(hedge, event.ts_recv, event.status.value.lower())

    def _on_fill(self, fill: Fill, hedge: HedgeOrder | None) -> None:
        if hedge is None or fill.key in self._seen_fills:
            return
        self._seen_fills.add(fill.key)
        hedge.filled += fill.qty
        stamped = fill if fill.is_hedge else attrs.evolve(fill, is_hedge=True)
        self.hedge_fills.append(stamped)
        self._log.bind(client_id=fill.client_id).info("hedge fill {} {} @ {}", fill.side.value, fill.qty, fill.price)
        for listener in self.listeners:
            listener(stamped)
        if hedge.remaining <= 0:
            del self._working[hedge.request.client_id]

    def _on_done(self, hedge: HedgeOrder, ts_ns: int, how: str) -> None:
        """A hedge ended without filling fully: what is left goes out as market if it was a timed-out limit."""
        self._working.pop(hedge.request.client_id, None)
        left = hedge.remaining
        if left > 0 and hedge.cancel_sent and not hedge.is_market and not self._halted():
            self._fallback += hedge.request.side.sign * left
            self._log.bind(client_id=hedge.request.client_id).info("limit hedge {}; {} left goes to market", how, left)

    # -- actions ------------------------------------------------------------

    def _hedge(self, signal: HedgeSignal, ts_ns: int) -> None:
        touch = self.touch(signal.side)
        if touch is None or touch <= 0:
            self._log.warning("no touch price on the hedge venue; hedge of {} deferred", signal.qty)
            return
        sign = Decimal(signal.side.sign)
        raw = touch * (1 + sign * self.config.protection_bps / Decimal(10_000))
        price = self.instrument.round_price(raw, signal.side)  # rounds toward passive: never past the protection
        remaining = signal.qty
        while remaining >= self.config.min_qty:
            clip = self._clip(min(remaining, self.config.max_qty), price)
            if clip < self.config.min_qty or not self._rate_ok(ts_ns):
                break
            self._send(signal.side, clip, price, OrderType.LIMIT, ts_ns=ts_ns)
            remaining -= clip

    def _send_fallback(self, ts_ns: int) -> None:
        side = Side.BUY if self._fallback > 0 else Side.SELL
        remaining = abs(self._fallback)
        touch = self.touch(side) or Decimal(1)
        while remaining > 0:
            clip = self._clip(min(remaining, self.config.max_qty), touch)
            if clip < self.config.min_qty:
                remaining = ZERO  # a dust remainder under the venue minimum cannot be hedged
                break
            if not self._rate_ok(ts_ns):
                break
            if self.connector.rules.supports_market_orders:
                self._send(side, clip, None, OrderType.MARKET, ts_ns=ts_ns)
            else:  # e.g. Gemini: an IOC limit far through the book is its market order
                far = touch * (1 + Decimal(side.sign) * Decimal("0.05"))
                self._send(
                    side,
                    clip,
                    self.instrument.round_price(far, side),
                    OrderType.LIMIT,
                    ts_ns=ts_ns,
                    tif=TimeInForce.IOC,
                )
            remaining -= clip
        self._fallback = Decimal(side.sign) * remaining

    def _send(
        self,
        side: Side,
        qty: Decimal,
        price: Decimal | None,
        order_type: OrderType,
        *,
        ts_ns: int,
        tif: TimeInForce = TimeInForce.GTC,
    ) -> None:
        request = OrderRequest(
            client_id=self._next_id(),
            venue=self.connector.venue,
            symbol=self.config.symbol,
            side=side,
            qty=qty,
            price=price,
            order_type=order_type,
            tif=tif,
            ts_created=ts_ns,
        )
        self._working[request.client_id] = HedgeOrder(request, ts_ns)
        self._actions.append(ts_ns)
        self.orders_sent.append(request)
        self._log.bind(client_id=request.client_id).info(
            "hedge {} {} {} @ {}", order_type.value, side.value, qty, price
        )
        self.connector.place(request)

    def _time_out_limits(self, ts_ns: int) -> None:
        timeout = self.config.limit_timeout_ms * NS_PER_MS
        for hedge in list(self._working.values()):
            if hedge.is_market or hedge.cancel_sent or ts_ns - hedge.placed_ns < timeout:
                continue
            hedge.cancel_sent = True
            self._actions.append(ts_ns)
            self._log.bind(client_id=hedge.request.client_id).info("limit hedge timed out; cancelling")
            self.connector.cancel(hedge.request.client_id, hedge.request.symbol)

    def _cancel_all_working(self, why: str) -> None:
        for hedge in self._working.values():
            if not hedge.cancel_sent:
                hedge.cancel_sent = True
                self._log.bind(client_id=hedge.request.client_id).warning("cancelling hedge: {}", why)
                self.connector.cancel(hedge.request.client_id, hedge.request.symbol)

    # -- helpers ------------------------------------------------------------

    def _halted(self) -> bool:
        return self.kill_switch is not None and self.kill_switch.halted

    def _clip(self, qty: Decimal, price: Decimal) -> Decimal:
        lot = self.instrument.lot_for(price)
        return (qty / lot).to_integral_value(rounding=ROUND_FLOOR) * lot

    def _rate_ok(self, ts_ns: int) -> bool:
        """True if one more order action stays within every one of the venue's rate limits."""
        limits = self.connector.rules.rate_limits
        if not limits:
            return True
        longest = max(limit.window_ns for limit in limits)
        while self._actions and ts_ns - self._actions[0] >= longest:
            self._actions.popleft()
        for limit in limits:
            recent = sum(1 for t in self._actions if ts_ns - t < limit.window_ns)
            if recent >= limit.max_count:
                return False
        return True

    def _next_id(self) -> str:
        return f"{self.config.client_id_prefix}{self._id_stem}{_base36(next(self._ids))}"[:18]


def _base36(value: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    if value == 0:
        return "0"
    out = []
    while value:
        value, rem = divmod(value, 36)
        out.append(digits[rem])
    return "".join(reversed(out))
