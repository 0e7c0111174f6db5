"""NautilusTrader's side of bench/compare_anchors.py: its Rust order book, and the maker in its BacktestEngine.

Needs the ``[anchors]`` extra (nautilus_trader 1.221.0). Every Nautilus object
(deltas, trades) is built from mmkit's parsed recording BEFORE the clock
starts: the figures time Nautilus applying data, not our conversion.

* Book: ``nautilus_trader.model.book.OrderBook`` (L2_MBP; the Cython class
  over the Rust book), one ``apply_deltas`` per recorded diff and
  ``best_bid_price`` / ``best_ask_price`` read after each, as mmkit's
  ``bench_book`` does with ``apply_levels_int``.
* Replay: a ``BacktestEngine`` with one CASH venue (L2_MBP book, trades
  executed against resting orders), the instrument at the recording's tick
  and size resolution, the recorded book as ``OrderBookDeltas`` and trades as
  ``TradeTick``; a ``Strategy`` re-quotes on a 100 ms timer with the same
  :func:`bench.anchors_settings.quote_ticks` rule (settings:
  :func:`bench.anchors_settings.nautilus_settings`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.backtest.models import FillModel, LatencyModel
from nautilus_trader.config import LoggingConfig, StrategyConfig
from nautilus_trader.model.book import OrderBook
from nautilus_trader.model.currencies import BTC, USDT
from nautilus_trader.model.data import BookOrder, OrderBookDelta, OrderBookDeltas, TradeTick
from nautilus_trader.model.enums import (
    AccountType,
    AggressorSide,
    BookAction,
    BookType,
    OmsType,
    OrderSide,
    RecordFlag,
)
from nautilus_trader.model.identifiers import InstrumentId, Symbol, TradeId, Venue
from nautilus_trader.model.instruments import CurrencyPair
from nautilus_trader.model.objects import Money, Price, Quantity
from nautilus_trader.trading.strategy import Strategy

from bench.anchors_settings import MakerSpec, nautilus_settings, quote_ticks
from mmkit.backtest.binance import IntRecording
from mmkit.backtest.replay import ReplayEvent
from mmkit.model import BookDelta, BookSnapshot, Side, Trade

VENUE = Venue("BINANCE")
INSTRUMENT_ID = InstrumentId(Symbol("BTCUSDT"), VENUE)
_LAST = RecordFlag.F_LAST


# -- the book -------------------------------------------------------------------------------------------


def _delta(side: OrderSide, price: Price, size: Quantity, seq: int, ts: int) -> OrderBookDelta:
    action = BookAction.UPDATE if size.raw else BookAction.DELETE
    return OrderBookDelta(INSTRUMENT_ID, action, BookOrder(side, price, size, 0), 0, seq, ts, ts)


def book_deltas(rec: IntRecording) -> tuple[OrderBookDeltas, list[OrderBookDeltas]]:
    """The snapshot and each diff of ``rec`` as Nautilus ``OrderBookDeltas`` (prices/sizes at the recording's)."""
    pp = max(0, -int(rec.price_increment.normalize().as_tuple().exponent))
    sp = max(0, -int(rec.size_increment.normalize().as_tuple().exponent))
    pinc, sinc = float(rec.price_increment), float(rec.size_increment)
    prices: dict[int, Price] = {}
    sizes: dict[int, Quantity] = {}

    def price(ticks: int) -> Price:
        found = prices.get(ticks)
        if found is None:
            found = prices[ticks] = Price(round(ticks * pinc, pp), pp)
        return found

    def size(lots: int) -> Quantity:
        found = sizes.get(lots)
        if found is None:
            found = sizes[lots] = Quantity(round(lots * sinc, sp), sp)
        return found

    def deltas(bids: Sequence[tuple[int, int]], asks: Sequence[tuple[int, int]], seq: int,
               clear: bool) -> OrderBookDeltas:
        items = [OrderBookDelta.clear(INSTRUMENT_ID, seq, 0, 0)] if clear else []
        items += [_delta(OrderSide.BUY, price(p), size(q), seq, 0) for p, q in bids]
        items += [_delta(OrderSide.SELL, price(p), size(q), seq, 0) for p, q in asks]
        return OrderBookDeltas(INSTRUMENT_ID, items)

    snapshot = deltas(rec.snapshot_bids, rec.snapshot_asks, rec.snapshot_seq, clear=True)
    return snapshot, [deltas(bids, asks, seq, clear=False) for _first, seq, bids, asks in rec.diffs]


def run_book(snapshot: OrderBookDeltas, diffs: list[OrderBookDeltas]) -> tuple[float, float, float]:
    """Seconds to apply ``diffs`` with the best bid and ask read after each; the last best bid and ask."""
    book = OrderBook(INSTRUMENT_ID, BookType.L2_MBP)
    book.apply_deltas(snapshot)
    apply = book.apply_deltas
    best_bid = book.best_bid_price
    best_ask = book.best_ask_price
    bid = ask = None
    began = time.perf_counter()
    for diff in diffs:
        apply(diff)
        bid = best_bid()
        ask = best_ask()
    elapsed = time.perf_counter() - began
    if bid is None or ask is None:
        raise RuntimeError("Nautilus book is empty after the recording")
    return elapsed, float(bid), float(ask)


# -- the maker ------------------------------------------------------------------------------------------


def instrument(spec: MakerSpec) -> CurrencyPair:
    s = nautilus_settings(spec)
    return CurrencyPair(
        instrument_id=INSTRUMENT_ID,
        raw_symbol=Symbol("BTCUSDT"),
        base_currency=BTC,
        quote_currency=USDT,
        price_precision=s["price_precision"],
        size_precision=s["size_precision"],
        price_increment=Price.from_str(s["price_increment"]),
        size_increment=Quantity.from_str(s["size_increment"]),
        lot_size=None,
        max_quantity=Quantity.from_str("9000"),
        min_quantity=Quantity.from_str(s["size_increment"]),
        max_notional=None,
        min_notional=None,
        max_price=Price.from_str("1000000.00"),
        min_price=Price.from_str(s["price_increment"]),
        margin_init=Decimal(0),
        margin_maint=Decimal(0),
        maker_fee=s["maker_fee"],
        taker_fee=s["taker_fee"],
        ts_event=0,
        ts_init=0,
    )


def market_data(events: Sequence[ReplayEvent], spec: MakerSpec) -> list[Any]:
    """mmkit's sequenced events (``validate_hftbacktest.sequenced``) as Nautilus deltas and trades, at ``ts_recv``.

    Sizes are at the instrument's size precision, which :func:`nautilus_settings` makes the recording's own
    (1e-8), so no recorded level is rounded away.
    """
    s = nautilus_settings(spec)
    pp, sp = s["price_precision"], s["size_precision"]
    out: list[Any] = []
    for e in events:
        ts = e.ts_recv
        if isinstance(e, BookSnapshot | BookDelta):
            items = [OrderBookDelta.clear(INSTRUMENT_ID, 0, ts, ts)] if isinstance(e, BookSnapshot) else []
            for side, levels in ((OrderSide.BUY, e.bids), (OrderSide.SELL, e.asks)):
                for p, q in levels:
                    items.append(_delta(side, Price(float(p), pp), Quantity(float(q), sp), 0, ts))
            if items:
                last = items[-1]
                items[-1] = OrderBookDelta(INSTRUMENT_ID, last.action, last.order, _LAST, 0, ts, ts)
                out.append(OrderBookDeltas(INSTRUMENT_ID, items))
        elif isinstance(e, Trade):
            aggressor = AggressorSide.BUYER if e.aggressor is Side.BUY else AggressorSide.SELLER
            out.append(TradeTick(INSTRUMENT_ID, Price(float(e.price), pp), Quantity(float(e.qty), sp), aggressor,
                                 TradeId(str(e.trade_id)), ts, ts))
    return out


class MakerConfig(StrategyConfig, frozen=True):
    order_qty: str = "0.01"
    offset_ticks: int = 500
    interval_ns: int = 100_000_000


class OffsetMakerStrategy(Strategy):
    """Every ``interval_ns``: bid/ask at mid ∓ offset; cancel an order at a stale price, place where none rests."""

    def __init__(self, config: MakerConfig) -> None:
        super().__init__(config)
        self.order_qty = config.order_qty
        self.offset_ticks = config.offset_ticks
        self.interval_ns = config.interval_ns
        self.placed = 0

    def on_start(self) -> None:
        self.instrument = self.cache.instrument(INSTRUMENT_ID)
        self.tick = float(self.instrument.price_increment)
        self.precision = self.instrument.price_precision
        self.qty = self.instrument.make_qty(Decimal(self.order_qty))  # at the instrument's size precision
        self.subscribe_order_book_deltas(INSTRUMENT_ID, BookType.L2_MBP)
        self.clock.set_timer("requote", timedelta(microseconds=self.interval_ns // 1000), callback=self.on_tick)

    def on_tick(self, event: object) -> None:
        book = self.cache.order_book(INSTRUMENT_ID)
        if book is None:
            return
        best_bid, best_ask = book.best_bid_price(), book.best_ask_price()
        if best_bid is None or best_ask is None or best_bid >= best_ask:
            return
        bid, ask = quote_ticks(round(float(best_bid) / self.tick), round(float(best_ask) / self.tick),
                               self.offset_ticks)
        live = {OrderSide.BUY: [], OrderSide.SELL: []}
        for order in self.cache.orders_open(instrument_id=INSTRUMENT_ID) + self.cache.orders_inflight(
                instrument_id=INSTRUMENT_ID):
            live[order.side].append(order)
        for side, want in ((OrderSide.BUY, bid), (OrderSide.SELL, ask)):
            orders = live[side]
            if not orders:
                price = Price(round(want * self.tick, self.precision), self.precision)
                self.submit_order(self.order_factory.limit(INSTRUMENT_ID, side, self.qty, price))
                self.placed += 1
                continue
            for order in orders:
                if order.is_open and not order.is_pending_cancel and round(float(order.price) / self.tick) != want:
                    self.cancel_order(order)

    def on_stop(self) -> None:
        self.cancel_all_orders(INSTRUMENT_ID)


def build_engine(data: list[Any], spec: MakerSpec) -> tuple[BacktestEngine, OffsetMakerStrategy]:
    """A BacktestEngine with the venue, instrument, data and maker of :func:`nautilus_settings` (not yet run)."""
    s = nautilus_settings(spec)
    engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR", bypass_logging=True)))
    engine.add_venue(
        venue=VENUE,
        oms_type=OmsType.NETTING,
        account_type=AccountType.CASH,
        starting_balances=[Money(10_000_000, USDT), Money(100, BTC)],
        book_type=BookType.L2_MBP,
        fill_model=FillModel(prob_fill_on_limit=s["prob_fill_on_limit"], random_seed=s["seed"]),
        latency_model=LatencyModel(base_latency_nanos=s["base_latency_ns"]),
        trade_execution=True,
    )
    engine.add_instrument(instrument(spec))
    engine.add_data(data, validate=False, sort=True)
    strategy = OffsetMakerStrategy(MakerConfig(order_qty=s["order_qty"], offset_ticks=s["offset_ticks"],
                                               interval_ns=s["timer_interval_ns"]))
    engine.add_strategy(strategy)
    return engine, strategy


def run_maker(engine: BacktestEngine, strategy: OffsetMakerStrategy) -> dict[str, Any]:
    """``engine.run()`` timed; fills and orders to print beside the time."""
    began = time.perf_counter()
    engine.run()
    run_s = time.perf_counter() - began
    orders = engine.cache.orders()
    outcome = {
        "run_s": run_s,
        "fills": len(engine.trader.generate_fills_report()),
        "orders": strategy.placed,
        "rejected": sum(1 for o in orders if o.status_string() == "REJECTED"),
    }
    engine.dispose()
    return outcome


__all__ = ["book_deltas", "build_engine", "market_data", "run_book", "run_maker"]
