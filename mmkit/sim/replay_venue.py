"""ReplayBookVenue: our orders against a recorded book we cannot change.

The backtest driver pushes recorded market events with ``on_market_event``;
our orders are filled by a :mod:`queue model <mmkit.sim.queue>` against
recorded trades.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Literal

import attrs
from loguru import logger

from mmkit._speedups import level_scans
from mmkit.book.book import IntLevel, OrderBook
from mmkit.connector import VenueRules
from mmkit.model import (
    ZERO,
    BookDelta,
    Level,
    Liquidity,
    MarketEvent,
    RejectReason,
    Side,
    TimeInForce,
    Trade,
    VenueOrderStatus,
)
from mmkit.sim.base_venue import SimulatedVenue, VenueOrder
from mmkit.sim.book_crossing import levels_through
from mmkit.sim.fees import FeeModel
from mmkit.sim.latency import Action, LatencyModel
from mmkit.sim.queue import ConservativeQueue, QueueModel, QueuePosition
from mmkit.sim.taken_liquidity import TakenLiquidity
from mmkit.sim.through_fill import THROUGH_FILLS, ThroughFill, by_price_priority

__all__ = ["ReplayBookVenue"]

#: Looked up once: an enum member access goes through the enum metaclass, and every recorded trade asks.
_BUY, _SELL = Side.BUY, Side.SELL
_MAKER, _TAKER = Liquidity.MAKER, Liquidity.TAKER
_IOC, _FOK = TimeInForce.IOC, TimeInForce.FOK
_NEW, _PARTIALLY_FILLED = VenueOrderStatus.NEW, VenueOrderStatus.PARTIALLY_FILLED
@attrs.define(slots=True)
class _Queued:
    """One resting order of ours: where it is in the queue, and its price in the recorded book's ticks.

    ``tick`` is None for a price off the book's grid, which no recorded level can ever be at.
    ``since`` is the venue time it began resting at its price: a recorded event of an earlier venue
    time (a print the feed delivered late) happened before the order was there and cannot fill it.
    """

    rec: VenueOrder
    pos: QueuePosition
    tick: int | None
    since: int


class ReplayBookVenue(SimulatedVenue):
    """Our orders join a recorded book; a queue model decides their fills from recorded trades.

    Our own taking cannot change the recorded book; it fills against the
    displayed levels at the moment it arrives, and :class:`TakenLiquidity`
    remembers what it took from each level until the recording lists that
    level again, so that neither another order of ours nor the rest of the
    same one (resting at its limit) finds that quantity again.
    ``market_time`` picks which timestamp of a recorded event is venue time.

    The recorded book of each symbol is an :class:`mmkit.book.OrderBook`
    (integer ticks and lots inside, as in the engine's own book tracker):
    every recorded level update lands here, while the venue only asks for
    the best prices, the size at one price, or, when an order of ours
    crosses (rare), the levels it would take. ``book_increments`` is the
    recording's resolution (price, size), which the venue's rules do not
    state: recordings print displayed sizes finer than the order lot (Binance
    shows 8 decimals), so the caller says it. A reader's pre-scaled levels on that
    grid are applied as they are. A recorded event the book cannot hold (a
    level off that grid, or an invalid one) is refused whole, logged and
    counted in ``refused_events``, never rounded.
    """

    def __init__(
        self,
        rules: VenueRules,
        now_ns: Callable[[], int],
        *,
        book_increments: tuple[Decimal, Decimal],
        latency: LatencyModel | None = None,
        fees: FeeModel | None = None,
        initial_balances: Mapping[str, Decimal] | None = None,
        queue_model: QueueModel | None = None,
        hold_events_while_disconnected: bool = True,
        market_time: Literal["ts_event", "ts_recv"] = "ts_event",
        through_fill: ThroughFill = "tape",
    ) -> None:
        super().__init__(
            rules, now_ns, latency=latency, fees=fees, initial_balances=initial_balances,
            hold_events_while_disconnected=hold_events_while_disconnected,
        )
        self.queue_model: QueueModel = queue_model or ConservativeQueue()
        self._market_time = market_time
        if through_fill not in THROUGH_FILLS:
            raise ValueError(f"through_fill must be one of {', '.join(THROUGH_FILLS)}, got {through_fill!r}")
        #: What a print or a book moving through our price fills (module docstring of mmkit.sim.through_fill).
        self.through_fill: ThroughFill = through_fill
        self._tape_capped = through_fill == "tape"
        self.books = {i.symbol: OrderBook(*book_increments, venue=i.venue, symbol=i.symbol) for i in rules.instruments}
        self._resting: dict[str, _Queued] = {}  # client id -> our resting order
        #: Derived from ``_resting`` (read per recorded event, rebuilt only after it changes; ``_resting_changed``):
        #: its orders in order, per symbol the distinct (side, tick) levels they rest at and their best prices.
        self._resting_seq: tuple[_Queued, ...] | None = ()
        self._watch: dict[str, tuple[list[tuple[Side, int]], list[tuple[bool, int]]]] = {}
        self._reach_by_symbol: dict[str, tuple[Decimal | None, Decimal | None]] = {}
        #: Per symbol, the last mid asked for and what it was worked out from (``_mid``).
        self._mids: dict[str, tuple[OrderBook, int | None, int | None, Decimal | None]] = {}
        #: Recorded trade quantity per (symbol, resting side) and price (ticks) since that level last changed.
        self._traded: dict[tuple[str, Side], dict[int, Decimal]] = {}
        #: Recorded book events refused because a level was off the book's grid or invalid.
        self.refused_events = 0
        #: Recorded prints (and crossings of the recorded book) that reached one of our resting orders but were
        #: dated before it arrived: delivered late by the feed, they traded without us (report counter).
        self.before_arrival = 0
        #: Fills a queue model asked for beyond what was left of a print at our price (capped, logged as errors).
        self.queue_model_overfills = 0
        #: The per-diff scan of traded prices, compiled unless MMKIT_PURE_PYTHON=1 (mmkit.book.levels has the pure one).
        _, self._drop_listed = level_scans()
        #: What our orders took from the recorded levels since the recording last listed them.
        self._taken = TakenLiquidity(self._drop_listed)

    def on_market_event(self, event: MarketEvent) -> None:
        """Apply one recorded event at its venue time; our actions that arrived earlier act first."""
        ts = event.ts_event if self._market_time == "ts_event" else event.ts_recv
        # Most events find no action of ours due (one in ~30 here): test the heap root before calling
        # advance, and otherwise do only what advance then does, move venue time (keep the two in step).
        to_venue = self._to_venue
        if to_venue and to_venue[0][0] <= ts:
            self.advance(ts)
        elif ts > self._venue_time:
            self._venue_time = ts
        book = self.books.get(event.symbol)
        if book is None:
            return
        if isinstance(event, Trade):
            self._on_trade(book, event, ts)
            if event.symbol in self._trade_subs:
                self._emit(Action.MARKET_DATA, ts, lambda recv: attrs.evolve(event, ts_recv=recv), "market")
            return
        try:
            bids, asks = book.int_levels(event)
        except ValueError as exc:  # OffGridError, or an invalid level: raised before anything is applied
            self.refused_events += 1
            logger.bind(venue=self.venue, symbol=event.symbol).warning(
                "recorded book event seq={} refused: {}", event.seq, exc
            )
            return
        if isinstance(event, BookDelta):
            self._on_delta(book, event.symbol, bids, asks, event.seq, ts)
        else:
            self._on_snapshot(book, event.symbol, bids, asks, event.seq, ts)
        if event.symbol in self._book_subs:
            self._emit(Action.MARKET_DATA, ts, lambda recv: attrs.evolve(event, ts_recv=recv), "market")

    def queue_front(self, client_id: str) -> Decimal | None:
        """The model's current estimate of displayed quantity ahead of our order."""
        queued = self._resting.get(client_id)
        return None if queued is None else queued.pos.front

    # -- market data ---------------------------------------------------------------

    def _on_snapshot(
        self, book: OrderBook, symbol: str, bids: Sequence[IntLevel], asks: Sequence[IntLevel], seq: int, ts: int
    ) -> None:
        """Install a recorded snapshot; every level it or the old book listed counts as changed."""
        prev: dict[tuple[Side, int], int] = {(Side.BUY, p): book.size_at_int(Side.BUY, p) for p, _ in bids}
        prev.update({(Side.SELL, p): book.size_at_int(Side.SELL, p) for p, _ in asks})
        prev.update({(Side.BUY, p): q for p, q in book.iter_levels_int(Side.BUY)})
        prev.update({(Side.SELL, p): q for p, q in book.iter_levels_int(Side.SELL)})
        book.set_snapshot_int(bids, asks, seq)
        self._taken.forget(symbol)
        self._on_depth(book, symbol, prev, ts)
        for side, price in prev:
            self._traded.get((symbol, side), {}).pop(price, None)

    def _on_delta(
        self, book: OrderBook, symbol: str, bids: Sequence[IntLevel], asks: Sequence[IntLevel], seq: int, ts: int
    ) -> None:
        """Apply a recorded diff; the queue model hears only about the levels our orders rest at.

        ``prev`` is what each of those levels displayed just before the diff
        changed it (for a price listed twice, before its last change), which
        is all the queue model and the fill checks read; the recorded book
        itself is updated in one tight loop.
        """
        if self._resting:
            keys, watched = self._watched(symbol)
            befores, best_bid, best_ask = book.apply_watched_int(bids, asks, seq, watched)
            if self._taken:
                self._taken.forget_listed(symbol, bids, asks)
            prev = {key: before for key, before in zip(keys, befores, strict=True) if before is not None}
            self._on_depth(book, symbol, prev, ts, (best_bid, best_ask))
        else:
            book.apply_levels_int(bids, asks, seq)
            if self._taken:
                self._taken.forget_listed(symbol, bids, asks)
        # A changed level closes the window in which trades there are netted out of its decrease.
        traded_by_side = self._traded
        if traded_by_side:
            drop_listed = self._drop_listed
            traded = traded_by_side.get((symbol, _BUY))
            if traded and bids:
                drop_listed(traded, bids)
            traded = traded_by_side.get((symbol, _SELL))
            if traded and asks:
                drop_listed(traded, asks)

    def _on_trade(self, book: OrderBook, trade: Trade, ts: int) -> None:
        trade_price = trade.price
        if self._resting:
            # Most prints are above every bid and below every offer of ours: two comparisons say so.
            high_bid, low_ask = self._reach(trade.symbol)
            if (high_bid is not None and trade_price <= high_bid) or (low_ask is not None and trade_price >= low_ask):
                self._trade_reaches(trade, trade_price, ts)
        aggressor = trade.aggressor
        if aggressor is not None:
            tick = book.tick_of(trade_price)
            if tick is None:
                return  # off the book's grid: no recorded level is at that price, nothing to net
            resting = _SELL if aggressor is _BUY else _BUY  # the side the print traded against
            traded = self._traded.setdefault((trade.symbol, resting), {})
            traded[tick] = traded.get(tick, ZERO) + trade.qty

    def _trade_reaches(self, trade: Trade, trade_price: Decimal, ts: int) -> None:
        """A print at or through the price of at least one order of ours: the queue model decides the fills.

        The rules are :func:`mmkit.sim.queue.trade_fill_qty`'s, spelled out
        here (a keyword call per reaching print cost more than the rule);
        tests/unit/sim/test_venue_fast_paths.py checks the two agree.

        A print at our price is one quantity for all our orders there: they
        take it in the order they arrived (``_resting`` keeps it), each after
        the displayed size its queue model puts ahead of it, so together they
        never fill more than the print traded. Each queue model sees what the
        earlier orders left of the print (before 2026-12-07 each saw all of
        it: two bids at one price both filled from one print).
        """
        symbol = trade.symbol
        at_price_left = trade.qty
        tape = self._tape_capped
        resting: Sequence[_Queued] = self._resting_orders()
        if tape and len(resting) > 1:
            resting = by_price_priority(resting)
        for queued in resting:
            rec = queued.rec
            price = rec.price
            if rec.symbol != symbol or price is None:
                continue
            side = rec.side
            # A print above our bid (below our offer) neither reaches nor trades through us: most prints.
            if side is _BUY:
                if trade_price > price:
                    continue
                through = trade_price < price
            else:
                if trade_price < price:
                    continue
                through = trade_price > price
            leaves = rec.leaves
            if leaves <= 0:
                continue
            if ts < queued.since and (through or (trade_price == price and trade.aggressor is not side)):
                self.before_arrival += 1  # dated before the order arrived (delivered late): it traded without us
                continue
            if through:
                if tape:  # the print traded no more than its quantity: what it did not give ours, it cannot
                    qty = self._whole_lots(rec, min(leaves, at_price_left))
                    at_price_left -= qty
                else:
                    qty = leaves
            elif trade_price != price or trade.aggressor is side:
                continue  # at our price, but it traded the other side of the book
            else:
                qty = self.queue_model.on_trade_at_price(queued.pos, at_price_left, leaves)
                if qty > at_price_left:  # a (user's) queue model that fills more than was printed: refused, loudly
                    self._queue_model_overfilled(qty, at_price_left, trade)
                    qty = at_price_left
                qty = min(qty, leaves)
                at_price_left -= qty
            if qty > 0:
                self._maker_fill(queued, qty, ts)

    def _queue_model_overfilled(self, asked: Decimal, printed: Decimal, trade: Trade) -> None:
        """Count and log a queue model's fill beyond the print (capped to it: nobody traded the rest)."""
        self.queue_model_overfills += 1
        logger.bind(venue=self.venue, symbol=trade.symbol).error(
            "queue model {} filled {} from print {} where only {} was left of it: capped (a bug in the model)",
            type(self.queue_model).__name__, asked, trade.trade_id, printed,
        )

    def _on_depth(
        self, book: OrderBook, symbol: str, prev: Mapping[tuple[Side, int], int], ts: int,
        best: tuple[int | None, int | None] | None = None,
    ) -> None:
        """After the recorded book of ``symbol`` changed: queue updates, fills by a crossing book.

        ``prev`` holds, for (at least) every changed level an order of ours
        rests at, the size (lots) it displayed before the change. ``best`` is
        the book's (best bid, best ask) now, when the caller read it already.
        """
        # Fills below never change the recorded book, so its best prices are read once for all our orders.
        best_bid, best_ask = (book.best_bid_int(), book.best_ask_int()) if best is None else best
        taken = self._taken
        if taken and taken.holds(symbol):  # a level we emptied crosses nothing (it is what we took)
            best_bid, best_ask = taken.best(book, symbol, _BUY), taken.best(book, symbol, _SELL)
        crossed_orders: list[_Queued] = []
        for queued in self._resting_orders():
            rec = queued.rec
            price = rec.price
            if rec.symbol != symbol or price is None:
                continue
            early = ts < queued.since  # a book of before the order arrived may move its queue, never fill it
            tick = queued.tick
            if tick is None:
                # Off the book's grid: never at a recorded level, but the book can still cross it.
                crossed = self._crosses_off_grid(book, rec.side, price, best_bid, best_ask)
            else:
                key = (rec.side, tick)
                if key in prev:
                    before = self._size(book, prev[key])
                    traded = self._traded.get((symbol, rec.side), {}).get(tick, ZERO)
                    now = self._size(book, book.size_at_int(rec.side, tick))
                    self.queue_model.on_depth_change(queued.pos, before, min(before, now + traded))
                if rec.side is _BUY:
                    crossed = best_ask is not None and best_ask < tick
                else:
                    crossed = best_bid is not None and best_bid > tick
            if crossed:
                if early:
                    self.before_arrival += 1
                elif self._tape_capped:
                    crossed_orders.append(queued)
                else:
                    self._maker_fill(queued, rec.leaves, ts)
        if crossed_orders:
            self._fill_crossed(book, crossed_orders, ts)

    def _whole_lots(self, rec: VenueOrder, qty: Decimal) -> Decimal:
        """``qty`` down to whole lots of ``rec``'s instrument: the tape may print finer than an order can fill."""
        assert rec.price is not None
        return self._instrument(rec.symbol).round_qty(qty, rec.price)

    def _fill_crossed(self, book: OrderBook, crossed: list[_Queued], ts: int) -> None:
        """``through_fill`` "tape": orders the recorded book crossed fill from what it offered through their price.

        Best price first. Each takes, at its own price, at most the displayed size through it less what our
        orders took there already, and the ledger keeps what it took (the recording shows it again only once
        it lists that level again).
        """
        if len(crossed) > 1:
            crossed = list(by_price_priority(crossed))
        taken = self._taken
        for queued in crossed:
            rec = queued.rec
            offered = self._can_take(book, rec, queued.tick)
            qty = self._whole_lots(rec, min(rec.leaves, sum((size for _, size in offered), ZERO)))
            if qty <= 0:
                continue
            opposite = _SELL if rec.side is _BUY else _BUY
            left = qty
            for price, size in offered:
                tick = book.tick_of(price)
                took = min(size, left)
                if tick is not None and took > 0:
                    taken.take(rec.symbol, opposite, tick, took)
                left -= took
                if left <= 0:
                    break
            self._maker_fill(queued, qty, ts)

    @staticmethod
    def _crosses_off_grid(
        book: OrderBook, side: Side, price: Decimal, best_bid: int | None, best_ask: int | None
    ) -> bool:
        if side is _BUY:
            return best_ask is not None and book.price_to_decimal(best_ask) < price
        return best_bid is not None and book.price_to_decimal(best_bid) > price

    @staticmethod
    def _size(book: OrderBook, lots: int) -> Decimal:
        """A recorded size as a Decimal (no level: the same ZERO the queue models start from)."""
        return book.size_to_decimal(lots) if lots else ZERO

    def _maker_fill(self, queued: _Queued, qty: Decimal, ts: int) -> None:
        rec = queued.rec
        assert rec.price is not None
        self._book_fill(rec, rec.price, min(qty, rec.leaves), liquidity=_MAKER, trade_id=self._next_fill_id(), ts=ts)
        status = rec.status  # not ``status.is_open`` (a property call per fill)
        if status is not _NEW and status is not _PARTIALLY_FILLED:
            del self._resting[rec.client_id]
            self._resting_changed()

    # -- our resting orders, and what is derived from them ---------------------------

    def _resting_changed(self) -> None:
        """Call after every change of ``_resting``: the views derived from it are rebuilt when next read.

        Spelled out in ``_join`` and ``_remove_resting`` (a view added here must be dropped there too).
        """
        self._resting_seq = None
        self._watch.clear()
        self._reach_by_symbol.clear()

    def _resting_orders(self) -> tuple[_Queued, ...]:
        """Our resting orders in order (a snapshot: fills during a walk over it do not disturb the walk)."""
        orders = self._resting_seq
        if orders is None:
            orders = self._resting_seq = tuple(self._resting.values())
        return orders

    def _reach(self, symbol: str) -> tuple[Decimal | None, Decimal | None]:
        """(highest bid, lowest offer) of our resting orders of ``symbol``: a print between them reaches none."""
        reach = self._reach_by_symbol.get(symbol)
        if reach is None:
            # One pass (rebuilt after every join, cancel and fill); the first of equal prices, as max/min keep.
            high_bid: Decimal | None = None
            low_ask: Decimal | None = None
            for queued in self._resting_orders():
                rec = queued.rec
                price = rec.price
                if price is None or rec.symbol != symbol:
                    continue
                if rec.side is _BUY:
                    if high_bid is None or price > high_bid:
                        high_bid = price
                elif low_ask is None or price < low_ask:
                    low_ask = price
            reach = self._reach_by_symbol[symbol] = (high_bid, low_ask)
        return reach

    def _watched(self, symbol: str) -> tuple[list[tuple[Side, int]], list[tuple[bool, int]]]:
        """The distinct (side, tick) levels our on-grid orders of ``symbol`` rest at, and the same as (is bid, tick)."""
        watch = self._watch.get(symbol)
        if watch is None:
            keys: list[tuple[Side, int]] = []
            for queued in self._resting_orders():
                rec = queued.rec
                if queued.tick is not None and rec.symbol == symbol and (rec.side, queued.tick) not in keys:
                    keys.append((rec.side, queued.tick))
            watch = self._watch[symbol] = (keys, [(side is _BUY, tick) for side, tick in keys])
        return watch

    def _levels_through(self, book: OrderBook, side: Side, limit: Decimal | None) -> list[Level]:
        """Opposite-side levels a ``side`` order priced ``limit`` would take, best first (Decimal)."""
        return self._crossing(book, side, limit, None if limit is None else book.tick_of(limit))

    def _can_take(self, book: OrderBook, rec: VenueOrder, limit_tick: int | None) -> list[Level]:
        """What ``rec`` would take now: the levels through its limit, less what our orders took there already."""
        crossing = self._crossing(book, rec.side, rec.price, limit_tick)
        taken = self._taken
        if crossing and taken:
            crossing = taken.available(book, rec.symbol, _SELL if rec.side is _BUY else _BUY, crossing)
        return crossing

    #: :func:`mmkit.sim.book_crossing.levels_through` (kept as a method: subclasses and tests reach it here).
    _crossing = staticmethod(levels_through)

    # -- hooks -------------------------------------------------------------------

    def _mid(self, symbol: str) -> Decimal | None:
        """The recorded book's mid, the same Decimal object while its best prices stay put.

        Why: every order's price-band check asks, and the instrument keeps
        the band of the last mid it saw by identity (``Instrument.check_order``),
        so an unchanged book costs neither the mid's nor the band's Decimal
        arithmetic. Keyed on the book and its best bid and ask (ticks): any
        change of either computes it again.
        """
        book = self.books.get(symbol)
        if book is None:
            return None
        # ``book.best_bid_int()`` / ``best_ask_int()`` without the delegating calls (as the compiled loop reads them).
        levels = book._levels
        bid, ask = levels.best_bid(), levels.best_ask()
        memo = self._mids.get(symbol)
        if memo is not None and memo[0] is book and memo[1] == bid and memo[2] == ask:
            return memo[3]
        # OrderBook.mid from the best prices read above (tests/unit/sim/test_venue_fast_paths.py compares the two).
        mid = None if bid is None or ask is None else book.price_to_decimal(bid + ask) / 2
        self._mids[symbol] = (book, bid, ask, mid)
        return mid

    def _ask_levels(self, symbol: str) -> list[Level]:
        """The recorded offers less what our orders took from them (what a market buy would take, :meth:`_take`)."""
        book = self.books[symbol]
        offers = self._crossing(book, _BUY, None, None)
        return self._taken.available(book, symbol, _SELL, offers) if offers and self._taken else offers

    def _enter(self, rec: VenueOrder, ts: int) -> tuple[RejectReason, str] | None:
        book = self.books[rec.symbol]
        price = rec.price
        if price is None:
            tick = None
        else:  # ``book.tick_of(price)``, its memo read here first (a call per order)
            tick = book._price.memo.get(price)
            if tick is None:
                tick = book.tick_of(price)
        crossing: list[Level] = []
        if tick is None:
            crossing = self._can_take(book, rec, tick)
        else:
            # Most orders do not cross: the opposite best beyond the limit says so (levels_through's first
            # test, without the two calls to reach it).
            buy = rec.side is _BUY
            levels = book._levels  # ``best_ask_int()`` / ``best_bid_int()`` without the delegating call
            best = levels.best_ask() if buy else levels.best_bid()
            if best is not None and (best <= tick if buy else best >= tick):
                crossing = self._can_take(book, rec, tick)
        if crossing:
            if rec.post_only:
                return RejectReason.POST_ONLY_WOULD_CROSS, "post-only order would cross the book"
        elif price is None:
            return RejectReason.OTHER, "no liquidity for a market order"
        tif = rec.tif
        if tif is _FOK and sum((q for _, q in crossing), ZERO) < rec.qty:
            self._close_remainder(rec, ts)
            return None
        if crossing:  # most orders cross nothing: nothing to take
            self._take(rec, crossing, ts)
            if rec.leaves <= 0:
                return None
        elif rec.qty <= 0:  # ``rec.leaves`` of an order nothing has filled yet (the rules refuse it first)
            return None
        if price is None or tif is _IOC or tif is _FOK:
            self._close_remainder(rec, ts)
        else:
            self._join(rec, tick, book, ts)
        return None

    def _remove_resting(self, rec: VenueOrder, ts: int) -> None:
        if self._resting.pop(rec.client_id, None) is not None:
            # ``_resting_changed`` spelled out (a call per cancel).
            self._resting_seq = None
            self._watch.clear()
            self._reach_by_symbol.clear()

    def _replace_resting(self, old: VenueOrder, new: VenueOrder, ts: int) -> tuple[RejectReason, str] | None:
        assert new.price is not None
        queued = self._resting[old.client_id]
        book = self.books[old.symbol]
        tick = book.tick_of(new.price)
        crossing = self._can_take(book, new, tick)
        if crossing and old.post_only:
            return RejectReason.POST_ONLY_WOULD_CROSS, "post-only replace would cross the book"
        del self._resting[old.client_id]
        self._resting_changed()
        # ``old`` is already marked canceled by the caller (its ``leaves`` reads 0): what it had open
        # before the replace is its quantity less its fills. A same-price replace that does not grow
        # keeps its place in the queue, as on the venues that amend in place.
        if new.price == old.price and new.qty <= old.qty - old.filled:
            self._resting[new.client_id] = _Queued(new, queued.pos, queued.tick, queued.since)
            return None
        self._take(new, crossing, ts)
        if new.leaves > 0:
            self._join(new, tick, book, ts)
        return None

    def _take(self, rec: VenueOrder, crossing: list[Level], ts: int) -> None:
        """Fill ``rec`` as taker from ``crossing`` (what it can take, best first); the ledger keeps what it took."""
        book = self.books[rec.symbol]
        opposite = _SELL if rec.side is _BUY else _BUY
        for price, qty in crossing:
            if rec.leaves <= 0:
                break
            took = min(qty, rec.leaves)
            self._book_fill(rec, price, took, liquidity=_TAKER, trade_id=self._next_fill_id(), ts=ts)
            tick = book.tick_of(price)
            if tick is not None:  # (always: the levels come from the book)
                self._taken.take(rec.symbol, opposite, tick, took)

    def _join(self, rec: VenueOrder, tick: int | None, book: OrderBook, ts: int) -> None:
        """Rest ``rec`` at its price from venue time ``ts``, ``tick`` in the book's ticks (None: off the grid)."""
        assert rec.price is not None
        # ``_size`` spelled out (a call per order).
        lots = 0 if tick is None else book._levels.size_at(rec.side, tick)  # ``size_at_int`` without its call
        level_qty = book.size_to_decimal(lots) if lots else ZERO
        self._resting[rec.client_id] = _Queued(rec, self.queue_model.on_join(level_qty), tick, ts)
        # ``_resting_changed`` spelled out (a call per order).
        self._resting_seq = None
        self._watch.clear()
        self._reach_by_symbol.clear()

