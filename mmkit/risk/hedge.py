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
* **Its own gate, not the quoting kill switch.** A tripped kill switch pulls
  the quotes, but the largest exposure is exactly the one it leaves behind
  (an inventory emergency trips it), so hedging keeps reducing inventory
  while quoting is halted. Hedging stops only on its own, named conditions
  (:data:`STOP_VENUE_DOWN`: the hedge venue's session is down;
  :data:`STOP_LOSS_LIMIT`: what hedging has cost reached ``max_loss``;
  :data:`STOP_HELD`: the engine held it for good, :meth:`HedgeExecutor.hold`,
  e.g. its market claim was lost, so the books are not this run's alone). The
  loss limit is sticky until :meth:`HedgeExecutor.reset_by_hand`; a hold for
  the run.
* **Funded or reported.** With a balance view, a hedge is cut to what the
  hedge venue's available balance can pay for (base to sell, quote to buy);
  the rest is reported, never sent blindly into an insufficient-funds reject.
* **Flatten on request.** :meth:`HedgeExecutor.request_flatten` (operator
  command) hedges the whole exposure, below the threshold too, tick by tick
  until flat.

Fills of hedge orders are re-stamped ``is_hedge=True`` and handed to the
listeners (InventoryManager.on_fill, PnLTracker.on_fill).
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable, Sequence
from decimal import ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING, Protocol

import attrs
from loguru import logger

from mmkit.model import (
    MAX_CLIENT_ID_LEN,
    NS_PER_MS,
    ZERO,
    Balance,
    BalanceUpdate,
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
from mmkit.orders.ids import instance_prefix
from mmkit.risk.inventory import HedgeSignal

if TYPE_CHECKING:
    from mmkit.clock import Clock
    from mmkit.connector import Connector


class HedgeSignalSource(Protocol):
    """What the executor needs of InventoryManager."""

    @property
    def position(self) -> Decimal: ...

    def should_hedge(self, in_flight: Decimal = ZERO) -> HedgeSignal | None: ...


#: Named reasons why hedging stops (the quoting kill switch is deliberately not one of them).
STOP_VENUE_DOWN = "hedge venue down"
STOP_LOSS_LIMIT = "hedge loss limit"
STOP_HELD = "hedging held"


class Halt(Protocol):
    """Anything with a ``halted`` flag (KillSwitch)."""

    @property
    def halted(self) -> bool: ...


#: Price of the touch we would trade against: best bid for a SELL, best ask for a BUY.
TouchSource = Callable[[Side], Decimal | None]
FillListener = Callable[[Fill], None]
#: Called with (event name, detail dict) when the gate closes/opens or a hedge cannot be funded.
ProblemListener = Callable[[str, dict[str, str]], None]


class HedgeBalances:
    """What the hedge venue says we can spend, kept current from its balance events and fetches.

    Why a local view: the hedge decision runs on the tick and cannot wait for
    a REST call. The view is fed by the venue's ``BalanceUpdate`` events, by
    :meth:`set` (a snapshot fetched by the app before quoting and on a
    period) and, between snapshots, by :meth:`reserve`: what we sent since
    the last snapshot is taken out of ``available`` so two hedges in one
    second cannot spend the same coins.
    """

    def __init__(self) -> None:
        self._available: dict[str, Decimal] = {}
        self._reserved: dict[str, Decimal] = {}
        self.known = False
        self.updated_ns = 0

    def set(self, balances: Sequence[Balance], ts_ns: int) -> None:
        """A fresh snapshot: replaces the view and forgets local reservations."""
        self._available = {b.asset.upper(): b.available for b in balances}
        self._reserved.clear()
        self.known = True
        self.updated_ns = ts_ns

    def update(self, balances: Sequence[Balance], ts_ns: int) -> None:
        """A partial update (the assets it names): their reservations are settled by it."""
        for b in balances:
            asset = b.asset.upper()
            self._available[asset] = b.available
            self._reserved.pop(asset, None)
        self.known = True
        self.updated_ns = ts_ns

    def available(self, asset: str) -> Decimal:
        asset = asset.upper()
        return self._available.get(asset, ZERO) - self._reserved.get(asset, ZERO)

    def reserve(self, asset: str, amount: Decimal) -> None:
        asset = asset.upper()
        self._reserved[asset] = self._reserved.get(asset, ZERO) + amount

    def release(self, asset: str, amount: Decimal) -> None:
        """Give back what a hedge reserved and did not spend (it was canceled, rejected or expired).

        Never below zero: a snapshot or update since the reservation already settled it.
        """
        asset = asset.upper()
        left = self._reserved.get(asset, ZERO) - amount
        if left > 0:
            self._reserved[asset] = left
        else:
            self._reserved.pop(asset, None)

    def as_dict(self) -> dict[str, str]:
        return {asset: str(self.available(asset)) for asset in sorted(self._available)}

    async def refresh(self, connector: Connector) -> None:
        """Fetch a snapshot from ``connector`` (raises what the connector raises)."""
        self.set(await connector.fetch_balances(), time.time_ns())


#: Longest hedge id prefix: 3 + 4 (instance) + 7 (start ms) leaves 4 counter digits (1.7 M hedges a run).
MAX_HEDGE_PREFIX_LEN = 3


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
    #: 1 to 3 ASCII letters or digits. Ids are ``prefix + 4 digits of the instance + start ms + counter``
    #: (:meth:`HedgeExecutor.next_client_id`); a longer prefix would leave the counter no room.
    client_id_prefix: str = "H"
    #: Stop hedging once what hedging has cost (slippage against the hedge venue's mid at send,
    #: plus fees, in the hedge instrument's quote currency) reaches this. None: no limit.
    max_loss: Decimal | None = None
    #: Check the hedge venue's available balance before hedging (the app keeps the view current).
    check_balance: bool = True
    #: How often the app re-fetches the hedge venue's balances (seconds).
    balance_refresh_s: Decimal = Decimal(30)

    def __attrs_post_init__(self) -> None:
        if not ZERO < self.min_qty <= self.max_qty:
            raise ValueError(f"need 0 < min_qty <= max_qty, got {self.min_qty} / {self.max_qty}")
        if self.limit_timeout_ms <= 0 or self.protection_bps < 0:
            raise ValueError("limit_timeout_ms must be positive and protection_bps not negative")
        if self.max_loss is not None and self.max_loss <= 0:
            raise ValueError(f"max_loss must be positive (or left out), got {self.max_loss}")
        if self.balance_refresh_s <= 0:
            raise ValueError(f"balance_refresh_s must be positive, got {self.balance_refresh_s}")
        prefix = self.client_id_prefix
        if not (0 < len(prefix) <= MAX_HEDGE_PREFIX_LEN and prefix.isascii() and prefix.isalnum()):
            raise ValueError(f"client_id_prefix must be 1 to {MAX_HEDGE_PREFIX_LEN} ASCII letters or digits "
                             f"(the rest of an 18-character id is the instance, the start and a counter), "
                             f"got {prefix!r}")


@attrs.define(slots=True)
class HedgeOrder:
    """One working hedge order as the executor tracks it."""

    request: OrderRequest
    placed_ns: int
    #: The hedge venue's mid when it was sent: what its fills' cost is measured against.
    mid_at_send: Decimal | None = None
    filled: Decimal = ZERO
    accepted: bool = False
    cancel_sent: bool = False
    #: What sending it reserved on the hedge venue, per unit of size: (asset, amount). Released for the
    #: unfilled rest when it ends, so a timed-out limit does not starve its own market fallback.
    reserved: tuple[str, Decimal] | None = None

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
        balances: HedgeBalances | None = None,
        instance: str = "",
    ) -> None:
        self.connector = connector
        self.inventory = inventory
        self.touch = touch
        self.config = config or HedgeConfig()
        #: The quoting kill switch: read only to say in the log that hedging goes on while quoting is
        #: halted. It does not stop hedging (see the module docstring: hedging has its own gate).
        self.kill_switch = kill_switch
        self.listeners = list(listeners)
        #: When True (a connector used only for hedging), ``tick`` drains it itself.
        self.drain_connector = drain_connector
        #: The hedge venue's spendable balances; None = no balance check (backtests of old setups).
        self.balances = balances if self.config.check_balance else None
        self.problem_listeners: list[ProblemListener] = []
        self.instrument = connector.rules.instrument(self.config.symbol)
        self._working: dict[str, HedgeOrder] = {}
        #: Signed quantity confirmed unfilled by a timed-out limit, to go out as market next tick.
        self._fallback: Decimal = ZERO
        self._actions: deque[int] = deque()
        self._seen_fills: set[tuple[str, str]] = set()
        self._cooldown_until = 0
        self._ids = itertools.count(1)
        #: Four base36 digits of the instance name's hash (mmkit.orders.ids.instance_prefix), so that
        #: instances hedging on one account never send the same id, even when started in the same ms.
        self._id_instance = instance_prefix(instance)[2:] if instance else ""
        self._id_stem = ""
        self.orders_sent: list[OrderRequest] = []
        self.hedge_fills: list[Fill] = []
        #: What hedging has cost so far (slippage vs the hedge venue's mid at send, plus fees).
        self.hedge_cost: Decimal = ZERO
        self._loss_stop: str | None = None
        self._held: str | None = None
        self._stop_reason: str | None = None
        self._flatten_reason: str | None = None
        self._funding_problem: str | None = None
        self._halted_logged = False
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
        if self._gate_closed(ts_ns):
            return
        self._note_quoting_halt()
        self._time_out_limits(ts_ns)
        if ts_ns < self._cooldown_until:
            return
        if self._fallback != 0:
            self._send_fallback(ts_ns)
        if self._flatten_reason is not None:
            self._flatten_step(ts_ns)
            return
        signal = self.inventory.should_hedge(self.in_flight)
        if signal is None:
            return
        self._hedge(signal, ts_ns)

    def flatten(self, ts_ns: int, position: Decimal, reason: str = "flatten on stop") -> Decimal:
        """Hedge what is left of ``position``, below the threshold too (stop sequence, operator).

        Limit first, market after the timeout, as for any hedge; in-flight
        hedges count, so calling it again does not hedge twice. Returns the
        exposure not yet covered by working hedges. Does nothing while the
        hedge gate is closed (venue down, loss limit).
        """
        exposure = position + self.in_flight
        if abs(exposure) < self.config.min_qty or self._gate_closed(ts_ns):
            return exposure
        side = Side.SELL if exposure > 0 else Side.BUY
        self._hedge(HedgeSignal(side, abs(exposure), position, reason), ts_ns)
        return position + self.in_flight

    def request_flatten(self, reason: str) -> None:
        """From now on, each tick hedges the whole exposure until flat (an operator's ``flatten``)."""
        self._flatten_reason = reason
        self._log.warning("flatten requested ({}): position {}", reason, self.inventory.position)

    def reset_by_hand(self) -> bool:
        """Operator reset of the sticky loss-limit stop; returns True if it was stopped by it.

        The cost counted so far is kept: a new limit breach is measured from here
        (the operator accepted what hedging had cost).
        """
        if self._loss_stop is None:
            return False
        self._log.warning("hedge loss-limit stop reset by hand (cost so far {})", self.hedge_cost)
        self._loss_stop = None
        self._loss_base = self.hedge_cost
        return True

    def hold(self, reason: str) -> None:
        """Stop hedging for the rest of the run (:data:`STOP_HELD`): working hedges are cancelled (ours, by id),
        no fallback, no flatten, and no reset. Logged at ERROR and reported (``hedge_stopped``) at once."""
        if self._held is not None:
            return
        self._held = f"{STOP_HELD}: {reason}"
        self._cancel_all_working(self._held)
        self._fallback = ZERO
        self._gate_closed(0)

    # -- state --------------------------------------------------------------

    @property
    def in_flight(self) -> Decimal:
        """Signed size still working (+ buying, - selling), including a pending market fallback."""
        working = sum((h.request.side.sign * h.remaining for h in self._working.values()), ZERO)
        return working + self._fallback

    @property
    def working(self) -> list[HedgeOrder]:
        return list(self._working.values())

    @property
    def stop_reason(self) -> str | None:
        """Why hedging is stopped right now (starts with a ``STOP_*`` name), None while it may hedge."""
        return self._current_stop()

    @property
    def flattening(self) -> bool:
        return self._flatten_reason is not None

    @property
    def funding_problem(self) -> str | None:
        """The last hedge that could not be (fully) funded, until a hedge is funded again."""
        return self._funding_problem

    def gate_status(self) -> dict[str, str]:
        """Printable state of the hedge gate, for status pages, the control channel and reports."""
        return {
            "venue": self.connector.venue,
            "hedging": "stopped" if self._current_stop() else "active",
            "stop_reason": self._current_stop() or "",
            "flattening": self._flatten_reason or "",
            "in_flight": str(self.in_flight),
            "working": str(len(self._working)),
            "hedge_cost": str(self.hedge_cost),
            "max_loss": "" if self.config.max_loss is None else str(self.config.max_loss),
            "funding_problem": self._funding_problem or "",
            "balances": "unchecked" if self.balances is None else (
                "unknown" if not self.balances.known else
                ", ".join(f"{k} {v}" for k, v in self.balances.as_dict().items())),
        }

    # -- events -------------------------------------------------------------

    def on_event(self, event: VenueEvent) -> None:
        """Consume one event of the hedge venue; events of other orders are ignored."""
        if isinstance(event, BalanceUpdate):
            if self.balances is not None and event.venue == self.connector.venue:
                self.balances.update(event.balances, event.ts_recv)
            return
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
        if hedge.mid_at_send is not None:
            # Positive = we paid: sold under / bought over the mid at send; fees always cost.
            self.hedge_cost += fill.side.sign * (fill.price - hedge.mid_at_send) * fill.qty
        self.hedge_cost += fill.fee
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
        if self.balances is not None and hedge.reserved is not None and left > 0:
            asset, per_unit = hedge.reserved
            self.balances.release(asset, left * per_unit)
        if left > 0 and hedge.cancel_sent and not hedge.is_market and self._current_stop() is None:
            self._fallback += hedge.request.side.sign * left
            self._log.bind(client_id=hedge.request.client_id).info("limit hedge {}; {} left goes to market", how, left)

    # -- the gate -----------------------------------------------------------

    _loss_base: Decimal = ZERO

    def _current_stop(self) -> str | None:
        if self._held is not None:
            return self._held
        if self._loss_stop is not None:
            return self._loss_stop
        if not self.connector.connected:
            return f"{STOP_VENUE_DOWN}: {self.connector.venue} is not connected"
        return None

    def _gate_closed(self, ts_ns: int) -> bool:
        """Check the named stop conditions; report a change once; True while hedging must not act."""
        limit = self.config.max_loss
        if self._loss_stop is None and limit is not None and self.hedge_cost - self._loss_base >= limit:
            self._loss_stop = (
                f"{STOP_LOSS_LIMIT}: hedging cost {self.hedge_cost - self._loss_base} >= max_loss {limit}"
            )
            self._cancel_all_working(self._loss_stop)
            self._fallback = ZERO
        reason = self._current_stop()
        if reason != self._stop_reason:
            if reason is None:
                self._log.warning("hedging resumed (was: {})", self._stop_reason)
                self._report("hedge_resumed", was=self._stop_reason or "")
            else:
                self._log.error("HEDGING STOPPED: {} (position {})", reason, self.inventory.position)
                self._report("hedge_stopped", reason=reason, position=str(self.inventory.position))
            self._stop_reason = reason
        return reason is not None

    def _note_quoting_halt(self) -> None:
        halted = self.kill_switch is not None and self.kill_switch.halted
        if halted and not self._halted_logged:
            self._log.warning("quoting is halted; hedging goes on reducing the position {}", self.inventory.position)
        self._halted_logged = halted

    def _report(self, event: str, **detail: str) -> None:
        for listener in self.problem_listeners:
            try:
                listener(event, {"venue": self.connector.venue, **detail})
            except Exception:  # a broken listener must not stop hedging
                self._log.exception("hedge problem listener failed")

    def _flatten_step(self, ts_ns: int) -> None:
        position = self.inventory.position
        if abs(position) < self.config.min_qty and not self._working and self._fallback == 0:
            self._log.warning("flattened ({}): position {}", self._flatten_reason, position)
            self._flatten_reason = None
            return
        self.flatten(ts_ns, position, reason=self._flatten_reason or "flatten")

    # -- actions ------------------------------------------------------------

    def _hedge(self, signal: HedgeSignal, ts_ns: int) -> None:
        touch = self.touch(signal.side)
        if touch is None or touch <= 0:
            self._log.warning("no touch price on the hedge venue; hedge of {} deferred", signal.qty)
            return
        sign = Decimal(signal.side.sign)
        raw = touch * (1 + sign * self.config.protection_bps / Decimal(10_000))
        price = self.instrument.round_price(raw, signal.side)  # rounds toward passive: never past the protection
        remaining = self._funded(signal.side, signal.qty, price)
        while remaining >= self.config.min_qty:
            clip = self._clip(min(remaining, self.config.max_qty), price)
            if clip < self.config.min_qty or not self._rate_ok(ts_ns):
                break
            self._send(signal.side, clip, price, OrderType.LIMIT, ts_ns=ts_ns)
            remaining -= clip

    def _send_fallback(self, ts_ns: int) -> None:
        side = Side.BUY if self._fallback > 0 else Side.SELL
        touch = self.touch(side) or Decimal(1)
        far = touch * (1 + Decimal(side.sign) * Decimal("0.05"))  # what a market order may cost, at worst
        wanted = abs(self._fallback)
        funded = self._funded(side, wanted, far)
        remaining = funded
        while remaining > 0:
            clip = self._clip(min(remaining, self.config.max_qty), touch)
            if clip < self.config.min_qty:
                if funded == wanted:
                    wanted -= remaining  # a dust remainder under the venue minimum cannot be hedged
                remaining = ZERO
                break
            if not self._rate_ok(ts_ns):
                break
            if self.connector.rules.supports_market_orders:
                self._send(side, clip, None, OrderType.MARKET, ts_ns=ts_ns, funding_price=far)
            else:  # e.g. Gemini: an IOC limit far through the book is its market order
                self._send(
                    side,
                    clip,
                    self.instrument.round_price(far, side),
                    OrderType.LIMIT,
                    ts_ns=ts_ns,
                    tif=TimeInForce.IOC,
                )
            remaining -= clip
        # What was not sent (rate limit, not funded) stays pending, so no new signal hedges it twice.
        self._fallback = Decimal(side.sign) * (wanted - (funded - remaining))

    def _funded(self, side: Side, qty: Decimal, price: Decimal) -> Decimal:
        """How much of ``qty`` the hedge venue's available balance can pay for; a shortfall is reported.

        Selling needs the base asset, buying needs ``qty * price`` of the quote asset.
        """
        if self.balances is None:
            return qty
        base, quote = self.instrument.base, self.instrument.quote
        problem: str | None
        if not self.balances.known:
            problem = f"hedge of {qty} not sent: balances on {self.connector.venue} unknown"
            funded = ZERO
        else:
            if side is Side.SELL:
                funded = max(ZERO, min(qty, self.balances.available(base)))
                have = f"{self.balances.available(base)} {base}"
            else:
                funded = max(ZERO, min(qty, self.balances.available(quote) / price))
                have = f"{self.balances.available(quote)} {quote}"
            problem = None if funded >= qty else (
                f"hedge {side.value} {qty} cannot be funded on {self.connector.venue}: available {have}; "
                f"{qty - funded} not sent"
            )
        if problem != self._funding_problem:
            if problem is None:
                self._log.info("hedge venue {} funds hedges again", self.connector.venue)
            else:
                self._log.error("HEDGE NOT FUNDED: {}", problem)
                self._report("hedge_unfunded", reason=problem, position=str(self.inventory.position))
            self._funding_problem = problem
        return funded

    def _send(
        self,
        side: Side,
        qty: Decimal,
        price: Decimal | None,
        order_type: OrderType,
        *,
        ts_ns: int,
        tif: TimeInForce = TimeInForce.GTC,
        funding_price: Decimal | None = None,
    ) -> None:
        request = OrderRequest(
            client_id=self.next_client_id(),
            venue=self.connector.venue,
            symbol=self.config.symbol,
            side=side,
            qty=qty,
            price=price,
            order_type=order_type,
            tif=tif,
            ts_created=ts_ns,
        )
        hedge = HedgeOrder(request, ts_ns, mid_at_send=self._mid())
        self._working[request.client_id] = hedge
        if self.balances is not None:
            if side is Side.SELL:
                hedge.reserved = (self.instrument.base, Decimal(1))
            else:
                hedge.reserved = (self.instrument.quote, price or funding_price or ZERO)
            self.balances.reserve(hedge.reserved[0], qty * hedge.reserved[1])
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

    def _mid(self) -> Decimal | None:
        bid, ask = self.touch(Side.SELL), self.touch(Side.BUY)
        if bid is None or ask is None or bid <= 0 or ask <= 0:
            return None
        return (bid + ask) / 2

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

    def next_client_id(self) -> str:
        """``prefix + instance digits + the start's ms (7 base36 digits) + a counter``: unique, never cut.

        Why never cut: cutting an id to the venue's 18 characters drops counter digits, and the id repeats.
        An id that would not fit (over a million hedges in one run) raises instead: a duplicate id is worse.
        """
        client_id = f"{self.config.client_id_prefix}{self._id_instance}{self._id_stem}{_base36(next(self._ids))}"
        if len(client_id) > MAX_CLIENT_ID_LEN:
            raise RuntimeError(f"hedge client id {client_id} would exceed {MAX_CLIENT_ID_LEN} characters")
        return client_id


def _base36(value: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    if value == 0:
        return "0"
    out = []
    while value:
        value, rem = divmod(value, 36)
        out.append(digits[rem])
    return "".join(reversed(out))
