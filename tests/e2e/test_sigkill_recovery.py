"""Issue 6's acceptance, for real: SIGKILL the engine mid-run against the TrueX FIX exchange in
another process, restart it, and check its books against the exchange's own record.

The venue is ``python -m connectors.truex.sim`` (its own process, aggressive simulated takers,
``--fills-log`` = one JSON line per execution of our orders, ``--state-out`` = its final order
records). The engine is ``mmkit start strategies/truex_btc_pyusd.yml`` offline (reference replayed
from the shared recording, simulated hedge), its store and audit trail in a temp dir.

1. Run until the store holds a fill and open orders (some partially filled); SIGKILL the engine.
   TrueX cancels resting orders when the OE session drops, so at that point the exchange holds none.
2. Restart with the same command: recovery must run (its summary line is logged) and the engine
   must not refuse to start; let it quote again, then SIGINT: exit 0, and the exchange says 0 open.
3. The ledger: no trade id twice (store and audit trail), position (final report) == sum of stored
   fills == sum of the exchange's fills for our orders, exactly; ``mmkit history --csv`` lists
   exactly the exchange's executions; every order recorded open at the kill was closed on restart
   with the state the exchange gives it.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import pytest
from sqlalchemy.exc import SQLAlchemyError

from mmkit.app.recovery import InstanceLedger
from mmkit.model import Fill
from mmkit.store.records import OrderRecord

REPO = Path(__file__).resolve().parents[2]
INSTANCE = "truex-btc"
VENUE = "truex"

pytestmark = [pytest.mark.e2e, pytest.mark.shared_data, pytest.mark.timeout(150)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(what: str, predicate: Callable[[], bool], timeout_s: float, *procs: subprocess.Popen[bytes]) -> None:
    """Poll with a deadline; fail at once (with the reason) if a process we depend on died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        for proc in procs:
            assert proc.poll() is None, f"{proc.args!r} exited with {proc.returncode} while waiting for {what}"
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def _ports_open(*ports: int) -> bool:
    for port in ports:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return False
    return True


