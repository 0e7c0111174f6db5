"""The engine's PnL ledger for an inverse contract (COIN-M): contracts of 100 USD, PnL in BTC.

Each expected figure is computed by hand (or with exact fractions) from the inverse formula
``n · size · (1/entry − 1/exit)``; the linear formula ``n · (exit − entry)`` gives numbers
hundreds of thousands of times larger on the same fills, which is what the engine used to book.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction

import pytest

from mmkit.instrument import IncrementBand, Instrument
from mmkit.model import Fill, Liquidity, Side
from mmkit.risk.pnl import PnLConfig, PnLTracker
from mmkit.risk.settlement import Settlement

D = Decimal
FillFactory = Callable[..., Fill]
COINM = Instrument("binance_coinm", "BTCUSD_PERP", "BTC", "USD", (IncrementBand(D(0), D("0.1"), D(1)),),
                   contract_size=D(100), inverse=True)
TINY = D("1e-20")


def tracker() -> PnLTracker:
    return PnLTracker(PnLConfig().for_instrument(COINM))


def coinm(make_fill: FillFactory, side: Side, qty: str, price: str, fee: str = "0", currency: str = "BTC",
          liquidity: Liquidity = Liquidity.MAKER) -> Fill:
    return make_fill(side, qty, price, venue="binance_coinm", symbol="BTCUSD_PERP", fee=fee, fee_currency=currency,
                     liquidity=liquidity)


def test_a_long_round_trip_realizes_contracts_times_size_times_the_inverse_move(make_fill: FillFactory) -> None:
    pnl = tracker()
    pnl.on_fill(coinm(make_fill, Side.BUY, "10", "50000"))
    pnl.on_fill(coinm(make_fill, Side.SELL, "10", "60000"))
    # 10 contracts x 100 USD: 1000 * (1/50000 - 1/60000) = 1/300 BTC, about 0.00333 BTC (200 USD at 60,000).
    assert abs(pnl.realized() - D(1) / D(300)) < TINY
    assert pnl.unit == "BTC" and pnl.position() == 0 and pnl.unrealized() == 0
    linear = D(10) * (D(60000) - D(50000))  # what a linear ledger books: 100,000 "quote"
    assert linear / pnl.realized() > 10_000_000
    pnl.mark(D(60000), 1)
    to_quote = pnl.to_quote(pnl.total())
    assert to_quote is not None and abs(to_quote - D(200)) < D("1e-15")
    assert pnl.volume_base() == 20 and pnl.volume_quote() == D(2000)  # contracts; contracts x 100 USD


def test_a_short_gains_in_coin_when_the_price_falls_and_fees_stay_in_coin(make_fill: FillFactory) -> None:
    pnl = tracker()
    pnl.on_fill(coinm(make_fill, Side.SELL, "5", "40000", fee="0.00000625", liquidity=Liquidity.TAKER))
    pnl.mark(D(32000), 1)
    # Unrealized 500 * (1/32000 - 1/40000) = 0.003125 BTC; the fee is already in BTC: booked as charged.
    assert abs(pnl.unrealized() - D("0.003125")) < TINY
    assert pnl.fees() == D("0.00000625") and pnl.fees_by("binance_coinm", Liquidity.TAKER) == D("0.00000625")
    assert abs(pnl.total() - D("0.00311875")) < TINY
    assert pnl.position() == -5


def test_a_fee_charged_in_the_quote_currency_is_converted_to_coin_at_the_fill_price(make_fill: FillFactory) -> None:
    pnl = tracker()
    pnl.on_fill(coinm(make_fill, Side.BUY, "1", "50000", fee="0.02", currency="USD"))
    assert pnl.fees() == D("0.02") / D(50000)


def test_adding_at_two_prices_then_closing_at_their_harmonic_mean_is_flat(make_fill: FillFactory) -> None:
    pnl = tracker()
    for side, qty, price in ((Side.BUY, "1", "40000"), (Side.BUY, "1", "60000"), (Side.SELL, "2", "48000")):
        pnl.on_fill(coinm(make_fill, side, qty, price))
    # (1/40000 + 1/60000) / 2 = 1/48000: selling both at 48,000 gains nothing in coin, where a linear ledger
    # books 2 * 48000 - 40000 - 60000 = -4000 "quote".
    assert abs(pnl.realized()) < TINY and pnl.position() == 0


def test_a_flip_closes_the_long_and_opens_a_short_at_the_fill_price(make_fill: FillFactory) -> None:
    pnl = tracker()
    pnl.on_fill(coinm(make_fill, Side.BUY, "3", "50000"))
    pnl.on_fill(coinm(make_fill, Side.SELL, "5", "40000"))
    # Closes 3: 300 * (1/50000 - 1/40000) = -0.0015 BTC; opens a short of 2 at 40,000.
    assert abs(pnl.realized() - D("-0.0015")) < TINY and pnl.position() == -2
    pnl.mark(D(50000), 1)
    assert abs(pnl.unrealized() - D(200) * (D(1) / D(50000) - D(1) / D(40000))) < TINY


def test_total_matches_the_exact_sum_over_fills_on_random_sequences(make_fill: FillFactory) -> None:
    """realized + unrealized at mark m = Σ sign·q·size·(1/p − 1/m), whatever the FIFO matching did."""
    rng = random.Random(7)
    for _ in range(20):
        pnl = tracker()
        exact = Fraction(0)
        fills = []
        for _ in range(rng.randint(1, 30)):
            side = rng.choice((Side.BUY, Side.SELL))
            qty, price = rng.randint(1, 50), Decimal(rng.randint(300000, 900000)) / 10
            fills.append((side, qty, price))
            pnl.on_fill(coinm(make_fill, side, str(qty), str(price)))
        mark = Decimal(rng.randint(300000, 900000)) / 10
        pnl.mark(mark, 1)
        for side, qty, price in fills:
            exact += side.sign * qty * 100 * (1 / Fraction(price) - 1 / Fraction(mark))
        assert abs(Fraction(pnl.realized() + pnl.unrealized()) - exact) < Fraction(1, 10**18)


def test_an_inverse_instrument_without_a_contract_size_is_refused() -> None:
    bad = Instrument("x", "BTCUSD_PERP", "BTC", "USD", (IncrementBand(D(0), D("0.1"), D(1)),), inverse=True)
    with pytest.raises(ValueError, match="contract_size"):
        PnLConfig().for_instrument(bad)


def test_linear_instruments_keep_the_quote_currency_ledger() -> None:
    spot = Instrument("binance", "BTCUSDT", "BTC", "USDT", (IncrementBand(D(0), D("0.01"), D("0.00001")),))
    config = PnLConfig().for_instrument(spot)
    assert config.settlement == Settlement("BTC", "USDT") and PnLTracker(config).unit == "USDT"
    assert PnLTracker(config).to_quote(D(5)) == D(5)


def test_the_settlement_cannot_change_under_booked_fills(make_fill: FillFactory) -> None:
    pnl = tracker()
    pnl.on_fill(coinm(make_fill, Side.BUY, "1", "50000"))
    with pytest.raises(ValueError, match="settlement"):
        pnl.config = PnLConfig()
    pnl.config = PnLConfig().for_instrument(COINM)  # the app's later settings (log period) keep the settlement
