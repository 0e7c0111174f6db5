"""Redis hot state without a server: pending-state coalescing and a refused connection never raising."""

from __future__ import annotations

import socket
from collections.abc import Callable
from decimal import Decimal

import pytest

from mmkit.store.records import OrderRecord
from mmkit.store.redis_state import RedisState, _Op, _put, state_key


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_coalescing_keeps_only_the_latest_value_and_respects_whole_key_deletes() -> None:
    pending: dict = {}
    _put(pending, _Op("hset", "k", "a", "1"))
    _put(pending, _Op("hset", "k", "b", "1"))
    _put(pending, _Op("hset", "k", "a", "2"))
    assert [(op.field, op.value) for op in pending.values()] == [("b", "1"), ("a", "2")]
    _put(pending, _Op("del", "k"))
    _put(pending, _Op("hset", "k", "c", "3"))
    _put(pending, _Op("hset", "other", "x", "9"))
    assert [(op.verb, op.key, op.field) for op in pending.values()] == [
        ("del", "k", None),
        ("hset", "k", "c"),
        ("hset", "other", "x"),
    ]


def test_key_layout_and_instance_validation() -> None:
    assert state_key("mm1", "orders") == "mmkit:mm1:orders"
    with pytest.raises(ValueError, match="instance"):
        RedisState("redis://127.0.0.1:1/0", "bad:name")


def test_unreachable_redis_is_counted_and_never_raises(wait_until: Callable[..., bool]) -> None:
    state = RedisState(f"redis://127.0.0.1:{_closed_port()}/0", "unit", publish_interval_s=0.01, retry_max_s=0.02)
    state.start()
    state.publish_position("truex", "BTC-PYUSD", Decimal("0.5"))
    state.publish_order(
        OrderRecord("c1", "truex", "BTC-PYUSD", "BUY", Decimal(1), Decimal(1), Decimal(0), "OPEN", "", 1)
    )
    state.publish_kill_switch(True, "test", 1)
    state.heartbeat()
    assert wait_until(lambda: not state.stats().connected)
    assert not state.flush(0.05)
    stats = state.stats()
    assert not stats.connected and stats.outages == 1 and stats.errors >= 1 and stats.pending == 4
    assert not state.close(0.1)
