"""A run that fills nothing says why (mmkit.backtest.no_fill), and the quote distances it rests on."""

from __future__ import annotations

import math
from typing import Any

from mmkit.analytics.quoting import touch_distance_bps
from mmkit.backtest.no_fill import no_fill_reason

NAN = math.nan


def test_touch_distance_is_per_side_over_live_ticks_only() -> None:
    mid = [100.0, 100.0, 100.0, NAN, 100.0]
    bid = [99.0, NAN, 99.5, 98.0, 99.8]  # the NaN-mid tick is left out
    ask = [101.0, 100.2, NAN, 103.0, 99.9]  # 99.9: an ask through the mid is a negative distance
    out = touch_distance_bps(mid, bid, ask)
    assert out["bid"] == {"ticks": 3, "min": 20.0, "median": 50.0}
    assert out["ask"] == {"ticks": 3, "min": -10.0, "median": 20.0}


def test_touch_distance_median_of_an_even_count_and_no_live_side() -> None:
    out = touch_distance_bps([100.0, 100.0], [99.0, 98.0], [NAN, NAN])
    assert out["bid"] == {"ticks": 2, "min": 100.0, "median": 150.0}
    assert out["ask"] is None
    assert touch_distance_bps([], [], []) == {"bid": None, "ask": None}


def report(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "ticks": 100,
        "fills": {"count": 0, "accepted_orders": 8, "order_messages": 10},
        "quoting": {"any_side_ticks": 90,
                    "touch_distance_bps": {"bid": {"ticks": 90, "min": 12.5, "median": 24.0},
                                           "ask": {"ticks": 90, "min": 13.0, "median": 25.0}}},
        "counters": {"kill_switch": "not tripped", "halted_ticks": 0},
    }
    for key, value in over.items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    return base


def test_a_run_with_a_fill_has_no_reason() -> None:
    assert no_fill_reason(report(fills={"count": 1})) is None


def test_quotes_beyond_the_synthetic_flow_name_both_distances() -> None:
    flow = {"takers_entered": 0, "takers_sent": 19_938, "max_distance_bps": 9.2861, "reach_bps": "0"}
    line = no_fill_reason(report(taker_flow=flow))
    assert line is not None
    assert "a median of 24.0 bps (bid) / 25.0 bps (ask), nearest 12.5 bps" in line
    assert "reached at most 9.2861 bps" in line and "0 of 19,938 synthetic takers" in line
    assert "--taker-reach-bps" in line


def test_recorded_queue_model_run_says_no_print_reached() -> None:
    line = no_fill_reason(report())
    assert line is not None and "no recorded print or book change reached them" in line
    assert "halted" not in line


def test_a_kill_switch_halt_is_named_before_the_distance() -> None:
    line = no_fill_reason(report(counters={"kill_switch": "max_loss 2000 reached", "halted_ticks": 70}))
    assert line is not None and "halted by the kill switch (max_loss 2000 reached)" in line


def test_no_accepted_order_is_told_apart_from_no_order_at_all() -> None:
    refused = no_fill_reason(report(fills={"accepted_orders": 0, "order_messages": 12}))
    assert refused is not None and "accepted none of the 12 order messages" in refused
    never = no_fill_reason(report(fills={"accepted_orders": 0, "order_messages": 0}))
    assert never is not None and "never asked for an order" in never
    halted = no_fill_reason(report(fills={"accepted_orders": 0, "order_messages": 0}, counters={"halted_ticks": 100}))
    assert halted is not None and "was halted on 100 of 100 ticks" in halted


def test_accepted_orders_that_never_rested() -> None:
    line = no_fill_reason(report(quoting={"any_side_ticks": 0}))
    assert line is not None and "none was resting" in line
