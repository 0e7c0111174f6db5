"""A write-ahead journal must be this instance's, and used by one process at a time.

The journal of a SQLite store is named after the store file
(``<store>.journal``), so two instances given the same ``store.url`` share one
journal; and an operator may copy a journal, or run ``mmkit reconcile
--accept-venue`` while the engine runs. Before these tests, instance B's
restart booked instance A's unstored fills into B's position (silently), and
two processes appended to one journal at once. Now the journal carries its
instance and is locked while open: the wrong instance or a second process is
refused at start, with the reason.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal as D
from pathlib import Path

import pytest

from mmkit.app.config import StoreSection
from mmkit.app.engine import EngineStartError
from mmkit.app.outcome import EXIT_START_REFUSED
from mmkit.app.persistence import attach_persistence
from mmkit.app.persistence_iterator import Persistence
from mmkit.app.reconcile import run_reconcile
from mmkit.connector import load_venue_rules
from mmkit.model import ZERO, Side
from mmkit.store.journal import read_journal
from mmkit.testing.fake_connector import FakeConnector
from mmkit.testing.harness import Harness
from strategies.simple import SimpleConfig, SimpleController


def harness(venue: FakeConnector | None = None) -> Harness:
    controller = SimpleController(SimpleConfig(half_spread_bps=D(10), order_size=D("0.01")))
    return Harness(controller, rules=load_venue_rules("sim") if venue is None else venue.rules, venue=venue)


def shared(tmp_path: Path) -> StoreSection:
    return StoreSection(url=f"sqlite:///{tmp_path / 'desk.sqlite'}")


async def start(tmp_path: Path, instance: str, venue: FakeConnector | None = None) -> tuple[Harness, Persistence]:
    h = harness(venue)
    p = attach_persistence(h.engine, shared(tmp_path), instance, tmp_path / instance)
    await h.engine.start()
    return h, p


def crash(p: Persistence) -> None:
    """The process dies with a fill the store never got (the journal has it): nothing flushed, no checkpoint."""
    p.recorder.record_fill = lambda fill: False  # type: ignore[method-assign]
    p.recorder.record_order = lambda *a, **k: False  # type: ignore[method-assign]


async def test_an_instance_sharing_a_store_file_never_books_anothers_journal(tmp_path: Path) -> None:
    a, pa = await start(tmp_path, "alpha")
    crash(pa)
    a.set_fair("60000")
    a.tick(2)
    bid = next(o for o in a.venue.open_orders if o.side is Side.BUY)
    a.venue.fill(bid.client_id, "0.004")
    a.tick()
    assert a.position == D("0.004")
    pa.journal.close()  # type: ignore[union-attr]  # alpha died: its journal holds the fill, the store does not

    b = harness()  # another instance, its own (empty) venue account, the same store file
    pb = attach_persistence(b.engine, shared(tmp_path), "beta", tmp_path / "beta")
    with pytest.raises(EngineStartError, match=r"journal .*desk\.journal belongs to instance 'alpha', not 'beta'"):
        await b.engine.start()
    assert b.position == ZERO  # before: beta started with alpha's 0.004 BTC as its own position
    assert pb.close() == 0
    assert [f.trade_id for f in read_journal(tmp_path / "desk.journal").fills] == [
        f.trade_id for f in a.venue.fills
    ]  # alpha's journal untouched: alpha's own restart still has it

    a2, pa2 = await start(tmp_path, "alpha", a.venue)
    assert a2.position == D("0.004") and pa2.recovery is not None and pa2.recovery.caught_up_fills == 1
    a2.stop()
    assert pa2.close() == 0


async def test_a_checkpointed_journal_still_names_its_instance(tmp_path: Path) -> None:
    a, pa = await start(tmp_path, "alpha")
    a.stop()
    assert pa.close() == 0  # clean stop: the journal is rewritten as a checkpoint
    b = harness()
    pb = attach_persistence(b.engine, shared(tmp_path), "beta", tmp_path / "beta")
    with pytest.raises(EngineStartError, match="belongs to instance 'alpha', not 'beta'"):
        await b.engine.start()
    assert pb.close() == 0


HOLDER = """
import sys
from mmkit.store.journal import Journal
journal = Journal(sys.argv[1], instance="alpha")
journal.open()
print("holding", flush=True)
sys.stdin.read()  # until the test closes our stdin (or kills us)
journal.close()
"""


@pytest.fixture
def other_process(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process (an engine of the same instance, elsewhere) holding the shared journal."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "desk.journal")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


async def test_a_second_engine_or_reconcile_on_a_journal_another_process_holds_is_refused(
    tmp_path: Path, other_process: subprocess.Popen[str]
) -> None:
    venue = FakeConnector(load_venue_rules("sim"))
    b = harness(venue)  # the same instance started a second time on the same store (another output dir)
    pb = attach_persistence(b.engine, shared(tmp_path), "alpha", tmp_path / "elsewhere")
    refusal = rf"journal .*desk\.journal is in use by another process \(pid {other_process.pid}\)"
    with pytest.raises(EngineStartError, match=refusal):
        await b.engine.start()
    assert pb.close() == 0
    assert not venue.actions  # nothing sent

    out = io.StringIO()  # nor may the operator book into it while the engine runs
    url = shared(tmp_path).url
    assert url is not None
    code = await run_reconcile(harness(venue).engine, url, str(tmp_path / "desk.journal"),
                               str(tmp_path / "audit.jsonl"), "alpha", accept_venue=True, reason="x", out=out)
    assert code == EXIT_START_REFUSED and re.search(refusal, out.getvalue()), out.getvalue()

    other_process.kill()  # the other process dies (SIGKILL): the kernel releases its lock
    other_process.wait(timeout=30)
    c, pc = await start(tmp_path, "alpha", venue)
    c.stop()
    assert pc.close() == 0


ENGINE_HOLDER = """
import sys
from mmkit.store.instance_lock import StoreInstanceLock
from mmkit.store.journal import Journal
lock = StoreInstanceLock("sqlite:///" + sys.argv[1], "alpha")  # what a running engine holds
lock.acquire()
journal = Journal(sys.argv[2], instance="alpha")
journal.open()
print("holding", flush=True)
sys.stdin.read()
"""


async def test_a_second_path_to_the_same_sqlite_file_is_refused_and_a_sigkill_frees_it(tmp_path: Path) -> None:
    """Two output dirs on one SQLite ``store.url`` meet at one journal lock (test above). Two *paths* to one
    file (a symlink) named two journals: both engines started on one store. Before: no refusal."""
    store = tmp_path / "desk.sqlite"
    (tmp_path / "other").mkdir()
    link = tmp_path / "other" / "link.sqlite"
    link.symlink_to(store)
    proc = subprocess.Popen(
        [sys.executable, "-c", ENGINE_HOLDER, str(store), str(tmp_path / "desk.journal")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
        venue = FakeConnector(load_venue_rules("sim"))
        b = harness(venue)
        pb = attach_persistence(b.engine, StoreSection(url=f"sqlite:///{link}"), "alpha", tmp_path / "elsewhere")
        with pytest.raises(EngineStartError, match=rf"instance 'alpha' is in use on store sqlite:///.*link\.sqlite "
                                                   rf"\(.*desk\.sqlite\): another process holds its lock "
                                                   rf"\(pid {proc.pid}\)"):
            await b.engine.start()
        assert pb.close() == 0
        assert not venue.actions  # nothing sent
    finally:
        proc.kill()  # SIGKILL: the kernel drops its locks
        proc.wait(timeout=30)
    c = harness(venue)
    pc = attach_persistence(c.engine, StoreSection(url=f"sqlite:///{link}"), "alpha", tmp_path / "elsewhere")
    await c.engine.start()
    c.stop()
    assert pc.close() == 0
