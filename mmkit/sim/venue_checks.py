"""The simulated venue's rules, checked where a venue checks them: at arrival.

Why a module of its own: what a venue refuses (rate limits, unknown symbol,
duplicate client ids, unsupported order types, tick/lot/notional/price band,
the duplicate-order window) is decided before the order touches a book, and
both simulated venues refuse the same things the same way. Each check
returns ``(reason, text)`` or None; the caller turns a reason into the
reject event.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal

from mmkit.connector import VenueRules
from mmkit.instrument import Instrument
from mmkit.model import OrderRequest, OrderType, RejectReason, ReplaceRequest, Side
from mmkit.sim.venue_accounts import VenueOrder

__all__ = ["RuleChecks"]

Problem = tuple[RejectReason, str]

#: Looked up once: an enum member access goes through the enum metaclass, and every order asks.
_LIMIT, _MARKET = OrderType.LIMIT, OrderType.MARKET


class RuleChecks:
    """Arrival-time rules of a simulated venue (a mixin of :class:`mmkit.sim.base_venue.SimulatedVenue`)."""

    _rules: VenueRules
    _orders: dict[str, VenueOrder]
    _instruments: dict[str, Instrument]

    def _init_checks(self, rules: VenueRules) -> None:
        self._rate_windows = [deque[int]() for _ in rules.rate_limits]
        #: Per rate limit (window ns, max count, its window of action times), read once: the rules are frozen.
        self._rate_checks = tuple(
            (limit.window_ns, limit.max_count, window)
            for limit, window in zip(rules.rate_limits, self._rate_windows, strict=True)
        )
        self._recent_places: dict[tuple[str, Side, Decimal | None, Decimal], int] = {}

    def _mid(self, symbol: str) -> Decimal | None:
        raise NotImplementedError

    def _funds_problem(
        self, inst: Instrument, side: Side, price: Decimal | None, qty: Decimal, replacing: VenueOrder | None = None,
    ) -> Problem | None:
        raise NotImplementedError  # mmkit.sim.venue_accounts.Accounts

    def _check_place(self, order: OrderRequest, ts: int) -> Problem | None:
        rules = self._rules
        if self._rate_windows and not self._rate_ok(ts):
            return RejectReason.RATE_LIMIT, "rate limit exceeded"
        symbol = order.symbol
        inst = self._instruments.get(symbol)
        if inst is None:
            return RejectReason.INVALID_MESSAGE, f"unknown symbol {symbol}"
        if order.client_id in self._orders:
            return RejectReason.DUPLICATE_CLIENT_ID, f"client id {order.client_id} already used"
        order_type = order.order_type
        if order_type is _MARKET and not rules.supports_market_orders:
            return RejectReason.OTHER, "market orders are not supported"
        if order.post_only and not rules.supports_post_only:
            return RejectReason.OTHER, "post-only is not supported"
        if order_type is _LIMIT:
            assert order.price is not None
            # The mid matters only to a price band (Instrument.check_order): without one it is not worked out.
            mid = None if inst.price_band is None else self._mid(symbol)
            reason = inst.check_order(order.price, order.qty, mid)
            if reason is not None:
                return reason, f"{reason.value}: price {order.price} qty {order.qty}"
        elif order.qty <= 0 or order.qty < inst.min_qty:
            return RejectReason.INVALID_QTY, f"qty {order.qty}"
        # After the order's own rules, as a venue checks: an order they refuse is refused for that, whatever
        # the balances; before the duplicate window, which remembers only orders that pass.
        # A market order executes at the offers whatever price it carries (_venue_place drops it): only the
        # book can cost it. Checked at its own price, a market buy carrying 0.01 passed with any balance.
        funds = self._funds_problem(inst, order.side, order.price if order_type is _LIMIT else None, order.qty)
        if funds is not None:
            return funds
        window = rules.duplicate_order_window_ns
        # Without a window nothing reads the table: the venue keeps none (it grew by one entry per order).
        if window > 0:
            key = (symbol, order.side, order.price, order.qty)
            last = self._recent_places.get(key)
            if last is not None and ts - last < window:
                return RejectReason.DUPLICATE_ORDER, "same order inside the duplicate-order window"
            self._recent_places[key] = ts
        return None

    def _check_replace(self, req: ReplaceRequest, ts: int) -> Problem | None:
        """Why the venue refuses ``req`` (the original must be open, the new client id unused), or None."""
        if not self._rules.supports_replace:
            return RejectReason.OTHER, "replace is not supported"
        if not self._rate_ok(ts):
            return RejectReason.RATE_LIMIT, "rate limit exceeded"
        old = self._orders.get(req.orig_client_id)
        if old is None or not old.status.is_open:
            return RejectReason.UNKNOWN_ORDER, "unknown order" if old is None else f"order is {old.status.value}"
        if req.client_id in self._orders:
            return RejectReason.DUPLICATE_CLIENT_ID, f"client id {req.client_id} already used"
        inst = self._instruments[old.symbol]
        reason = inst.check_order(req.price, req.qty, None if inst.price_band is None else self._mid(old.symbol))
        if reason is not None:
            return reason, f"{reason.value}: price {req.price} qty {req.qty}"
        # The replacement commits its own size at its own price; what the original committed is released.
        return self._funds_problem(inst, old.side, req.price, req.qty, replacing=old)

    def _rate_ok(self, ts: int) -> bool:
        for window_ns, max_count, window in self._rate_checks:
            oldest = ts - window_ns
            while window and window[0] <= oldest:
                window.popleft()
            if len(window) >= max_count:
                return False
        for window in self._rate_windows:
            window.append(ts)
        return True
