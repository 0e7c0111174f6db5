"""Issue 11: SIGKILL the engine at chosen instants against the TrueX FIX simulator; the ledger never lies.

One venue process per test, one engine after another against it; each is
SIGKILLed at a chosen point, then restarted:

* ``after_fill``: the instant the venue logs an execution of ours (case 1:
  the execution report may still be in flight; the engine never saw it);
* ``mid_replace``: the instant the journal shows an order PENDING_REPLACE
  (the replace is on the wire, its outcome not yet known);
* ``after_new_order``: the instant the journal shows a new order
  PENDING_CREATE;
* ``store_outage``: with the SQLite store locked by another process (the
  recorder cannot write), after the engine saw a fill the store never got.

A restart either recovers (the journal and the venue agree with the ledger)
or refuses and says why (the venue reports fills the engine never saw); a
refusal must repeat on the next start (sticky), and ``mmkit reconcile
--accept-venue`` books the difference as flagged synthetic fills. The last
engine stops cleanly. Then: position (report) == sum of ledger fills ==
the venue's own executions, exactly; no trade id twice; every real fill is a
venue execution; nothing open at the venue or in the ledger.

``MMKIT_FAULT_SEEDS`` (comma-separated) widens the seeds (default 1).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from mmkit.app.outcome import EXIT_LEDGER_HALT, EXIT_START_REFUSED
from tests.faults.truex_run import VENUE, TrueXRun, is_synthetic, sigkill, store_view, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.shared_data, pytest.mark.timeout(300)]

SEEDS = [int(s) for s in os.environ.get("MMKIT_FAULT_SEEDS", "1").split(",") if s.strip()]
REFUSAL = "reports fills the store does not hold"
GRACE = "store:\n  outage_grace_s: 3\n"


def _started(run: TrueXRun, name: str, proc: subprocess.Popen[bytes]) -> bool:
    """Wait until the engine recovered and quotes again (True) or refused to start (False)."""

    def settled() -> bool:
        log = run.log(name)
        return proc.poll() is not None or ("recovery:" in log and "start-up reconciliation" in log)

    wait_for(f"{name} to recover or refuse", settled, 60, poll_s=0.05)
    if proc.poll() is not None:
        log = run.log(name)
        assert proc.returncode == EXIT_START_REFUSED and REFUSAL in log, (proc.returncode, log[-3000:])
        return False
    return True


def start_trading(run: TrueXRun, name: str) -> subprocess.Popen[bytes]:
    """Start an engine; on a refusal check it is sticky, reconcile as an operator would, start again."""
    proc = run.start_engine(name)
    if _started(run, name, proc):
        return proc
    fills_before = sorted(f.trade_id for f in store_view(run)[0])
    again = run.start_engine(f"{name}-again")
    assert not _started(run, f"{name}-again", again), "a refused restart must refuse again"
    assert sorted(f.trade_id for f in store_view(run)[0]) == fills_before  # the refusal wrote no fill
    shown = run.reconcile()
    assert shown.returncode == EXIT_LEDGER_HALT and "MISSING" in shown.stdout, shown.stdout + shown.stderr
    accepted = run.reconcile("--accept-venue", "--reason", "killed before the execution report arrived")
    assert accepted.returncode == 0 and "booked synthetic fill" in accepted.stdout, accepted.stdout + accepted.stderr
    proc = run.start_engine(f"{name}-reconciled")
    assert _started(run, f"{name}-reconciled", proc)
    return proc


def _journal_has_new(run: TrueXRun, state: str, seen: int) -> Callable[[], bool]:
    def check() -> bool:
        states = run.journal_order_states()
        return any(s == state for _, s in states[seen:])

    return check


def kill_after_fill(run: TrueXRun, proc: subprocess.Popen[bytes]) -> None:
    count = run.venue_fill_count()
    wait_for("an execution at the venue", lambda: run.venue_fill_count() > count, 60, proc, poll_s=0.002)
    sigkill(proc)


def kill_mid_replace(run: TrueXRun, proc: subprocess.Popen[bytes]) -> None:
    seen = len(run.journal_order_states())
    wait_for("a replace on the wire", _journal_has_new(run, "PENDING_REPLACE", seen), 60, proc, poll_s=0.002)
    sigkill(proc)


def kill_after_new_order(run: TrueXRun, proc: subprocess.Popen[bytes]) -> None:
    seen = len(run.journal_order_states())
    wait_for("a new order", _journal_has_new(run, "PENDING_CREATE", seen), 60, proc, poll_s=0.002)
    sigkill(proc)


def kill_during_store_outage(run: TrueXRun, proc: subprocess.Popen[bytes]) -> None:
    """Another process holds the SQLite store locked; the engine sees a fill the store cannot get; SIGKILL."""
    journaled = sum(1 for r in run.journal_records() if r["k"] == "fill")
    lock = sqlite3.connect(run.store_path, timeout=30, isolation_level=None)
    try:
        lock.execute("BEGIN EXCLUSIVE")
        # Quoting halts past the grace (3 s); a fill usually comes before. Either way: a kill mid-outage.
        with contextlib.suppress(AssertionError):
            wait_for(
                "a fill journaled during the outage",
                lambda: sum(1 for r in run.journal_records() if r["k"] == "fill") > journaled,
                6, proc, poll_s=0.02,
            )
        sigkill(proc)
    finally:
        lock.execute("ROLLBACK")
        lock.close()


KILLS = (kill_after_fill, kill_mid_replace, kill_after_new_order, kill_during_store_outage)


@pytest.mark.parametrize("seed", SEEDS)
def test_sigkill_at_chosen_points_never_loses_or_doubles_a_fill(tmp_path: Path, shared_data: Path, seed: int) -> None:
    run = TrueXRun(tmp_path, shared_data / "binance_spot_btcusdt", seed=seed, extra_config=GRACE)
    try:
        venue = run.start_venue()
        kills = list(KILLS[seed % len(KILLS):] + KILLS[: seed % len(KILLS)])  # each seed its own order
        for index, kill in enumerate(kills):
            proc = start_trading(run, f"engine{index}")
            kill(run, proc)
        last = start_trading(run, "final")
        wait_for("a fill after the last restart", lambda: run.venue_fill_count() > 0, 30, last, venue)
        time.sleep(1.0)
        last.send_signal(signal.SIGINT)
        assert last.wait(timeout=60) == 0, run.log("final")[-3000:]
        state = run.stop_venue(venue)
        check_ledger(run, state)
    finally:
        run.close()


def check_ledger(run: TrueXRun, state: dict[str, object]) -> None:
    """Position == the venue's own fills exactly; no fill twice; real fills are venue fills; nothing open."""
    assert state["open_orders"] == [], state["open_orders"]
    executions = run.executions()
    venue_position = run.venue_position()
    stored, open_orders = store_view(run)
    assert open_orders == [], open_orders
    assert not [t for t, n in Counter(f.trade_id for f in stored).items() if n > 1]
    by_exec = {e["exec_id"]: e for e in executions}
    real = [f for f in stored if not is_synthetic(f)]
    for fill in real:
        e = by_exec.get(fill.trade_id)
        assert e is not None, f"{fill} is not a venue execution"
        assert (e["clordid"], e["side"], Decimal(e["price"]), Decimal(e["qty"])) == (
            fill.client_id, fill.side.value, fill.price, fill.qty)
    # What the ledger lacks of the venue's executions is exactly what synthetic fills stand for, per order.
    booked = {f.trade_id for f in real}
    missing_qty: Counter[str] = Counter()
    for e in executions:
        if e["exec_id"] not in booked:
            missing_qty[e["order_id"]] += Decimal(e["qty"])  # type: ignore[assignment]
    synthetic_qty: Counter[str] = Counter()
    for fill in stored:
        if is_synthetic(fill):
            synthetic_qty[fill.venue_order_id] += fill.qty  # type: ignore[assignment]
    assert dict(missing_qty) == dict(synthetic_qty), (missing_qty, synthetic_qty)
    assert sum((f.qty * f.side.sign for f in stored), Decimal(0)) == venue_position
    reports = sorted((run.root / "reports").glob("*.json"))
    assert reports, "the cleanly stopped engine writes a report"
    report = json.loads(reports[-1].read_text())
    assert Decimal(report["position"]) == venue_position
    assert report["open_orders_at_venue"] == []
    assert VENUE in {f.venue for f in stored}
