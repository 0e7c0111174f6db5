"""Running the engine against the TrueX FIX simulator in subprocesses, for SIGKILL and store-fault tests.

Shared by tests/e2e/test_sigkill_recovery.py and tests/faults/: the venue is
``python -m connectors.truex.sim`` (its own process, aggressive simulated
takers, ``--fills-log`` = one JSON line per execution of our orders,
``--state-out`` = its final order records); the engine is ``mmkit start
strategies/truex_btc_pyusd.yml`` offline (reference replayed from the shared
recording, simulated hedge), its store, journal and audit trail in a temp dir.

Kill points are watched from outside, by polling files the processes write
(the venue's fills log, the engine's journal) every few milliseconds, so the
SIGKILL lands as close as a test can get to the instant that matters.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from sqlalchemy.exc import SQLAlchemyError

from mmkit.app.outcome import EXIT_LEDGER_HALT, EXIT_START_REFUSED
from mmkit.app.recovery import InstanceLedger
from mmkit.model import Fill
from mmkit.store.journal import SYNTHETIC_PREFIX, decode_line
from mmkit.store.records import OrderRecord
from tests.integration.truex.harness import free_ports

REPO = Path(__file__).resolve().parents[2]
INSTANCE = "truex-btc"
VENUE = "truex"


def free_port() -> int:
    """One free loopback port; for two servers at once use ``free_ports(2)`` (picked together, they differ)."""
    return free_ports(1)[0]


def wait_for(
    what: str, predicate: Callable[[], bool], timeout_s: float, *procs: subprocess.Popen[bytes], poll_s: float = 0.2
) -> None:
    """Poll with a deadline; fail at once (with the reason) if a process we depend on died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        for proc in procs:
            assert proc.poll() is None, f"{proc.args!r} exited with {proc.returncode} while waiting for {what}"
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def ports_open(*ports: int) -> bool:
    for port in ports:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return False
    return True


class TrueXRun:
    """The temp dir of one test: config copy, logs, store, journal, the venue's record."""

    def __init__(
        self, root: Path, data: Path, *, seed: int = 7, extra_config: str = "", connect_timeout_s: int = 45
    ) -> None:
        self.root = root
        self.data = data
        self.seed = seed
        self.oe_port, self.md_port = free_ports(2)
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
            # a loaded 2-core box can take more than the default 10 s to answer a logon
            ("    party_id: MMKIT_CLIENT\n",
             f"    party_id: MMKIT_CLIENT\n    connect_timeout_s: {connect_timeout_s}\n"),
        ):
            assert text.count(old) == 1, old
            text = text.replace(old, new)
        self.config.write_text(text + extra_config)
        self.env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "TRUEX_API_KEY": "demo-key",
            "TRUEX_SECRET_KEY": "demo-secret",
        }
        self._logs: list[IO[bytes]] = []
        self.procs: list[subprocess.Popen[bytes]] = []

    # ------------------------------------------------------------------ processes

    def spawn(self, name: str, args: list[str], **popen: Any) -> subprocess.Popen[bytes]:
        log = (self.root / f"{name}.log").open("wb")
        self._logs.append(log)
        proc = subprocess.Popen(
            [sys.executable, *args], cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, **popen
        )
        self.procs.append(proc)
        return proc

    def start_venue(self) -> subprocess.Popen[bytes]:
        proc = self.spawn("venue", [
            "-m", "connectors.truex.sim",
            "--oe-port", str(self.oe_port), "--md-port", str(self.md_port),
            "--recording", str(self.data), "--speed", "10", "--seed", str(self.seed),
            "--taker-reach-bps", "40", "--taker-probability", "0.6", "--taker-qty", "0.002",
            "--fills-log", str(self.fills_log), "--state-out", str(self.state_out),
        ])  # fmt: skip
        wait_for("the TrueX simulator's ports", lambda: ports_open(self.oe_port, self.md_port), 30, proc)
        return proc

    def engine_args(self) -> list[str]:
        return [
            "-m", "mmkit.app.cli", "start", str(self.config), "--quiet",
            "--reference-replay", str(self.data), "--replay-speed", "10", "--sim-hedge",
            "--output-dir", str(self.root),
        ]  # fmt: skip

    def start_engine(self, name: str, **popen: Any) -> subprocess.Popen[bytes]:
        return self.spawn(name, self.engine_args(), **popen)

    def reconcile(self, *extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mmkit.app.cli", "reconcile", str(self.config), "--output-dir", str(self.root),
             "--reference-replay", str(self.data), "--sim-hedge", *extra],
            cwd=REPO, env=self.env, capture_output=True, text=True, timeout=90,
        )  # fmt: skip

    def stop_venue(self, venue: subprocess.Popen[bytes]) -> dict[str, Any]:
        """SIGINT the venue; its final state (open orders, every order record)."""
        venue.send_signal(signal.SIGINT)
        assert venue.wait(timeout=60) == 0, self.log("venue")[-2000:]
        return dict(json.loads(self.state_out.read_text()))

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        for log in self._logs:
            log.close()

    # ------------------------------------------------------------------ what the files say

    @property
    def store_path(self) -> Path:
        return self.root / "store" / f"{INSTANCE}.sqlite"

    @property
    def journal_path(self) -> Path:
        return self.root / "store" / f"{INSTANCE}.journal"

    def ledger(self) -> InstanceLedger | None:
        return InstanceLedger(f"sqlite:///{self.store_path}", INSTANCE) if self.store_path.exists() else None

    def venue_fill_count(self) -> int:
        try:
            return self.fills_log.read_bytes().count(b"\n")
        except FileNotFoundError:
            return 0

    def executions(self) -> list[dict[str, Any]]:
        """The venue's record of our executions (one per fill)."""
        if not self.fills_log.exists():
            return []
        return [json.loads(line) for line in self.fills_log.read_text().splitlines() if line.strip()]

    def venue_position(self) -> Decimal:
        return sum(
            (Decimal(e["qty"]) * (1 if e["side"] == "BUY" else -1) for e in self.executions()), Decimal(0)
        )

    def journal_records(self) -> list[dict[str, Any]]:
        """Decoded journal lines (a torn last line is skipped, as recovery does)."""
        try:
            raw = self.journal_path.read_bytes()
        except FileNotFoundError:
            return []
        out = []
        for line in raw.split(b"\n"):
            record = decode_line(line) if line else None
            if record is not None:
                out.append(record)
        return out

    def journal_order_states(self) -> list[tuple[str, str]]:
        return [(r["d"]["client_id"], r["d"]["state"]) for r in self.journal_records() if r["k"] == "order"]


def store_view(run: TrueXRun) -> tuple[list[Fill], list[OrderRecord]]:
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


def orders_rows(run: TrueXRun) -> list[dict[str, Any]]:
    with sqlite3.connect(run.store_path) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM orders WHERE venue = ? ORDER BY id", (VENUE,))]


def is_synthetic(fill: Fill) -> bool:
    return fill.trade_id.startswith(SYNTHETIC_PREFIX)


def sigkill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL


REFUSAL = "reports fills the store does not hold"


def _started(run: TrueXRun, name: str, proc: subprocess.Popen[bytes]) -> bool:
    """Wait until the engine recovered and quotes again (True) or refused to start (False)."""

    def settled() -> bool:
        log = run.log(name)
        return proc.poll() is not None or ("recovery:" in log and "start-up reconciliation" in log)

    wait_for(f"{name} to recover or refuse", settled, 90, poll_s=0.05)
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
