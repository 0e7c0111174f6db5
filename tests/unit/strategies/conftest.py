"""Fixtures for controller tests: instruments and a StrategyContext builder."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest

from mmkit.connector import load_venue_rules
from mmkit.instrument import IncrementBand, Instrument
from mmkit.model import FairValue, Fill, Liquidity, Side
from mmkit.risk.inventory import InventoryConfig, InventoryManager
from mmkit.strategy import InventoryView, StrategyContext

ContextFactory = Callable[..., StrategyContext]


@pytest.fixture(scope="session")
def truex() -> Instrument:
    """BTC-PYUSD as conf/venues/truex.yml describes it (price-dependent tick, ±2.5 % band)."""
    return load_venue_rules("truex").instrument("BTC-PYUSD")


@pytest.fixture(scope="session")
def fine() -> Instrument:
    """A cent-tick instrument with no band or minimums, for examples written in cents."""
    return Instrument("sim", "BTC-USD", "BTC", "USD", (IncrementBand(0, "0.01", "0.0001"),))


@pytest.fixture
def make_ctx(truex: Instrument) -> ContextFactory:
    """``make_ctx(price, now_ns=0, confidence=0.9, position=None, instrument=truex, halted=False, ...)``.

    With ``position`` given, a real InventoryManager (default TrueX limits) is
    filled to that position and attached, so skew and quote modes are the real ones.
    """

    def factory(
        price: str | Decimal | None,
        *,
        now_ns: int = 0,
        confidence: float = 0.9,
        position: str | None = None,
        instrument: Instrument | None = None,
        halted: bool = False,
        inventory: InventoryView | None = None,
        inventory_config: InventoryConfig | None = None,
    ) -> StrategyContext:
        pos = Decimal(position) if position is not None else Decimal(0)
        if inventory is None and position is not None:
            inventory = inventory_at(pos, inventory_config)
        return StrategyContext(
            now_ns=now_ns,
            instrument=instrument or truex,
            book=None,
            fair=FairValue(price=None if price is None else Decimal(price), confidence=confidence, ts=now_ns),
            position=pos,
            inventory=inventory,
            halted=halted,
        )

    return factory


def inventory_at(position: Decimal, config: InventoryConfig | None = None) -> InventoryManager:
    inv = InventoryManager(config or InventoryConfig())
    if position != 0:
        inv.on_fill(
            Fill(
                venue="truex",
                trade_id="seed",
                client_id="seed",
                symbol="BTC-PYUSD",
                side=Side.BUY if position > 0 else Side.SELL,
                price=Decimal(100000),
                qty=abs(position),
                fee=Decimal(0),
                fee_currency="PYUSD",
                liquidity=Liquidity.MAKER,
                ts_event=0,
                ts_recv=0,
            )
        )
    return inv
