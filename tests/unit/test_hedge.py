"""HedgeExecutor against FakeConnector and the real InventoryManager / PnLTracker."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

from mmkit.connector import RateLimit, rules_for
from mmkit.instrument import IncrementBand, Instrument
from mmkit.model import NS_PER_MS, Fill, Liquidity, OrderType, RejectReason, Side
from mmkit.risk.hedge import HedgeConfig, HedgeExecutor
from mmkit.risk.inventory import InventoryConfig, InventoryManager
from mmkit.risk.pnl import PnLTracker
from mmkit.testing.fake_connector import FakeConnector

D = Decimal
MS = NS_PER_MS
_ids = itertools.count(1)


class Switch:
    def __init__(self) -> None:
        self.halted = False


def quote_fill(side: Side, qty: str, price: str = "100000") -> Fill:
    return Fill(
        venue="truex",
        trade_id=f"q{next(_ids)}",
        client_id="quote",
        symbol="BTC-PYUSD",
        side=side,
        price=D(price),
        qty=D(qty),
        fee=D(0),
        fee_currency="PYUSD",
        liquidity=Liquidity.MAKER,
        ts_event=0,
        ts_recv=0,
    )


def setup(
    position: str = "2.5",
    market_orders: bool = True,
    rate_limits: tuple[RateLimit, ...] = (),
    **hedge_kwargs: object,
) -> tuple[HedgeExecutor, FakeConnector, InventoryManager, PnLTracker, Switch]:
    instrument = Instrument("kraken", "BTC/USD", "BTC", "USD", (IncrementBand(D(0), D("0.1"), D("0.00000001")),))
    rules = rules_for([instrument], "kraken", supports_market_orders=market_orders, rate_limits=rate_limits)
    fake = FakeConnector(rules, validate=False)
    inventory = InventoryManager(InventoryConfig())
    pnl = PnLTracker()
    switch = Switch()
    qty = D(position)
    if qty:
        inventory.on_fill(quote_fill(Side.BUY if qty > 0 else Side.SELL, str(abs(qty))))
    touches = {Side.SELL: D("100000.0"), Side.BUY: D("100010.0")}
    hedger = HedgeExecutor(
        fake,
        inventory,
        touch=lambda side: touches[side],
        config=HedgeConfig(**hedge_kwargs),  # type: ignore[arg-type]
        kill_switch=switch,
        listeners=[inventory.on_fill, pnl.on_fill],
        drain_connector=True,
    )
    hedger.start(None, 0)  # type: ignore[arg-type]
    return hedger, fake, inventory, pnl, switch


def test_no_hedge_under_threshold() -> None:
    hedger, fake, *_ = setup(position="1.5")
    hedger.tick(0)
    assert fake.placed == []


def test_long_position_sells_once_with_protected_limit() -> None:
    hedger, fake, *_ = setup(position="2.5")
    hedger.tick(0)
    hedger.tick(1 * MS)
    hedger.tick(2 * MS)
    sells = fake.placed
    assert [o.side for o in sells] == [Side.SELL] * 3  # 2.5 BTC in clips of at most 1.0
    assert sum(o.qty for o in sells) == D("2.5")
    assert max(o.qty for o in sells) == D("1.0")
    # 10 bps under the bid, rounded up (toward passive) to the 0.1 tick
    assert {o.price for o in sells} == {D("99900.0")}
    assert all(o.order_type is OrderType.LIMIT for o in sells)
    assert hedger.in_flight == D("-2.5")


def test_short_position_buys_above_the_ask_within_protection() -> None:
    hedger, fake, *_ = setup(position="-3", protection_bps=D(5))
    hedger.tick(0)
    assert {o.side for o in fake.placed} == {Side.BUY}
    assert {o.price for o in fake.placed} == {D("100060.0")}  # 100010 * 1.0005 = 100060.005 -> floor


def test_fill_is_stamped_as_hedge_and_reported_to_inventory_and_pnl() -> None:
    hedger, fake, inventory, pnl, _ = setup(position="2.5", max_qty=D("5"))
    hedger.tick(0)
    order = fake.placed[0]
    fake.fill(order.client_id, price="99950")
    hedger.tick(1 * MS)
    assert inventory.position == D(0)
    assert hedger.hedge_fills[0].is_hedge
    assert pnl.position(hedge=True) == D("-2.5")
    assert hedger.in_flight == 0
    hedger.tick(2 * MS)
    assert len(fake.placed) == 1


def test_duplicate_fill_is_not_booked_twice() -> None:
    hedger, fake, inventory, _, _ = setup(position="2.5", max_qty=D("5"))
    hedger.tick(0)
    fill = fake.fill(fake.placed[0].client_id, qty="1", price="99950")
    hedger.tick(1 * MS)
    fake.emit(fill)
    hedger.tick(2 * MS)
    assert inventory.position == D("1.5")


def test_limit_times_out_then_remaining_goes_to_market() -> None:
    hedger, fake, inventory, _, _ = setup(position="2.5", max_qty=D("5"), limit_timeout_ms=5_000)
    hedger.tick(0)
    limit = fake.placed[0]
    fake.fill(limit.client_id, qty="1", price="99950")
    hedger.tick(4_999 * MS)
    assert fake.canceled == []
    hedger.tick(5_000 * MS)  # timeout: cancel sent, cancel confirmed (auto ack)
    assert fake.canceled == [limit.client_id]
    hedger.tick(5_001 * MS)  # cancel seen: the confirmed leaves go out as market
    market = fake.placed[-1]
    assert market.order_type is OrderType.MARKET
    assert market.side is Side.SELL and market.qty == D("1.5")
    assert len(fake.placed) == 2  # no second hedge for the same exposure while waiting
    fake.fill(market.client_id, price="99900")
    hedger.tick(5_002 * MS)
    assert inventory.position == 0
    assert len(fake.placed) == 2


def test_no_market_orders_venue_falls_back_to_ioc_limit() -> None:
    hedger, fake, *_ = setup(position="2.5", market_orders=False, max_qty=D("5"), limit_timeout_ms=10)
    hedger.tick(0)
    hedger.tick(10 * MS)
    hedger.tick(11 * MS)
    fallback = fake.placed[-1]
    assert fallback.order_type is OrderType.LIMIT and fallback.tif.value == "IOC"
    assert fallback.price is not None and fallback.price < D("100000")


def test_kill_switch_does_not_stop_hedging_nor_cancel_working_hedges() -> None:
    """Issue 11 case 7: a tripped quoting kill switch pulls quotes; hedges keep reducing inventory."""
    hedger, fake, inventory, _, switch = setup(position="2.5", max_qty=D("5"))
    hedger.tick(0)
    switch.halted = True
    hedger.tick(1 * MS)
    assert fake.canceled == []  # the working hedge is left to fill
    fake.fill(fake.placed[0].client_id, qty="1", price="99950")
    hedger.tick(5_000 * MS)  # the limit times out while halted...
    hedger.tick(5_001 * MS)  # ...and what is left goes out as market, halted or not
    assert fake.placed[-1].order_type is OrderType.MARKET and fake.placed[-1].qty == D("1.5")
    fake.fill(fake.placed[-1].client_id, price="99900")
    hedger.tick(5_002 * MS)
    assert inventory.position == 0


def test_remainder_below_min_qty_is_left_alone() -> None:
    hedger, fake, *_ = setup(position="2.0005", min_qty=D("0.001"))
    hedger.tick(0)
    # exposure 2.0005 asks for 2.0005: two clips of 1.0; the 0.0005 left is under the venue minimum
    assert [o.qty for o in fake.placed] == [D("1.0"), D("1.0")]


def test_rate_limit_caps_orders_per_window() -> None:
    hedger, fake, *_ = setup(position="5", rate_limits=(RateLimit(2, 1_000),))
    hedger.tick(0)
    assert len(fake.placed) == 2
    hedger.tick(500 * MS)  # exposure 5 - 2 = 3 still asks, but the window is full
    assert len(fake.placed) == 2
    hedger.tick(1_000 * MS)
    assert len(fake.placed) == 4
    assert sum(o.qty for o in fake.placed) == D("4.0")


def test_reject_cools_down_then_retries() -> None:
    hedger, fake, *_ = setup(position="2.5", max_qty=D("5"), reject_cooldown_ms=1_000)
    fake.reject_next(RejectReason.RATE_LIMIT, "slow down")
    hedger.tick(0)
    hedger.tick(1 * MS)  # reject seen: nothing in flight, but cooling down
    assert len(fake.placed) == 1
    hedger.tick(1_001 * MS)
    assert len(fake.placed) == 2


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        HedgeConfig(min_qty=D("2"), max_qty=D("1"))
