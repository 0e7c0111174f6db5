"""Fixtures for the risk tests: a fill factory with sensible defaults."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from decimal import Decimal

import pytest

from mmkit.model import Fill, Liquidity, Side

FillFactory = Callable[..., Fill]


@pytest.fixture
def make_fill() -> FillFactory:
    """``make_fill(side, qty, price, venue=..., fee=..., is_hedge=..., ...)``; trade ids are unique."""
    counter = itertools.count(1)

    def factory(
        side: Side,
        qty: str,
        price: str,
        *,
        venue: str = "truex",
        symbol: str = "BTC-PYUSD",
        fee: str = "0",
        fee_currency: str = "PYUSD",
        liquidity: Liquidity = Liquidity.MAKER,
        is_hedge: bool = False,
        ts: int = 0,
        trade_id: str | None = None,
    ) -> Fill:
        n = next(counter)
        return Fill(
            venue=venue,
            trade_id=trade_id or f"t{n}",
            client_id=f"c{n}",
            symbol=symbol,
            side=side,
            price=Decimal(price),
            qty=Decimal(qty),
            fee=Decimal(fee),
            fee_currency=fee_currency,
            liquidity=liquidity,
            ts_event=ts,
            ts_recv=ts,
            is_hedge=is_hedge,
        )

    return factory
