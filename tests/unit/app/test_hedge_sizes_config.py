"""Hedge clip sizes the hedge venue would refuse, or a min_qty that keeps hedging from acting at its threshold.

The shipped TrueX config (hedging on Kraken BTC/USD: minimum order 0.0001) with one value changed; the
hedge venue simulated (--sim-hedge), so the check runs offline. Before: each loaded and went wrong quietly.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from mmkit.app.build import build
from mmkit.app.config import ConfigOverrides, load_engine_config
from mmkit.clock import Clock, ClockMode
from mmkit.conf import ConfigError

REPO = Path(__file__).resolve().parents[3]
SHIPPED = (REPO / "strategies" / "truex_btc_pyusd.yml").read_text()
HEDGE_PARAMS = "params: {limit_timeout_ms: 5000, protection_bps: 10, min_qty: 0.001, max_qty: 1.0, max_loss: 5000}"


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TRUEX_API_KEY", "TRUEX_SECRET_KEY", "KRAKEN_API_KEY", "KRAKEN_SECRET_KEY"):
        monkeypatch.setenv(name, "not-used: build opens no connection")


def _build(tmp_path: Path, old: str, new: str) -> None:
    assert old in SHIPPED
    path = tmp_path / "truex.yml"
    path.write_text(SHIPPED.replace(old, new))
    build(load_engine_config(path, ConfigOverrides(sim_hedge=True, output_dir=str(tmp_path))),
          Clock(ClockMode.REALTIME))


@pytest.mark.parametrize(("old", "new", "key", "words"), [
    (HEDGE_PARAMS, HEDGE_PARAMS.replace("min_qty: 0.001", "min_qty: 0.00005"), "hedge.params.min_qty",
     "0.00005 is below kraken BTC/USD's minimum order size (0.0001): hedges that small would be refused"),
    (HEDGE_PARAMS, HEDGE_PARAMS.replace("min_qty: 0.001, max_qty: 1.0", "min_qty: 2.5, max_qty: 5"),
     "hedge.params.min_qty",
     "2.5 is more than crossing risk.inventory.hedge_threshold (2) asks to hedge (down to hedge_target 0: 2)"),
    ("    hedge_target: 0", "    hedge_target: 1.9995", "hedge.params.min_qty",
     "0.001 is more than crossing risk.inventory.hedge_threshold (2) asks to hedge (down to hedge_target 1.9995"),
])
def test_a_hedge_size_that_cannot_work_is_refused_naming_the_key(
    tmp_path: Path, old: str, new: str, key: str, words: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        _build(tmp_path, old, new)
    assert caught.value.key_path == key
    assert words in caught.value.reason, caught.value.reason


def test_the_shipped_hedge_sizes_build(tmp_path: Path) -> None:
    _build(tmp_path, HEDGE_PARAMS, HEDGE_PARAMS)


def test_a_clip_above_the_hedge_venues_maximum_is_refused(tmp_path: Path) -> None:
    from mmkit.app.build import _check_hedge_sizes
    from mmkit.instrument import IncrementBand, Instrument
    from mmkit.risk.hedge import HedgeConfig
    from mmkit.risk.inventory import InventoryConfig

    venue = Instrument("v", "BTC/USD", "BTC", "USD", (IncrementBand(0, "0.1", "0.0001"),), max_qty="0.5")
    with pytest.raises(ConfigError) as caught:
        _check_hedge_sizes(HedgeConfig(max_qty=Decimal(1)), venue, InventoryConfig(), tmp_path / "c.yml")
    assert caught.value.key_path == "hedge.params.max_qty"
    assert "1 is above v BTC/USD's maximum order size (0.5): larger clips would be refused" in caught.value.reason
    at_most = HedgeConfig(max_qty=Decimal("0.5"))
    _check_hedge_sizes(at_most, venue, InventoryConfig(), tmp_path / "c.yml")  # at the maximum: taken
