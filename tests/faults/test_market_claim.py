"""Two instances on one venue account and one symbol: the second `mmkit start` is refused before anything is sent.

Red team: ``truex-btc`` and ``truex-eth`` (different instance names, so the
instance and journal locks do not meet; different homes and output
directories) configured on the same TrueX order-entry session, PartyID and
symbol both started. Each adopted the other's open orders at start-up
reconciliation, cancelled them as strays and at stop, and booked the other's
fills. Now the second is refused (exit 3) naming the venue, the account, the
symbol and the holder (instance, pid, host), the first trades on unaffected,
and a SIGKILLed holder leaves nothing that blocks the next start
(mmkit.store.market_lock).

Real processes: the TrueX FIX simulator and the engines (tests/faults/truex_run.py).
"""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

import pytest

from mmkit.app.outcome import EXIT_START_REFUSED
from tests.faults.truex_run import TrueXRun, sigkill, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.shared_data, pytest.mark.timeout(300)]

OTHER = "truex-eth"
ACCOUNT = "SenderCompID=MMKIT_OE/TargetCompID=TRUEX_UAT_OE"


def other_instance(run: TrueXRun, name: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """``truex-eth``: the same venue settings (account) and symbol, its own config, home and output directory
    (``env``: more variables for it, e.g. another host's lock directory)."""
    home = run.root / "eth-home"
    config = home / "truex_eth.yml"
    home.mkdir(exist_ok=True)
    text = run.config.read_text()
    assert text.count("instance: truex-btc") == 1 and text.count(f"output_dir: {run.root}\n") == 1
    config.write_text(text.replace("instance: truex-btc", f"instance: {OTHER}")
                      .replace(f"output_dir: {run.root}\n", f"output_dir: {home / 'out'}\n"))
    args = [a if a != str(run.config) else str(config) for a in run.engine_args()]
    args[args.index("--output-dir") + 1] = str(home / "out")
    saved = dict(run.env)
    run.env.update({"MMKIT_HOME": str(home), **(env or {})})
    try:
        return run.spawn(name, args)
    finally:
        run.env.clear()
        run.env.update(saved)


def quoting(run: TrueXRun, name: str, proc: subprocess.Popen[bytes]) -> None:
    """Wait until the engine reconciled with the venue and runs (it fails at once if the engine exits)."""
    wait_for(f"{name} to start quoting", lambda: "engine started" in run.log(name), 120, proc, poll_s=0.05)


def refused(run: TrueXRun, name: str, proc: subprocess.Popen[bytes], holder: subprocess.Popen[bytes]) -> str:
    assert proc.wait(timeout=120) == EXIT_START_REFUSED, run.log(name)[-3000:]
    log = run.log(name)
    assert (f"venue truex, account [{ACCOUNT}], symbol BTC-PYUSD is quoted by another mmkit process: "
            f"pid {holder.pid}, instance truex-btc on {socket.gethostname()}") in log, log[-3000:]
    assert "session logged on" not in log and "engine started" not in log  # refused before the venue connected
    return log


def test_a_second_instance_on_the_same_account_and_symbol_is_refused_and_the_first_is_unaffected(
    tmp_path: Path, shared_data: Path
) -> None:
    run = TrueXRun(tmp_path, shared_data / "binance_spot_btcusdt")
    try:
        venue = run.start_venue()
        first = run.start_engine("btc")
        quoting(run, "btc", first)
        wait_for("the first engine's quotes", lambda: run.journal_order_states() != [], 60, first, venue)
        refused(run, "eth", other_instance(run, "eth"), first)  # before: it adopted them, and cancelled them
        assert first.poll() is None, run.log("btc")[-3000:]
        first.send_signal(signal.SIGINT)
        assert first.wait(timeout=60) == 0, run.log("btc")[-3000:]  # a clean run and a clean, flat stop
        log = run.log("btc")
        assert "adopted unknown open order" not in log, log[-3000:]
        state = run.stop_venue(venue)
        assert state["open_orders"] == []
    finally:
        run.close()


def test_sigkill_of_the_holder_frees_the_market_for_the_next_start(tmp_path: Path, shared_data: Path) -> None:
    run = TrueXRun(tmp_path, shared_data / "binance_spot_btcusdt")
    try:
        run.start_venue()
        first = run.start_engine("btc")
        quoting(run, "btc", first)
        refused(run, "eth", other_instance(run, "eth"), first)
        sigkill(first)  # no release, no stop: the kernel drops its lock; its lock file stays behind
        assert list(Path(run.env["MMKIT_LOCK_DIR"]).glob("truex-BTC-PYUSD-*.lock"))
        second = other_instance(run, "eth-after-kill")
        quoting(run, "eth-after-kill", second)
        second.send_signal(signal.SIGINT)
        assert second.wait(timeout=60) == 0, run.log("eth-after-kill")[-3000:]  # (TrueX pulled the dead one's quotes)
    finally:
        run.close()
