"""Funding of a perpetual's backtest (mmkit.backtest.funding): files read strictly, payments signed right.

Each bad file must be refused with its name and the line, before anything runs: a settlement silently
missing or misread would be booked as nothing paid.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from mmkit.backtest.funding import (
    NS_PER_HOUR,
    FundingFormatError,
    FundingInput,
    FundingRate,
    check_covers,
    is_perpetual,
    load_funding,
    payment,
    positions_at,
    recorded_mid_at,
    standard_settlements,
)
from mmkit.model import Fill, Liquidity, Side
from mmkit.risk.settlement import Settlement

MIDNIGHT = 1_723_161_600 * 10**9  # 2024-08-09T00:00:00Z, a standard settlement
LINEAR = Settlement("BTC", "USDT")
INVERSE = Settlement("BTC", "USD", Decimal(100))


def _fill(side: Side, qty: str, ts: int, *, hedge: bool = False) -> Fill:
    return Fill("binance_usdm", f"T{ts}{side.value}", "c1", "BTCUSDT", side, Decimal(60_000), Decimal(qty),
                Decimal(0), "USDT", Liquidity.MAKER, ts, ts + 5, is_hedge=hedge)


def test_a_long_pays_a_positive_rate_and_a_short_receives_it_in_the_pnl_unit() -> None:
    rate = Decimal("0.0001")
    assert payment(Decimal("0.5"), Decimal(60_000), rate, LINEAR) == Decimal("-3.00000")
    assert payment(Decimal("-0.5"), Decimal(60_000), rate, LINEAR) == Decimal("3.00000")
    assert payment(Decimal("0.5"), Decimal(60_000), -rate, LINEAR) == Decimal("3.00000")
    # COIN-M: 30 contracts of 100 USD at 60,000 are 0.05 BTC; a long pays 0.01 % of it, in BTC.
    assert payment(Decimal(30), Decimal(60_000), rate, INVERSE) == Decimal("-0.000005")


def test_the_position_at_a_settlement_counts_fills_dated_at_or_before_it_and_never_hedges() -> None:
    fills = [_fill(Side.BUY, "0.3", MIDNIGHT - 1), _fill(Side.SELL, "0.1", MIDNIGHT),
             _fill(Side.SELL, "0.5", MIDNIGHT + 1), _fill(Side.BUY, "9", MIDNIGHT - 5, hedge=True)]
    assert positions_at(fills, [MIDNIGHT - 2, MIDNIGHT, MIDNIGHT + 1]) == [0, Decimal("0.2"), Decimal("-0.3")]


def test_standard_settlements_are_every_8_hours_from_midnight_within_start_exclusive_end_inclusive() -> None:
    assert standard_settlements(MIDNIGHT - 1, MIDNIGHT) == [MIDNIGHT]
    assert standard_settlements(MIDNIGHT, MIDNIGHT + 8 * NS_PER_HOUR - 1) == []
    assert standard_settlements(MIDNIGHT - 1, MIDNIGHT + 16 * NS_PER_HOUR) == [
        MIDNIGHT, MIDNIGHT + 8 * NS_PER_HOUR, MIDNIGHT + 16 * NS_PER_HOUR]


@pytest.mark.parametrize(("venue", "symbol", "perpetual"), [
    ("binance_usdm", "BTCUSDT", True), ("binance_usdm", "BTCUSDT_240927", False),
    ("binance_coinm", "BTCUSD_PERP", True), ("binance_coinm", "BTCUSD_240927", False),
    ("binance", "BTCUSDT", False), ("truex", "BTC-PYUSD", False)])
def test_which_contracts_are_perpetual(venue: str, symbol: str, perpetual: bool) -> None:
    assert is_perpetual(venue, symbol) is perpetual


def test_the_recorded_mid_is_the_last_sampled_tick_at_or_before_the_settlement() -> None:
    ticks, mids = [10, 20, 30], [1.5, float("nan"), 3.25]
    assert recorded_mid_at(ticks, mids, 9) is None
    assert recorded_mid_at(ticks, mids, 19) == Decimal("1.5")
    assert recorded_mid_at(ticks, mids, 25) is None  # no mid at that tick: nothing to price it at
    assert recorded_mid_at(ticks, mids, 99) == Decimal("3.25")


def test_binance_csv_and_rest_json_are_read(tmp_path: Path) -> None:
    csv_file = tmp_path / "BTCUSDT-fundingRate-2024-08.csv"
    csv_file.write_text("calc_time,funding_interval_hours,last_funding_rate\n"
                        f"{MIDNIGHT // 10**6},8,0.00010000\n{MIDNIGHT // 10**6 + 8 * 3_600_000},8,-0.00002500\n")
    second = FundingRate(MIDNIGHT + 8 * NS_PER_HOUR, Decimal("-0.000025"), None, 8)
    assert load_funding(csv_file, "BTCUSDT") == [FundingRate(MIDNIGHT, Decimal("0.0001"), None, 8), second]
    json_file = tmp_path / "funding.json"
    json_file.write_text(json.dumps([{"symbol": "BTCUSDT", "fundingTime": MIDNIGHT // 10**6,
                                      "fundingRate": "0.00010000", "markPrice": "61000.10000000"}]))
    assert load_funding(json_file, "BTCUSDT") == [FundingRate(MIDNIGHT, Decimal("0.0001"), Decimal("61000.1"))]


@pytest.mark.parametrize(("content", "expected"), [
    ("", "no funding settlement"),
    ("time,rate\n1,0.1\n", "needs the columns calc_time and last_funding_rate"),
    ("calc_time,last_funding_rate\n1723161600000,abc\n", ":2: funding rate 'abc' is not a number"),
    ("calc_time,last_funding_rate\n1723161600000,NaN\n", ":2: funding rate 'NaN' is not a plausible rate"),
    ("calc_time,last_funding_rate\n1723161600000,5\n", ":2: funding rate '5' is not a plausible rate"),
    ("calc_time,last_funding_rate\n2024-08-09,0.0001\n", ":2: time '2024-08-09' is not whole milliseconds"),
    ("calc_time,last_funding_rate\n1723161600000,0.0001\n1723161600000,0.0001\n", "times must increase"),
    ("calc_time,funding_interval_hours,last_funding_rate\n1723161600000,eight,0.0001\n", "is not whole hours"),
    ('[{"symbol": "ETHUSDT", "fundingTime": 1723161600000, "fundingRate": "0.0001"}]', "a settlement of ETHUSDT"),
    ('[{"symbol": "BTCUSDT", "fundingTime": 1723161600000}]', "needs fundingTime and fundingRate"),
    ('[{"fundingTime": 1723161600000, "fundingRate": "0.0001", "markPrice": "-1"}]', "markPrice '-1' is not a"),
    ('[{"fundingTime": 1723161600000, "fundingRate": "0.0001"', "not JSON"),
    ('{"fundingTime": 1723161600000}', "is a list of settlements"),
])
def test_a_bad_funding_file_is_refused_naming_the_file_and_why(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "funding.csv"
    path.write_text(content)
    with pytest.raises(FundingFormatError) as caught:
        load_funding(path, "BTCUSDT")
    assert str(path) in str(caught.value) and expected in str(caught.value), str(caught.value)


def test_a_file_must_cover_the_run_and_miss_no_settlement_inside_it() -> None:
    hour = NS_PER_HOUR
    rates = [FundingRate(MIDNIGHT + i * 8 * hour, Decimal("0.0001")) for i in range(4)]
    check_covers(rates, MIDNIGHT, MIDNIGHT + 24 * hour, "f")  # exactly covered
    with pytest.raises(FundingFormatError, match="the run spans"):
        check_covers(rates, MIDNIGHT - 1, MIDNIGHT + 24 * hour, "f")
    with pytest.raises(FundingFormatError, match="the run spans"):
        check_covers(rates, MIDNIGHT, MIDNIGHT + 24 * hour + 1, "f")
    with pytest.raises(FundingFormatError, match=re.escape("no settlement between 2024-08-09T08:00:00.000Z and "
                                                           "2024-08-10T00:00:00.000Z")):
        check_covers([rates[0], rates[1], rates[3]], MIDNIGHT, MIDNIGHT + 24 * hour, "f")
    # A file that states a 4-hour interval must have every 4-hour settlement.
    four = [FundingRate(MIDNIGHT + i * 8 * hour, Decimal("0.0001"), None, 4) for i in range(2)]
    with pytest.raises(FundingFormatError, match=r"4 h apart at most"):
        check_covers(four, MIDNIGHT, MIDNIGHT + 8 * hour, "f")


def test_funding_for_a_contract_without_funding_is_refused() -> None:
    funding = FundingInput((FundingRate(MIDNIGHT, Decimal("0.0001")),), "f.csv")
    with pytest.raises(FundingFormatError, match="binance:BTCUSDT is not a perpetual contract"):
        funding.check("binance", "BTCUSDT", MIDNIGHT, MIDNIGHT)
