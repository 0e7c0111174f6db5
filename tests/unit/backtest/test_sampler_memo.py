"""BacktestSampler reuses last tick's floats only while their source is unchanged: every row equals a fresh read."""

from __future__ import annotations

import math
from decimal import Decimal as D

from mmkit.backtest.sampler import BacktestSampler
from mmkit.connector import load_venue_rules
from mmkit.model import NS_PER_S, FairValue, Fill, Liquidity, OrderRequest, Side
from mmkit.orders.tracker import ClientOrderTracker
from mmkit.risk.inventory import InventoryConfig, InventoryManager
from mmkit.risk.pnl import PnLTracker
from mmkit.testing.fake_connector import FakeConnector

SYM = "BTC-PYUSD"


class Rig:
    def __init__(self) -> None:
        self.fake = FakeConnector(load_venue_rules("sim"), auto_ack=False)
        self.orders = ClientOrderTracker(self.fake)
        self.pnl = PnLTracker()
        self.inventory = InventoryManager(
            InventoryConfig(max_position=D(1), hedge_threshold=D("0.5"), emergency_position=D(2))
        )
        self.fair = FairValue(D(60000), 1.0, 0)
        self.sampler = BacktestSampler(self.pnl, self.inventory, self.orders, SYM, lambda: self.fair)
        self.n = 0

    def tick(self) -> None:
        self.n += 1
        if self.fair.price is not None:
            self.pnl.mark(self.fair.price, self.n)
        self.sampler.tick(self.n * NS_PER_S)

    def place(self, side: Side, price: str) -> str:
        cid = self.orders.new_client_id()
        self.orders.submit(OrderRequest(cid, "sim", SYM, side, D("0.01"), D(price)), self.n)
        return cid

    def pump(self) -> None:
        for event in self.fake.drain():
            self.orders.on_event(event)
            if isinstance(event, Fill):
                self.inventory.on_fill(event)
                self.pnl.on_fill(event)

    def row(self, i: int = -1) -> tuple[float, ...]:
        s = self.sampler
        return (s.mid[i], s.bid[i], s.ask[i], s.position[i], s.realized[i], s.unrealized[i], s.fees[i], s.total[i])


def expected(rig: Rig) -> tuple[float, ...]:
    """What the sampler must have recorded on the last tick, read afresh from the sources."""
    bids = [float(o.price) for o in rig.orders.open_orders(SYM) if o.side is Side.BUY and o.is_live and o.price]
    asks = [float(o.price) for o in rig.orders.open_orders(SYM) if o.side is Side.SELL and o.is_live and o.price]
    price = rig.fair.price
    return (
        math.nan if price is None else float(price),
        max(bids) if bids else math.nan,
        min(asks) if asks else math.nan,
        float(rig.inventory.position),
        float(rig.pnl.realized()),
        float(rig.pnl.unrealized()),
        float(rig.pnl.fees()),
        float(rig.pnl.realized() - rig.pnl.fees() + rig.pnl.unrealized()),
    )


def same(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return all((math.isnan(x) and math.isnan(y)) or x == y for x, y in zip(a, b, strict=True))


def test_each_row_follows_orders_fills_and_the_mid() -> None:
    rig = Rig()
    rig.tick()
    assert same(rig.row(), expected(rig))
    bid = rig.place(Side.BUY, "59990")
    rig.tick()  # pending: not live yet
    assert math.isnan(rig.row()[1])
    rig.fake.ack(bid)
    rig.pump()
    rig.tick()
    assert rig.row()[1] == 59990.0
    ask = rig.place(Side.SELL, "60020")
    rig.fake.ack(ask)
    rig.pump()
    rig.tick()
    assert rig.row()[2] == 60020.0
    rig.fake.fill(bid)  # the bid goes, the position and the PnL move
    rig.pump()
    rig.tick()
    assert math.isnan(rig.row()[1]) and rig.row()[3] == 0.01
    assert same(rig.row(), expected(rig))
    rig.fair = FairValue(D(60100), 1.0, 0)  # a new mark moves the unrealized PnL
    rig.tick()
    assert rig.row()[5] == 1.1
    assert same(rig.row(), expected(rig))
    rig.fair = FairValue(None, 0.0, 0)
    rig.tick()
    assert math.isnan(rig.row()[0])
    assert same(rig.row(), expected(rig))


def test_quiet_ticks_repeat_the_last_row() -> None:
    rig = Rig()
    cid = rig.place(Side.BUY, "59990")
    rig.fake.ack(cid)
    rig.pump()
    for _ in range(3):
        rig.tick()
    assert len(rig.sampler) == 3
    assert same(rig.row(0), rig.row(1)) and same(rig.row(1), rig.row(2))



def _fill(trade_id: str, qty: str, fee: str = "0") -> Fill:
    return Fill("sim", trade_id, "x", SYM, Side.BUY, D(60000), D(qty), D(fee), "PYUSD", Liquidity.MAKER, 0, 0)


def test_each_part_of_the_row_key_alone_makes_a_new_row() -> None:
    """The quiet-tick key is (fair price, orders version, position, PnL figures): each changed alone."""
    rig = Rig()
    rig.tick()
    rig.tick()
    assert same(rig.row(), expected(rig))
    rig.fair = FairValue(D(60001), 1.0, 0)
    rig.sampler.tick(10 * NS_PER_S)  # no mark: only the mid changed
    assert rig.row()[0] == 60001.0 and same(rig.row(), expected(rig))
    cid = rig.place(Side.BUY, "59990")
    rig.fake.ack(cid)
    rig.pump()
    rig.sampler.tick(11 * NS_PER_S)  # only the orders' version moved
    assert rig.row()[1] == 59990.0 and same(rig.row(), expected(rig))
    rig.inventory.on_fill(_fill("T1", "0.5"))
    rig.sampler.tick(12 * NS_PER_S)  # only the position moved
    assert rig.row()[3] == 0.5 and same(rig.row(), expected(rig))
    rig.pnl.on_fill(_fill("T2", "0.25", fee="3"))
    rig.sampler.tick(13 * NS_PER_S)  # only the PnL figures moved
    assert rig.row()[6] == 3.0 and same(rig.row(), expected(rig))
    assert len(rig.sampler) == len(rig.sampler.total) == len(rig.sampler.mid) == 6


def test_repeated_rows_are_written_in_order_whenever_columns_are_read() -> None:
    """Quiet ticks are only counted (Sampler._repeats) and written when a row differs or a column is read:
    every column, read at any point, has one value per tick, each the row of its own tick."""
    rig = Rig()
    rows: list[tuple[float, ...]] = []
    plan = ["tick", "tick", "read", "tick", "mid", "tick", "tick", "read", "read", "tick", "mid", "tick", "tick"]
    price = 60000
    for step in plan:
        if step == "mid":
            price += 1
            rig.fair = FairValue(D(price), 1.0, 0)
        elif step == "tick":
            rig.tick()
            rows.append(expected(rig))
        else:
            assert len(rig.sampler.mid) == len(rows)
    assert len(rig.sampler) == len(rows) == plan.count("tick")
    for i, want in enumerate(rows):
        assert same(rig.row(i), want), i
    assert len(rig.sampler.total) == len(rig.sampler.ts) == len(rows)
