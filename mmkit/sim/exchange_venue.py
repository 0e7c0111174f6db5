"""ExchangeVenue: a full simulated exchange on :class:`~mmkit.sim.matching.MatchingEngine`.

The public book is our orders plus synthetic liquidity and takers that a test
or demo scripts (``add_liquidity``, ``take``, ``quote_around``). It is
published as a venue does (:class:`~mmkit.sim.book_feed.BookFeed`): a
snapshot of the top ``book_levels`` levels after a subscriber (re)subscribes
or the session comes back up, then numbered deltas of the levels that
changed.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from decimal import Decimal

from mmkit.connector import VenueRules
from mmkit.model import (
    BookDelta,
    BookSnapshot,
    Liquidity,
    RejectReason,
    Side,
    TimeInForce,
    Trade,
)
from mmkit.sim.base_venue import MAKER_OWNER, OUR_OWNER, TAKER_OWNER, SimulatedVenue, VenueOrder, event_stamper
from mmkit.sim.book_feed import BookFeed
from mmkit.sim.fees import FeeModel
from mmkit.sim.latency import Action, LatencyModel
from mmkit.sim.matching import Execution, MatchingEngine, SimOrder

__all__ = ["ExchangeVenue"]


class ExchangeVenue(SimulatedVenue):
    """A simulated exchange whose book is our orders plus scripted synthetic liquidity."""

    def __init__(
        self,
        rules: VenueRules,
        now_ns: Callable[[], int],
        *,
        latency: LatencyModel | None = None,
        fees: FeeModel | None = None,
        initial_balances: Mapping[str, Decimal] | None = None,
        hold_events_while_disconnected: bool = True,
        book_levels: int = 20,
        trade_id_epoch: str | None = None,
    ) -> None:
        """``trade_id_epoch``: a tag unique to this run in every trade id (``sim-T<epoch>-1``), for a venue a
        live process restarts: its ids start again at 1 each run, and a store keyed on (venue, trade id) would
        take a later run's fills for an earlier run's (and refuse them). None (backtests): ``sim-T1``, the same
        every run, as the determinism of their outputs requires."""
        super().__init__(
            rules, now_ns, latency=latency, fees=fees, initial_balances=initial_balances,
            hold_events_while_disconnected=hold_events_while_disconnected,
        )
        prefix = f"{rules.venue}-T" if trade_id_epoch is None else f"{rules.venue}-T{trade_id_epoch}-"
        self.engines = {i.symbol: MatchingEngine(i, trade_id_prefix=prefix) for i in rules.instruments}
        self._by_oid: dict[str, VenueOrder] = {}
        self._reference: dict[str, Decimal] = {}
        self._book_levels = book_levels
        self._feeds: dict[str, BookFeed] = {}
        self._snapshot_due: set[str] = set()
        self._synthetic_seq = itertools.count(1)

    # -- scripting -------------------------------------------------------------

    def set_reference_price(self, symbol: str, price: Decimal) -> None:
        """Mid used for the price band while the book has no two-sided market."""
        self._reference[symbol] = price

    def add_liquidity(self, side: Side, price: Decimal, qty: Decimal, symbol: str | None = None) -> str:
        """Rest a synthetic maker order now; returns its exchange order id."""
        ts = self._sync()
        sym = self._symbol(symbol)
        oid = f"M{next(self._synthetic_seq)}"
        result = self.engines[sym].submit(SimOrder(oid, MAKER_OWNER, oid, side, price, qty), ts)
        if not result.accepted:
            raise ValueError(f"synthetic order refused: {result.reject_text}")
        self._after_match(sym, result.executions, ts)
        return oid

    def take(
        self, side: Side, qty: Decimal, price: Decimal | None = None, symbol: str | None = None
    ) -> list[Execution]:
        """A synthetic taker hits the book now (IOC at ``price``, or market when None).

        A limit taker that reaches no resting order changes nothing and is not
        entered (most fitted takers: their limit is within a tick of the mid).
        """
        ts = self._sync()
        sym = self._symbol(symbol)
        if price is not None and not self.engines[sym].crosses(side, price):
            return []
        oid = f"K{next(self._synthetic_seq)}"
        result = self.engines[sym].submit(SimOrder(oid, TAKER_OWNER, oid, side, price, qty, tif=TimeInForce.IOC), ts)
        if not result.accepted:
            raise ValueError(f"synthetic taker refused: {result.reject_text}")
        self._after_match(sym, result.executions, ts)
        return list(result.executions)

    def best_prices(self, symbol: str | None = None) -> tuple[Decimal | None, Decimal | None]:
        """(best bid, best ask) resting now, once the venue has acted on every action arrived by now."""
        self._sync()
        engine = self.engines[self._symbol(symbol)]
        return engine.best_price(Side.BUY), engine.best_price(Side.SELL)

    def quote_around(self, mid: Decimal, half_spread: Decimal, qty: Decimal, levels: int = 5,
                     symbol: str | None = None) -> None:
        """Replace all synthetic liquidity with a ladder of ``levels`` a side around ``mid``."""
        ts = self._sync()
        sym = self._symbol(symbol)
        engine = self.engines[sym]
        engine.cancel_owner(MAKER_OWNER)
        self._reference[sym] = mid
        inst = engine.instrument
        tick = inst.tick_for(mid)
        for k in range(levels):
            bid = inst.round_price(mid - half_spread - k * tick, Side.BUY)
            ask = inst.round_price(mid + half_spread + k * tick, Side.SELL)
            for side, price in ((Side.BUY, bid), (Side.SELL, ask)):
                oid = f"M{next(self._synthetic_seq)}"
                result = engine.submit(SimOrder(oid, MAKER_OWNER, oid, side, price, qty), ts)
                self._after_match(sym, result.executions, ts, publish=False)
        self._publish_book(sym, ts)  # one delta for the whole re-quote

    def _sync(self) -> int:
        ts = max(self._now(), self._venue_time)
        self.advance(ts)
        return ts

    def _symbol(self, symbol: str | None) -> str:
        if symbol is not None:
            return symbol
        if len(self.engines) != 1:
            raise ValueError("name the symbol: this venue lists several")
        return next(iter(self.engines))

    # -- hooks -------------------------------------------------------------------

    def _mid(self, symbol: str) -> Decimal | None:
        engine = self.engines.get(symbol)
        mid = engine.mid() if engine is not None else None
        return mid if mid is not None else self._reference.get(symbol)

    def _ask_levels(self, symbol: str) -> list[tuple[Decimal, Decimal]]:
        return self.engines[symbol].depth(Side.SELL)

    def _enter(self, rec: VenueOrder, ts: int) -> tuple[RejectReason, str] | None:
        result = self.engines[rec.symbol].submit(
            SimOrder(rec.venue_order_id, OUR_OWNER, rec.client_id, rec.side, rec.price, rec.qty, rec.post_only,
                     rec.tif),
            ts,
        )
        if not result.accepted:
            assert result.reject_reason is not None
            return result.reject_reason, result.reject_text
        if result.resting is not None:
            self._by_oid[rec.venue_order_id] = rec
        self._after_match(rec.symbol, result.executions, ts, taker=rec)
        if result.canceled_qty > 0:
            self._close_remainder(rec, ts)
        return None

    def _remove_resting(self, rec: VenueOrder, ts: int) -> None:
        if self._by_oid.get(rec.venue_order_id) is rec:
            self.engines[rec.symbol].cancel(rec.venue_order_id, ts)
            del self._by_oid[rec.venue_order_id]
            self._publish_book(rec.symbol, ts)

    def _replace_resting(self, old: VenueOrder, new: VenueOrder, ts: int) -> tuple[RejectReason, str] | None:
        assert new.price is not None
        engine = self.engines[old.symbol]
        resting = engine.get(old.venue_order_id)
        already_filled = (resting.qty - resting.leaves_qty) if resting is not None else Decimal(0)
        # The matching engine counts the filled part in the total; the venue's request is open quantity.
        result = engine.replace(
            old.venue_order_id, new.venue_order_id, new.client_id, new.price, already_filled + new.qty, ts
        )
        if not result.accepted:
            assert result.reject_reason is not None
            return result.reject_reason, result.reject_text
        del self._by_oid[old.venue_order_id]
        if result.resting is not None:
            self._by_oid[new.venue_order_id] = new
        self._after_match(old.symbol, result.executions, ts, taker=new)
        return None

    def _after_match(self, symbol: str, executions: tuple[Execution, ...], ts: int,
                     taker: VenueOrder | None = None, *, publish: bool = True) -> None:
        for ex in executions:
            both = ex.maker_owner == OUR_OWNER and ex.taker_owner == OUR_OWNER
            if ex.maker_owner == OUR_OWNER:
                maker = self._by_oid[ex.maker_order_id]
                if ex.maker_leaves == 0:
                    del self._by_oid[ex.maker_order_id]
                self._book_fill(
                    maker, ex.price, ex.qty, liquidity=Liquidity.MAKER,
                    trade_id=ex.trade_id + ("-M" if both else ""), ts=ts,
                )
            if ex.taker_owner == OUR_OWNER and taker is not None:
                self._book_fill(
                    taker, ex.price, ex.qty, liquidity=Liquidity.TAKER,
                    trade_id=ex.trade_id + ("-T" if both else ""), ts=ts,
                )
            if symbol in self._trade_subs:
                trade = Trade(self.venue, symbol, ex.trade_id, ex.price, ex.qty, ex.taker_side, ts, ts)
                self._emit(Action.MARKET_DATA, ts, event_stamper(trade), "market")
        if publish:
            self._publish_book(symbol, ts)

    # -- public book feed ----------------------------------------------------------

    def subscribe_book(self, symbol: str) -> None:
        """(Re)subscribe: the next publication is a snapshot, deltas follow (a tracker's resync re-subscribes).

        The snapshot goes out with the venue's next book event, not at once:
        before issue 16 every publication was a snapshot, and a subscriber saw
        no book until the first one; it still sees the same book at every step.
        """
        super().subscribe_book(symbol)
        if symbol not in self._feeds:
            self._feeds[symbol] = BookFeed(self.engines[symbol], self._book_levels)
        self._snapshot_due.add(symbol)

    def simulate_reconnect(self) -> None:
        """Session up again: what was published while down was lost, so each subscribed book restarts."""
        if not self._connected:
            self._snapshot_due.update(self._book_subs)
        super().simulate_reconnect()

    def _publish_snapshot(self, symbol: str, ts: int) -> None:
        seq, bids, asks = self._feeds[symbol].snapshot()
        self._emit(
            Action.MARKET_DATA, ts,
            lambda recv: BookSnapshot(self.venue, symbol, seq, bids, asks, ts, recv), "market",
        )

    def _publish_book(self, symbol: str, ts: int) -> None:
        """Send the levels the last action changed (nothing when none did)."""
        if symbol not in self._book_subs:
            return
        if symbol in self._snapshot_due:
            self._snapshot_due.discard(symbol)
            self._publish_snapshot(symbol, ts)
            return
        change = self._feeds[symbol].delta()
        if change is None:
            # Nothing to send; the session's messages stay in the order (and at the times) they had when
            # every match was published, so later outcomes wait for this slot as they did.
            self._last_visible = max(ts + self.latency.response_ns(Action.MARKET_DATA, ts), self._last_visible)
            return
        seq, bids, asks = change
        self._emit(
            Action.MARKET_DATA, ts,
            lambda recv: BookDelta(self.venue, symbol, seq, seq, bids, asks, ts, recv), "market",
        )
