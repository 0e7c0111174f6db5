"""The operator control channel, for real (issue 11, "Risk controls for an emergency").

``mmkit start strategies/truex_btc_pyusd.yml`` runs in a subprocess against the local TrueX FIX
exchange (its own process, simulated takers), offline (reference replayed from the shared
recording, simulated Kraken hedge). The test drives the instance through its Unix socket, both
with ``mmkit pause|resume|flatten|cancel-all`` subprocesses and with raw JSON lines on the socket:

* pause: quotes pulled and kept pulled;
* resume after a manual kill-switch trip (``resume: manual`` as shipped): quoting again;
* flatten: the position hedged to zero on the hedge venue;
* cancel-all: the venue itself lists nothing open;
* a second instance with the same name refuses to start (exit 3);
* stop (SIGINT): ``flatten_on_stop`` hedges what is left, exit 0; every command is in the audit
  trail with who asked; afterwards a command finds no instance: one line, exit 10.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import pytest

from mmkit.app.control.client import send_command
from mmkit.app.control.paths import control_socket_path
from tests.faults.truex_run import ports_open, wait_for
from tests.integration.truex.harness import free_ports

REPO = Path(__file__).resolve().parents[2]
INSTANCE = "truex-btc"
#: Replay speed of the venue and the reference: the 650 s recording lasts 160 s, long enough for the
#: whole test on a loaded machine (the reference must not run out: a stale price trips the kill switch).
SPEED = "4"

pytestmark = [pytest.mark.e2e, pytest.mark.shared_data, pytest.mark.timeout(300)]


class Instance:
    """The temp dir of one test: the TrueX simulator, the engine, and the commands sent to it."""

    def __init__(self, root: Path, data: Path) -> None:
        self.root = root
        self.data = data
        self.oe_port, self.md_port = free_ports(2)
        self.config = root / "truex_btc_pyusd.yml"
        text = (REPO / "strategies" / "truex_btc_pyusd.yml").read_text()
        for old, new in (("port: 9876", f"port: {self.oe_port}"), ("port: 9877", f"port: {self.md_port}")):
            assert text.count(old) == 1, old
            text = text.replace(old, new)
        self.config.write_text(text)
        self.socket = control_socket_path(root, INSTANCE)
        self.env = {**os.environ, "PYTHONPATH": str(REPO), "TRUEX_API_KEY": "demo-key",
                    "TRUEX_SECRET_KEY": "demo-secret"}
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
            "-m", "connectors.truex.sim", "--oe-port", str(self.oe_port), "--md-port", str(self.md_port),
            "--recording", str(self.data), "--speed", SPEED,
            "--taker-reach-bps", "40", "--taker-probability", "0.6", "--taker-qty", "0.002",
        ])  # fmt: skip

    def start_engine(self, name: str) -> subprocess.Popen[bytes]:
        return self.spawn(name, [
            "-m", "mmkit.app.cli", "start", str(self.config), "--quiet",
            "--reference-replay", str(self.data), "--replay-speed", SPEED, "--sim-hedge",
            "--output-dir", str(self.root),
        ])  # fmt: skip

    def command(self, action: str) -> subprocess.CompletedProcess[str]:
        """``mmkit <action> CONFIG`` as an operator types it."""
        return subprocess.run(
            [sys.executable, "-m", "mmkit.app.cli", action, str(self.config), "--output-dir", str(self.root)],
            cwd=REPO, env=self.env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    def raw(self, action: str, **params: Any) -> dict[str, Any]:
        """One JSON line on the socket, as a future transport would send it."""
        return send_command(self.socket, action, params=params, source="e2e test", timeout_s=60)

    def status(self) -> dict[str, Any]:
        answer = self.raw("status")
        assert answer["ok"], answer
        return dict(answer["data"])

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        for log in self._logs:
            log.close()


@pytest.fixture
def instance(tmp_path: Path, shared_data: Path) -> Iterator[Instance]:
    inst = Instance(tmp_path, shared_data / "binance_spot_btcusdt")
    try:
        yield inst
    finally:
        inst.close()


def _done(result: subprocess.CompletedProcess[str], action: str) -> str:
    """The command's one line, after checking it succeeded."""
    assert result.returncode == 0, (action, result.returncode, result.stdout, result.stderr[-3000:])
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{action}: done: "), result.stdout
    return lines[0]


def _ticks_pass(inst: Instance, count: int) -> Callable[[], bool]:
    start = inst.status()["ticks"]
    return lambda: inst.status()["ticks"] >= start + count


