"""One instance, one process, on a shared PostgreSQL store, whatever output directory each engine runs from.

The journal lock is a file in the output directory when the store is
PostgreSQL, so before these tests two engines of one instance started from
two output directories both started and both wrote the instance's fills and
order states into the same tables. Now the instance is held in the database
(a session-level advisory lock, mmkit.store.instance_lock): the second start
is refused before anything is sent, naming the instance, the store and the
holder; a SIGKILLed holder's lock dies with its connection.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal as D
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from mmkit.app.config import StoreSection
from mmkit.app.engine import EngineStartError
from mmkit.app.outcome import EXIT_START_REFUSED, ProblemKind
from mmkit.app.persistence import attach_persistence
from mmkit.app.persistence_iterator import Persistence
from mmkit.app.reconcile import run_reconcile
from mmkit.connector import load_venue_rules
from mmkit.model import Side
from mmkit.store.instance_lock import instance_lock_key
from mmkit.testing.fake_connector import FakeConnector
from mmkit.testing.harness import Harness
from strategies.simple import SimpleConfig, SimpleController
from tests.integration.store.conftest import _libpq

REPO = Path(__file__).resolve().parents[3]


def harness(venue: FakeConnector) -> Harness:
    controller = SimpleController(SimpleConfig(half_spread_bps=D(10), order_size=D("0.01")))
    return Harness(controller, rules=venue.rules, venue=venue)


def attach(h: Harness, pg_url: str, instance: str, out: Path) -> Persistence:
    p = attach_persistence(h.engine, StoreSection(url=pg_url), instance, out)
    lock = getattr(p, "instance_lock", None)
    if lock is not None:
        lock.wait_s = 0.0  # a live holder: refuse at once (the wait is for a dying one)
    return p


async def test_a_second_engine_of_the_instance_from_another_output_dir_is_refused(pg_url: str, tmp_path: Path) -> None:
    venue = FakeConnector(load_venue_rules("sim"))
    a = harness(venue)
    pa = attach(a, pg_url, "alpha", tmp_path / "a")
    await a.engine.start()
    a.set_fair("60000")
    a.tick(2)
    venue.fill(next(o for o in venue.open_orders if o.side is Side.BUY).client_id, "0.004")
    a.tick()

    other = FakeConnector(load_venue_rules("sim"))  # the second engine's session (same account in real life)
    b = harness(other)
    pb = attach(b, pg_url, "alpha", tmp_path / "b")  # its own output dir: its own journal and journal lock
    refusal = (rf"instance 'alpha' is in use on store postgresql\+psycopg://.*: another process holds its lock "
               rf"\(mmkit pid {os.getpid()} on ")
    with pytest.raises(EngineStartError, match=refusal):
        await b.engine.start()
    assert not other.actions  # nothing sent: before, b quoted and booked into alpha's ledger
    assert pb.close() == 0

    out = io.StringIO()  # nor may reconcile run against the instance from its own output dir
    code = await run_reconcile(harness(other).engine, pg_url, str(tmp_path / "c" / "alpha.journal"),
                               str(tmp_path / "c" / "audit.jsonl"), "alpha", accept_venue=False, reason="", out=out)
    assert code == EXIT_START_REFUSED and re.search(refusal, out.getvalue()), out.getvalue()

    beta = harness(FakeConnector(load_venue_rules("sim")))  # another instance on the same store is not held
    pbeta = attach(beta, pg_url, "beta", tmp_path / "beta")
    await beta.engine.start()
    beta.stop()
    assert pbeta.close() == 0

    a.stop()
    assert pa.close() == 0  # a clean stop releases the instance
    b2 = harness(venue)
    pb2 = attach(b2, pg_url, "alpha", tmp_path / "b")
    await b2.engine.start()
    assert b2.position == D("0.004")  # the ledger is the instance's, from the store
    b2.stop()
    assert pb2.close() == 0


HOLDER = """
import sys
from mmkit.store.instance_lock import StoreInstanceLock
lock = StoreInstanceLock(sys.argv[1], "alpha")
lock.acquire()
print("holding", flush=True)
sys.stdin.read()  # until the test kills us
"""


@pytest.fixture
def holder(pg_url: str) -> Iterator[subprocess.Popen[str]]:
    """Another process (an engine of alpha, elsewhere) holding the instance on the store."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, pg_url], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def lock_holders(pg_url: str) -> int:
    unsigned = instance_lock_key("alpha") & 0xFFFF_FFFF_FFFF_FFFF
    with psycopg.connect(_libpq(pg_url), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = %s AND objid = %s "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            (unsigned >> 32, unsigned & 0xFFFF_FFFF),
        ).fetchone()
    assert row is not None
    return int(row[0])


