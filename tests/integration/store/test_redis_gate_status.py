"""`mmkit status` from Redis says which runner gate holds quoting, and stops saying it once the gate lets go.

Why: without a dashboard, `mmkit status` reads the Redis hot state. It carried the
kill switch but not a runner gate (the venue's dead man's switch not armed, the
market claim lost, the store behind), so an engine that quoted nothing looked
healthy there.
"""

from __future__ import annotations

import json
import time
import uuid
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
import redis

from mmkit.app.config import StoreSection
from mmkit.app.persistence import attach_persistence
from mmkit.app.status_cmd import format_status, status_from_redis
from mmkit.store.redis_state import LEGACY_GATE_KEY, state_key
from mmkit.testing.harness import Harness
from strategies.simple import SimpleConfig, SimpleController

pytestmark = pytest.mark.integration


async def test_status_from_redis_shows_every_holding_gate_and_clears_it(redis_url: str, tmp_path: Path) -> None:
    instance = "gate-" + uuid.uuid4().hex[:8]
    h = Harness(SimpleController(SimpleConfig(half_spread_bps=D(10), order_size=D("0.01"))))
    held: list[str | None] = [None]
    claim: list[str | None] = [None]
    h.engine.runner.add_gate(lambda _ts: held[0], "venue kraken")
    h.engine.runner.add_gate(lambda _ts: claim[0], "market claim")
    p = attach_persistence(h.engine, StoreSection(redis_url=redis_url), instance, tmp_path)
    try:
        await h.engine.start()
        h.set_fair("60000")
        h.tick(3)
        assert p.redis is not None and p.redis.flush(5.0)
        status = status_from_redis(redis_url, instance)
        assert status is not None and status["quoting_gates"] == []
        assert "HELD" not in format_status({**status, "instance": instance})

        held[0] = "kraken: dead man's switch not armed"
        h.tick(3)
        assert p.redis.flush(5.0)
        status = status_from_redis(redis_url, instance)
        assert status is not None
        (gate,) = status["quoting_gates"]
        assert gate["gate"] == "venue kraken"
        assert gate["reason"] == "kraken: dead man's switch not armed"
        text = format_status({**status, "instance": instance})
        assert "quoting      HELD by gate venue kraken" in text and "dead man's switch not armed" in text

        # A second gate holds too (the market claim): both are in Redis and both are printed.
        claim[0] = "market claim lost to instance other"
        h.tick(2)
        assert p.redis.flush(5.0)
        status = status_from_redis(redis_url, instance)
        assert status is not None
        assert [g["gate"] for g in status["quoting_gates"]] == ["venue kraken", "market claim"]
        text = format_status({**status, "instance": instance})
        assert "quoting      HELD by gate venue kraken" in text and "HELD by gate market claim" in text, text
        assert "lost to instance other" in text, text

        held[0] = None  # the first lets go, the second still holds
        h.tick(2)
        assert p.redis.flush(5.0)
        status = status_from_redis(redis_url, instance)
        assert status is not None and [g["gate"] for g in status["quoting_gates"]] == ["market claim"]

        claim[0] = None
        h.tick(2)
        assert p.redis.flush(5.0)
        status = status_from_redis(redis_url, instance)
        assert status is not None and status["quoting_gates"] == []
        assert _legacy_gate(redis_url, instance) is None
        assert "HELD" not in format_status({**status, "instance": instance})
    finally:
        h.stop()
        p.close()
        cleanup = redis.Redis.from_url(redis_url)
        cleanup.delete(*[state_key(instance, n) for n in ("heartbeat", "position", "orders", "fair_value", "pnl",
                                                          "kill_switch", "quoting_gates", LEGACY_GATE_KEY)])
        cleanup.close()


def _legacy_gate(redis_url: str, instance: str) -> Any:
    """The hold under the key versions before ``quoting_gates`` wrote and read (None: no gate holds)."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        raw = client.get(state_key(instance, LEGACY_GATE_KEY))
    finally:
        client.close()
    assert raw is not None, "the engine no longer writes quoting_gate: an earlier mmkit status would read no gate"
    return json.loads(raw)


def test_a_hold_written_by_an_earlier_version_is_shown_by_status(redis_url: str) -> None:
    """An engine of the previous version (still running while the desk upgrades) writes only ``quoting_gate``.

    Reading ``quoting_gates`` alone would show that engine as quoting while a gate holds it.
    """
    instance = "gate-old-" + uuid.uuid4().hex[:8]
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    hold = {"gate": "market claim", "reason": "market claim lost to instance other", "since_ns": 1, "ticks": 4}
    try:
        client.set(state_key(instance, "heartbeat"), json.dumps({"ts_ns": time.time_ns()}))
        client.set(state_key(instance, LEGACY_GATE_KEY), json.dumps(hold))
        status = status_from_redis(redis_url, instance)
        assert status is not None and status["quoting_gates"] == [hold]
        assert "HELD by gate market claim" in format_status({**status, "instance": instance})
        client.set(state_key(instance, LEGACY_GATE_KEY), "null")  # that engine's gate let go
        status = status_from_redis(redis_url, instance)
        assert status is not None and status["quoting_gates"] == []
    finally:
        client.delete(state_key(instance, "heartbeat"), state_key(instance, LEGACY_GATE_KEY))
        client.close()
