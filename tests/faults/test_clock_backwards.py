"""A wall clock set backwards between sessions (NTP step, a VM restored, an operator's `date -s`).

`mmkit status` picked the "latest session" by its start time: after the clock
went back an hour, the session running now started "before" the one that
stopped an hour ago, and status showed the old, stopped session as the
instance's state. Now sessions are ordered by the store's own sequence
(``sessions.seq``, schema v3), and a start whose time is before the previous
session's end says so, in the log, the audit trail and ``mmkit status``.
"""

from __future__ import annotations

import time as real_time
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from loguru import logger
from sqlalchemy import select

from mmkit.app.config import StoreSection
from mmkit.app.persistence import attach_persistence
from mmkit.app.status_cmd import format_status, status_from_store
from mmkit.connector import load_venue_rules
from mmkit.model import Side
from mmkit.store import schema
from mmkit.store.db import create_store_engine
from mmkit.store.recorder import Recorder
from mmkit.testing.fake_connector import FakeConnector
from mmkit.testing.harness import Harness
from strategies.simple import SimpleConfig, SimpleController

HOUR_NS = 3600 * 10**9


class ClockSetBack:
    """The ``time`` module as the recorder sees it, with the wall clock an hour behind (monotonic untouched)."""

    def __init__(self, back_ns: int) -> None:
        self.back_ns = back_ns

    def time_ns(self) -> int:
        return real_time.time_ns() - self.back_ns

    def time(self) -> float:
        return self.time_ns() / 1e9

    def gmtime(self, secs: float | None = None) -> real_time.struct_time:
        return real_time.gmtime(self.time() if secs is None else secs)

    def __getattr__(self, name: str) -> Any:
        return getattr(real_time, name)


def url_of(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store' / 'mm1.sqlite'}"


def first_session(url: str) -> str:
    rec = Recorder(url, instance="mm1")
    rec.start()
    rec.close()
    return rec.session_id


def test_status_shows_the_session_running_now_when_the_clock_went_back(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    url = url_of(tmp_path)
    old = first_session(url)  # ran and stopped cleanly at the real time
    import mmkit.store.recorder as recorder_module

    monkeypatch.setattr(recorder_module, "time", ClockSetBack(HOUR_NS))
    now = Recorder(url, instance="mm1")  # started after it, with the clock an hour behind
    now.start()
    assert now.flush(10)
    try:
        status = status_from_store(url, "mm1", tmp_path / "audit.jsonl")
        assert status is not None
        assert status["session"] == now.session_id, f"status shows {status['session']}, the old session {old}"
        assert status["running"] is True  # before: the old session's "stopped"
        warning = status.get("clock_warning") or ""
        assert f"clock went backwards: session {now.session_id} started" in warning, status
        assert f"before session {old} ended" in warning
        assert "WARNING      clock went backwards" in format_status({**status, "instance": "mm1"})
    finally:
        now.close()


def test_a_store_of_schema_v2_is_read_and_migrated_in_start_order(tmp_path: Path) -> None:
    """Stores written before v3 have no sequence: status reads them (by start time, all there was), and the
    migration numbers their sessions in start order, the new session after them."""
    url = url_of(tmp_path)
    engine = create_store_engine(url)
    schema.migrate(engine, schema.MIGRATIONS[:2])
    with engine.begin() as conn:  # a v2 sessions table has no seq column: write with the v2 columns
        for sid, started in (("s-b", 2), ("s-a", 1)):
            conn.exec_driver_sql(
                "INSERT INTO sessions (session_id, instance, started_ns, stopped_ns) VALUES (?, 'mm1', ?, ?)",
                (sid, started, started + 1),
            )
    status = status_from_store(url, "mm1", tmp_path / "audit.jsonl")
    assert status is not None and status["session"] == "s-b"
    rec = Recorder(url, instance="mm1")
    rec.start()  # migrates to the latest version
    rec.close()
    with engine.connect() as conn:
        rows = conn.execute(select(schema.sessions.c.session_id, schema.sessions.c.seq)
                            .order_by(schema.sessions.c.seq)).all()
    engine.dispose()
    assert [r[0] for r in rows] == ["s-a", "s-b", rec.session_id]
    assert [r[1] for r in rows] == [1, 2, 3]


async def test_a_start_after_the_clock_went_back_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    venue = FakeConnector(load_venue_rules("sim"))
    store = StoreSection(url=url_of(tmp_path))

    def harness() -> Harness:
        return Harness(SimpleController(SimpleConfig(half_spread_bps=D(10), order_size=D("0.01"))),
                       rules=venue.rules, venue=venue)

    a = harness()
    pa = attach_persistence(a.engine, store, "mm1", tmp_path)
    await a.engine.start()
    a.set_fair("60000")
    a.tick(2)
    venue.fill(next(o for o in venue.open_orders if o.side is Side.BUY).client_id, "0.004")
    a.tick()
    a.stop()
    assert pa.close() == 0

    import mmkit.store.recorder as recorder_module

    monkeypatch.setattr(recorder_module, "time", ClockSetBack(HOUR_NS))
    messages: list[str] = []
    sink = logger.add(lambda m: messages.append(str(m)), level="WARNING")
    try:
        b = harness()
        pb = attach_persistence(b.engine, store, "mm1", tmp_path)
        await b.engine.start()
    finally:
        logger.remove(sink)
    assert any("clock went backwards" in m and pb.session_id in m for m in messages), messages
    assert b.position == D("0.004")  # the ledger is whole: only the clock is in doubt
    b.stop()
    assert pb.close() == 0
    audit = (tmp_path / "audit" / "mm1.jsonl").read_text()
    assert '"clock_backwards"' in audit
