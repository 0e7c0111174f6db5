"""The funding settler books each settlement on the tick that reaches it, on the venue's position then.

Driven tick by tick with a growing list of venue fills (what ``SimulatedVenue.fills_since`` reads) and a
real PnLTracker; every expected payment is worked out here by hand.
"""

from __future__ import annotations

from decimal import Decimal

from mmkit.backtest.funding import FundingRate, cross_check, funding_section, in_run_section
from mmkit.backtest.funding_settler import FUNDING, FundingSettler
from mmkit.model import FairValue, Fill, Liquidity, Side
from mmkit.risk.pnl import PnLConfig, PnLTracker
from mmkit.risk.settlement import Settlement

LINEAR = Settlement("BTC", "USDT")
T = 1_000_000_000_000  # a settlement, ns
TICK = 100_000_000


def _fill(n: int, side: Side, qty: str, ts: int, symbol: str = "BTCUSDT", hedge: bool = False) -> Fill:
    return Fill("binance_usdm", f"F{n}", f"c{n}", symbol, side, Decimal(60000), Decimal(qty), Decimal(0), "USDT",
                Liquidity.MAKER, ts, ts + 5_000_000, is_hedge=hedge)


def _fair(price: str, ts: int) -> FairValue:
    return FairValue(Decimal(price), 1.0, ts)


class _Venue:
    """The venue's account as the settler reads it: fills in execution order, appended as they execute."""

    def __init__(self) -> None:
        self.fills: list[Fill] = []

    def since(self, index: int) -> list[Fill]:
        return self.fills[index:]


def _settler(venue: _Venue, rates: list[FundingRate], pnl: PnLTracker | None = None) -> tuple[FundingSettler,
                                                                                                PnLTracker]:
    pnl = pnl or PnLTracker(PnLConfig(quote_asset="USDT"))
    return FundingSettler(rates, LINEAR, pnl, venue.since, "BTCUSDT", T - 10 * TICK, T + 10 * TICK), pnl


def test_a_settlement_between_ticks_is_booked_on_the_next_tick_at_the_mid_of_the_tick_before_it() -> None:
    venue = _Venue()
    settler, pnl = _settler(venue, [FundingRate(T + 30_000_000, Decimal("0.001"))])
    venue.fills.append(_fill(1, Side.BUY, "0.5", T - 3 * TICK))
    venue.fills.append(_fill(2, Side.SELL, "0.2", T + 20_000_000))  # before the settlement, between ticks
    venue.fills.append(_fill(3, Side.BUY, "9", T + 40_000_000))  # after it: not held at the settlement
    settler.on_tick(T, _fair("60000", T))
    assert settler.bookings == [] and pnl.cash_flows() == {}
    settler.on_tick(T + TICK, _fair("61000", T + TICK))
    (booking,) = settler.bookings
    assert booking.position == Decimal("0.3") and booking.price == Decimal("60000")  # the tick at or before
    assert booking.booked_ns == T + TICK
    assert booking.payment == Decimal("-18.0000") == pnl.cash_flows()[FUNDING]  # -0.3 × 60000 × 0.001


def test_a_settlement_on_a_tick_is_priced_at_that_ticks_mid_and_the_file_mark_wins_over_both() -> None:
    venue = _Venue()
    venue.fills.append(_fill(1, Side.SELL, "1", T - TICK))
    settler, pnl = _settler(venue, [FundingRate(T, Decimal("0.001")),
                                    FundingRate(T + 2 * TICK, Decimal("0.001"), mark=Decimal("59000"))])
    settler.on_tick(T - TICK, _fair("60000", T - TICK))
    settler.on_tick(T, _fair("61000", T))
    settler.on_tick(T + TICK, _fair("62000", T + TICK))
    settler.on_tick(T + 2 * TICK, _fair("63000", T + 2 * TICK))
    first, second = settler.bookings
    assert (first.price, first.price_source, first.payment) == (Decimal("61000"), "recorded mid", Decimal("61.000"))
    assert (second.price, second.price_source, second.payment) == (Decimal("59000"), "mark", Decimal("59.000"))
    assert pnl.total() == Decimal("120.000")


