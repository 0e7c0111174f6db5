"""Redis hot state: what this instance holds *now*, for dashboards and other processes.

Key layout (``<i>`` is the instance name; every value is UTF-8 text, money as
exact decimal strings, JSON where a value has several fields):

==============================  ======  =================================================================
key                             type    content
==============================  ======  =================================================================
``mmkit:<i>:heartbeat``         string  ``{"ts_ns", "pid", "session"}``; expires after ``heartbeat_ttl_s``
``mmkit:<i>:position``          hash    field ``<venue>:<symbol>`` -> position, e.g. ``"-0.25"``
``mmkit:<i>:orders``            hash    field ``<venue>:<client_id>`` -> JSON of the order (open orders only)
``mmkit:<i>:fair_value``        hash    field ``<symbol>`` -> ``{"price", "confidence", "ts_ns"}``
``mmkit:<i>:pnl``               hash    field ``<venue>:<symbol>`` (``*:*`` = total) -> PnL snapshot JSON
``mmkit:<i>:kill_switch``       string  ``{"active", "reason", "ts_ns"}``
==============================  ======  =================================================================

Why coalescing and a thread: hot state is "latest value wins", so the
engine's calls only overwrite an entry in a pending map (no I/O, never
blocks); a publisher thread sends the pending map every
``publish_interval_s`` in one MULTI/EXEC pipeline (a reader never sees half an
update). If Redis is down the pending map is kept (newer values replacing
older ones), the outage is logged once and counted, and everything pending is
published when Redis is back. Because a restarted Redis may have lost its
data, the first publish after an outage is a full resync: the publisher keeps
a mirror of everything it has published and re-sends it, followed by what
changed meanwhile. Nothing here ever raises into the engine.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import attrs
import redis
from loguru import logger
from redis.backoff import NoBackoff
from redis.retry import Retry

from mmkit.store.records import OrderRecord, PnLRecord, to_jsonable

KEY_PREFIX = "mmkit"
#: The one holding gate, as versions before ``quoting_gates`` wrote it (still written and read: see
#: :meth:`RedisState.publish_quoting_gates`).
LEGACY_GATE_KEY = "quoting_gate"


def state_key(instance: str, name: str) -> str:
    """``mmkit:<instance>:<name>``: the one place the key layout is spelled."""
    return f"{KEY_PREFIX}:{instance}:{name}"


@attrs.frozen(slots=True)
class _Op:
    verb: str  # "hset" | "hdel" | "set" | "del"
    key: str
    field: str | None = None
    value: str | None = None
    ttl_ms: int | None = None


_Pending = dict[tuple[str, str | None], _Op]


def _put(pending: _Pending, op: _Op) -> None:
    """Add ``op`` so that applying ``pending`` in order yields the latest state."""
    if op.verb == "del":
        for slot in [slot for slot in pending if slot[0] == op.key]:
            del pending[slot]
        pending[(op.key, None)] = op
        return
    slot = (op.key, op.field)
    pending.pop(slot, None)  # re-insert at the end: after any earlier DEL of the whole key
    pending[slot] = op


@attrs.frozen(slots=True)
class RedisStats:
    published: int
    errors: int
    outages: int
    connected: bool
    pending: int


class RedisState:
    """Publishes this instance's hot state to Redis without ever blocking or failing the engine."""

    def __init__(
        self,
        url: str,
        instance: str,
        *,
        session_id: str = "",
        publish_interval_s: float = 0.1,
        socket_timeout_s: float = 0.5,
        retry_max_s: float = 5.0,
        heartbeat_ttl_s: float = 30.0,
    ) -> None:
        if not instance or any(c in instance for c in ": \t\n"):
            raise ValueError(f"instance name {instance!r} must be non-empty without ':' or whitespace")
        self.instance = instance
        self.session_id = session_id
        self._interval = publish_interval_s
        self._retry_max_s = retry_max_s
        self._heartbeat_ttl_ms = int(heartbeat_ttl_s * 1000)
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout_s,
            socket_connect_timeout=socket_timeout_s,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
        )
        self._log = logger.bind(redis=_redact_redis_url(url), instance=instance)
        self._cond = threading.Condition()
        self._pending: _Pending = {}
        self._in_flight = 0
        self._stopping = False
        self._flush_requested = False
        self._thread: threading.Thread | None = None
        self._mirror: _Pending = {}  # publisher thread only: the state Redis should hold
        self._resync = False
        self._published = 0
        self._errors = 0
        self._outages = 0
        self._connected = True
        self._outage_began = 0.0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the publisher thread. Never raises if Redis is down: state is just not published."""
        if self._thread is not None:
            raise RuntimeError("redis state publisher already started")
        self._thread = threading.Thread(target=self._run, name=f"mmkit-redis-{self.instance}", daemon=True)
        self._thread.start()

    def flush(self, timeout_s: float = 2.0) -> bool:
        """Wait until everything set so far is published; False on timeout (e.g. Redis down)."""
        with self._cond:
            self._flush_requested = True
            self._cond.notify_all()
            return self._cond.wait_for(lambda: not self._pending and not self._in_flight, timeout=timeout_s)

    def close(self, timeout_s: float = 2.0) -> bool:
        """Publish what is pending (bounded by ``timeout_s``) and stop; True if nothing was left."""
        done = self.flush(timeout_s) if self._thread is not None else not self._pending
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s + 1.0)
        self._client.close()
        return done

    def stats(self) -> RedisStats:
        with self._cond:
            return RedisStats(self._published, self._errors, self._outages, self._connected, len(self._pending))

    # ------------------------------------------------------------------ engine-side setters (never block)

    def heartbeat(self, ts_ns: int | None = None) -> None:
        value = {
            "ts_ns": ts_ns if ts_ns is not None else time.time_ns(),
            "pid": os.getpid(),
            "session": self.session_id,
        }
        self._set(_Op("set", self._key("heartbeat"), value=_dumps(value), ttl_ms=self._heartbeat_ttl_ms))

    def publish_position(self, venue: str, symbol: str, position: Decimal) -> None:
        self._set(_Op("hset", self._key("position"), f"{venue}:{symbol}", format(position, "f")))

    def publish_order(self, order: OrderRecord) -> None:
        """Publish an order's latest state; a terminal state removes it from the open set."""
        field = f"{order.venue}:{order.client_id}"
        if order.is_open:
            self._set(_Op("hset", self._key("orders"), field, _dumps(order)))
        else:
            self._set(_Op("hdel", self._key("orders"), field))

    def replace_open_orders(self, open_orders: Iterable[OrderRecord]) -> None:
        """Replace the whole open-order set (on start, after reconciliation)."""
        with self._cond:
            _put(self._pending, _Op("del", self._key("orders")))
            for order in open_orders:
                if order.is_open:
                    field = f"{order.venue}:{order.client_id}"
                    _put(self._pending, _Op("hset", self._key("orders"), field, _dumps(order)))

    def publish_fair_value(self, symbol: str, price: Decimal | None, confidence: float, ts_ns: int) -> None:
        value = {"price": price, "confidence": confidence, "ts_ns": ts_ns}
        self._set(_Op("hset", self._key("fair_value"), symbol, _dumps(value)))

    def publish_pnl(self, pnl: PnLRecord) -> None:
        self._set(_Op("hset", self._key("pnl"), f"{pnl.venue}:{pnl.symbol}", _dumps(pnl)))

    def publish_kill_switch(self, active: bool, reason: str, ts_ns: int) -> None:
        value = {"active": active, "reason": reason, "ts_ns": ts_ns}
        self._set(_Op("set", self._key("kill_switch"), value=_dumps(value)))

    def publish_quoting_gates(self, holds: list[dict[str, Any]]) -> None:
        """Every runner gate holding quoting now, in gate order (gate, reason, since_ns, ticks); []: none holds.

        The first one is also kept under the key ``quoting_gate`` (the hold, or null), as earlier versions
        wrote it: an older ``mmkit status`` or a desk's own monitor reading that key must still see that
        quoting is held while the desk upgrades, not an empty key it would take for "no gate holds".
        """
        self._set(_Op("set", self._key("quoting_gates"), value=_dumps(holds)))
        self._set(_Op("set", self._key(LEGACY_GATE_KEY), value=_dumps(holds[0] if holds else None)))

    def _key(self, name: str) -> str:
        return state_key(self.instance, name)

    def _set(self, op: _Op) -> None:
        with self._cond:
            _put(self._pending, op)

    # ------------------------------------------------------------------ publisher thread

    def _run(self) -> None:
        delay = self._interval
        while True:
            with self._cond:
                if not self._flush_requested and not self._stopping:
                    self._cond.wait(delay)
                self._flush_requested = False
                if self._stopping and (not self._pending or not self._connected):
                    return
                batch, self._pending = self._pending, {}
                self._in_flight = len(batch)
            if not batch:
                with self._cond:
                    self._in_flight = 0
                    self._cond.notify_all()
                continue
            to_send = batch
            if self._resync:
                to_send = dict(self._mirror)
                for op in batch.values():
                    _put(to_send, op)
            try:
                self._send(to_send.values())
            except (redis.RedisError, OSError) as exc:
                self._on_failure(batch, exc)
                delay = min(max(delay * 2, self._interval), self._retry_max_s)
                continue
            self._resync = False
            self._remember(batch.values())
            delay = self._interval
            with self._cond:
                self._published += len(batch)
                self._in_flight = 0
                if not self._connected:
                    self._connected = True
                    self._log.warning("redis reachable again after {:.1f} s", time.monotonic() - self._outage_began)
                self._cond.notify_all()

    def _send(self, ops: Iterable[_Op]) -> None:
        pipe = self._client.pipeline(transaction=True)
        for op in ops:
            if op.verb == "hset":
                assert op.field is not None and op.value is not None
                pipe.hset(op.key, op.field, op.value)
            elif op.verb == "hdel":
                assert op.field is not None
                pipe.hdel(op.key, op.field)
            elif op.verb == "set":
                assert op.value is not None
                pipe.set(op.key, op.value, px=op.ttl_ms)
            else:
                pipe.delete(op.key)
        pipe.execute()

    def _remember(self, ops: Iterable[_Op]) -> None:
        """Track what Redis now holds, so that a resync can restore it (deletions are not kept)."""
        for op in ops:
            if op.verb == "hdel":
                self._mirror.pop((op.key, op.field), None)
            elif op.verb == "del":
                for slot in [slot for slot in self._mirror if slot[0] == op.key]:
                    del self._mirror[slot]
            elif op.ttl_ms is None:  # expiring keys (heartbeat) must not be revived by a resync
                _put(self._mirror, op)

    def _on_failure(self, batch: _Pending, exc: BaseException) -> None:
        """Put the failed ops back *before* anything set meanwhile, which supersedes them."""
        with self._cond:
            newer = self._pending
            merged: _Pending = dict(batch)
            for op in newer.values():
                _put(merged, op)
            self._pending = merged
            self._in_flight = 0
            self._errors += 1
            self._resync = True
            first = self._connected
            if first:
                self._connected = False
                self._outages += 1
                self._outage_began = time.monotonic()
            self._cond.notify_all()
        if first:
            self._log.error("redis outage #{}: {}; hot state not published until it is back", self._outages, exc)


