"""Issue 6's acceptance, for real: SIGKILL the engine mid-run against the TrueX FIX exchange in
another process, restart it, and check its books against the exchange's own record.

The venue is ``python -m connectors.truex.sim`` (its own process, aggressive simulated takers,
``--fills-log`` = one JSON line per execution of our orders, ``--state-out`` = its final order
records). The engine is ``mmkit start strategies/truex_btc_pyusd.yml`` offline (reference replayed
from the shared recording, simulated hedge), its store and audit trail in a temp dir.

1. Run until the store holds a fill and open orders (some partially filled); SIGKILL the engine.
   TrueX cancels resting orders when the OE session drops, so at that point the exchange holds none.
2. Restart with the same command: recovery must run (its summary line is logged). If the kill
   landed while an execution report was in flight (the venue holds a fill the engine never saw),
   the restart refuses, refuses again (sticky), and starts after `mmkit reconcile --accept-venue`
   books the difference as a flagged synthetic fill. Let it quote again, then SIGINT: exit 0, and
   the exchange says 0 open.
3. The ledger: no trade id twice (store and audit trail), position (final report) == sum of stored
   fills == sum of the exchange's fills for our orders, exactly; real fills are the exchange's
   executions and synthetic fills stand for exactly the ones the engine never saw; ``mmkit history
   --csv`` lists the ledger; every order the ledger held open at the kill was closed on restart
   with the state the exchange gives it.
"""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from mmkit.app.recovery import merge_orders
from mmkit.model import Fill
from mmkit.store.journal import read_journal
from mmkit.store.records import OrderRecord
from tests.faults.truex_run import (
    INSTANCE,
    REPO,
    VENUE,
    TrueXRun,
    check_ledger,
    is_synthetic,
    orders_rows,
    start_trading,
    store_view,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.shared_data, pytest.mark.timeout(240)]

Run = TrueXRun
_wait = wait_for
_store_view = store_view
_orders_rows = orders_rows


@pytest.fixture
def run(tmp_path: Path, shared_data: Path) -> Iterator[Run]:
    r = TrueXRun(tmp_path, shared_data / "binance_spot_btcusdt")
    try:
        yield r
    finally:
        r.close()


def _replaced_after_fill(fills: list[Fill], open_orders: list[OrderRecord]) -> list[OrderRecord]:
    """Open orders that are a replace of a partially filled order: the venue's CumQty counts the
    fills of the whole order (one OrderID across replaces), the ledger books them per ClOrdID."""
    owners: dict[str, set[str]] = {}
    for fill in fills:
        owners.setdefault(fill.venue_order_id, set()).add(fill.client_id)
    return [o for o in open_orders if owners.get(o.venue_order_id, set()) - {o.client_id}]


def _ledger_open_orders(run: Run) -> list[OrderRecord]:
    """Orders the ledger holds open: the journal's last states over the store's (the store may lag)."""
    ledger = run.ledger()
    assert ledger is not None
    try:
        stored = ledger.latest_orders(VENUE)
    finally:
        ledger.close()
    journaled = [o for o in read_journal(run.journal_path).orders if o.venue == VENUE]
    return [o for o in merge_orders(stored, journaled) if o.is_open]


