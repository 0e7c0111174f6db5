"""HedgeExecutor: turn InventoryManager's hedge signals into orders on the hedge venue.

Why its own component: hedging is where a market maker loses money fastest
by mistake. The rules it enforces, each for a reason:

* **In-flight hedges count.** The exposure asked about is position plus the
  signed remaining size of hedges still working (including a market fallback
  not yet sent), so a slow fill never triggers a second hedge for the same
  exposure (:class:`~mmkit.risk.hedge_orders.HedgeOrder`).
* **Marketable but protected.** The first try is a limit that crosses the
  hedge venue's touch by at most ``protection_bps``: it fills like a market
  order in a normal book but cannot sweep a thin one (:mod:`mmkit.risk.hedge_sizing`).
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
  the run (:mod:`mmkit.risk.hedge_gate`).
* **Funded or reported.** With a balance view, a hedge is cut to what the
  hedge venue's available balance can pay for (base to sell, quote to buy);
  the rest is reported, never sent blindly into an insufficient-funds reject
  (:mod:`mmkit.risk.hedge_balances`).
* **Flatten on request.** :meth:`HedgeExecutor.request_flatten` (operator
  command) hedges the whole exposure, below the threshold too, tick by tick
  until flat.

Fills of hedge orders are re-stamped ``is_hedge=True`` and handed to the
listeners (InventoryManager.on_fill, PnLTracker.on_fill).

This module is the executor: the tick, the order lifecycle on the hedge
venue and its decisions. Its parts live beside it, one job each:
``hedge_config`` (parameters), ``hedge_ids`` (client ids), ``hedge_gate``
(stop conditions, loss), ``hedge_balances`` (balance view, funding),
``hedge_sizing`` (prices, clips, rate) and ``hedge_orders`` (one working
hedge). Their public names are re-exported here, so ``mmkit.risk.hedge``
stays the one import for configs, connectors and tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

import attrs
from loguru import logger

from mmkit.model import (
    NS_PER_MS,
    ZERO,
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
from mmkit.risk.hedge_balances import HedgeBalances, HedgeFunding
from mmkit.risk.hedge_config import MAX_HEDGE_PREFIX_LEN, HedgeConfig
from mmkit.risk.hedge_gate import STOP_HELD, STOP_LOSS_LIMIT, STOP_VENUE_DOWN, Halt, HedgeGate, ProblemListener
from mmkit.risk.hedge_ids import HedgeClientIds
from mmkit.risk.hedge_orders import HedgeOrder
from mmkit.risk.hedge_sizing import (
    RateWindow,
    TouchSource,
    clip_to_lot,
    market_worst,
    protective_limit,
    touch_mid,
)
from mmkit.risk.inventory import HedgeSignal

if TYPE_CHECKING:
    from mmkit.clock import Clock
    from mmkit.connector import Connector

__all__ = [
    "MAX_HEDGE_PREFIX_LEN",
    "STOP_HELD",
    "STOP_LOSS_LIMIT",
    "STOP_VENUE_DOWN",
    "FillListener",
    "Halt",
    "HedgeBalances",
    "HedgeConfig",
    "HedgeExecutor",
    "HedgeOrder",
    "HedgeSignalSource",
    "ProblemListener",
    "TouchSource",
]


class HedgeSignalSource(Protocol):
    """What the executor needs of InventoryManager."""

    @property
    def position(self) -> Decimal: ...

    def should_hedge(self, in_flight: Decimal = ZERO) -> HedgeSignal | None: ...


FillListener = Callable[[Fill], None]


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
        self._log = logger.bind(component="hedge", venue=connector.venue, symbol=self.config.symbol)
        self._working: dict[str, HedgeOrder] = {}
        #: Signed quantity confirmed unfilled by a timed-out limit, to go out as market next tick.
        self._fallback: Decimal = ZERO
        self._rate = RateWindow()
        self._seen_fills: set[tuple[str, str]] = set()
        self._cooldown_until = 0
        self._ids = HedgeClientIds(self.config.client_id_prefix, instance)
        self.orders_sent: list[OrderRequest] = []
        self.hedge_fills: list[Fill] = []
        #: What hedging has cost so far (slippage vs the hedge venue's mid at send, plus fees).
        self.hedge_cost: Decimal = ZERO
        self._gate = HedgeGate(connector, self.config.max_loss, self._log, self._report)
        self._funding = HedgeFunding(self.instrument, connector.venue, self._log, self._report)
        self._flatten_reason: str | None = None
        self._halted_logged = False

    # -- TimeIterator -------------------------------------------------------

    def start(self, clock: Clock, ts_ns: int) -> None:
        self._ids.start(ts_ns)

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
        return self._gate.reset_by_hand(self.hedge_cost)

    def hold(self, reason: str) -> None:
        """Stop hedging for the rest of the run (:data:`STOP_HELD`): working hedges are cancelled (ours, by id),
        no fallback, no flatten, and no reset. Logged at ERROR and reported (``hedge_stopped``) at once."""
        held = self._gate.hold(reason)
        if held is None:
            return
        self._cancel_all_working(held)
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
        return self._funding.problem

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
            "funding_problem": self._funding.problem or "",
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

    # -- the gate (mmkit.risk.hedge_gate) ------------------------------------

    def _current_stop(self) -> str | None:
        return self._gate.current_stop()

    def _gate_closed(self, ts_ns: int) -> bool:
        """Check the named stop conditions; report a change once; True while hedging must not act."""
        tripped = self._gate.trip_on_loss(self.hedge_cost)
        if tripped is not None:
            self._cancel_all_working(tripped)
            self._fallback = ZERO
        return self._gate.announce(self.inventory.position)

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
        price = protective_limit(self.instrument, signal.side, touch, self.config.protection_bps)
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
        far = market_worst(side, touch)
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
        """How much of ``qty`` the hedge venue's available balance can pay for; a shortfall is reported."""
        return self._funding.funded(self.balances, side, qty, price, self.inventory.position)

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
        hedge = HedgeOrder(request, ts_ns, mid_at_send=touch_mid(self.touch))
        self._working[request.client_id] = hedge
        if self.balances is not None:
            if side is Side.SELL:
                hedge.reserved = (self.instrument.base, Decimal(1))
            else:
                hedge.reserved = (self.instrument.quote, price or funding_price or ZERO)
            self.balances.reserve(hedge.reserved[0], qty * hedge.reserved[1])
        self._rate.note(ts_ns)
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
            self._rate.note(ts_ns)
            self._log.bind(client_id=hedge.request.client_id).info("limit hedge timed out; cancelling")
            self.connector.cancel(hedge.request.client_id, hedge.request.symbol)

    def _cancel_all_working(self, why: str) -> None:
        for hedge in self._working.values():
            if not hedge.cancel_sent:
                hedge.cancel_sent = True
                self._log.bind(client_id=hedge.request.client_id).warning("cancelling hedge: {}", why)
                self.connector.cancel(hedge.request.client_id, hedge.request.symbol)

    # -- helpers ------------------------------------------------------------

    def _clip(self, qty: Decimal, price: Decimal) -> Decimal:
        return clip_to_lot(self.instrument, qty, price)

    def _rate_ok(self, ts_ns: int) -> bool:
        """True if one more order action stays within every one of the venue's rate limits."""
        return self._rate.ok(ts_ns, self.connector.rules.rate_limits)

    def next_client_id(self) -> str:
        """``prefix + instance digits + the start's ms (7 base36 digits) + a counter``: unique, never cut.

        Why never cut: cutting an id to the venue's 18 characters drops counter digits, and the id repeats.
        An id that would not fit (over a million hedges in one run) raises instead: a duplicate id is worse.
        See :mod:`mmkit.risk.hedge_ids`.
        """
        return self._ids.next()
