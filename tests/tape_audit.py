"""An independent audit of a replay backtest's fills against the recorded tape (setup ``replay``).

Why: the recorded venue decides every fill of a replay backtest, through a
queue model, a compiled delivery loop and caches of our resting orders. The
identity tests show the compiled and pure paths agree with each other; this
audit asks whether what they agree on could have happened at all. It reads
only the recording and what the engine was told (orders accepted and
canceled, fills, each with its venue time), keeps its own naive book, and
lists every fill the tape does not justify:

* a fill of an order the engine never had accepted, before its acceptance,
  after its cancel took effect, on the other side, or beyond its quantity;
* a maker fill away from the order's price, or at a venue time when no
  recorded print reached that price (through it, or at it on our side of the
  book) and the recorded book did not cross it;
* maker fills justified only by prints at our price that add up to more than
  those prints traded;
* a taker fill worse than the order's limit, or at a price where the book
  showed less than was taken since that level last changed (the same
  displayed lot taken twice);
* maker fills on one side at one venue time that add up to more than the
  tape supplied there: the prints at or through our best filled price
  (at it only from the other side's aggressors), plus what the book
  displayed through that price after each of its updates then. A print of
  0.0001 through our 0.01 bid fills at most 0.0001 of it.

The venue times follow the recorded venue's clock (``market_time``
``ts_event``): a recorded event acts at its ``ts_event``, and our actions
that arrived by then act first.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from decimal import Decimal

import attrs

from mmkit.model import (
    BookDelta,
    BookSnapshot,
    Fill,
    Liquidity,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderReplaced,
    Side,
    Trade,
    VenueEvent,
)

ZERO = Decimal(0)


@attrs.define
class AuditedOrder:
    """What the engine was told about one order: its terms, and when (venue time) it went live and ended."""

    side: Side
    price: Decimal
    qty: Decimal
    accepted_ns: int | None = None
    ended_ns: int | None = None


@attrs.define
class OrderLog:
    """Collects the venue times of our orders from the engine's user stream (an order listener)."""

    terms: dict[str, tuple[Side, Decimal, Decimal]] = attrs.field(factory=dict)
    accepted: dict[str, int] = attrs.field(factory=dict)
    ended: dict[str, int] = attrs.field(factory=dict)
    replaced: int = 0

    def on_order_event(self, event: VenueEvent) -> None:
        if isinstance(event, OrderAccepted):
            self.accepted.setdefault(event.client_id, event.ts_event)
        elif isinstance(event, OrderCanceled | OrderExpired):
            self.ended.setdefault(event.client_id, event.ts_event)
        elif isinstance(event, OrderReplaced):  # the new id lives on from here; the old one ends here
            self.accepted.setdefault(event.client_id, event.ts_event)
            self.ended.setdefault(event.orig_client_id, event.ts_event)
            self.replaced += 1

    def orders(self) -> dict[str, AuditedOrder]:
        return {
            client_id: AuditedOrder(side, price, qty, self.accepted.get(client_id), self.ended.get(client_id))
            for client_id, (side, price, qty) in self.terms.items()
        }


@attrs.define
class _Instant:
    """What the tape showed at one venue time: prints, and the extremes the book reached."""

    prints: list[Trade] = attrs.field(factory=list)
    lowest_ask: Decimal | None = None
    highest_bid: Decimal | None = None