def test_sigkill_restart_recovers_orders_and_counts_every_fill_once(run: Run) -> None:
    venue = run.start_venue()

    # 1. quote until an open order has been partially filled and then replaced (the hardest case for
    #    recovery: the venue's filled quantity spans two ClOrdIDs), then SIGKILL
    first = run.start_engine("engine1")
    _wait("an open order replaced after a partial fill", lambda: bool(_replaced_after_fill(*_store_view(run))), 50,
          first, venue)  # fmt: skip
    first.send_signal(signal.SIGKILL)
    assert first.wait(timeout=10) == -signal.SIGKILL
    fills_at_kill, _ = _store_view(run)
    open_at_kill = _ledger_open_orders(run)  # the ledger as the dead process left it
    assert fills_at_kill and open_at_kill, (fills_at_kill, open_at_kill)
    assert "recovery:" in run.log("engine1")  # recovery ran on the first start too (empty store)

    # 2. restart with the same command: it recovers, or (the kill landed while an execution report was
    #    in flight: the venue holds a fill the engine never saw) refuses, refuses again, and starts after
    #    `mmkit reconcile --accept-venue`; then it quotes again
    second = start_trading(run, "engine2")
    names = [n for n in ("engine2", "engine2-reconciled") if (run.root / f"{n}.log").exists()]
    last_name = names[-1]
    closed_at_restart = {o.client_id for o in open_at_kill}

    def quoting_again() -> bool:
        return bool({o.client_id for o in _store_view(run)[1]} - closed_at_restart)

    _wait("new quotes after the restart", quoting_again, 30, second, venue)
    time.sleep(2)  # a few seconds of trading after the restart (more fills, replaces)
    second.send_signal(signal.SIGINT)
    assert second.wait(timeout=40) == 0, run.log(last_name)[-3000:]
    log2 = run.log(last_name)
    assert "persistence closed" in log2 and " 0 records not persisted" in log2, log2[-2000:]

    state = run.stop_venue(venue)
    assert "client orders still open on the exchange: 0" in run.log("venue")
    venue_orders = {o["clordid"]: o for o in state["orders"]}

    # 3a/b. the ledger against the venue: position exact, no fill twice, real fills are the venue's
    #       executions, synthetic fills stand for exactly the executions the engine never saw
    check_ledger(run, state)
    executions = run.executions()
    assert executions and state["fills"] == len(executions)
    assert len({e["exec_id"] for e in executions}) == len(executions)
    ledger = run.ledger()
    assert ledger is not None
    try:
        stored = [s.fill for s in ledger.fills(VENUE)]
        sessions = ledger.sessions()
        latest = {o.client_id: o for o in ledger.latest_orders(VENUE)}
    finally:
        ledger.close()
    assert sessions[-1][2] is not None  # the last session stopped cleanly
    real = [f for f in stored if not is_synthetic(f)]

    # 3c. the audit trail saw no fill twice either (across every process)
    audit = [json.loads(line) for line in (run.root / "audit" / f"{INSTANCE}.jsonl").read_text().splitlines()]
    audited = [a["data"]["trade_id"] for a in audit if a["kind"] == "fill" and a["data"]["venue"] == VENUE]
    assert len(audited) == len(set(audited))

    # 3d. the engine's own report of the restarted session: position is the sum of every fill
    reports = sorted((run.root / "reports").glob(f"{INSTANCE}-*.json"))
    assert len(reports) == 1  # the killed and the refused runs wrote none
    report = json.loads(reports[0].read_text())
    assert report["open_orders_at_venue"] == []
    assert Decimal(report["position"]) == Decimal(report["position_from_fills"]) == run.venue_position()
    assert report["fills"] == len(stored)

    # 3e. every order the ledger held open at the kill was resolved on restart to the venue's final
    #     state; the stored filled quantity is the order's own (per ClOrdID), the venue's CumQty is the
    #     whole order's up to that ClOrdID
    own_filled: dict[str, Decimal] = {}
    for fill in stored:
        own_filled[fill.client_id] = own_filled.get(fill.client_id, Decimal(0)) + fill.qty
    restart_rows = {r["client_id"]: r for r in _orders_rows(run) if str(r["reason"]).startswith("restart:")}
    for order in open_at_kill:
        final = latest[order.client_id]
        assert not final.is_open, final
        assert order.client_id in restart_rows, (order, final)
        venue_view = venue_orders.get(order.client_id)
        if venue_view is None:  # the venue never saw it (a create lost with the process): not found
            assert final.state == "CANCELED" and "no such order" in final.reason, final
        else:
            assert final.state == venue_view["status"], (final, venue_view)
            assert final.filled_qty == own_filled.get(order.client_id, Decimal(0)), (final, venue_view)
            chain = [o["clordid"] for o in state["orders"] if o["order_id"] == venue_view["order_id"]]
            chain = chain[: chain.index(order.client_id) + 1]
            assert Decimal(venue_view["cum_qty"]) == sum(
                (Decimal(e["qty"]) for e in executions if e["clordid"] in chain), Decimal(0)
            ), (final, venue_view)

    # 3f. `mmkit history --csv` lists exactly the ledger's fills: the venue's executions it saw, plus the
    #     flagged synthetic ones
    export = run.root / "fills.csv"
    done = subprocess.run(
        [sys.executable, "-m", "mmkit.app.cli", "history", str(run.config), "--csv", str(export)],
        cwd=REPO, env=run.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [r for r in csv.DictReader(export.open()) if r["venue"] == VENUE]
    assert sorted(r["trade_id"] for r in rows) == sorted(f.trade_id for f in stored)
    by_exec = {e["exec_id"]: e for e in executions}
    assert sorted((f.trade_id, f.side.value, f.price, f.qty) for f in real) == sorted(
        (e["exec_id"], e["side"], Decimal(e["price"]), Decimal(e["qty"])) for e in by_exec.values()
        if e["exec_id"] in {f.trade_id for f in real}
    )