@attrs.frozen(slots=True)
class HotState:
    """What one instance last published, decoded (for ``mmkit status`` and dashboards)."""

    heartbeat: dict[str, Any] | None
    positions: dict[str, Decimal]
    open_orders: dict[str, dict[str, Any]]
    fair_values: dict[str, dict[str, Any]]
    pnl: dict[str, dict[str, Any]]
    kill_switch: dict[str, Any] | None
    #: Every runner gate holding quoting (``publish_quoting_gates``); [] when none holds or none was published.
    quoting_gates: list[dict[str, Any]] = attrs.field(factory=list)


def read_hot_state(url: str, instance: str, timeout_s: float = 1.0) -> HotState:
    """Read an instance's hot state. Raises redis errors: a reader should say Redis is unreachable."""
    client = redis.Redis.from_url(
        url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, decode_responses=True
    )
    try:
        pipe = client.pipeline(transaction=True)
        for name in ("heartbeat", "position", "orders", "fair_value", "pnl", "kill_switch", "quoting_gates",
                     LEGACY_GATE_KEY):
            if name in ("heartbeat", "kill_switch", "quoting_gates", LEGACY_GATE_KEY):
                pipe.get(state_key(instance, name))
            else:
                pipe.hgetall(state_key(instance, name))
        heartbeat, positions, orders, fair, pnl, kill, gates, legacy_gate = pipe.execute()
    finally:
        client.close()
    return HotState(
        heartbeat=json.loads(heartbeat) if heartbeat else None,
        positions={k: Decimal(v) for k, v in positions.items()},
        open_orders={k: json.loads(v) for k, v in orders.items()},
        fair_values={k: json.loads(v) for k, v in fair.items()},
        pnl={k: json.loads(v) for k, v in pnl.items()},
        kill_switch=json.loads(kill) if kill else None,
        quoting_gates=_gates(gates, legacy_gate),
    )


def _gates(gates: str | None, legacy_gate: str | None) -> list[dict[str, Any]]:
    """The holding gates from ``quoting_gates``; from ``quoting_gate`` alone when an earlier version wrote it.

    Why: an engine of the previous version, still running while the desk upgrades, writes only the one
    key; reading the new key alone would show "no gate holds" while its quoting is held.
    """
    if gates is not None:
        return list(json.loads(gates))
    hold = json.loads(legacy_gate) if legacy_gate else None
    return [hold] if hold else []


def _dumps(value: Any) -> str:
    return json.dumps(to_jsonable(value), separators=(",", ":"))


def _redact_redis_url(url: str) -> str:
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.split('@', 1)[1]}"
