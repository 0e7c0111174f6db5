"""`mmkit reconcile --void-excess --reason TEXT`: an audited way out of a ledger ahead of the venue.

A venue re-sent an execution under a new exec id (0.005 booked twice on a
0.01 bid), then the engine died. Every restart refuses (EXCESS 0.005, see
test_ledger_ahead_of_the_venue.py), and before this the only way out was
editing the store by hand. Now reconcile appends a flagged compensating fill
(the opposite side, the excess quantity; never a deletion): the journal, the
store and the audit trail keep both the booked fills and the void with its
reason, `mmkit history` lists it, and the restart trades on the venue's
position.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from decimal import Decimal as D
from pathlib import Path

import attrs
import pytest

from mmkit.app.config import StoreSection
from mmkit.app.outcome import EXIT_LEDGER_HALT, EXIT_OK, EXIT_USAGE
from mmkit.app.persistence import attach_persistence, default_audit_path, default_store_url
from mmkit.app.reconcile import reconcile_command, run_reconcile
from mmkit.connector import load_venue_rules
from mmkit.model import ZERO, Side
from mmkit.store.journal import VOID_PREFIX, journal_path_for, read_journal
from mmkit.testing.fake_connector import FakeConnector
from tests.faults.test_ledger_ahead_of_the_venue import a_resent_execution_then_a_crash, harness

REPO = Path(__file__).resolve().parents[2]
INSTANCE = "layered-example"  # the shipped example config's instance: `mmkit history` reads it
REASON = "TrueX re-sent exec 7 under a new id after the 09:14 reconnect (ticket 4411)"


async def resent_execution_then_crash(out: Path, venue: FakeConnector) -> str:
    return await a_resent_execution_then_a_crash(out, venue, INSTANCE)


async def reconcile(venue: FakeConnector, out: Path, **flags: object) -> tuple[int, str]:
    url = default_store_url(StoreSection(), INSTANCE, out)
    text = io.StringIO()
    kwargs: dict[str, object] = {"accept_venue": False, "reason": "", **flags}
    code = await run_reconcile(harness(venue).engine, url, str(journal_path_for(url, INSTANCE, out)),
                               str(default_audit_path(StoreSection(), INSTANCE, out)), INSTANCE, out=text,
                               **kwargs)  # type: ignore[arg-type]
    return code, text.getvalue()


@pytest.mark.parametrize("history", [True, False], ids=["fill-history", "no-fill-history"])
async def test_void_excess_books_a_flagged_compensating_fill_and_the_restart_proceeds(
    tmp_path: Path, history: bool
) -> None:
    venue = FakeConnector(attrs.evolve(load_venue_rules("sim"), supports_fill_history=history))
    bid = await resent_execution_then_crash(tmp_path, venue)
    url = default_store_url(StoreSection(), INSTANCE, tmp_path)
    journal = journal_path_for(url, INSTANCE, tmp_path)
    booked = [f.trade_id for f in read_journal(journal).fills]

    code, text = await reconcile(venue, tmp_path)  # shown, not changed
    assert code == EXIT_LEDGER_HALT and "EXCESS 0.005" in text and "--void-excess --reason" in text, text

    code, text = await reconcile(venue, tmp_path, void_excess=True, reason=REASON)
    assert code == EXIT_OK, text  # before: no such option; the store had to be edited by hand
    assert f"voided 0.005 of {bid}" in text and REASON in text, text
    contents = read_journal(journal)
    assert [f.trade_id for f in contents.fills][:len(booked)] == booked  # nothing deleted
    voids = [f for f in contents.fills if f.trade_id.startswith(VOID_PREFIX)]
    assert len(voids) == 1 and voids[0].side is Side.SELL and voids[0].qty == D("0.005")
    assert voids[0].client_id == bid and contents.notes[voids[0].trade_id] == REASON
    audit = [json.loads(line) for line in default_audit_path(StoreSection(), INSTANCE, tmp_path).read_text()
             .splitlines()]
    events = [e["data"] for e in audit if e["data"].get("event") == "reconcile_void_excess"]
    assert len(events) == 1 and events[0]["reason"] == REASON

    code, text = await reconcile(venue, tmp_path, void_excess=True, reason=REASON)  # settled: nothing to void
    assert code == EXIT_OK and "ledger and venue agree" in text, text

    b = harness(venue)  # the restart goes on, on the venue's position
    p = attach_persistence(b.engine, StoreSection(), INSTANCE, tmp_path)
    await b.engine.start()
    assert b.position == sum((f.qty * f.side.sign for f in venue.fills), ZERO) == D("0.005")
    b.stop()
    assert p.close() == 0

    done = subprocess.run(  # `mmkit history` lists the void and why
        [sys.executable, "-m", "mmkit.app.cli", "history", str(REPO / "strategies" / "layered_example.yml"),
         "--output-dir", str(tmp_path), "--csv", str(tmp_path / "fills.csv")],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == EXIT_OK, done.stderr[-3000:]
    assert f"VOID {voids[0].trade_id}: SELL 0.005" in done.stdout and REASON in done.stdout, done.stdout
    rows = (tmp_path / "fills.csv").read_text()
    assert voids[0].trade_id in rows and all(t in rows for t in booked)  # every record, the void included


def test_void_excess_needs_a_reason(tmp_path: Path) -> None:
    out = io.StringIO()
    code = reconcile_command(str(REPO / "strategies" / "layered_example.yml"), accept_venue=False, reason=" ",
                             void_excess=True, out=out)
    assert code == EXIT_USAGE and "--void-excess needs --reason TEXT" in out.getvalue()
