"""Issue 11, case 5: the store fails while trading goes on. Real SQLite files, real faults, the real engine.

Each case: the store is locked by another process, made unwritable
(immutable) mid-run or at start, or deleted under the engine. The engine must
halt quoting and say why (or refuse to start), never SIGBUS, exit NOT_PERSISTED
when something was not persisted, and never lose a fill: the write-ahead
journal holds what the store could not take, and the next start catches the
store up. Position == the venue's own fills, exactly, every time.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from decimal import Decimal as D
from pathlib import Path

import attrs
import pytest

from mmkit.app.config import StoreSection
from mmkit.app.engine import EngineStartError
from mmkit.app.outcome import EXIT_NOT_PERSISTED, ProblemKind
from mmkit.app.persistence import attach_persistence, default_store_url
from mmkit.app.persistence_iterator import Persistence
from mmkit.connector import load_venue_rules
from mmkit.model import ZERO, Side
from mmkit.store.journal import journal_path_for, read_journal
from mmkit.testing.fake_connector import FakeConnector
from mmkit.testing.harness import Harness
from strategies.simple import SimpleConfig, SimpleController
from tests.faults.store_faults import make_unwritable, make_writable, unwritable

INSTANCE = "storefaults"
GRACE_S = 1.0


def store_section() -> StoreSection:
    return attrs.evolve(StoreSection(), outage_grace_s=GRACE_S)


def db_path(tmp_path: Path) -> Path:
    return Path(default_store_url(StoreSection(), INSTANCE, tmp_path).removeprefix("sqlite:///"))


def new_venue() -> FakeConnector:
    return FakeConnector(attrs.evolve(load_venue_rules("sim"), supports_fill_history=False))


async def start(tmp_path: Path, venue: FakeConnector) -> tuple[Harness, Persistence]:
    controller = SimpleController(SimpleConfig(half_spread_bps=D(10), order_size=D("0.01")))
    h = Harness(controller, rules=venue.rules, venue=venue)
    p = attach_persistence(h.engine, store_section(), INSTANCE, tmp_path)
    recorder_fast_retries(p)
    await h.engine.start()
    h.set_fair("60000")
    h.tick(2)
    return h, p


def recorder_fast_retries(p: Persistence) -> None:
    p.recorder._retry_max_s = 0.2  # a test waits for the store to come back; production backs off to 5 s


def wait_until(what: str, predicate: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def signed(venue: FakeConnector) -> D:
    return sum((f.qty * f.side.sign for f in venue.fills), ZERO)


def stored_trade_ids(tmp_path: Path) -> list[str]:
    with sqlite3.connect(db_path(tmp_path)) as conn:
        return sorted(r[0] for r in conn.execute("SELECT trade_id FROM fills"))


def fill_bid(h: Harness, qty: str) -> None:
    bid = next(o for o in h.venue.open_orders if o.side is Side.BUY)
    h.venue.fill(bid.client_id, qty)
    h.tick()


def halt_ticks(h: Harness, p: Persistence) -> None:
    """Tick past the grace (simulated time) while the outage lasts."""
    ticks = int(GRACE_S * 10) + 3
    h.tick(ticks)
    assert p.halt_reason is not None


async def test_store_locked_by_another_process_halts_then_resumes_and_loses_nothing(tmp_path: Path) -> None:
    venue = new_venue()
    h, p = await start(tmp_path, venue)
    lock = sqlite3.connect(db_path(tmp_path), timeout=30, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        fill_bid(h, "0.004")
        wait_until("the recorder to see the outage", lambda: p.recorder.stats().in_outage)
        halt_ticks(h, p)
        assert p.halt_reason is not None and "store unreachable" in p.halt_reason
        assert h.quotes() == []  # halted: nothing rests at the venue
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    wait_until("the store to catch up", lambda: p.recorder.stats().backlog == 0)
    h.tick(3)
    assert p.halt_reason is None and h.quotes()  # caught up: quoting again
    assert h.stop() == 0  # nothing left open
    assert p.close() == 0
    assert h.engine.outcome.ok, h.engine.outcome.problems
    assert stored_trade_ids(tmp_path) == sorted(f.trade_id for f in venue.fills)
    assert h.position == signed(venue)


async def test_store_made_immutable_mid_run_halts_without_sigbus_and_the_next_start_catches_up(
    tmp_path: Path,
) -> None:
    venue = new_venue()
    h, p = await start(tmp_path, venue)
    db = db_path(tmp_path)
    with unwritable(db):
        fill_bid(h, "0.004")
        wait_until("the recorder to see the outage", lambda: p.recorder.stats().in_outage)
        halt_ticks(h, p)
        assert h.quotes() == []
        assert h.stop() == 0  # nothing left open
        assert p.close(timeout_s=1.0) > 0  # could not write: said so ...
        assert h.engine.outcome.has(ProblemKind.NOT_PERSISTED)
        assert h.engine.outcome.exit_code() == EXIT_NOT_PERSISTED  # ... and the run exits 6
    for order in list(venue.open_orders):
        venue.cancel(order.client_id, order.symbol)
    # The store is writable again: the journal had everything; the next start catches the store up.
    h2, p2 = await start(tmp_path, venue)
    assert p2.recovery is not None and p2.recovery.caught_up_fills == 1
    assert h2.position == signed(venue) == D("0.004")
    assert h2.stop() == 0
    assert p2.close() == 0
    assert stored_trade_ids(tmp_path) == sorted(f.trade_id for f in venue.fills)


async def test_store_deleted_mid_run_halts_says_why_and_nothing_is_lost(tmp_path: Path) -> None:
    venue = new_venue()
    h, p = await start(tmp_path, venue)
    fill_bid(h, "0.004")
    assert p.recorder.flush()
    db_path(tmp_path).unlink()  # writes would now go to a deleted inode, without any error
    fill_bid(h, "0.002")
    h.tick()
    assert p.halt_reason is not None and "was deleted" in p.halt_reason
    assert h.quotes() == []
    assert h.stop() == 0  # nothing left open
    p.close()
    assert h.engine.outcome.exit_code() == EXIT_NOT_PERSISTED
    for order in list(venue.open_orders):
        venue.cancel(order.client_id, order.symbol)
    # A new, empty store: the journal (never checkpointed: the store was lost) rebuilds the ledger.
    h2, p2 = await start(tmp_path, venue)
    assert h2.position == signed(venue) == D("0.006")
    assert h2.stop() == 0
    assert p2.close() == 0
    assert stored_trade_ids(tmp_path) == sorted(f.trade_id for f in venue.fills)


async def test_a_store_that_lost_checkpointed_fills_is_refused(tmp_path: Path) -> None:
    venue = new_venue()
    h, p = await start(tmp_path, venue)
    fill_bid(h, "0.004")
    assert h.stop() == 0  # nothing left open
    assert p.close() == 0  # clean stop: the journal is checkpointed, the store is the only copy now
    for order in list(venue.open_orders):
        venue.cancel(order.client_id, order.symbol)
    db_path(tmp_path).unlink()  # e.g. restored from an old backup, or wiped
    controller = SimpleController(SimpleConfig(half_spread_bps=D(10), order_size=D("0.01")))
    h2 = Harness(controller, rules=venue.rules, venue=venue)
    p2 = attach_persistence(h2.engine, store_section(), INSTANCE, tmp_path)
    with pytest.raises(EngineStartError, match=r"store holds 0 fills .* but held 1 .*store lost records"):
        await h2.engine.start()
    p2.close()


@pytest.mark.parametrize("which", ["store", "journal"])
async def test_unwritable_store_or_journal_at_start_refuses_to_start(tmp_path: Path, which: str) -> None:
    venue = new_venue()
    h, p = await start(tmp_path, venue)
    assert h.stop() == 0  # nothing left open
    assert p.close() == 0
    target = db_path(tmp_path) if which == "store" else journal_path_for(
        default_store_url(StoreSection(), INSTANCE, tmp_path), INSTANCE, tmp_path)
    controller = SimpleController(SimpleConfig(half_spread_bps=D(10), order_size=D("0.01")))
    h2 = Harness(controller, rules=venue.rules, venue=venue)
    p2 = attach_persistence(h2.engine, store_section(), INSTANCE, tmp_path)
    make_unwritable(target)
    try:
        with pytest.raises(EngineStartError, match=f"{which} .*cannot be written"):
            await h2.engine.start()
        p2.close(timeout_s=1.0)
    finally:
        make_writable(target)
    assert venue.open_orders == []  # nothing was sent


async def test_a_long_run_checkpoints_its_journal_only_once_the_store_holds_everything(tmp_path: Path) -> None:
    venue = new_venue()
    h, p = await start(tmp_path, venue)
    assert p.journal is not None
    p.journal_checkpoint_bytes = 1  # checkpoint at every chance
    fill_bid(h, "0.004")
    lock = sqlite3.connect(db_path(tmp_path), timeout=30, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        fill_bid(h, "0.001")  # the store cannot take it: the journal must keep it
        wait_until("the recorder to see the outage", lambda: p.recorder.stats().in_outage)
        h.tick(3)
        assert any(f.qty == D("0.001") for f in read_journal(p.journal.path).fills)
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    wait_until("the store to catch up", lambda: p.recorder.stats().backlog == 0)
    h.tick(2)
    contents = read_journal(p.journal.path)
    assert contents.checkpoint == (2, D("0.005"))  # checkpointed: the store holds both fills
    # The process dies here (no clean stop); the restart finds the fills in the store, none lost or doubled.
    for order in list(venue.open_orders):
        venue.cancel(order.client_id, order.symbol)
    h2, p2 = await start(tmp_path, venue)
    assert h2.position == signed(venue) == D("0.005")
    assert h2.stop() == 0
    assert p2.close() == 0


async def test_without_recovery_a_crashed_runs_journal_still_reaches_the_store(tmp_path: Path) -> None:
    """A venue simulated in-process is not recovered against, but what only the journal held is stored."""
    venue = new_venue()
    h, p = await start(tmp_path, venue)
    p.recorder.record_fill = lambda fill: False  # type: ignore[method-assign]  # dies before the store gets it
    fill_bid(h, "0.004")
    controller = SimpleController(SimpleConfig(half_spread_bps=D(10), order_size=D("0.01")))
    h2 = Harness(controller, rules=venue.rules, venue=new_venue())
    p2 = attach_persistence(h2.engine, store_section(), INSTANCE, tmp_path, recover_on_start=False)
    await h2.engine.start()
    assert p2.recovery is None
    assert h2.stop() == 0
    assert p2.close() == 0
    assert stored_trade_ids(tmp_path) == sorted(f.trade_id for f in venue.fills)
    assert p2.journal is not None and read_journal(p2.journal.path).fills == ()  # checkpointed
