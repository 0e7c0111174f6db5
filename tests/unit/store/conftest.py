"""Fixtures for the hermetic store tests: a SQLite file per test, and record builders."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from mmkit.model import Fill, Liquidity, Side
from mmkit.store.recorder import Recorder


def _make_fill(
    trade_id: str,
    *,
    side: Side = Side.BUY,
    qty: str = "0.5",
    price: str = "100000.01",
    venue: str = "truex",
    symbol: str = "BTC-PYUSD",
    ts: int = 1_700_000_000_000_000_000,
    fee: str = "0.001",
    fee_currency: str = "PYUSD",
    liquidity: Liquidity = Liquidity.MAKER,
    is_hedge: bool = False,
) -> Fill:
    return Fill(
        venue=venue,
        trade_id=trade_id,
        client_id="c-" + trade_id,
        symbol=symbol,
        side=side,
        price=Decimal(price),
        qty=Decimal(qty),
        fee=Decimal(fee),
        fee_currency=fee_currency,
        liquidity=liquidity,
        ts_event=ts,
        ts_recv=ts + 1000,
        venue_order_id="v-" + trade_id,
        is_hedge=is_hedge,
    )


@pytest.fixture
def make_fill() -> object:
    """Builder of fills with sensible defaults; tests override what they care about."""
    return _make_fill


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store' / 'mmkit.sqlite'}"


@pytest.fixture
def recorder(sqlite_url: str) -> Iterator[Recorder]:
    rec = Recorder(sqlite_url, instance="unit", retry_initial_s=0.01, retry_max_s=0.05)
    rec.start()
    yield rec
    rec.close(timeout_s=5.0)


def _wait_until(predicate: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    """Poll a condition set by a background thread; returns as soon as it holds (no fixed sleeps)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


@pytest.fixture
def wait_until() -> Callable[[Callable[[], bool], float], bool]:
    return _wait_until
