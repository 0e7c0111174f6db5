"""Simulated fills of an inverse contract: fees in the base coin on contracts x size / price, coin balances."""

from __future__ import annotations

from decimal import Decimal as D

from mmkit.connector import FeeSchedule, rules_for
from mmkit.instrument import IncrementBand, Instrument
from mmkit.model import Fill, Liquidity, OrderRequest, Side
from mmkit.sim import ConstantLatency, ExchangeVenue, FeeModel
from tests.unit.sim.venue_clock import Clock

MS = 1_000_000
COINM = Instrument("coinm", "BTCUSD_PERP", "BTC", "USD", (IncrementBand(D(0), D("0.1"), D(1)),),
                   contract_size=D(100), inverse=True)
SPOT = Instrument("spot", "BTCUSDT", "BTC", "USDT", (IncrementBand(D(0), D("0.01"), D("0.00001")),))


def coinm_venue(clock: Clock) -> ExchangeVenue:
    """A simulated COIN-M venue with 1 BTC in the wallet and a book around 50,000, connected."""
    rules = rules_for([COINM], "coinm", fees=FeeSchedule(D(2), D(5)))
    venue = ExchangeVenue(rules, clock, latency=ConstantLatency(entry=1 * MS, response=1 * MS),
                          initial_balances={"BTC": D(1)})
    venue.simulate_reconnect()
    venue.quote_around(D(50000), D(1), D(1000), levels=1)
    return venue


def test_an_inverse_fee_is_charged_in_coin_on_the_coin_value_of_the_contracts() -> None:
    model = FeeModel(FeeSchedule(D(2), D(5)))
    # 5 contracts of 100 USD at 40,000 = 0.0125 BTC; taker 5 bps = 0.00000625 BTC (a linear fee: 100 USD).
    assert model.charge(COINM, D(40000), D(5), Liquidity.TAKER) == (D("0.00000625"), "BTC")
    assert model.charge(COINM, D(40000), D(5), Liquidity.MAKER) == (D("0.0000025"), "BTC")
    assert model.fee(D(40000), D(5), Liquidity.TAKER) == D(100)  # the linear formula, visibly not the same


def test_a_linear_fee_is_unchanged() -> None:
    model = FeeModel(FeeSchedule(D(2), D(5)), quantum=D("0.01"))
    assert model.charge(SPOT, D("50000.01"), D("0.3"), Liquidity.TAKER) == (D("7.50"), "USDT")


def test_a_round_trip_on_the_simulated_venue_pays_fees_and_pnl_into_the_coin_wallet() -> None:
    clock = Clock()
    venue = coinm_venue(clock)
    venue.drain()
    venue.place(OrderRequest("buy", "coinm", "BTCUSD_PERP", Side.BUY, D(10), D("50000.0")))
    clock.now = 1 * MS
    venue.take(Side.SELL, D(10), price=D("50000.0"))
    venue.quote_around(D(60000), D(1), D(1000), levels=1)
    clock.now = 2 * MS
    venue.place(OrderRequest("sell", "coinm", "BTCUSD_PERP", Side.SELL, D(10), D("60000.0")))
    clock.now = 3 * MS
    venue.take(Side.BUY, D(10), price=D("60000.0"))
    clock.now = 10 * MS
    fills = [e for e in venue.drain() if isinstance(e, Fill)]
    assert [(f.side, f.qty, f.fee_currency) for f in fills] == [(Side.BUY, D(10), "BTC"), (Side.SELL, D(10), "BTC")]
    assert fills[0].fee == D(1000) / D(50000) * 2 / 10000 and fills[1].fee == D(1000) / D(60000) * 2 / 10000
    totals = {b.asset: b.total for b in venue.balances()}
    realized = (D(60000) - D(50000)) * 10 * 100 / (D(50000) * D(60000))  # 1000 * (1/50000 - 1/60000) = 1/300 BTC
    assert totals["BTC"] == D(1) + realized - fills[0].fee - fills[1].fee
    assert totals["BTCUSD_PERP"] == 0  # the position, in contracts, is flat
    assert "USD" not in totals  # no quote-currency wallet is invented for a coin-margined contract


def test_open_orders_on_an_inverse_contract_reserve_their_coin_value_in_the_coin() -> None:
    """A resting COIN-M order holds margin in BTC (1x: its coin value), never a USD wallet the account lacks."""
    clock = Clock()
    venue = coinm_venue(clock)
    venue.place(OrderRequest("bid", "coinm", "BTCUSD_PERP", Side.BUY, D(10), D("40000.0")))
    venue.place(OrderRequest("ask", "coinm", "BTCUSD_PERP", Side.SELL, D(20), D("80000.0")))
    clock.now = 5 * MS
    venue.drain()
    balances = {b.asset: b for b in venue.balances()}
    assert set(balances) == {"BTC"}  # no "USD" and no contracts wallet while nothing is filled
    reserved = D(10) * 100 / D(40000) + D(20) * 100 / D(80000)  # 0.025 + 0.025 BTC
    assert balances["BTC"].total == D(1) and balances["BTC"].available == D(1) - reserved
