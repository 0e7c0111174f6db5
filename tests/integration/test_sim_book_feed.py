"""Incremental book publication changes nothing a backtest reports (issue 16).

The simulated venue used to publish its full top 20 levels as a snapshot after
every match; it now publishes a snapshot on subscription and deltas of the
changed levels (mmkit.sim.book_feed). Here the old way is put back for one run
and the two reports must be identical, byte for byte. Uses
../shared/data/binance_spot_btcusdt (real recorded data).
"""

from __future__ import annotations

import itertools
import json
from decimal import Decimal as D
from pathlib import Path

import attrs
import pytest

from mmkit.app.backtest_cmd import load_events, run_backtest
from mmkit.model import NS_PER_S, BookSnapshot, Side, TargetQuote
from mmkit.sim.base_venue import SimulatedVenue
from mmkit.sim.exchange_venue import ExchangeVenue
from mmkit.sim.latency import Action
from mmkit.strategy import StrategyContext
from strategies.simple import SimpleConfig, SimpleController

pytestmark = pytest.mark.shared_data


class BookReader(SimpleController):
    """Quotes as SimpleController, sized by the venue's book it sees; keeps every book it was shown."""

    reads = frozenset({"book", "time"})  # asked every tick: it reads the book and records every tick

    def __init__(self, config: SimpleConfig) -> None:
        super().__init__(config)
        self.seen: list[tuple[object, ...]] = []

    def on_tick(self, ctx: StrategyContext) -> list[TargetQuote]:
        book = ctx.book
        if book is None:
            self.seen.append((ctx.now_ns, None))
            return list(super().on_tick(ctx))
        depth = {side: tuple(book.depth(side, 50)) for side in (Side.BUY, Side.SELL)}
        self.seen.append((ctx.now_ns, depth[Side.BUY], depth[Side.SELL]))
        lot = D("0.01")
        return [attrs.evolve(q, qty=q.qty + lot * len(depth[q.side])) for q in super().on_tick(ctx)]


def full_snapshot_publication(monkeypatch: pytest.MonkeyPatch) -> None:
    """The publication before issue 16: nothing on subscription, the whole top 20 after every match."""
    seq = itertools.count(1)

    def publish(self: ExchangeVenue, symbol: str, ts: int) -> None:
        if symbol not in self._book_subs:
            return
        engine = self.engines[symbol]
        number = next(seq)
        bids = tuple(engine.depth(Side.BUY, 20))
        asks = tuple(engine.depth(Side.SELL, 20))
        self._emit(Action.MARKET_DATA, ts,
                   lambda recv: BookSnapshot(self.venue, symbol, number, bids, asks, ts, recv), "market")

    monkeypatch.setattr(ExchangeVenue, "_publish_book", publish)
    monkeypatch.setattr(ExchangeVenue, "subscribe_book", SimulatedVenue.subscribe_book)


def test_incremental_book_feed_reports_what_full_snapshots_reported(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = load_events(shared_data / "binance_spot_btcusdt")
    end = events[0].ts_recv + 150 * NS_PER_S

    def report() -> tuple[str, dict[str, int], list[tuple[object, ...]]]:
        controller = BookReader(SimpleConfig(half_spread_bps=D(3), order_size=D("0.01")))
        result = run_backtest(controller, events, setup="sim", end_ns=end, taker_reach_bps=D(20))
        report = json.dumps(result.report, sort_keys=True, default=str)
        return report, dict(result.engine.router.events), controller.seen

    incremental, incremental_events, incremental_books = report()
    with monkeypatch.context() as patch:
        full_snapshot_publication(patch)
        full, full_events, full_books = report()
    assert json.loads(incremental)["fills"]["count"] > 20  # a run where the book moves under our orders
    assert full_events.get("BookDelta", 0) == 0 and incremental_events["BookDelta"] > 100
    assert incremental_events.get("BookSnapshot", 0) == 1  # the subscription's
    shown = [seen for seen in incremental_books if seen[1] is not None]
    assert len(shown) > 1000 and len({seen[1:] for seen in shown}) > 50  # the strategy saw a moving book
    assert incremental_books == full_books  # tick by tick, the same book
    assert incremental == full
