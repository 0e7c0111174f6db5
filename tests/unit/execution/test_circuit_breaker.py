"""CircuitBreaker: trips on N failures in a window, half-opens after cooldown with one trial."""

from __future__ import annotations

import pytest

from mmkit.execution.circuit_breaker import BreakerState, CircuitBreaker


def test_trips_only_within_window() -> None:
    b = CircuitBreaker(3, window_ns=100, cooldown_ns=1000)
    b.record_failure(0)
    b.record_failure(50)
    b.record_failure(150)  # the first one has left the window
    assert b.state(150) is BreakerState.CLOSED and b.allow(150)
    b.record_failure(160)
    assert b.state(160) is BreakerState.CLOSED  # 50 is out too: two in (60, 160]
    b.record_failure(170)
    assert b.state(170) is BreakerState.OPEN and not b.allow(170) and b.trips == 1


def test_half_open_single_trial_then_close_or_reopen() -> None:
    b = CircuitBreaker(1, window_ns=100, cooldown_ns=1000)
    b.record_failure(0)
    assert not b.allow(999)
    assert b.state(1000) is BreakerState.HALF_OPEN
    assert b.allow(1000) and not b.allow(1001)  # one trial only
    b.record_failure(1002)
    assert b.state(1002) is BreakerState.OPEN and b.trips == 2
    assert b.allow(2002)
    b.record_success(2003)
    assert b.state(2003) is BreakerState.CLOSED and b.allow(2004) and b.allow(2005)


def test_invalid_config() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(0, 1, 1)
