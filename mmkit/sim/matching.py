"""A single-instrument limit order book with exact price-time priority.

Why a real matching engine rather than "fill when the price touches": the
simulated exchange (and the local TrueX FIX exchange built on it) must treat
our orders the way a venue does — queue position, partial fills, post-only
rejects, replace that keeps or loses priority — or a strategy tuned against it
learns the wrong lessons.

Rules (see docs/simulator.md):

* Orders match best price first, then earliest priority time at that price.
* Trades print at the resting (maker) order's price.
* A limit order that crosses takes what it can, then the remainder rests
  (GTC/DAY) or is canceled (IOC). FOK executes fully or not at all. A market
  order (``price=None``) never rests.
* A post-only order that would take liquidity is rejected, never repriced.
* Replace keeps priority only when the price is unchanged and the total
  quantity is not increased; otherwise the order goes to the back of the
  queue at its (new) price and may execute if it now crosses.
* No self-trade prevention: two orders of one owner can match each other.

Fees are not this module's business; the venue layer applies them.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import attrs
from sortedcontainers import SortedDict

from mmkit.instrument import Instrument
from mmkit.model import ZERO, RejectReason, Side, TimeInForce

__all__ = ["Execution", "MatchResult", "MatchingEngine", "RestingOrder", "SimOrder"]


@attrs.frozen(slots=True)
class SimOrder:
    """An order as submitted to the exchange."""

    order_id: str
    owner: str
    client_id: str
    side: Side
    price: Decimal | None
    qty: Decimal
    post_only: bool = False
    tif: TimeInForce = TimeInForce.GTC


@attrs.frozen(slots=True)
class Execution:
    """One match between a resting (maker) order and an incoming (taker) order."""

    trade_id: str
    price: Decimal
    qty: Decimal
    ts_ns: int
    maker_order_id: str
    maker_owner: str
    maker_client_id: str
    maker_side: Side
    maker_leaves: Decimal
    taker_order_id: str
    taker_owner: str
    taker_client_id: str
    taker_side: Side
    taker_leaves: Decimal


@attrs.frozen(slots=True)
class RestingOrder:
    """A snapshot of an order resting in the book. ``qty`` is its total size (filled part included)."""

    order_id: str
    owner: str
    client_id: str
    side: Side
    price: Decimal
    qty: Decimal
    leaves_qty: Decimal
    ts_ns: int

    @property
    def filled_qty(self) -> Decimal:
        return self.qty - self.leaves_qty


@attrs.frozen(slots=True)
class MatchResult:
    """The outcome of a submit or replace."""

    accepted: bool
    reject_reason: RejectReason | None
    reject_text: str
    executions: tuple[Execution, ...]
    resting: RestingOrder | None
    canceled_qty: Decimal

    @classmethod
    def rejected(cls, reason: RejectReason, text: str) -> MatchResult:
        return cls(False, reason, text, (), None, ZERO)


@attrs.define(slots=True)
class _Live:
    """Mutable book entry; only ever exposed as a frozen RestingOrder."""

    order_id: str
    owner: str
    client_id: str
    side: Side
    price: Decimal
    qty: Decimal
    leaves: Decimal
    ts_ns: int
    post_only: bool

    def snapshot(self) -> RestingOrder:
        return RestingOrder(
            self.order_id, self.owner, self.client_id, self.side, self.price, self.qty, self.leaves, self.ts_ns
        )


class MatchingEngine:
    """One instrument's book: exact price-time priority over individual orders."""

    def __init__(self, instrument: Instrument, trade_id_prefix: str = "T") -> None:
        self.instrument = instrument
        self._prefix = trade_id_prefix
        self._trade_seq = 0
        # price -> {order_id: _Live} in arrival order (dicts keep insertion order; O(1) removal)
        self._bids: SortedDict = SortedDict()
        self._asks: SortedDict = SortedDict()
        self._orders: dict[str, _Live] = {}
        # Prices of the levels changed since the last take_changes(), per side (bids, asks); None until a
        # publisher asks for them (watch_changes), so an engine nobody publishes incrementally keeps no set.
        self._changed: tuple[set[Decimal], set[Decimal]] | None = None

    # -- incremental publication ---------------------------------------------

    def watch_changes(self) -> None:
        """Record from now on which price levels change (see :class:`mmkit.sim.book_feed.BookFeed`).

        Why: re-reading full depth after every match was a fifth of a simulated
        backtest; a publisher only needs the levels an action touched.
        """
        if self._changed is None:
            self._changed = (set(), set())

    def take_changes(self) -> tuple[set[Decimal], set[Decimal]]:
        """Prices (bids, asks) whose aggregate size may have changed since the last call; then forgets them."""
        changed = self._changed
        if changed is None:
            raise RuntimeError("take_changes() before watch_changes()")
        self._changed = (set(), set())
        return changed

    def _touch(self, side: Side, price: Decimal) -> None:
        changed = self._changed
        if changed is not None:
            changed[0 if side is Side.BUY else 1].add(price)

    def level_qty(self, side: Side, price: Decimal) -> Decimal:
        """Aggregate open size at ``price`` on ``side`` (0 when no order rests there)."""
        level = self._side_book(side).get(price)
        return ZERO if level is None else _level_qty(level)

    def nth_price(self, side: Side, n: int) -> Decimal | None:
        """The ``n``-th best price of ``side`` (1 = best), None when the side has fewer levels."""
        book = self._side_book(side)
        if n < 1 or len(book) < n:
            return None
        price: Decimal = book.peekitem(-n if side is Side.BUY else n - 1)[0]
        return price

    def best_price(self, side: Side) -> Decimal | None:
        """The best resting price of ``side`` (no size summed: the cheap question)."""
        book = self._side_book(side)
        if not book:
            return None
        price: Decimal = book.peekitem(-1 if side is Side.BUY else 0)[0]
        return price

    def crosses(self, side: Side, price: Decimal | None) -> bool:
        """Would an order on ``side`` at ``price`` (None: market) meet a resting order?"""
        return self._crosses(side, price)

    def levels_count(self, side: Side) -> int:
        return len(self._side_book(side))

    # -- queries -----------------------------------------------------------

    def get(self, order_id: str) -> RestingOrder | None:
        live = self._orders.get(order_id)
        return None if live is None else live.snapshot()

    def orders_of(self, owner: str) -> list[RestingOrder]:
        return [o.snapshot() for o in self._orders.values() if o.owner == owner]

    def cancel_owner(self, owner: str) -> int:
        """Remove every order of ``owner`` (in arrival order, as cancelling each of :meth:`orders_of` would).

        Why: the synthetic makers re-quote their whole ladder hundreds of times a
        backtest; this skips two snapshots per order. Returns how many were removed.
        """
        mine = [o for o in self._orders.values() if o.owner == owner]
        for live in mine:
            self._remove(live)
        return len(mine)

    def best_bid(self) -> tuple[Decimal, Decimal] | None:
        if not self._bids:
            return None
        price, level = self._bids.peekitem(-1)
        return price, _level_qty(level)

    def best_ask(self) -> tuple[Decimal, Decimal] | None:
        if not self._asks:
            return None
        price, level = self._asks.peekitem(0)
        return price, _level_qty(level)

    def mid(self) -> Decimal | None:
        bid, ask = self.best_price(Side.BUY), self.best_price(Side.SELL)
        if bid is None or ask is None:
            return None
        return (bid + ask) / 2

    def depth(self, side: Side, levels: int | None = None) -> list[tuple[Decimal, Decimal]]:
        """Aggregated L2 of one side, best price first."""
        out: list[tuple[Decimal, Decimal]] = []
        for price, level in self._iter_side(side):
            if levels is not None and len(out) >= levels:
                break
            out.append((price, _level_qty(level)))
        return out

    def queue_ahead(self, order_id: str) -> Decimal | None:
        """Quantity resting before ``order_id`` at its price (None if not resting)."""
        live = self._orders.get(order_id)
        if live is None:
            return None
        book = self._bids if live.side is Side.BUY else self._asks
        ahead = ZERO
        for other in book[live.price].values():
            if other.order_id == order_id:
                break
            ahead += other.leaves
        return ahead

    def __len__(self) -> int:
        return len(self._orders)

    # -- actions -----------------------------------------------------------

    def submit(self, order: SimOrder, ts_ns: int) -> MatchResult:
        """Validate, match and (if GTC/DAY with a remainder) rest one order."""
        if order.order_id in self._orders:
            return MatchResult.rejected(RejectReason.OTHER, f"order id {order.order_id} is already resting")
        reason, text = self._validate(order.price, order.qty, order.side)
        if reason is not None:
            return MatchResult.rejected(reason, text)
        if order.price is None and order.post_only:
            return MatchResult.rejected(RejectReason.POST_ONLY_WOULD_CROSS, "a market order cannot be post-only")
        if order.post_only and self._crosses(order.side, order.price):
            return MatchResult.rejected(RejectReason.POST_ONLY_WOULD_CROSS, "post-only order would take liquidity")
        if order.tif is TimeInForce.FOK and self._available(order.side, order.price) < order.qty:
            return MatchResult(True, None, "FOK not fully fillable", (), None, order.qty)
        live = _Live(
            order.order_id, order.owner, order.client_id, order.side,
            order.price if order.price is not None else ZERO,
            order.qty, order.qty, ts_ns, order.post_only,
        )
        return self._match_and_rest(live, order.price is None, order.tif, ts_ns)

    def cancel(self, order_id: str, ts_ns: int) -> RestingOrder | None:
        """Remove a resting order; None if it is not resting (unknown, filled or canceled)."""
        live = self._orders.get(order_id)
        if live is None:
            return None
        self._remove(live)
        return live.snapshot()

    def replace(
        self, order_id: str, new_order_id: str, new_client_id: str, price: Decimal, qty: Decimal, ts_ns: int
    ) -> MatchResult:
        """Cancel/replace a resting order. ``qty`` is the new total (the filled part counts).

        Priority is kept only if the price is unchanged and the total is not
        increased. ``new_order_id`` may equal ``order_id`` (venues that keep one
        order id across replaces). A post-only order stays post-only; if the
        new price would cross, the replace is rejected and the order stands.
        """
        live = self._orders.get(order_id)
        if live is None:
            return MatchResult.rejected(RejectReason.UNKNOWN_ORDER, f"order {order_id} is not resting")
        if new_order_id != order_id and new_order_id in self._orders:
            return MatchResult.rejected(RejectReason.OTHER, f"order id {new_order_id} is already resting")
        reason, text = self._validate(price, qty, live.side)
        if reason is not None:
            return MatchResult.rejected(reason, text)
        filled = live.qty - live.leaves
        if qty <= filled:
            return MatchResult.rejected(RejectReason.INVALID_QTY, f"new qty {qty} is not above filled {filled}")
        if price == live.price and qty <= live.qty:
            # In place: same queue position, smaller (or equal) size.
            level = self._side_book(live.side)[live.price]
            if new_order_id != order_id:
                items = [(k if k != order_id else new_order_id, v) for k, v in level.items()]
                level.clear()
                level.update(items)
                del self._orders[order_id]
                self._orders[new_order_id] = live
            live.order_id, live.client_id = new_order_id, new_client_id
            if live.leaves != qty - filled:
                self._touch(live.side, live.price)
            live.qty, live.leaves = qty, qty - filled
            return MatchResult(True, None, "", (), live.snapshot(), ZERO)
        if live.post_only and self._crosses(live.side, price):
            return MatchResult.rejected(RejectReason.POST_ONLY_WOULD_CROSS, "post-only replace would take liquidity")
        self._remove(live)
        moved = _Live(
            new_order_id, live.owner, new_client_id, live.side, price, qty, qty - filled, ts_ns, live.post_only
        )
        return self._match_and_rest(moved, False, TimeInForce.GTC, ts_ns)

    # -- internals ---------------------------------------------------------

    def _validate(self, price: Decimal | None, qty: Decimal, side: Side) -> tuple[RejectReason | None, str]:
        if price is None:
            ref = self.best_ask() if side is Side.BUY else self.best_bid()
            ref_price = ref[0] if ref is not None else self.instrument.increments[0].min_price
            if qty <= 0 or not self.instrument.is_on_lot(qty, ref_price) or qty < self.instrument.min_qty:
                return RejectReason.INVALID_QTY, f"qty {qty} is not a valid lot"
            if ref is None:
                return RejectReason.OTHER, "no liquidity for a market order"
            return None, ""
        reason = self.instrument.check_order(price, qty)
        if reason is not None:
            return reason, f"{reason.value}: price {price} qty {qty}"
        return None, ""

    def _side_book(self, side: Side) -> SortedDict:
        return self._bids if side is Side.BUY else self._asks

    def _iter_side(self, side: Side) -> Iterator[tuple[Decimal, dict[str, _Live]]]:
        book = self._side_book(side)
        # Iterate the SortedDict itself: its keys view reverses by indexing, one bisect per key.
        keys = reversed(book) if side is Side.BUY else iter(book)
        for price in keys:
            yield price, book[price]

    def _crosses(self, side: Side, price: Decimal | None) -> bool:
        if price is None:
            return True
        if side is Side.BUY:
            best = self.best_price(Side.SELL)
            return best is not None and price >= best
        best = self.best_price(Side.BUY)
        return best is not None and price <= best

    def _available(self, side: Side, price: Decimal | None) -> Decimal:
        total = ZERO
        for level_price, level in self._iter_side(side.opposite):
            if price is not None and (level_price > price if side is Side.BUY else level_price < price):
                break
            total += _level_qty(level)
        return total

    def _match_and_rest(self, taker: _Live, is_market: bool, tif: TimeInForce, ts_ns: int) -> MatchResult:
        executions: list[Execution] = []
        opposite = self._side_book(taker.side.opposite)
        while taker.leaves > 0 and opposite:
            price, level = opposite.peekitem(-1 if taker.side is Side.SELL else 0)
            if not is_market and (price > taker.price if taker.side is Side.BUY else price < taker.price):
                break
            for maker in list(level.values()):
                if taker.leaves <= 0:
                    break
                qty = min(maker.leaves, taker.leaves)
                maker.leaves -= qty
                taker.leaves -= qty
                self._trade_seq += 1
                executions.append(
                    Execution(
                        f"{self._prefix}{self._trade_seq}", price, qty, ts_ns,
                        maker.order_id, maker.owner, maker.client_id, maker.side, maker.leaves,
                        taker.order_id, taker.owner, taker.client_id, taker.side, taker.leaves,
                    )
                )
                if maker.leaves == 0:
                    self._remove(maker)
            self._touch(taker.side.opposite, price)
        resting: RestingOrder | None = None
        canceled = ZERO
        if taker.leaves > 0:
            if is_market or tif in (TimeInForce.IOC, TimeInForce.FOK):
                canceled = taker.leaves
            else:
                self._side_book(taker.side).setdefault(taker.price, {})[taker.order_id] = taker
                self._touch(taker.side, taker.price)
                self._orders[taker.order_id] = taker
                resting = taker.snapshot()
        return MatchResult(True, None, "", tuple(executions), resting, canceled)

    def _remove(self, live: _Live) -> None:
        book = self._side_book(live.side)
        level = book[live.price]
        del level[live.order_id]
        if not level:
            del book[live.price]
        del self._orders[live.order_id]
        self._touch(live.side, live.price)


def _level_qty(level: dict[str, _Live]) -> Decimal:
    return sum((o.leaves for o in level.values()), ZERO)
