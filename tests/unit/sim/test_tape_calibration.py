"""TapeStats: recorded prints binned by distance from the mid, on the aggressor's side."""

from __future__ import annotations

from decimal import Decimal as D

from mmkit.sim.calibration import TapeStats, format_flow


def test_prints_are_binned_by_distance_on_the_aggressor_side() -> None:
    tape = TapeStats()
    mid = D(10_000)
    tape.on_trade(D("10000.4"), D(1), buy=True, mid=mid)  # 0.4 bps above: bin 0-0.5
    tape.on_trade(D("9999.2"), D(3), buy=False, mid=mid)  # a sell 0.8 bps below: bin 0.5-1
    tape.on_trade(D("9999.5"), D(2), buy=True, mid=mid)  # a buy below the mid: counts as at the mid
    index = tape.on_trade(D("10030"), D(5), buy=True, mid=mid)  # 30 bps: the open bin
    tape.on_taker(index, 2)
    table = tape.as_dict(span_ns=2_000_000_000)
    rows = {row["distance"]: row for row in table["bins"]}
    assert rows["0-0.5 bps"]["tape_trades"] == 2 and rows["0-0.5 bps"]["tape_mean_qty"] == "1.50000000"
    assert rows["0.5-1 bps"]["tape_trades"] == 1 and rows["0.5-1 bps"]["tape_rate_per_s"] == 0.5
    assert rows[">= 25 bps"]["takers_sent"] == 1 and rows[">= 25 bps"]["taker_fills"] == 2
    assert table["tape_trades"] == 4 and table["max_distance_bps"] == 30.0
    text = format_flow({**table, "reach_bps": "0", "participation": 0.5, "size_scale": "0.2", "max_taker_qty": "0.05"})
    assert "reach beyond a print 0 bps" in text and ">= 25 bps" in text
