"""A restart whose ledger holds more filled on an order than the venue reports must refuse, not trade.

The venue re-sends an execution under a new exec id after a reconnect (or the
store holds another account's fills under the same venue name): 0.005 booked
twice on a bid of 0.01 passes every live check (0.005 + 0.005 is not an
over-fill), the ledger says the bid FILLED while the venue still rests it with
0.005 filled. Recovery compared the venue with the ledger only the other way
(venue ahead: fills missing) and restarted on a position 0.005 larger than the
venue's, silently. Now the start is refused, the order and both quantities are
named, and nothing is written; `mmkit reconcile` shows the same (exit 5).
"""

from __future__ import annotations

import io
from decimal import Decimal as D
from pathlib import Path

import attrs
import pytest

from mmkit.app.config import StoreSection
from mmkit.app.engine import EngineStartError
from mmkit.app.outcome import EXIT_LEDGER_HALT
from mmkit.app.persistence import attach_persistence, default_audit_path, default_store_url
from mmkit.app.reconcile import run_reconcile
from mmkit.connector import load_venue_rules
from mmkit.model import ZERO, Side
from mmkit.store.journal import journal_path_for, read_journal
from mmkit.testing.fake_connector import ActionKind, FakeConnector
from mmkit.testing.harness import Harness
from strategies.simple import SimpleConfig, SimpleController

INSTANCE = "ahead"


def harness(venue: FakeConnector) -> Harness:
    controller = SimpleController(SimpleConfig(half_spread_bps=D(10), order_size=D("0.01")))
    return Harness(controller, rules=venue.rules, venue=venue)


async def a_resent_execution_then_a_crash(tmp_path: Path, venue: FakeConnector, instance: str = INSTANCE) -> str:
    """A venue re-sends an execution under a new exec id (booked twice: 0.010 on a 0.005 fill), then the engine dies.

    Shared with tests/faults/test_void_excess.py (the way out of what this leaves behind).
    """
    a = harness(venue)
    p = attach_persistence(a.engine, StoreSection(), instance, tmp_path)
    await a.engine.start()
    a.set_fair("60000")
    a.tick(2)
    bid = next(o for o in venue.open_orders if o.side is Side.BUY)
    real = venue.fill(bid.client_id, "0.005")
    venue.emit(attrs.evolve(real, trade_id=f"{real.trade_id}-resent"))  # the same execution, a new exec id
    a.tick()
    assert a.position == D("0.010") and sum((f.qty for f in venue.fills), ZERO) == D("0.005")
    assert a.engine.stream.quarantined == []  # no live check caught it
    assert p.recorder.flush()
    p.recorder.record_fill = lambda fill: False  # type: ignore[method-assign]  # then the process dies
    p.recorder.record_order = lambda *a, **k: False  # type: ignore[method-assign]
    return bid.client_id


@pytest.mark.parametrize("history", [True, False], ids=["fill-history", "no-fill-history"])
async def test_a_ledger_ahead_of_the_venue_refuses_the_restart(tmp_path: Path, history: bool) -> None:
    venue = FakeConnector(attrs.evolve(load_venue_rules("sim"), supports_fill_history=history))
    bid = await a_resent_execution_then_a_crash(tmp_path, venue)
    venue.clear_records()
    url = default_store_url(StoreSection(), INSTANCE, tmp_path)
    journal = journal_path_for(url, INSTANCE, tmp_path)
    before = read_journal(journal).fills

    b = harness(venue)
    p = attach_persistence(b.engine, StoreSection(), INSTANCE, tmp_path)
    refusal = rf"the ledger holds more filled than sim reports on {bid} \(ledger 0.010, venue 0.005\)"
    with pytest.raises(EngineStartError, match=refusal):  # before: started on 0.010 (the venue's: 0.005)
        await b.engine.start()
    assert b.engine.fills == [] and read_journal(journal).fills == before  # nothing booked, nothing written
    assert not [x for x in venue.actions if x.kind in (ActionKind.PLACE, ActionKind.REPLACE)]
    assert p.close() == 0

    out = io.StringIO()
    code = await run_reconcile(harness(venue).engine, url, str(journal),
                               str(default_audit_path(StoreSection(), INSTANCE, tmp_path)), INSTANCE,
                               accept_venue=True, reason="x", out=out)
    assert code == EXIT_LEDGER_HALT and f"{bid}" in out.getvalue() and "EXCESS 0.005" in out.getvalue()
    assert read_journal(journal).fills == before  # --accept-venue cannot book a fill away: nothing changed
