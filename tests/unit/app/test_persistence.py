"""attach_persistence: every order state change, every fill, PnL snapshots, audit, flush on close."""

from __future__ import annotations

import json
from decimal import Decimal as D
from pathlib import Path

import pytest
from sqlalchemy import update

from mmkit.app.config import StoreSection
from mmkit.app.engine import EngineStartError
from mmkit.app.persistence import attach_persistence, default_audit_path, default_store_url
from mmkit.app.persistence_iterator import Persistence
from mmkit.model import Side
from mmkit.store import schema
from mmkit.store.queries import StoreQueries
from mmkit.store.recorder import Recorder
from mmkit.testing.harness import Harness
from strategies.simple import SimpleConfig, SimpleController

INSTANCE = "unit"


def harness() -> Harness:
    return Harness(SimpleController(SimpleConfig(half_spread_bps=D(10), order_size=D("0.01"))))


def audit_lines(tmp_path: Path) -> list[dict[str, object]]:
    path = default_audit_path(StoreSection(), INSTANCE, tmp_path)
    return [json.loads(line) for line in path.read_text().splitlines()]


async def started(tmp_path: Path, **store: object) -> tuple[Harness, Persistence]:
    h = harness()
    p = attach_persistence(h.engine, StoreSection(**store), INSTANCE, tmp_path)  # type: ignore[arg-type]
    await h.engine.start()
    return h, p


def test_default_locations_are_under_the_output_dir(tmp_path: Path) -> None:
    assert default_store_url(StoreSection(), "mm1", tmp_path) == f"sqlite:///{tmp_path}/store/mm1.sqlite"
    assert default_audit_path(StoreSection(), "mm1", tmp_path) == tmp_path / "audit" / "mm1.jsonl"
    configured = StoreSection(url="postgresql+psycopg://db/x", audit_path=str(tmp_path / "a.jsonl"))
    assert default_store_url(configured, "mm1", tmp_path) == "postgresql+psycopg://db/x"
    assert default_audit_path(configured, "mm1", tmp_path) == tmp_path / "a.jsonl"


async def test_order_lifecycle_fills_and_pnl_are_recorded_and_flushed_on_close(tmp_path: Path) -> None:
    h, p = await started(tmp_path)
    h.set_fair("60000")
    h.tick()  # places a bid and an ask: PENDING_CREATE recorded by the sweep
    h.tick()  # acks: OPEN
    bid = next(o for o in h.venue.open_orders if o.side is Side.BUY)
    h.venue.fill(bid.client_id, "0.004")
    h.tick()  # partial fill; the controller then re-sizes the bid (cancel/replace)
    assert h.stop() == 0
    assert p.close() == 0
    assert p.close() == 0  # idempotent

    q = StoreQueries(default_store_url(StoreSection(), INSTANCE, tmp_path))
    try:
        states = [(o.state, o.filled_qty) for o in q.order_history("sim", bid.client_id)]
        assert states == [
            ("PENDING_CREATE", D(0)),
            ("OPEN", D(0)),
            ("PARTIALLY_FILLED", D("0.004")),
            ("PENDING_REPLACE", D("0.004")),  # our action, seen by the post-strategy sweep
            ("CANCELED", D("0.004")),  # replaced: the old client id is closed
        ]
        assert [f.trade_id for f in q.fills()] == [f.trade_id for f in h.venue.fills]
        assert q.position("sim", h.symbol) == h.position == D("0.004")
        assert q.open_orders() == []  # the ask was canceled at stop, and that was recorded
        totals = [r for r in q.latest_pnl() if r.venue == "*"]
        assert totals and totals[0].position == D("0.004")
        assert p.recorder.stats().backlog == 0
    finally:
        q.close()
    kinds = [line["kind"] for line in audit_lines(tmp_path)]
    assert kinds.count("fill") == 1
    assert "order" in kinds


async def test_kill_switch_trip_is_audited(tmp_path: Path) -> None:
    h, p = await started(tmp_path)
    h.set_fair("60000")
    h.tick()
    kill = h.engine.runner.kill_switch
    assert kill is not None
    kill.trip(h.clock.now_ns, "operator")
    h.tick()
    assert p.close() == 0
    risk = [line for line in audit_lines(tmp_path) if line["kind"] == "risk"]
    assert any(r["data"] == {"event": "kill_switch_trip", "reason": "operator"} for r in risk)


async def test_attaching_twice_returns_the_same_persistence(tmp_path: Path) -> None:
    h = harness()
    first = attach_persistence(h.engine, StoreSection(), INSTANCE, tmp_path)
    assert attach_persistence(h.engine, StoreSection(), INSTANCE, tmp_path) is first
    assert h.engine.closers.count(first.close) == 1
    assert first.close() == 0  # never opened: nothing to write, no error


async def test_a_store_newer_than_the_code_refuses_to_start(tmp_path: Path) -> None:
    url = default_store_url(StoreSection(), INSTANCE, tmp_path)
    rec = Recorder(url, instance=INSTANCE)
    rec.start()
    assert rec.close() == 0
    with rec.engine.begin() as conn:  # close() disposed the pool; begin() opens a fresh connection
        conn.execute(update(schema.schema_version).where(schema.schema_version.c.version == schema.SCHEMA_VERSION)
                     .values(version=10_000))
    h = harness()
    p = attach_persistence(h.engine, StoreSection(), INSTANCE, tmp_path)
    with pytest.raises(EngineStartError, match="store unavailable"):
        await h.engine.start()
    assert p.close() == 0