class _NaiveBook:
    """Price -> size per side, no cleverness: the audit's own view of the recorded book."""

    def __init__(self) -> None:
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}
        #: Per (side, price), the recorded size when that level last changed, less what we took since.
        self.left_to_take: dict[tuple[Side, Decimal], Decimal] = {}

    def snapshot(self, event: BookSnapshot) -> None:
        self.bids = {p: q for p, q in event.bids if q > 0}
        self.asks = {p: q for p, q in event.asks if q > 0}
        self.left_to_take.clear()

    def delta(self, event: BookDelta) -> None:
        for side, table, levels in ((Side.BUY, self.bids, event.bids), (Side.SELL, self.asks, event.asks)):
            for price, qty in levels:
                if qty > 0:
                    table[price] = qty
                else:
                    table.pop(price, None)
                self.left_to_take.pop((side, price), None)

    def apply(self, event: object) -> bool:
        """Apply a recorded book event (a snapshot or a diff); False for anything else (a print)."""
        if isinstance(event, BookSnapshot):
            self.snapshot(event)
        elif isinstance(event, BookDelta):
            self.delta(event)
        else:
            return False
        return True

    def best(self) -> tuple[Decimal | None, Decimal | None]:
        return (max(self.bids) if self.bids else None, min(self.asks) if self.asks else None)

    def take(self, side: Side, price: Decimal, qty: Decimal) -> Decimal:
        """Take ``qty`` displayed at ``price`` on ``side``; returns what was displayed and not yet taken."""
        key = (side, price)
        table = self.bids if side is Side.BUY else self.asks
        left = self.left_to_take.get(key, table.get(price, ZERO))
        self.left_to_take[key] = left - qty
        return left


def _instants(events: Iterable[object]) -> dict[int, _Instant]:
    """Per venue time (``ts_event``): the prints, and the lowest ask / highest bid after any book event then."""
    book = _NaiveBook()
    instants: dict[int, _Instant] = defaultdict(_Instant)
    for event in events:
        if isinstance(event, Trade):
            instants[event.ts_event].prints.append(event)
            continue
        if not book.apply(event):
            continue
        bid, ask = book.best()
        at = instants[event.ts_event]
        if ask is not None and (at.lowest_ask is None or ask < at.lowest_ask):
            at.lowest_ask = ask
        if bid is not None and (at.highest_bid is None or bid > at.highest_bid):
            at.highest_bid = bid
    return instants


def _reaches(side: Side, price: Decimal, instant: _Instant) -> tuple[bool, Decimal]:
    """(a print traded through ``price`` or the book crossed it, what prints traded at it on our side)."""
    through = False
    at_price = ZERO
    for trade in instant.prints:
        if side is Side.BUY:
            if trade.price < price:
                through = True
            elif trade.price == price and trade.aggressor is not Side.BUY:
                at_price += trade.qty
        elif trade.price > price:
            through = True
        elif trade.price == price and trade.aggressor is not Side.SELL:
            at_price += trade.qty
    if side is Side.BUY:
        through = through or (instant.lowest_ask is not None and instant.lowest_ask < price)
    else:
        through = through or (instant.highest_bid is not None and instant.highest_bid > price)
    return through, at_price


def _taker_problems(events: Sequence[object], fills: Sequence[Fill], orders: dict[str, AuditedOrder]) -> list[str]:
    """Taker fills against a naive book advanced to each fill's venue time: within the limit and the display."""
    problems: list[str] = []
    takers = sorted((f for f in fills if f.liquidity is Liquidity.TAKER), key=lambda f: f.ts_event)
    if not takers:
        return problems
    book = _NaiveBook()
    ordered = sorted((e for e in events if isinstance(e, BookSnapshot | BookDelta)), key=lambda e: e.ts_event)
    index = 0
    for fill in takers:
        # Our action acts before a recorded event of the same venue time: apply only the earlier ones.
        while index < len(ordered) and ordered[index].ts_event < fill.ts_event:
            event = ordered[index]
            book.snapshot(event) if isinstance(event, BookSnapshot) else book.delta(event)
            index += 1
        order = orders[fill.client_id]
        worse = fill.price > order.price if order.side is Side.BUY else fill.price < order.price
        if worse:
            problems.append(f"taker fill {fill.trade_id} at {fill.price} is worse than its limit {order.price}")
        opposite = Side.SELL if order.side is Side.BUY else Side.BUY
        shown = book.take(opposite, fill.price, fill.qty)
        if fill.qty > shown:
            problems.append(f"taker fill {fill.trade_id} took {fill.qty} at {fill.price}, where the book showed "
                            f"{shown} not yet taken by us")
    return problems