def test_a_fill_dated_before_a_booked_settlement_but_executed_after_it_pays_its_share_when_executed() -> None:
    venue = _Venue()
    venue.fills.append(_fill(1, Side.BUY, "1", T - 5 * TICK))
    settler, pnl = _settler(venue, [FundingRate(T, Decimal("0.01"))])
    settler.on_tick(T, _fair("60000", T))
    assert settler.bookings[0].payment == Decimal("-600.00")
    # The feed delivered the print late: the venue executes now a fill it dates before the settlement.
    venue.fills.append(_fill(2, Side.BUY, "0.5", T - 1))
    settler.on_tick(T + TICK, _fair("60500", T + TICK))
    booking = settler.bookings[0]
    assert booking.position == Decimal("1.5") and booking.late_fills == 1
    assert booking.payment == Decimal("-900.000") == pnl.cash_flows()[FUNDING]
    # And the post-run computation over all fills agrees with the booking.
    rows = [{"ts_ns": T, "utc": "t", "position": "1.5", "payment": "-900.00000000", "price": "60000"}]
    post = funding_section([FundingRate(T, Decimal("0.01"))], "f", venue.fills, [T], [60000.0], LINEAR,
                           T - 10 * TICK, T + 10 * TICK, Decimal(0))
    assert cross_check(rows, Decimal("-900"), post) is None


def test_other_symbols_and_hedge_fills_are_not_the_position_and_a_flat_book_pays_nothing() -> None:
    venue = _Venue()
    venue.fills += [_fill(1, Side.BUY, "1", T - TICK, symbol="ETHUSDT"), _fill(2, Side.BUY, "1", T - TICK, hedge=True)]
    settler, pnl = _settler(venue, [FundingRate(T, Decimal("0.01"))])
    settler.on_tick(T, _fair("60000", T))
    assert settler.bookings[0].position == 0 and settler.bookings[0].payment == 0
    assert pnl.cash_flows() == {} and pnl.figures().cash_flows == 0


def test_a_settlement_the_clock_never_reached_is_booked_when_the_run_finishes() -> None:
    venue = _Venue()
    venue.fills.append(_fill(1, Side.SELL, "2", T - TICK))
    settler, _ = _settler(venue, [FundingRate(T + 10 * TICK, Decimal("0.001"))])
    settler.on_tick(T + 9 * TICK, _fair("60000", T + 9 * TICK))
    assert settler.pending == 1
    settler.finish(T + 9 * TICK)
    assert settler.pending == 0 and settler.bookings[0].payment == Decimal("120.000")


def test_the_cross_check_names_what_disagrees() -> None:
    post = funding_section([FundingRate(T, Decimal("0.01"))], "f", [_fill(1, Side.BUY, "1", T - 1)], [T],
                           [60000.0], LINEAR, T - 10 * TICK, T + 10 * TICK, Decimal(0))
    venue = _Venue()
    venue.fills += [_fill(1, Side.BUY, "1", T - 1), _fill(2, Side.BUY, "1", T - 2)]  # one the engine never heard of
    settler, pnl = _settler(venue, [FundingRate(T, Decimal("0.01"))])
    settler.on_tick(T, _fair("60000", T))
    section = in_run_section(settler.bookings, "f", LINEAR, pnl.total(), post)
    assert section["cross_check"]["agrees"] is False
    assert "in-run position 2" in section["cross_check"]["problem"] and "post-run" in section["cross_check"]["problem"]
    same = in_run_section(settler.bookings, "f", LINEAR, pnl.total(), funding_section(
        [FundingRate(T, Decimal("0.01"))], "f", venue.fills, [T], [60000.0], LINEAR, T - 10 * TICK, T + 10 * TICK,
        Decimal(0)))
    assert same["cross_check"] == {"post_run_total": "-1200.00000000", "agrees": True}
