"""Executor: make the orders that are really live match the controller's targets.

The controller says *what* should rest, one target per (side, level) slot;
the executor decides the fewest actions that get there, within the venue's
rules and rate limits:

* an order whose price is unchanged and whose remaining size is within
  ``size_tolerance`` is **kept** (it keeps its queue priority);
* otherwise it is **replaced** in one message where the venue supports
  cancel/replace (no gap in the quote, Hummingbot #3294), else **canceled**
  and the slot re-placed once the cancel is confirmed;
* live orders whose slot has no target are canceled, and so are strays
  (orders without a slot, e.g. adopted at reconciliation);
* a slot with an order in PENDING_* waits: never two actions in flight per slot;
* targets are snapped to the instrument's tick/lot (bids down, asks up) and
  dropped, with a log line saying why, when still invalid;
* when the rate limiter is tight, cancels go first, then replaces, then
  places, innermost level first;
* with a ``position_limit`` (the inventory: ``position`` and
  ``max_position``), the worst case of the resting orders on a side (every
  one of them filled) never takes the position past the limit: new and
  replaced orders are cut to the room left, innermost level first, and when
  the position itself moved towards the limit the outermost resting orders
  are canceled (:mod:`mmkit.execution.exposure`).

``reconcile`` is synchronous and returns the actions it handed to the
connector; outcomes arrive later as events (see :meth:`Executor.on_event`
for the feedback the limiter and breaker need).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from decimal import Decimal
from typing import Protocol

import attrs
from loguru import logger

from mmkit.connector import Connector, VenueRules
from mmkit.execution.circuit_breaker import CircuitBreaker
from mmkit.execution.exposure import bound_exposure, far_from_limit
from mmkit.execution.rate_limiter import ActionKind, RateLimiter
from mmkit.instrument import Instrument
from mmkit.model import (
    ZERO,
    OrderAccepted,
    OrderCancelRejected,
    OrderRejected,
    OrderReplaced,
    OrderRequest,
    OrderType,
    RejectReason,
    Side,
    TargetQuote,
    TimeInForce,
    VenueEvent,
)
from mmkit.orders.client_order import ClientOrder, Slot
from mmkit.orders.states import PENDING_STATES, OrderState
from mmkit.orders.tracker import ClientOrderTracker


class PositionLimit(Protocol):
    """What the executor needs to know of the inventory to keep the worst case within the limit."""

    @property
    def position(self) -> Decimal: ...

    @property
    def max_position(self) -> Decimal: ...


class ExecActionKind(enum.Enum):
    PLACE = "PLACE"
    CANCEL = "CANCEL"
    REPLACE = "REPLACE"
    CANCEL_ALL = "CANCEL_ALL"


@attrs.frozen(slots=True)
class ExecAction:
    """One action the executor handed to the connector."""

    kind: ExecActionKind
    client_id: str
    slot: Slot | None = None
    side: Side | None = None
    price: Decimal | None = None
    qty: Decimal | None = None
    #: For a replace: the order being replaced.
    orig_client_id: str | None = None


#: Rejects that say nothing about the health of our order flow (normal in a fast market).
_BENIGN_REJECTS = frozenset({RejectReason.POST_ONLY_WOULD_CROSS})
_SNAP_CACHE_SIZE = 4096
# Enum members looked up once: a member access goes through the enum metaclass, and these are
# read for every action.
_SELL = Side.SELL
_LIMIT = OrderType.LIMIT
_CANCEL, _REPLACE, _PLACE = ActionKind.CANCEL, ActionKind.REPLACE, ActionKind.PLACE
_EXEC_CANCEL, _EXEC_REPLACE, _EXEC_PLACE = ExecActionKind.CANCEL, ExecActionKind.REPLACE, ExecActionKind.PLACE


@attrs.frozen(slots=True)
class _Settled:
    """The inputs of a reconcile that found nothing to do: while they hold, neither will the next one."""

    tracker_version: int
    targets: tuple[TargetQuote, ...]
    mid: Decimal | None
    size_tolerance: Decimal
    cancel_strays: bool
    position: Decimal | None


#: The PENDING_* states as a tuple: membership by identity, where the frozenset would call Enum's
#: Python-level __hash__ for every order on every reconcile.
_PENDING = tuple(PENDING_STATES)


def _any_pending(orders: list[ClientOrder]) -> bool:
    """True if an order of the slot has an action in flight (a slot usually holds one order)."""
    if len(orders) == 1:
        return orders[0].state in _PENDING
    return any(o.state in _PENDING for o in orders)


def _replace_level(item: tuple[ClientOrder, TargetQuote]) -> int:
    return item[1].level


def _target_level(target: TargetQuote) -> int:
    return target.level


class Executor:
    """Diffs targets against the tracker's live orders and acts (see the module docstring)."""

    def __init__(
        self,
        connector: Connector,
        tracker: ClientOrderTracker,
        instrument: Instrument,
        rules: VenueRules,
        rate_limiter: RateLimiter,
        size_tolerance: Decimal = Decimal("0"),
        *,
        post_only: bool = True,
        tif: TimeInForce = TimeInForce.GTC,
        breaker: CircuitBreaker | None = None,
        cancel_strays: bool = True,
        position_limit: PositionLimit | None = None,
    ) -> None:
        self.connector = connector
        self.tracker = tracker
        self.instrument = instrument
        self.rules = rules
        self.limiter = rate_limiter
        self.size_tolerance = size_tolerance
        self.post_only = post_only and rules.supports_post_only
        self.tif = tif
        self.breaker = breaker
        self.cancel_strays = cancel_strays
        #: The inventory whose max_position bounds the worst case of the resting orders (None: no bound).
        self.position_limit = position_limit
        #: Targets cut or dropped because the worst case would have passed max_position.
        self.limited_targets = 0
        self._log = logger.bind(venue=rules.venue, symbol=instrument.symbol, component="executor")
        self.dropped_targets = 0
        self.deferred_actions = 0
        #: Distinct clock times (ticks) at which the rate limiter denied at least one action: the time the
        #: quotes could not be what the strategy wanted because of the venue's limits (report:
        #: ``rate_limited_tick_pct``).
        self.rate_limited_ticks = 0
        self._last_rate_limited_ns: int | None = None
        # Snap memo, one per side so that the key needs no Side hash.
        self._bid_snaps: dict[tuple[Decimal, Decimal], tuple[Decimal, Decimal, RejectReason | None]] = {}
        self._ask_snaps: dict[tuple[Decimal, Decimal], tuple[Decimal, Decimal, RejectReason | None]] = {}
        #: What the last reconcile saw, when it found nothing to do (see :meth:`reconcile`).
        self._settled: _Settled | None = None

    # ------------------------------------------------------------------
    # Targets
    # ------------------------------------------------------------------

    def normalize(self, targets: Sequence[TargetQuote], mid: Decimal | None = None) -> dict[Slot, TargetQuote]:
        """Snap targets to tick/lot and drop invalid ones (one per slot; the first wins)."""
        return {target.slot: target for target in self._normalize(targets, mid).values()}

    def _normalize(self, targets: Sequence[TargetQuote], mid: Decimal | None) -> dict[int, TargetQuote]:
        """:meth:`normalize` keyed by ``level * 2 + (side is SELL)``: the hot path hashes no Side."""
        wanted: dict[int, TargetQuote] = {}
        band = self.instrument.price_band
        band_mid, band_limit = ZERO, None
        if mid is not None and band is not None and mid > 0:
            band_mid, band_limit = mid, mid * band
        bid_cache, ask_cache = self._bid_snaps, self._ask_snaps
        for target in targets:
            side = target.side
            is_sell = side is _SELL
            key = target.level * 2 + is_sell
            if key in wanted:
                self._drop(target, "duplicate slot")
                continue
            price, qty = target.price, target.qty
            hit = (ask_cache if is_sell else bid_cache).get((price, qty))
            if hit is None:
                hit = self._snap(side, price, qty)
            snapped_price, snapped_qty, reason = hit
            if reason is None and band_limit is not None and abs(snapped_price - band_mid) > band_limit:
                reason = RejectReason.PRICE_BAND
            if reason is not None:
                self._drop(target, reason.value)
                continue
            if snapped_price != price or snapped_qty != qty:
                wanted[key] = TargetQuote(side, target.level, snapped_price, snapped_qty)
            else:
                wanted[key] = target
        return wanted

    def _snap(self, side: Side, price: Decimal, qty: Decimal) -> tuple[Decimal, Decimal, RejectReason | None]:
        """Snapped price/qty and the static reject reason, memoized per side (controllers repeat prices a lot).

        The key is the (price, qty) *value*: Decimal("1.5") and Decimal("1.50")
        share an entry, which is sound because every result is quantized to
        the tick/lot and so does not depend on the input's exponent.
        """
        cache = self._bid_snaps if side is Side.BUY else self._ask_snaps
        key = (price, qty)
        hit = cache.get(key)
        if hit is not None:
            return hit
        inst = self.instrument
        band = inst.band_for(price)
        result: tuple[Decimal, Decimal, RejectReason | None]
        if price > ZERO and not price % band.tick and not qty % band.lot:
            # Already on the grid (what controllers that work in ticks hand over): rounding would give
            # these values back (an on-tick price floors and ceils to itself, in its own band, and so does
            # an on-lot size), so only the static check is left. The values may differ from rounding's in
            # exponent, which is sound: _normalize uses a snapped value only where it differs in value.
            result = (price, qty, inst.check_order(price, qty))
            if len(cache) >= _SNAP_CACHE_SIZE:
                cache.clear()
            cache[key] = result
            return result
        snapped_price = inst.round_price(price, side)
        if snapped_price <= ZERO:
            result = (snapped_price, qty, RejectReason.INVALID_PRICE)
        else:
            snapped_qty = inst.round_qty(qty, snapped_price)
            result = (snapped_price, snapped_qty, inst.check_order(snapped_price, snapped_qty))
        if len(cache) >= _SNAP_CACHE_SIZE:
            cache.clear()
        cache[key] = result
        return result

    def _drop(self, target: TargetQuote, why: str) -> None:
        self.dropped_targets += 1
        self._log.warning(
            "target {} L{} {}@{} dropped: {}", target.side.value, target.level, target.qty, target.price, why
        )

    # ------------------------------------------------------------------
    # Reconcile
    # ------------------------------------------------------------------

    def reconcile(self, targets: Sequence[TargetQuote], now_ns: int, mid: Decimal | None = None) -> list[ExecAction]:
        """Act so that live orders converge to ``targets``; returns the actions sent this call.

        This runs on every reference move, so it is written for speed (see
        ``bench/bench_decision.py``): slots are keyed by small ints rather than
        ``(Side, level)`` tuples (a Side hash is a Python call), and order
        state is read without going through properties.

        Most calls change nothing: the targets equal those of the last call
        and no order event arrived. When the last call found nothing to do (no
        cancel, replace or place even attempted, no target dropped), the next
        one with equal targets, against unchanged orders (the tracker's
        ``version`` has not moved), finds nothing either, and returns at once:
        every decision here compares values (snapping is memoized by value,
        orders are kept by price and size), and with no action to send, which
        Decimal object carries a value does not matter. The other inputs of
        those decisions are part of the memo too: the size tolerance,
        ``cancel_strays`` and, on an instrument with a price band, ``mid``.
        A target that is dropped is counted and logged on every call, since
        such a call is never memoized.
        """
        tracker = self.tracker
        settled = self._settled
        targets = tuple(targets)
        limit = self.position_limit
        position = None if limit is None else limit.position
        # Each value is tried by identity first: on an idle tick the runner hands over the very targets
        # tuple, mid and position objects of the last call, and Decimal equality is a call of its own.
        if (
            settled is not None
            and settled.tracker_version == tracker.version
            and (settled.targets is targets or settled.targets == targets)
            and (settled.mid is mid or self.instrument.price_band is None or settled.mid == mid)
            and (settled.position is position or settled.position == position)
            and settled.size_tolerance is self.size_tolerance
            and settled.cancel_strays is self.cancel_strays
        ):
            return []
        self._settled = None
        wanted = self._normalize(targets, mid)
        by_slot: dict[int, list[ClientOrder]] = {}
        strays: list[ClientOrder] = []
        for order in tracker.open_orders_view(self.instrument.symbol):
            slot = order.slot
            if slot is None:
                strays.append(order)
                continue
            key = slot[1] * 2 + (slot[0] is _SELL)
            group = by_slot.get(key)
            if group is None:
                by_slot[key] = [order]
            else:
                group.append(order)

        cancels: list[ClientOrder] = []
        replaces: list[tuple[ClientOrder, TargetQuote]] = []
        tol = self.size_tolerance
        exact = not tol  # |a - b| <= 0 is a == b (Decimal subtraction of unequal values is never 0)
        for key, orders in by_slot.items():
            if _any_pending(orders):
                continue  # one action in flight per slot: wait for its outcome
            target = wanted.get(key)
            if target is None:
                cancels.extend(orders)
                continue
            keep = None
            target_price, target_qty = target.price, target.qty
            for o in orders:
                request = o.request
                if request.price == target_price:
                    filled = o.filled_qty
                    remaining = max(request.qty - filled, ZERO) if filled else request.qty
                    if remaining == target_qty if exact else abs(remaining - target_qty) <= tol:
                        keep = o
                        break
            if keep is not None:
                if len(orders) > 1:
                    cancels.extend(o for o in orders if o is not keep)
                continue
            primary = orders[0]
            if len(orders) > 1:
                cancels.extend(orders[1:])
                cancels.append(primary)
            elif self.rules.supports_replace:
                replaces.append((primary, target))
            else:
                cancels.append(primary)
        places = [target for key, target in wanted.items() if key not in by_slot]
        if self.cancel_strays and strays:
            cancels.extend(o for o in strays if o.state not in _PENDING)
        limited = 0
        if limit is not None and position is not None:
            resting = tracker.open_orders_view(self.instrument.symbol)
            max_position = limit.max_position
            if not far_from_limit(resting, position, max_position, replaces, places):  # else nothing to cut
                cut = bound_exposure(self.instrument, resting, position, max_position, cancels, replaces, places)
                replaces, places, limited = cut.replaces, cut.places, cut.limited
                self.limited_targets += limited
        if not (cancels or replaces or places):
            if len(wanted) == len(targets) and not limited:  # nothing dropped (see the docstring)
                self._settled = _Settled(tracker.version, targets, mid, tol, self.cancel_strays, position)
            return []

        actions: list[ExecAction] = []
        limiter = self.limiter
        for order in cancels:
            if not limiter.try_acquire(now_ns, _CANCEL, now_ns - order.created_ns):
                self.deferred_actions += 1
                self._rate_limited(now_ns)
                continue
            request = order.request
            if tracker.cancel(request.client_id, now_ns):
                actions.append(ExecAction(_EXEC_CANCEL, request.client_id, order.slot, request.side))
        if len(replaces) > 1:
            replaces.sort(key=_replace_level)
        breaker = self.breaker
        for order, target in replaces:
            # _may_send for a replace, inlined (a full re-quote is 16 of these): no duplicate guard (it is
            # about new orders), then the breaker, then the limiter.
            if breaker is not None and not breaker.allow(now_ns):
                self.deferred_actions += 1
                continue
            if not limiter.try_acquire(now_ns, _REPLACE, now_ns - order.created_ns):
                self.deferred_actions += 1
                self._rate_limited(now_ns)
                continue
            old_id = order.request.client_id
            price, qty = target.price, target.qty
            new = tracker.replace(old_id, price, qty, now_ns)
            if new is not None:
                side = target.side
                actions.append(
                    ExecAction(_EXEC_REPLACE, new.request.client_id, (side, target.level), side, price, qty, old_id)
                )
        if len(places) > 1:
            places.sort(key=_target_level)
        venue, symbol = self.rules.venue, self.instrument.symbol
        for target in places:
            if not self._may_send(now_ns, _PLACE, target):
                continue
            side, price, qty = target.side, target.price, target.qty
            client_id = tracker.ids.next_id()  # tracker.new_client_id() without the extra call
            # Positional: (client_id, venue, symbol, side, qty, price, order_type, tif, post_only, ts_created).
            request = OrderRequest(
                client_id, venue, symbol, side, qty, price, _LIMIT, self.tif, self.post_only, now_ns
            )
            slot = (side, target.level)
            tracker.submit(request, now_ns, slot=slot)
            limiter.record_place(now_ns, side, price, qty)
            actions.append(ExecAction(_EXEC_PLACE, client_id, slot, side, price, qty))
        return actions

    def _may_send(self, now_ns: int, kind: ActionKind, target: TargetQuote, age_ns: int | None = None) -> bool:
        # The duplicate guard is about *new* orders (venues reject a repeated new order); a
        # replace modifies an existing one and is not checked.
        limiter = self.limiter
        if kind is _PLACE and limiter.is_duplicate(now_ns, target.side, target.price, target.qty):
            self.deferred_actions += 1
            return False
        if self.breaker is not None and not self.breaker.allow(now_ns):
            self.deferred_actions += 1
            return False
        if not limiter.try_acquire(now_ns, kind, age_ns):
            self.deferred_actions += 1
            self._rate_limited(now_ns)
            return False
        return True

    def _rate_limited(self, now_ns: int) -> None:
        if self._last_rate_limited_ns != now_ns:
            self._last_rate_limited_ns = now_ns
            self.rate_limited_ticks += 1

    def cancel_all(self, now_ns: int) -> list[ExecAction]:
        """Pull every order on the instrument with one venue cancel-all.

        Used on stop, disconnect and kill: it is sent even when the limiter
        would say no (a kill must not wait), but it is counted.
        """
        if not self.limiter.try_acquire(now_ns, ActionKind.CANCEL):
            self._log.warning("cancel-all sent although the rate limiter is full")
        marked = self.tracker.cancel_all(now_ns, self.instrument.symbol)
        return [ExecAction(ExecActionKind.CANCEL_ALL, o.client_id, o.slot, o.side) for o in marked]

    # ------------------------------------------------------------------
    # Feedback
    # ------------------------------------------------------------------

    def on_event(self, event: VenueEvent) -> None:
        """Feed outcomes back into the limiter (RATE_LIMIT backoff) and the breaker. Register as an order listener."""
        if isinstance(event, OrderRejected | OrderCancelRejected):
            if event.reason is RejectReason.RATE_LIMIT:
                self.limiter.on_rate_limit_reject(event.ts_recv)
            if self.breaker is not None and event.reason not in _BENIGN_REJECTS:
                self.breaker.record_failure(event.ts_recv, event.reason.value)
        elif isinstance(event, OrderAccepted | OrderReplaced) and self.breaker is not None:
            self.breaker.record_success(event.ts_recv)

    def live_slots(self) -> dict[Slot, OrderState]:
        """State of the order in each slot (for health pages and tests)."""
        return {o.slot: o.state for o in self.tracker.open_orders(self.instrument.symbol) if o.slot is not None}
