"""The synthetic takers' fit (mmkit.sim.calibration) and the takers drawn from it (mmkit.sim.taker_model).

Synthetic tapes with a known rate, side mix, size and distance per bucket must
give those figures back; the takers drawn from a fit must arrive at its rate
and never be bigger, or reach further from the mid, than the tape showed.
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from mmkit.connector import FeeSchedule, rules_for
from mmkit.instrument import IncrementBand, Instrument
from mmkit.model import Side, Trade
from mmkit.sim import ConstantLatency, ExchangeVenue
from mmkit.sim.calibration import QUANTILES, TapeFit, TapePrint, bucket_of, fit_tape, format_flow, quantiles
from mmkit.sim.flow import FlowConfig, SyntheticMarket
from mmkit.sim.taker_model import FittedTakers

S = 1_000_000_000
MID = D(100)


def at_bps(bps: str, buy: bool) -> D:
    """The price ``bps`` away from MID on the aggressor's side."""
    away = MID * D(bps) / 10_000
    return MID + away if buy else MID - away


def known_tape() -> tuple[list[TapePrint], int]:
    """60 s: 600 prints 0.2 bps away (10/s, 70 % buys, sizes 1..10), 60 prints 3 bps away (1/s, sells, 0.5)."""
    prints = []
    for i in range(600):
        buy = i % 10 < 7
        prints.append(TapePrint(i * S // 10, at_bps("0.2", buy), D(i % 10 + 1), buy, MID))
    for i in range(60):
        prints.append(TapePrint(i * S, at_bps("3", False), D("0.5"), False, MID))
    return prints, 60 * S


def test_a_known_tape_gives_back_its_rate_side_size_and_distance_per_bucket() -> None:
    prints, window = known_tape()
    fit = fit_tape(prints, window, without_mid=2, without_side=3)
    near, far = fit.buckets
    assert (near.label, far.label) == ("0-0.5 bps", "2-5 bps")
    assert near.trades == 600 and near.rate_per_s == pytest.approx(10.0)
    assert near.buy_share == pytest.approx(0.7)
    # Nearest rank over 60 copies of each size 1..10: p10 is 1, the median 5, p90 9, the largest 10.
    assert near.size_q == (D(1), D(1), D(3), D(5), D(8), D(9), D(10))
    assert near.distance_q == pytest.approx((0.2,) * len(QUANTILES))
    assert far.trades == 60 and far.rate_per_s == pytest.approx(1.0) and far.buy_share == 0.0
    assert far.size_q == (D("0.5"),) * len(QUANTILES)
    assert fit.rate_per_s == pytest.approx(11.0) and fit.max_distance_bps == pytest.approx(3.0)
    table = fit.as_dict()
    assert table["tape_trades"] == 660 and table["tape_trades_without_mid"] == 2
    assert table["tape_trades_without_side"] == 3 and table["bins"][0]["size_q"][3] == "5"


def test_a_print_on_the_passive_side_of_the_mid_counts_as_at_the_mid() -> None:
    trade = TapePrint(0, D("99.99"), D(1), True, MID)  # a buy below the mid
    assert trade.distance_bps == 0.0 and bucket_of(0.0) == 0
    assert TapePrint(0, D("99.97"), D(1), False, MID).distance_bps == pytest.approx(3.0)


def test_different_tapes_give_different_fits() -> None:
    prints, window = known_tape()
    other = [TapePrint(p.ts_ns, at_bps("1.5", p.buy), p.qty * 2, p.buy, MID) for p in prints[:300]]
    first, second = fit_tape(prints, window), fit_tape(other, window)
    assert first != second
    assert [b.label for b in second.buckets] == ["1-2 bps"] and second.buckets[0].rate_per_s == pytest.approx(5.0)
    assert second.buckets[0].size_q[-1] == D(20)


@pytest.mark.parametrize(("bad", "match"), [
    (TapePrint(0, MID, D(0), True, MID), "positive"),
    (TapePrint(0, MID, D(1), True, D(0)), "positive"),
])
def test_bad_prints_and_windows_are_refused(bad: TapePrint, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fit_tape([bad], S)
    with pytest.raises(ValueError, match="window"):
        fit_tape([], 0)
    with pytest.raises(ValueError, match="no values"):
        quantiles([])


def test_takers_drawn_from_a_fit_follow_its_rate_side_and_bounds() -> None:
    prints, window = known_tape()
    fit = fit_tape(prints, window)
    takers = FittedTakers(fit, seed=3, start_ns=0)
    arrivals = list(takers.until(2_000 * S))  # about 22,000 arrivals
    by_bucket = {0: [a for a in arrivals if a.bucket == 0], 3: [a for a in arrivals if a.bucket == 3]}
    assert set(a.bucket for a in arrivals) == {0, 3}
    # Poisson counts over 2,000 s: 20,000 +- 141 and 2,000 +- 45 (a fixed seed: this is one fixed draw).
    assert abs(len(by_bucket[0]) - 20_000) < 600 and abs(len(by_bucket[3]) - 2_000) < 200
    assert abs(sum(a.buy for a in by_bucket[0]) / len(by_bucket[0]) - 0.7) < 0.02
    assert not any(a.buy for a in by_bucket[3])
    assert all(D(1) <= a.size <= D(10) and a.distance_bps == pytest.approx(0.2) for a in by_bucket[0])
    assert all(a.size == D("0.5") for a in by_bucket[3])
    median = sorted(a.size for a in by_bucket[0])[len(by_bucket[0]) // 2]
    assert D(4) <= median <= D(6)
    times = [a.ts_ns for a in arrivals]
    assert times == sorted(times) and times[-1] <= 2_000 * S and takers.next_ns is not None
    assert takers.next_ns > 2_000 * S
    again = list(FittedTakers(fit, seed=3, start_ns=0).until(2_000 * S))
    assert again == arrivals  # the same fit and seed: the same takers
    assert list(FittedTakers(fit, seed=4, start_ns=0).until(2_000 * S)) != arrivals
    half = list(FittedTakers(fit, seed=3, start_ns=0, share=0.5).until(2_000 * S))
    assert abs(len(half) - 11_000) < 500


def test_an_empty_fit_sends_no_taker() -> None:
    takers = FittedTakers(TapeFit(S, ()), seed=1, start_ns=0)
    assert takers.next_ns is None and list(takers.until(10**6 * S)) == []


def deep_venue() -> tuple[ExchangeVenue, list[int]]:
    """A thin book on every tick from 60 bps below to 60 bps above MID (takers sweep it); trades recorded."""
    inst = Instrument("sim", "X", "BTC", "USD", (IncrementBand(D(0), D("0.001"), D("0.01")),),
                      min_notional=D(0), price_band=D("0.5"))
    now = [0]
    venue = ExchangeVenue(rules_for([inst], "sim", fees=FeeSchedule(D(0), D(0))), lambda: now[0],
                          latency=ConstantLatency())
    venue.simulate_reconnect()
    venue.subscribe_trades("X")
    for k in range(1, 601):
        venue.add_liquidity(Side.BUY, MID - k * D("0.001"), D("0.01"))
        venue.add_liquidity(Side.SELL, MID + k * D("0.001"), D("0.01"))
    return venue, now


@pytest.mark.parametrize("reach", ["0", "5"])
def test_no_taker_trades_beyond_the_tapes_farthest_print_unless_reach_says_so(reach: str) -> None:
    prints, window = known_tape()
    fit = fit_tape(prints, window)  # the farthest print: 3 bps from the mid
    venue, now = deep_venue()
    market = SyntheticMarket(venue, "X", FlowConfig(reach_bps=D(reach), seed=5), fit=fit)
    market.reference_mid = MID  # (on_reference_mid would re-quote the makers, replacing the deep book)
    for second in range(1, 121):
        now[0] = second * S
        market.tick(now[0])
    trades = [e for e in venue.drain() if isinstance(e, Trade)]
    farthest = max(abs(t.price - MID) / MID * 10_000 for t in trades)
    assert sum(market.sent) > 1_000 and market.taker_orders > 0 and len(trades) > 20
    assert farthest <= D(3) + D(reach)
    assert farthest > D(3) + D(reach) - D("0.2")  # and the takers do reach that far: the bound is the fit's
    report = market.flow_report()
    assert report["reach_bps"] == reach and sum(row["takers_sent"] for row in report["bins"]) == report["takers_sent"]
    assert report["takers_entered"] == market.taker_orders < report["takers_sent"]
    assert report["farthest_fill_bps"] == pytest.approx(float(farthest), abs=1e-3)
    text = format_flow({"source": "test", **report})
    assert "fitted on this run's recorded tape" in text and "2-5 bps" in text
