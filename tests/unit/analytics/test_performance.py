"""Sharpe only on daily PnL past 20 days; PnL per hour and its standard error always."""

from __future__ import annotations

import math
from decimal import Decimal as D

import pytest

from mmkit.analytics.performance import (
    MIN_DAYS_FOR_SHARPE,
    NS_PER_DAY,
    bucket_ends,
    daily_sharpe_sortino,
    drawdown,
    risk_adjusted,
)
from mmkit.model import NS_PER_MS, NS_PER_S


def test_ten_minutes_of_rising_pnl_get_no_sharpe_and_say_why() -> None:
    """The issue's case: a Sharpe annualized from 1 s returns over 10 min was reported as 2018."""
    ts = [i * 100 * NS_PER_MS for i in range(6001)]  # 10 minutes of 100 ms ticks
    total = [i * 0.01 + (0.3 if i % 7 == 0 else 0.0) for i in range(6001)]
    out = risk_adjusted(ts, total, D("60.00"))
    assert out["sharpe"] is None and out["sortino"] is None
    assert f"under {MIN_DAYS_FOR_SHARPE} days" in out["sharpe_note"]
    assert D(out["pnl_per_hour"]) == D("360.00")  # 60 over 10 minutes
    assert out["se_bucket_s"] == 20 and out["se_buckets"] == 30  # 30 buckets at least: 20 s on a 10 min run
    assert D(out["pnl_per_hour_se"]) > 0


def test_pnl_per_hour_standard_error_is_the_bucket_spread_scaled_to_an_hour() -> None:
    # 2 hours, one sample a minute, alternating +3 / -1 per minute: mean +1/min, stdev of changes known
    ts = [i * 60 * NS_PER_S for i in range(121)]
    total = [0.0]
    for i in range(120):
        total.append(total[-1] + (3.0 if i % 2 == 0 else -1.0))
    out = risk_adjusted(ts, total, D(str(total[-1])))
    assert D(out["pnl_per_hour"]) == D("60.00")
    changes = [3.0 if i % 2 == 0 else -1.0 for i in range(120)]
    mean = sum(changes) / 120
    sd = math.sqrt(sum((c - mean) ** 2 for c in changes) / 119)
    assert float(out["pnl_per_hour_se"]) == pytest.approx(sd / math.sqrt(120) * 60, abs=0.01)
    assert out["se_bucket_s"] == 60


def test_daily_sharpe_and_sortino_past_twenty_days() -> None:
    days = 30
    daily = [10.0 if d % 3 else -5.0 for d in range(days)]
    ts, total, value = [], [], 0.0
    for d in range(days + 1):
        ts.append(d * NS_PER_DAY)
        total.append(value)
        if d < days:
            value += daily[d]
    out = risk_adjusted(ts, total, D(str(value)))
    assert out["sharpe_note"] is None and out["sharpe_days"] == days
    mean = sum(daily) / days
    sd = math.sqrt(sum((x - mean) ** 2 for x in daily) / (days - 1))
    assert out["sharpe"] == pytest.approx(mean / sd * math.sqrt(365), abs=1e-3)
    downside = math.sqrt(sum(min(0.0, x) ** 2 for x in daily) / days)
    assert out["sortino"] == pytest.approx(mean / downside * math.sqrt(365), abs=1e-3)


def test_sortino_undefined_without_a_losing_day_and_sharpe_without_variation() -> None:
    assert daily_sharpe_sortino([1.0, 2.0, 3.0])[1] is None
    assert daily_sharpe_sortino([1.0, 1.0, 1.0]) == (None, None)
    assert daily_sharpe_sortino([1.0]) == (None, None)


def test_bucket_ends_repeat_the_last_value_over_empty_buckets() -> None:
    ts = [0, 1 * NS_PER_S, 5 * NS_PER_S]
    assert bucket_ends(ts, [0.0, 1.0, 7.0], 2 * NS_PER_S) == [0.0, 1.0, 1.0]  # at 0, 2, 4 s; 4-5 s is partial
    assert bucket_ends(ts, [0.0, 1.0, 7.0], NS_PER_S) == [0.0, 1.0, 1.0, 1.0, 1.0, 7.0]


def test_drawdown_from_running_peak() -> None:
    assert drawdown([0.0, 2.0, 1.0, 3.0, -1.0]) == [0.0, 0.0, 1.0, 0.0, 4.0]


def test_no_span_no_rate() -> None:
    out = risk_adjusted([5], [0.0], D(0))
    assert out["pnl_per_hour"] is None and out["sharpe"] is None
