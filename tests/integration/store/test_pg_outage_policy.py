"""Store failure policy with PostgreSQL: down past the grace halts quoting; back and caught up, it resumes.

Real PostgreSQL (the store suite's fixtures: a scratch database), taken away
by refusing connections and terminating the engine's. While it is down the
write-ahead journal holds every fill; nothing is lost and nothing is doubled.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import attrs
import psycopg
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.engine import make_url

from mmkit.app.config import StoreSection
from mmkit.app.persistence import attach_persistence
from mmkit.model import Side
from mmkit.store import schema
from mmkit.testing.harness import Harness
from strategies.simple import SimpleConfig, SimpleController

pytestmark = pytest.mark.integration


async def test_postgresql_down_past_the_grace_halts_quoting_then_resumes_and_loses_nothing(
    pg_url: str, pg_admin: psycopg.Connection[Any], wait_until: Callable[[Callable[[], bool], float], bool],
    tmp_path: Path,
) -> None:
    h = Harness(SimpleController(SimpleConfig(half_spread_bps=D(10), order_size=D("0.01"))))
    store = attrs.evolve(StoreSection(url=pg_url), outage_grace_s=1.0)
    p = attach_persistence(h.engine, store, "pgpolicy", tmp_path, recorder_options={"retry_max_s": 0.2})
    await h.engine.start()
    h.set_fair("60000")
    h.tick(3)
    assert p.recorder.flush()

    database = make_url(pg_url).database
    pg_admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
    pg_admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (database,))
    try:
        bid = next(o for o in h.venue.open_orders if o.side is Side.BUY)
        h.venue.fill(bid.client_id, "0.004")
        h.tick()
        assert wait_until(lambda: p.recorder.stats().in_outage, 15.0)
        h.tick(5)  # 0.5 s simulated: within the grace, still quoting
        assert p.halt_reason is None and h.quotes()
        h.tick(10)  # past the grace
        assert p.halt_reason is not None and "store unreachable" in p.halt_reason
        assert h.quotes() == []
    finally:
        pg_admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
    assert wait_until(lambda: p.recorder.stats().backlog == 0, 20.0)
    h.tick(3)
    assert p.halt_reason is None and h.quotes()
    h.stop()
    assert p.close() == 0
    assert h.engine.outcome.ok, h.engine.outcome.problems

    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            stored = sorted(r[0] for r in conn.execute(select(schema.fills.c.trade_id)))
    finally:
        engine.dispose()
    assert stored == sorted(f.trade_id for f in h.venue.fills)
    assert (tmp_path / "store" / "pgpolicy.journal").exists()  # PostgreSQL: the journal in output_dir/store
