"""``mmkit demo``: the main job on a fresh machine, with no network.

1. Start the local TrueX FIX exchange (``mmkit sim truex``) as its own
   process on loopback, its price replayed from the shared Binance recording,
   with simulated makers and takers.
2. Run ``strategies/truex_btc_pyusd.yml`` against it over real FIX: the
   reference venues are replaced by the same recording and the Kraken hedge
   by a simulated venue (nothing here can reach the internet).
3. After the bounded time, stop cleanly: cancel all, confirm with the venue
   that nothing is open, print the final report; then ask the exchange
   itself how many of our orders it still holds (it must say 0).

The demo credentials below only open the local simulator; real keys come
from the environment and are never written anywhere.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

from loguru import logger

from mmkit.app.config import ConfigOverrides
from mmkit.app.lifecycle import start_command

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DEMO_CONFIG = ROOT / "strategies" / "truex_btc_pyusd.yml"
DEFAULT_RECORDING = ROOT.parent / "shared" / "data" / "binance_spot_btcusdt"
SIM_PORTS = (9876, 9877)
REPLAY_SPEED = 10


def _wait_for_ports(ports: tuple[int, ...], timeout_s: float, proc: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        ready = True
        for port in ports:
            with socket.socket() as sock:
                sock.settimeout(0.2)
                if sock.connect_ex(("127.0.0.1", port)) != 0:
                    ready = False
        if ready:
            return True
        time.sleep(0.2)
    return False


def _ports_free(ports: tuple[int, ...]) -> bool:
    for port in ports:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return False
    return True


def demo_command(duration_s: float, config: str | None = None, recording: str | None = None) -> int:
    data = Path(recording) if recording else DEFAULT_RECORDING
    if not data.exists():
        print(f"demo: the shared recording is missing at {data}", file=sys.stderr)
        return 2
    if not _ports_free(SIM_PORTS):
        print(f"demo: ports {SIM_PORTS} are in use (another simulator running?)", file=sys.stderr)
        return 2
    os.environ.setdefault("TRUEX_API_KEY", "demo-key")
    os.environ.setdefault("TRUEX_SECRET_KEY", "demo-secret")
    # A fresh simulated exchange each run: a fresh store too, or recovery would carry the last run's ledger over.
    output_dir = ROOT / "var" / "demo" / time.strftime("%Y%m%dT%H%M%S")
    output_dir.mkdir(parents=True, exist_ok=True)
    sim_log = output_dir / "truex-sim.log"
    sim_cmd = [
        sys.executable, "-m", "mmkit.connectors.truex.sim",  # installed under mmkit (mmkit.app.bundled)
        "--recording", str(data), "--speed", str(REPLAY_SPEED),
        "--taker-reach-bps", "40", "--taker-probability", "0.6", "--taker-qty", "0.002",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    logger.info("starting the local TrueX FIX exchange (log: {})", sim_log)
    with sim_log.open("wb") as log_file:
        sim = subprocess.Popen(sim_cmd, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        if not _wait_for_ports(SIM_PORTS, 60, sim):
            print(f"demo: the TrueX simulator did not start; see {sim_log}", file=sys.stderr)
            return 1
        overrides = ConfigOverrides(
            reference_replay=str(data),
            replay_speed=Decimal(REPLAY_SPEED),
            sim_hedge=True,
            output_dir=str(output_dir),
            console=True,  # the live dashboard on a free loopback port; its address is printed at start
        )
        code = start_command(str(config or DEFAULT_DEMO_CONFIG), run_for_s=duration_s, overrides=overrides)
    finally:
        if sim.poll() is None:
            sim.send_signal(signal.SIGINT)
            try:
                sim.wait(timeout=20)
            except subprocess.TimeoutExpired:
                sim.kill()
    exchange_view = [line for line in sim_log.read_text(errors="replace").splitlines() if "still open" in line]
    if exchange_view:
        print(f"exchange's own view: {exchange_view[-1].split(' - ', 1)[-1]}")
    print(f"reports: {output_dir / 'reports'}   simulator log: {sim_log}")
    return code
