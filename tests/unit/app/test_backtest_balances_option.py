"""``--balance ASSET=AMOUNT``: a careless value is refused naming the option; the default is never unlimited."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from mmkit.app.backtest_balances import default_balances, first_price, parse_balances, starting_balances
from mmkit.instrument import IncrementBand, Instrument
from mmkit.model import BookSnapshot, Side, Trade

SPOT = Instrument("binance", "BTCUSDT", "BTC", "USDT", (IncrementBand(D(0), D("0.01"), D("0.00001")),))
PERP = Instrument("binance_usdm", "BTCUSDT", "BTC", "USDT", (IncrementBand(D(0), D("0.1"), D("0.001")),),
                  derivative=True)


def test_good_balances_are_read_exactly() -> None:
    assert parse_balances(["BTC=0.5", " USDT = 1000.25 "], SPOT) == {"BTC": D("0.5"), "USDT": D("1000.25")}


@pytest.mark.parametrize(("text", "message"), [
    ("BTC", "--balance BTC: expected ASSET=AMOUNT"),
    ("=5", "--balance =5: expected ASSET=AMOUNT"),
    ("XBT=1", "--balance XBT=1: XBT is not an asset of BTCUSDT (BTC or USDT)"),
    ("BTC=one", "--balance BTC=one: 'one' is not a number"),
    ("BTC=-1", "--balance BTC=-1: a starting balance is a finite amount of at least 0"),
    ("BTC=inf", "--balance BTC=inf: a starting balance is a finite amount"),
    ("BTC=nan", "--balance BTC=nan: a starting balance is a finite amount"),
])
def test_a_bad_balance_names_the_option(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        parse_balances([text], SPOT)


def test_an_asset_given_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="BTC is given twice"):
        parse_balances(["BTC=1", "BTC=2"], SPOT)


def test_the_default_is_the_inventory_limit_and_twice_its_value() -> None:
    events = [Trade("binance", "BTCUSDT", "t", D("60000.5"), D(1), Side.BUY, 1, 1)]
    assert default_balances(SPOT, D(5), first_price(events)) == {"BTC": D(5), "USDT": D(600005)}
    balances, source = starting_balances(SPOT, None, D(5), events)
    assert balances == {"BTC": D(5), "USDT": D(600005)} and source.startswith("default: ")


def test_the_first_price_is_a_snapshots_mid_when_it_comes_first() -> None:
    snap = BookSnapshot("binance", "BTCUSDT", 1, ((D(100), D(1)),), ((D(102), D(1)),), 1, 1)
    assert first_price([snap, Trade("binance", "BTCUSDT", "t", D(5), D(1), Side.BUY, 2, 2)]) == D(101)


def test_without_a_price_the_default_cannot_be_set_and_says_what_to_give() -> None:
    with pytest.raises(ValueError, match="--balance BTC=AMOUNT --balance USDT=AMOUNT"):
        starting_balances(SPOT, None, D(5), [])


def test_given_balances_start_the_other_asset_at_zero_and_an_empty_account_holds_nothing() -> None:
    assert starting_balances(SPOT, {"BTC": D(1)}, D(5), []) == ({"BTC": D(1), "USDT": D(0)}, "given")
    assert starting_balances(SPOT, {}, D(5), []) == ({"BTC": D(0), "USDT": D(0)}, "given")


def test_a_margined_contract_gets_no_default_and_says_it_is_not_checked() -> None:
    balances, source = starting_balances(PERP, None, D(5), [])
    assert balances == {} and "not checked" in source