async def test_sigkill_of_the_holding_process_frees_the_instance(
    pg_url: str, tmp_path: Path, holder: subprocess.Popen[str], wait_until: Callable[..., bool]
) -> None:
    venue = FakeConnector(load_venue_rules("sim"))
    b = harness(venue)
    pb = attach(b, pg_url, "alpha", tmp_path / "b")
    with pytest.raises(EngineStartError, match=rf"another process holds its lock \(mmkit pid {holder.pid} on "):
        await b.engine.start()
    assert not venue.actions
    assert pb.close() == 0

    holder.kill()  # SIGKILL: no unlock, no clean disconnect; the server drops the session's locks
    holder.wait(timeout=30)
    assert wait_until(lambda: lock_holders(pg_url) == 0, 30.0), "the dead holder's lock was never released"
    c = harness(venue)
    pc = attach(c, pg_url, "alpha", tmp_path / "c")
    await c.engine.start()
    assert lock_holders(pg_url) == 1  # held by this start now
    c.stop()
    assert pc.close() == 0
    assert lock_holders(pg_url) == 0


def test_mmkit_start_is_refused_with_exit_3_before_the_venue_connects(
    pg_url: str, tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    config = tmp_path / "layered.yml"
    text = (REPO / "strategies" / "layered_example.yml").read_text().replace("instance: layered-example",
                                                                             "instance: alpha")
    config.write_text(text + f"store:\n  url: {pg_url}\n")
    done = subprocess.run(
        [sys.executable, "-m", "mmkit.app.cli", "start", str(config), "--quiet", "--run-for", "2",
         "--output-dir", str(tmp_path / "out")],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == EXIT_START_REFUSED, done.stderr[-3000:]
    assert re.search(rf"instance 'alpha' is in use on store postgresql\+psycopg://.*another process holds its "
                     rf"lock \(mmkit pid {holder.pid} on ", done.stderr), done.stderr[-3000:]
    assert "engine started" not in done.stderr and "session up" not in done.stderr  # the venue never connected


def terminate_lock_sessions(pg_admin: psycopg.Connection, pg_url: str) -> None:
    """End the server sessions holding mmkit instance locks on the test database (a PostgreSQL restart, a proxy
    that drops idle connections): only the lock connection names itself ``mmkit pid ...``."""
    pg_admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND application_name LIKE %s",
        (make_url(pg_url).database, "mmkit pid %"),
    )


async def test_a_dropped_lock_connection_is_taken_again_or_the_engine_halts(
    pg_url: str, tmp_path: Path, pg_admin: psycopg.Connection, wait_until: Callable[..., bool]
) -> None:
    venue = FakeConnector(load_venue_rules("sim"))
    a = harness(venue)
    pa = attach(a, pg_url, "alpha", tmp_path / "a")
    lock = pa.instance_lock
    assert lock is not None
    lock.check_interval_s = 3600.0  # the test steps the watchdog itself (check_now), no timing involved
    await a.engine.start()
    a.set_fair("60000")
    a.tick(2)

    terminate_lock_sessions(pg_admin, pg_url)  # the lock dies with its connection ...
    assert wait_until(lambda: lock_holders(pg_url) == 0, 30.0)
    lock.check_now()  # ... and is taken again on a new one
    assert lock_holders(pg_url) == 1 and lock.problem is None
    a.tick()
    assert pa.halt_reason is None

    terminate_lock_sessions(pg_admin, pg_url)  # dropped again, and another engine of alpha takes it meanwhile
    assert wait_until(lambda: lock_holders(pg_url) == 0, 30.0)
    other = subprocess.Popen(
        [sys.executable, "-c", HOLDER, pg_url], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "holding"
        lock.check_now()
        assert lock.problem is not None and f"another process holds its lock (mmkit pid {other.pid} on " in lock.problem
        a.tick()  # the engine halts for good: its ledger is no longer its alone
        assert pa.halt_reason is not None and pa.halt_reason.startswith("instance lock lost: its connection")
        assert [p.kind for p in a.engine.outcome.problems] == [ProblemKind.LEDGER_HALT]
        a.tick(3)
        assert not [o for o in venue.open_orders], "quotes left resting after the halt"
    finally:
        other.kill()
        other.wait(timeout=30)
    a.stop()
    pa.close()
