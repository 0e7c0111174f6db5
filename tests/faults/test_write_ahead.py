"""Write-ahead, checked at the instant of sending: the journal already holds what the order depends on.

A spy on the venue's ``place`` / ``replace`` reads the journal file at the
moment the engine sends: the order's own pending state is in it (so a SIGKILL
right after cannot leave an order the journal does not know), and a fill the
engine saw this tick was fsynced before the executor acted on it.
"""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path
from typing import Any

from mmkit.app.config import StoreSection
from mmkit.app.persistence import attach_persistence
from mmkit.model import Side
from mmkit.store.journal import read_journal
from mmkit.testing.fake_connector import FakeConnector
from mmkit.testing.harness import Harness
from strategies.simple import SimpleConfig, SimpleController


async def test_orders_are_journaled_before_they_are_sent_and_fills_fsynced_before_anything_depends_on_them(
    tmp_path: Path,
) -> None:
    h = Harness(SimpleController(SimpleConfig(half_spread_bps=D(10), order_size=D("0.01"))))
    p = attach_persistence(h.engine, StoreSection(), "wal", tmp_path)
    assert p.journal is not None
    journal = p.journal
    venue: FakeConnector = h.venue
    sends: list[tuple[str, bool, int]] = []  # (client id, journaled at send?, fsyncs so far)

    def journaled(cid: str) -> bool:
        return any(o.client_id == cid for o in read_journal(journal.path).orders)

    place, replace = venue.place, venue.replace

    def spy_place(order: Any) -> None:
        sends.append((order.client_id, journaled(order.client_id), journal.syncs))
        place(order)

    def spy_replace(request: Any) -> None:
        sends.append((request.client_id, journaled(request.client_id), journal.syncs))
        replace(request)

    venue.place = spy_place  # type: ignore[method-assign]
    venue.replace = spy_replace  # type: ignore[method-assign]
    await h.engine.start()
    h.set_fair("60000")
    h.tick(2)
    assert sends and all(ok for _, ok, _ in sends), sends

    bid = next(o for o in venue.open_orders if o.side is Side.BUY)
    venue.fill(bid.client_id, "0.004")
    syncs_before = journal.syncs
    sent_before = len(sends)
    h.set_fair("60010")  # the controller re-quotes this tick: it depends on the fill just booked
    h.tick()
    after = sends[sent_before:]
    assert after, "the engine re-quoted after the fill"
    assert all(ok for _, ok, _ in after)
    assert all(syncs > syncs_before for _, _, syncs in after)  # the fill was fsynced before any send
    assert any(f.trade_id for f in read_journal(journal.path).fills)
    h.stop()
    assert p.close() == 0
