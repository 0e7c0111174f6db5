"""Kill-switch loss limits against an inverse contract's coin PnL, in the unit the limits are written in."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest

from mmkit.instrument import IncrementBand, Instrument
from mmkit.model import FairValue, Fill, Side
from mmkit.risk.kill_switch import KillSwitch, KillSwitchConfig, limits_unit
from mmkit.risk.pnl import PnLConfig, PnLTracker
from mmkit.risk.settlement import Settlement

D = Decimal
FillFactory = Callable[..., Fill]
COINM = Instrument("binance_coinm", "BTCUSD_PERP", "BTC", "USD", (IncrementBand(D(0), D("0.1"), D(1)),),
                   contract_size=D(100), inverse=True)
INVERSE = Settlement.of(COINM)
LINEAR = Settlement("BTC", "USDT")


def fair(price: str, ts: int = 1) -> FairValue:
    return FairValue(D(price), ts, 1.0)


def switch(settlement: Settlement, **kw: object) -> KillSwitch:
    return KillSwitch(KillSwitchConfig(max_drawdown=None, stale_after_ns=None, **kw), settlement)  # type: ignore[arg-type]


def long_loss(make_fill: FillFactory) -> PnLTracker:
    """100 contracts bought at 60,000 and marked at 50,000: 10000 * (1/60000 - 1/50000) = -1/30 BTC."""
    pnl = PnLTracker(PnLConfig().for_instrument(COINM))
    pnl.on_fill(make_fill(Side.BUY, "100", "60000", venue="binance_coinm", symbol="BTCUSD_PERP", fee_currency="BTC"))
    pnl.mark(D(50000), 1)
    return pnl


def test_an_inverse_loss_trips_at_its_value_in_quote_currency(make_fill: FillFactory) -> None:
    pnl = long_loss(make_fill)
    # -1/30 BTC at 50,000 is -1666.67 USD. A linear ledger would have said 100 * -10000 = -1,000,000.
    kill = switch(INVERSE, max_loss=D(2000))
    assert kill.evaluate(1, fair("50000"), pnl.total()) is False
    tight = switch(INVERSE, max_loss=D(1500))
    assert tight.evaluate(1, fair("50000"), pnl.total()) is True
    assert "beyond max loss 1500 USD" in tight.reason and "-1666.66" in tight.reason


def test_limits_in_the_coin_compare_the_coin_pnl_as_is(make_fill: FillFactory) -> None:
    pnl = long_loss(make_fill)
    assert switch(INVERSE, max_loss=D("0.04"), unit="BTC").evaluate(1, fair("50000"), pnl.total()) is False
    kill = switch(INVERSE, max_loss=D("0.03"), unit="base")
    assert kill.evaluate(1, fair("50000"), pnl.total()) is True and "max loss 0.03 BTC" in kill.reason


def test_the_quote_value_of_a_coin_loss_moves_with_the_price(make_fill: FillFactory) -> None:
    pnl = long_loss(make_fill)
    kill = switch(INVERSE, max_loss=D(1500))
    # The same -1/30 BTC is worth 1333 USD at 40,000 (not tripped), 1666 USD at 50,000 (tripped).
    assert kill.evaluate(1, fair("40000"), pnl.total()) is False
    assert kill.evaluate(2, fair("50000", 2), pnl.total()) is True


def test_an_inverse_drawdown_is_measured_in_the_limits_unit(make_fill: FillFactory) -> None:
    kill = KillSwitch(KillSwitchConfig(max_drawdown=D("0.01"), max_loss=None, stale_after_ns=None, unit="BTC"),
                      INVERSE)
    assert kill.evaluate(1, fair("50000"), D("0.02")) is False
    assert kill.evaluate(2, fair("50000", 2), D("0.011")) is False
    assert kill.evaluate(3, fair("50000", 3), D("0.009")) is True and "drawdown 0.011 BTC" in kill.reason


def test_a_linear_ledger_with_limits_in_the_base_asset_divides_by_the_price() -> None:
    kill = switch(LINEAR, max_loss=D("0.001"), unit="BTC")
    assert kill.evaluate(1, fair("50000"), D(-40)) is False  # -0.0008 BTC
    assert kill.evaluate(2, fair("50000", 2), D(-60)) is True  # -0.0012 BTC


def test_a_linear_ledger_in_its_quote_currency_is_unchanged() -> None:
    kill = switch(LINEAR, max_loss=D(100))
    assert kill.evaluate(1, fair("50000"), D(-100)) is True
    assert kill.reason == "loss -100 beyond max loss 100"  # as before: no unit, no conversion


@pytest.mark.parametrize("unit", ["USDT", "ETH", "EUR"])
def test_a_unit_that_is_not_a_currency_of_the_instrument_is_refused(unit: str) -> None:
    with pytest.raises(ValueError, match=r"risk.kill_switch.unit .* neither the base \(BTC\) nor the quote \(USD\)"):
        limits_unit(KillSwitchConfig(unit=unit), INVERSE)
    with pytest.raises(ValueError, match=r"risk\.kill_switch\.unit"):
        KillSwitch(KillSwitchConfig(unit=unit), INVERSE)


def test_no_pnl_trip_before_a_price_can_convert_the_coin_pnl() -> None:
    kill = switch(INVERSE, max_loss=D(1))
    assert kill.evaluate(1, FairValue(None, 0, 0.0), D(-1)) is False
    assert kill.evaluate(2, fair("50000", 2), D(-1)) is True  # -50,000 USD once a price is known


def test_a_hand_reset_rebases_the_peak_in_the_limits_unit() -> None:
    kill = KillSwitch(KillSwitchConfig(max_drawdown=D(100), max_loss=None, stale_after_ns=None), INVERSE)
    assert kill.evaluate(1, fair("50000"), D("0.01")) is False  # 500 USD
    assert kill.evaluate(2, fair("50000", 2), D("0.007")) is True  # 350 USD: down 150
    kill.reset_by_hand(3, D("0.007"))
    assert kill.evaluate(4, fair("50000", 4), D("0.007")) is False
