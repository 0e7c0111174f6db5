"""Persistence: what the engine did (recorder, audit trail) and what it holds now (Redis hot state).

* :class:`Recorder` - orders, fills, hedges, PnL, sampled top-of-book to SQLite
  or PostgreSQL, batched on a writer thread; never blocks the tick.
* :class:`StoreQueries` - read side for restart recovery and the CLI.
* :class:`RedisState` / :func:`read_hot_state` - hot state under ``mmkit:<instance>:*``.
* :class:`AuditTrail` - append-only JSONL with rotation, fsync policy, redaction.

See docs/operations.md (store section) for URLs, key layout and outage behaviour.
"""

from typing import TYPE_CHECKING, Any

from mmkit.store.audit import AuditTrail, redact
from mmkit.store.db import DEFAULT_URL, create_store_engine
from mmkit.store.queries import FillSummary, SessionInfo, StoreQueries
from mmkit.store.recorder import Recorder, RecorderStats
from mmkit.store.records import HedgeRecord, OrderRecord, PnLRecord, TopOfBookRecord
from mmkit.store.schema import SCHEMA_VERSION, SchemaError, migrate

if TYPE_CHECKING:
    from mmkit.store.redis_state import HotState, RedisState, read_hot_state, state_key

#: Imported on first use: the redis client costs ~7 MB of a live process that has no Redis configured.
_LAZY = ("HotState", "RedisState", "read_hot_state", "state_key")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from mmkit.store import redis_state

        return getattr(redis_state, name)
    raise AttributeError(f"module 'mmkit.store' has no attribute {name!r}")


__all__ = [
    "DEFAULT_URL",
    "SCHEMA_VERSION",
    "AuditTrail",
    "FillSummary",
    "HedgeRecord",
    "HotState",
    "OrderRecord",
    "PnLRecord",
    "Recorder",
    "RecorderStats",
    "RedisState",
    "SchemaError",
    "SessionInfo",
    "StoreQueries",
    "TopOfBookRecord",
    "create_store_engine",
    "migrate",
    "read_hot_state",
    "redact",
    "state_key",
]
