"""The backtest latency a user gives in milliseconds, and how a report states the latency a run assumed."""

from __future__ import annotations

import pytest

from mmkit.model import NS_PER_MS
from mmkit.sim.latency import (
    DEFAULT_BACKTEST_LATENCY,
    Action,
    ConstantLatency,
    PerActionLatency,
    describe_latency,
    parse_latency_ms,
)


def test_one_value_is_both_legs_two_are_entry_then_response_exact_to_the_nanosecond() -> None:
    assert parse_latency_ms("5") == ConstantLatency(5 * NS_PER_MS, 5 * NS_PER_MS)
    assert parse_latency_ms(" 0.25 , 40 ") == ConstantLatency(250_000, 40 * NS_PER_MS)
    assert parse_latency_ms("0.000001") == ConstantLatency(1, 1)  # one nanosecond, not rounded away
    assert parse_latency_ms("0") == ConstantLatency(0, 0)


@pytest.mark.parametrize("text", ["", ",", "1,", "a", "-0.5", "1,-1", "inf", "nan", "snan", "1e12", "0.0000005"])
def test_anything_else_is_refused_with_the_reason(text: str) -> None:
    with pytest.raises(ValueError, match=r" ms|latency|milliseconds|nanosecond"):
        parse_latency_ms(text)


def test_the_report_states_each_leg_in_ms() -> None:
    assert describe_latency(DEFAULT_BACKTEST_LATENCY) == {"entry_ms": 2.0, "response_ms": 2.0, "jitter": False}
    per_action = PerActionLatency(ConstantLatency(3 * NS_PER_MS, 4 * NS_PER_MS),
                                  ((Action.CANCEL, ConstantLatency(NS_PER_MS // 2, NS_PER_MS)),))
    assert describe_latency(per_action) == {
        "entry_ms": 3.0, "response_ms": 4.0, "jitter": False,
        "by_action": {"CANCEL": {"entry_ms": 0.5, "response_ms": 1.0}},
    }
