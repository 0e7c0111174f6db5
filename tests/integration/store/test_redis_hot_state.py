"""Redis hot state against real servers: layout, readback, and a Redis that dies and comes back empty."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import redis

from mmkit.store.records import OrderRecord, PnLRecord
from mmkit.store.redis_state import RedisState, read_hot_state, state_key

pytestmark = pytest.mark.integration


def _order(cid: str, state: str) -> OrderRecord:
    return OrderRecord(
        cid, "truex", "BTC-PYUSD", "SELL", Decimal("100001.5"), Decimal("0.1"), Decimal("0.02"), state, "V" + cid, 7
    )


def test_hot_state_is_published_under_the_documented_keys(redis_url: str) -> None:
    instance = "it-" + uuid.uuid4().hex[:8]
    state = RedisState(redis_url, instance, session_id="s1", publish_interval_s=0.01)
    state.start()
    try:
        state.heartbeat(ts_ns=42)
        state.publish_position("truex", "BTC-PYUSD", Decimal("-0.00000001"))
        state.publish_order(_order("a", "OPEN"))
        state.publish_order(_order("b", "OPEN"))
        state.publish_order(_order("b", "FILLED"))  # terminal: leaves the open set
        state.publish_fair_value("BTC-PYUSD", Decimal("100000.25"), 0.9, 5)
        state.publish_pnl(PnLRecord("*", "*", Decimal(0), Decimal("1.5"), Decimal("-0.25"), Decimal("0.01"), 6))
        state.publish_kill_switch(False, "", 8)
        assert state.flush(2.0)

        raw = redis.Redis.from_url(redis_url, decode_responses=True)
        assert raw.hget(state_key(instance, "position"), "truex:BTC-PYUSD") == "-0.00000001"
        assert set(raw.hkeys(state_key(instance, "orders"))) == {"truex:a"}
        assert 0 < raw.pttl(state_key(instance, "heartbeat")) <= 30_000
        raw.close()

        hot = read_hot_state(redis_url, instance)
        assert hot.positions == {"truex:BTC-PYUSD": Decimal("-0.00000001")}
        assert hot.open_orders["truex:a"]["price"] == "100001.5" and hot.open_orders["truex:a"]["state"] == "OPEN"
        assert hot.fair_values["BTC-PYUSD"] == {"price": "100000.25", "confidence": 0.9, "ts_ns": 5}
        assert hot.pnl["*:*"]["realized"] == "1.5"
        assert hot.kill_switch == {"active": False, "reason": "", "ts_ns": 8}
        assert hot.heartbeat is not None and hot.heartbeat["ts_ns"] == 42 and hot.heartbeat["session"] == "s1"

        state.replace_open_orders([_order("z", "OPEN")])
        assert state.flush(2.0)
        assert set(read_hot_state(redis_url, instance).open_orders) == {"truex:z"}
    finally:
        state.close()
        cleanup = redis.Redis.from_url(redis_url)
        cleanup.delete(
            *[state_key(instance, n) for n in ("heartbeat", "position", "orders", "fair_value", "pnl", "kill_switch")]
        )
        cleanup.close()


def test_redis_outage_is_counted_and_state_is_complete_after_it_returns_empty(
    throwaway_redis: Any, wait_until: Callable[..., bool]
) -> None:
    state = RedisState(throwaway_redis.url, "it", publish_interval_s=0.01, retry_max_s=0.05, socket_timeout_s=0.2)
    state.start()
    state.publish_position("truex", "BTC-PYUSD", Decimal("1"))
    state.publish_order(_order("a", "OPEN"))
    state.publish_order(_order("b", "OPEN"))
    assert state.flush(2.0)

    throwaway_redis.kill()  # SIGKILL: no persistence, it will come back empty
    state.publish_position("truex", "BTC-PYUSD", Decimal("2"))  # never raises, never blocks
    state.publish_order(_order("b", "CANCELED"))
    state.publish_kill_switch(True, "max loss", 9)
    assert wait_until(lambda: not state.stats().connected)
    assert not state.flush(0.05)
    during = state.stats()
    assert not during.connected and during.outages == 1 and during.errors >= 1

    throwaway_redis.start()
    assert state.flush(3.0)
    after = state.stats()
    assert after.connected and after.outages == 1
    hot = read_hot_state(throwaway_redis.url, "it")
    assert hot.positions == {"truex:BTC-PYUSD": Decimal("2")}
    assert set(hot.open_orders) == {"truex:a"}  # published before the outage, restored by the resync
    assert hot.kill_switch == {"active": True, "reason": "max loss", "ts_ns": 9}
    assert state.close()