def _volume_problems(events: Sequence[object], fills: Sequence[Fill], orders: dict[str, AuditedOrder]) -> list[str]:
    """Maker fills per (venue time, side) against what the tape supplied at or through their best price then."""
    filled: dict[tuple[int, Side], Decimal] = defaultdict(Decimal)
    best: dict[tuple[int, Side], Decimal] = {}
    for fill in fills:
        order = orders.get(fill.client_id)
        if fill.liquidity is not Liquidity.MAKER or order is None:
            continue
        key = (fill.ts_event, order.side)
        filled[key] += fill.qty
        edge = best.get(key)
        if edge is None or (fill.price > edge if order.side is Side.BUY else fill.price < edge):
            best[key] = fill.price
    if not filled:
        return []
    supplied: dict[tuple[int, Side], Decimal] = defaultdict(Decimal)
    book = _NaiveBook()
    for event in events:
        if isinstance(event, Trade):
            for side in (Side.BUY, Side.SELL):
                edge = best.get((event.ts_event, side))
                if edge is None:
                    continue
                if side is Side.BUY:
                    reaches = event.price < edge or (event.price == edge and event.aggressor is not Side.BUY)
                else:
                    reaches = event.price > edge or (event.price == edge and event.aggressor is not Side.SELL)
                if reaches:
                    supplied[(event.ts_event, side)] += event.qty
            continue
        if not book.apply(event):
            continue
        for side in (Side.BUY, Side.SELL):
            edge = best.get((event.ts_event, side))
            if edge is None:
                continue
            if side is Side.BUY:
                shown = sum((q for p, q in book.asks.items() if p <= edge), ZERO)
            else:
                shown = sum((q for p, q in book.bids.items() if p >= edge), ZERO)
            supplied[(event.ts_event, side)] += shown
    return [f"at t={ts} our {side.value} maker fills total {qty}, more than the {supplied[(ts, side)]} the tape "
            f"supplied at or through {best[(ts, side)]} then" for (ts, side), qty in sorted(filled.items(),
                                                                                             key=lambda kv: kv[0][0])
            if qty > supplied[(ts, side)]]


def audit_fills(events: Sequence[object], fills: Sequence[Fill], orders: dict[str, AuditedOrder]) -> list[str]:
    """Every fill the tape does not justify, described (empty: each fill could have happened)."""
    problems: list[str] = []
    instants = _instants(events)
    filled: dict[str, Decimal] = defaultdict(Decimal)
    at_price_only: dict[tuple[int, Side, Decimal], Decimal] = defaultdict(Decimal)
    at_price_traded: dict[tuple[int, Side, Decimal], Decimal] = {}
    for fill in fills:
        order = orders.get(fill.client_id)
        name = f"fill {fill.trade_id} ({fill.side.value} {fill.qty} @ {fill.price}, t={fill.ts_event})"
        if order is None or order.accepted_ns is None:
            problems.append(f"{name}: of an order never accepted ({fill.client_id})")
            continue
        if fill.side is not order.side:
            problems.append(f"{name}: the order is a {order.side.value}")
        if fill.ts_event < order.accepted_ns:
            problems.append(f"{name}: before the order was accepted at {order.accepted_ns}")
        if order.ended_ns is not None and fill.ts_event > order.ended_ns:
            problems.append(f"{name}: after the order's cancel took effect at {order.ended_ns}")
        filled[fill.client_id] += fill.qty
        if filled[fill.client_id] > order.qty:
            problems.append(f"{name}: the order's fills reach {filled[fill.client_id]} of {order.qty}")
        if fill.liquidity is Liquidity.TAKER:
            continue
        if fill.price != order.price:
            problems.append(f"{name}: a maker fill away from the order's price {order.price}")
            continue
        through, at_price = _reaches(order.side, order.price, instants.get(fill.ts_event, _Instant()))
        if through:
            continue
        if at_price == 0:
            problems.append(f"{name}: no print reached {order.price} then and the book did not cross it")
            continue
        key = (fill.ts_event, order.side, order.price)
        at_price_only[key] += fill.qty
        at_price_traded[key] = at_price
    for key, qty in at_price_only.items():
        if qty > at_price_traded[key]:
            ts, side, price = key
            problems.append(f"at t={ts} our {side.value} fills at {price} total {qty}, "
                            f"more than the {at_price_traded[key]} printed there")
    problems += _taker_problems(events, fills, orders)
    problems += _volume_problems(events, fills, orders)
    return problems


__all__ = ["AuditedOrder", "OrderLog", "audit_fills"]
