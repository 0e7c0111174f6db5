"""A fill the store refuses, or drops as a "duplicate" of another fill, must never pass as persisted.

Two ways a fill used to leave the ledger while the run exited 0:

* PostgreSQL refuses a record on its own merits (here a venue whose trade ids
  are longer than the ``fills.trade_id`` column): the recorder logged it and
  counted it ``rejected``, nobody read the counter, and the clean stop then
  checkpointed the journal, the fill's only other copy. The next start refused
  with "the store lost records; restore it from a backup", and no backup had it.
* The store holds another fill under the same (venue, trade id): the INSERT's
  ON CONFLICT DO NOTHING dropped ours as a duplicate. A venue that restarts its
  trade ids every run (the simulated venues of a live process did, until they
  tagged their ids with the run) lost every run's fills after the first from
  ``mmkit history`` and ``status``.

Now both are counted and the stop records NOT_PERSISTED (exit 6) with the
reason; a real account's journal is kept (not checkpointed), so the next start
books the fill from it.
"""

from __future__ import annotations

import itertools
from decimal import Decimal as D
from pathlib import Path

import pytest

from mmkit.app.config import StoreSection
from mmkit.app.outcome import ProblemKind
from mmkit.app.persistence import attach_persistence
from mmkit.app.persistence_iterator import Persistence
from mmkit.connector import load_venue_rules
from mmkit.model import ZERO, Side
from mmkit.store.journal import read_journal
from mmkit.store.queries import StoreQueries
from mmkit.testing.fake_connector import FakeConnector
from mmkit.testing.harness import Harness
from strategies.simple import SimpleConfig, SimpleController


def harness(venue: FakeConnector) -> Harness:
    controller = SimpleController(SimpleConfig(half_spread_bps=D(10), order_size=D("0.01")))
    return Harness(controller, rules=venue.rules, venue=venue)


async def one_fill_run(venue: FakeConnector, store: StoreSection, instance: str, out: Path,
                       *, recover: bool = True, fair: str = "60000") -> tuple[Harness, Persistence]:
    h = harness(venue)
    p = attach_persistence(h.engine, store, instance, out, recover_on_start=recover)
    await h.engine.start()
    h.set_fair(fair)
    h.tick(2)
    venue.fill(next(o for o in venue.open_orders if o.side is Side.BUY).client_id, "0.004")
    h.tick()
    h.stop()
    return h, p


def not_persisted(h: Harness) -> list[str]:
    return [p.reason for p in h.engine.outcome.problems if p.kind is ProblemKind.NOT_PERSISTED]


async def test_a_fill_postgresql_refuses_is_not_persisted_and_stays_in_the_journal(pg_url: str, tmp_path: Path) -> None:
    venue = FakeConnector(load_venue_rules("sim"))
    venue._trade_ids = itertools.count(10**70)  # a venue whose trade ids are 72 characters long
    store = StoreSection(url=pg_url)
    h, p = await one_fill_run(venue, store, "long-ids", tmp_path)
    assert p.close() == 0  # nothing left queued: the store answered, it refused
    problems = not_persisted(h)
    assert problems and "1 record(s) the store refused" in problems[0], problems  # before: none, exit 0
    journal = tmp_path / "store" / "long-ids.journal"
    assert [f.trade_id for f in read_journal(journal).fills] == [venue.fills[0].trade_id]  # not checkpointed

    h2 = harness(venue)  # the next start books it from the journal: the position is the venue's
    p2 = attach_persistence(h2.engine, store, "long-ids", tmp_path)
    await h2.engine.start()
    assert h2.position == sum((f.qty * f.side.sign for f in venue.fills), ZERO) == D("0.004")
    h2.stop()
    p2.close()
    assert not_persisted(h2)  # and says again that the store cannot hold it


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store' / 'paper.sqlite'}"
    return str(request.getfixturevalue("pg_url"))


async def test_a_second_paper_run_whose_trade_ids_repeat_says_its_fills_were_not_stored(
    tmp_path: Path, store_url: str
) -> None:
    store = StoreSection(url=store_url)
    h1, p1 = await one_fill_run(FakeConnector(load_venue_rules("sim")), store, "paper", tmp_path, recover=False)
    assert p1.close() == 0 and not not_persisted(h1)
    venue = FakeConnector(load_venue_rules("sim"))  # a new simulated account: its trade ids start at F1 again
    h2, p2 = await one_fill_run(venue, store, "paper", tmp_path, recover=False, fair="61000")
    assert p2.close() == 0
    problems = not_persisted(h2)
    assert problems and "1 fill(s) the store holds another fill under the same (venue, trade id)" in problems[0]
    q = StoreQueries(store_url)
    try:
        assert len(q.fills()) == 1  # the store cannot hold both F1s: said, not hidden
    finally:
        q.close()