class Run:
    """The temp dir of one test: config copy, logs, store, the venue's record."""

    def __init__(self, root: Path, data: Path) -> None:
        self.root = root
        self.data = data
        self.oe_port, self.md_port = _free_port(), _free_port()
        self.fills_log = root / "venue" / "fills.jsonl"
        self.state_out = root / "venue" / "state.json"
        self.config = root / "truex_btc_pyusd.yml"
        text = (REPO / "strategies" / "truex_btc_pyusd.yml").read_text()
        for old, new in (
            ("port: 9876", f"port: {self.oe_port}"),
            ("port: 9877", f"port: {self.md_port}"),
            ("  tick_ms: 100\n", f"  tick_ms: 100\n  output_dir: {root}\n"),
            # The ledger here is TrueX's alone; hedging the rest at stop (shipped) is tested in test_control_cli.
            ("flatten_on_stop: true", "flatten_on_stop: false"),
        ):
            assert text.count(old) == 1, old
            text = text.replace(old, new)
        self.config.write_text(text)
        self.env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "TRUEX_API_KEY": "demo-key",
            "TRUEX_SECRET_KEY": "demo-secret",
        }
        self._logs: list[IO[bytes]] = []
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = (self.root / f"{name}.log").open("wb")
        self._logs.append(log)
        proc = subprocess.Popen([sys.executable, *args], cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def start_venue(self) -> subprocess.Popen[bytes]:
        return self.spawn("venue", [
            "-m", "connectors.truex.sim",
            "--oe-port", str(self.oe_port), "--md-port", str(self.md_port),
            "--recording", str(self.data), "--speed", "10",
            "--taker-reach-bps", "40", "--taker-probability", "0.6", "--taker-qty", "0.002",
            "--fills-log", str(self.fills_log), "--state-out", str(self.state_out),
        ])  # fmt: skip

    def start_engine(self, name: str) -> subprocess.Popen[bytes]:
        return self.spawn(name, [
            "-m", "mmkit.app.cli", "start", str(self.config), "--quiet",
            "--reference-replay", str(self.data), "--replay-speed", "10", "--sim-hedge",
            "--output-dir", str(self.root),
        ])  # fmt: skip

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")

    def ledger(self) -> InstanceLedger | None:
        path = self.root / "store" / f"{INSTANCE}.sqlite"
        return InstanceLedger(f"sqlite:///{path}", INSTANCE) if path.exists() else None

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        for log in self._logs:
            log.close()


@pytest.fixture
def run(tmp_path: Path, shared_data: Path) -> Iterator[Run]:
    r = Run(tmp_path, shared_data / "binance_spot_btcusdt")
    try:
        yield r
    finally:
        r.close()


def _store_view(run: Run) -> tuple[list[Fill], list[OrderRecord]]:
    """(fills of our venue, orders recorded open) as the store holds them now."""
    ledger = run.ledger()
    if ledger is None:
        return [], []
    try:
        return [s.fill for s in ledger.fills(VENUE)], ledger.open_orders(VENUE)
    except SQLAlchemyError:  # the schema may not exist yet while the engine starts
        return [], []
    finally:
        ledger.close()


def _replaced_after_fill(fills: list[Fill], open_orders: list[OrderRecord]) -> list[OrderRecord]:
    """Open orders that are a replace of a partially filled order: the venue's CumQty counts the
    fills of the whole order (one OrderID across replaces), the ledger books them per ClOrdID."""
    owners: dict[str, set[str]] = {}
    for fill in fills:
        owners.setdefault(fill.venue_order_id, set()).add(fill.client_id)
    return [o for o in open_orders if owners.get(o.venue_order_id, set()) - {o.client_id}]


def _orders_rows(run: Run) -> list[dict[str, Any]]:
    import sqlite3

    with sqlite3.connect(run.root / "store" / f"{INSTANCE}.sqlite") as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM orders WHERE venue = ? ORDER BY id", (VENUE,))]


def test_sigkill_restart_recovers_orders_and_counts_every_fill_once(run: Run) -> None:
    venue = run.start_venue()
    _wait("the TrueX simulator's ports", lambda: _ports_open(run.oe_port, run.md_port), 30, venue)

    # 1. quote until an open order has been partially filled and then replaced (the hardest case for
    #    recovery: the venue's filled quantity spans two ClOrdIDs), then SIGKILL
    first = run.start_engine("engine1")
    _wait("an open order replaced after a partial fill", lambda: bool(_replaced_after_fill(*_store_view(run))), 50,
          first, venue)  # fmt: skip
    first.send_signal(signal.SIGKILL)
    assert first.wait(timeout=10) == -signal.SIGKILL
    fills_at_kill, open_at_kill = _store_view(run)  # the store as the dead process left it
    assert fills_at_kill and open_at_kill, (fills_at_kill, open_at_kill)
    assert "recovery:" in run.log("engine1")  # recovery ran on the first start too (empty store)

    # 2. restart with the same command: it must recover, not refuse, and quote again
    second = run.start_engine("engine2")
    _wait("the recovery summary", lambda: "recovery:" in run.log("engine2"), 40, second, venue)
    log2 = run.log("engine2")
    assert "refusing to quote" not in log2, log2[-3000:]
    closed_at_restart = {o.client_id for o in open_at_kill}

    def quoting_again() -> bool:
        return bool({o.client_id for o in _store_view(run)[1]} - closed_at_restart)

    _wait("new quotes after the restart", quoting_again, 30, second, venue)
    time.sleep(2)  # a few seconds of trading after the restart (more fills, replaces)
    second.send_signal(signal.SIGINT)
    assert second.wait(timeout=40) == 0, run.log("engine2")[-3000:]
    log2 = run.log("engine2")
    assert "persistence closed" in log2 and " 0 records not persisted" in log2, log2[-2000:]

    venue.send_signal(signal.SIGINT)
    assert venue.wait(timeout=30) == 0, run.log("venue")[-2000:]
    assert "client orders still open on the exchange: 0" in run.log("venue")
    state = json.loads(run.state_out.read_text())
    assert state["open_orders"] == []
    venue_orders = {o["clordid"]: o for o in state["orders"]}

    # 3a. the venue's record of our executions
    executions = [json.loads(line) for line in run.fills_log.read_text().splitlines()]
    assert executions and state["fills"] == len(executions)
    assert len({e["exec_id"] for e in executions}) == len(executions)
    venue_position = sum((Decimal(e["qty"]) * (1 if e["side"] == "BUY" else -1) for e in executions), Decimal(0))

    # 3b. the store: each trade once, and exactly the venue's executions
    ledger = run.ledger()
    assert ledger is not None
    try:
        stored = [s.fill for s in ledger.fills(VENUE)]
        sessions = ledger.sessions()
        latest = {o.client_id: o for o in ledger.latest_orders(VENUE)}
    finally:
        ledger.close()
    assert len(sessions) == 2 and sessions[1][2] is not None  # the killed session, then a cleanly stopped one
    assert not [t for t, n in Counter(f.trade_id for f in stored).items() if n > 1]
    assert sorted((f.trade_id, f.client_id, f.side.value, f.price, f.qty) for f in stored) == sorted(
        (e["exec_id"], e["clordid"], e["side"], Decimal(e["price"]), Decimal(e["qty"])) for e in executions
    )
    stored_position = sum((f.qty * f.side.sign for f in stored), Decimal(0))
    assert stored_position == venue_position

    # 3c. the audit trail saw no fill twice either (across both processes)
    audit = [json.loads(line) for line in (run.root / "audit" / f"{INSTANCE}.jsonl").read_text().splitlines()]
    audited = [a["data"]["trade_id"] for a in audit if a["kind"] == "fill" and a["data"]["venue"] == VENUE]
    assert len(audited) == len(set(audited))

    # 3d. the engine's own report of the restarted session: position is the sum of every fill
    reports = sorted((run.root / "reports").glob(f"{INSTANCE}-*.json"))
    assert len(reports) == 1  # the killed run wrote none
    report = json.loads(reports[0].read_text())
    assert report["open_orders_at_venue"] == []
    assert Decimal(report["position"]) == Decimal(report["position_from_fills"]) == venue_position
    assert report["fills"] == len(executions)

    # 3e. every order recorded open at the kill was resolved on restart to the venue's final state;
    #     the stored filled quantity is the order's own (per ClOrdID), the venue's CumQty is the whole
    #     order's up to that ClOrdID
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

    # 3f. `mmkit history --csv` lists exactly the venue's executions
    export = run.root / "fills.csv"
    done = subprocess.run(
        [sys.executable, "-m", "mmkit.app.cli", "history", str(run.config), "--csv", str(export)],
        cwd=REPO, env=run.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [r for r in csv.DictReader(export.open()) if r["venue"] == VENUE]
    assert sorted((r["trade_id"], r["side"], Decimal(r["price"]), Decimal(r["qty"])) for r in rows) == sorted(
        (e["exec_id"], e["side"], Decimal(e["price"]), Decimal(e["qty"])) for e in executions
    )