def test_operator_commands_drive_a_running_engine(instance: Instance) -> None:
    inst = instance
    venue = inst.start_venue()
    wait_for("the TrueX simulator's ports", lambda: ports_open(inst.oe_port, inst.md_port), 30, venue)
    engine = inst.start_engine("engine")
    wait_for("the control socket", inst.socket.exists, 60, engine, venue)
    assert stat.S_IMODE(inst.socket.stat().st_mode) == 0o600
    assert stat.S_IMODE(inst.socket.parent.stat().st_mode) == 0o700
    wait_for("quotes resting at TrueX", lambda: inst.status()["open_orders"] > 0, 60, engine, venue)

    # A second engine of the same instance must not start: it would share the store and client ids.
    twin = inst.start_engine("twin")
    assert twin.wait(timeout=60) == 3, inst.log("twin")[-2000:]
    assert "another instance is running" in inst.log("twin")
    assert inst.status()["running"]  # the first one is untouched

    # pause: every quote pulled, and none comes back while paused (the strategy keeps running)
    line = _done(inst.command("pause"), "pause")
    assert "no quote open" in line
    wait_for("20 ticks while paused", _ticks_pass(inst, 20), 30, engine)
    status = inst.status()
    assert status["open_orders"] == 0 and status["quoting"].startswith("paused by mmkit pause"), status

    # resume lifts the pause
    _done(inst.command("resume"), "resume")
    wait_for("quoting again after resume", lambda: inst.status()["open_orders"] > 0, 30, engine)

    # a manual kill switch (resume: manual, as shipped) tripped at run time: only `mmkit resume` lifts it
    tripped = inst.raw("trip", reason="e2e emergency stop")
    assert tripped["ok"], tripped
    wait_for("quotes pulled by the kill switch", lambda: inst.status()["open_orders"] == 0, 30, engine)
    wait_for("20 ticks halted", _ticks_pass(inst, 20), 30, engine)
    status = inst.status()
    assert status["kill_switch"]["halted"] and status["open_orders"] == 0, status
    line = _done(inst.command("resume"), "resume")
    assert "kill switch reset (was: operator" in line and line.endswith("; quoting"), line
    wait_for("quoting again after the kill switch was reset", lambda: inst.status()["open_orders"] > 0, 30, engine)
    assert not inst.status()["kill_switch"]["halted"]

    # flatten: a position from TrueX's takers is hedged to zero on the (simulated) hedge venue
    wait_for("a position from fills", lambda: abs(Decimal(inst.status()["position"])) >= Decimal("0.001"), 90,
          engine, venue)  # fmt: skip
    line = _done(inst.command("flatten"), "flatten")
    status = inst.status()
    assert Decimal(status["position"]) == 0, (line, status)
    assert status["open_orders"] == 0 and status["quoting"].startswith("paused"), status
    assert "position 0" in line and "hedged on kraken" in line, line

    # cancel-all: resume, then cancel everything; the venue's own list must be empty
    _done(inst.command("resume"), "resume")
    wait_for("quoting again before cancel-all", lambda: inst.status()["open_orders"] > 0, 30, engine)
    line = _done(inst.command("cancel-all"), "cancel-all")
    assert "nothing open at truex (confirmed by the venue)" in line, line
    assert inst.status()["open_orders"] == 0

    # a bad request on the socket is refused (and audited), not fatal
    refused = inst.raw("launch-missiles")
    assert not refused["ok"] and "unknown action" in refused["message"]

    # stop with a position: flatten_on_stop (the shipped TrueX config) hedges it away
    _done(inst.command("resume"), "resume")
    wait_for("a position to leave at stop", lambda: abs(Decimal(inst.status()["position"])) >= Decimal("0.001"), 90,
          engine, venue)  # fmt: skip
    engine.send_signal(signal.SIGINT)
    assert engine.wait(timeout=90) == 0, inst.log("engine")[-4000:]
    log = inst.log("engine")
    assert "flattening position" in log
    report = json.loads(next((inst.root / "reports").glob(f"{INSTANCE}-*.json")).read_text())
    assert Decimal(str(report["position"])) == 0, report
    assert report["open_orders_at_venue"] == []

    # every command is in the audit trail, request and result, with who asked (kernel uid/pid)
    lines = [json.loads(x) for x in (inst.root / "audit" / f"{INSTANCE}.jsonl").read_text().splitlines()]
    control = [x["data"] for x in lines if x["kind"] == "control"]
    results = [c for c in control if c["phase"] == "result"]
    assert "status" not in {c["action"] for c in control}  # read-only: not audited
    assert [c["action"] for c in results] == [
        "pause", "resume", "trip", "resume", "flatten", "resume", "cancel-all", "launch-missiles", "resume",
    ]  # fmt: skip
    assert {c["id"] for c in control if c["phase"] == "request"} >= {c["id"] for c in results}
    by_cli = [c for c in results if c["source"].startswith("mmkit ")]
    assert by_cli and all(f"uid {os.getuid()}" in c["source"] for c in by_cli)
    assert all(c["ok"] for c in results if c["action"] != "launch-missiles")
    flatten = next(c for c in results if c["action"] == "flatten")
    assert Decimal(flatten["data"]["position_before"]) != 0
    assert any(x["kind"] == "risk" and x["data"].get("event") == "kill_switch_trip" for x in lines)

    # the instance is gone: the socket with it, and a command says so in one line
    assert not inst.socket.exists()
    result = inst.command("pause")
    assert result.returncode == 10, (result.returncode, result.stderr)
    assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "is not running" in result.stderr and "Traceback" not in result.stderr


def test_a_command_without_a_running_instance_is_one_line_and_exit_10(tmp_path: Path) -> None:
    config = tmp_path / "cfg.yml"
    config.write_text((REPO / "strategies" / "truex_btc_pyusd.yml").read_text())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRUEX_", "KRAKEN_"))}  # no secrets needed
    env["PYTHONPATH"] = str(REPO)
    for action in ("pause", "resume", "flatten", "cancel-all"):
        result = subprocess.run([sys.executable, "-m", "mmkit.app.cli", action, str(config), "--output-dir",
                                 str(tmp_path)], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 10, (action, result.returncode, result.stderr)
        assert result.stdout == ""
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
        assert f"{action}: instance 'truex-btc' is not running" in result.stderr
    # a stale socket file left by a SIGKILLed run answers nobody: still exit 10, not a hang
    path = control_socket_path(tmp_path, "truex-btc")
    path.parent.mkdir(mode=0o700)
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(str(path))
    result = subprocess.run([sys.executable, "-m", "mmkit.app.cli", "pause", str(config), "--output-dir",
                             str(tmp_path)], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 10, result.stderr
    # a config that cannot be read is a usage error (2), named in one line
    result = subprocess.run([sys.executable, "-m", "mmkit.app.cli", "pause", str(tmp_path / "missing.yml")],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "missing.yml" in result.stderr
