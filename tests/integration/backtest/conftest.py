"""Shared by the whole-recording backtest tests: the shared Binance recording, and the ladder's risk limits."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest

from mmkit.app.assembly import RiskSettings
from mmkit.app.backtest_cmd import load_events
from mmkit.backtest.replay import ReplayEvent
from mmkit.risk.inventory import InventoryConfig

#: The skewed ladder's inventory limits in these tests (the recording moves it well inside them).
LADDER_RISK = RiskSettings(inventory=InventoryConfig(max_position=D("0.5"), hedge_threshold=D("0.2"),
                                                     emergency_position=D("0.6")))


@pytest.fixture(scope="module")
def recording(shared_data: Path) -> list[ReplayEvent]:
    """The whole shared Binance spot recording, read once per module."""
    return load_events(shared_data / "binance_spot_btcusdt")
