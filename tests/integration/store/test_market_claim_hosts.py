"""Two hosts, one PostgreSQL store: `mmkit start` of a second instance on the same TrueX account and symbol is
refused by the store's advisory lock (mmkit.store.market_lock), since the hosts share no lock directory.

"Another host" is an engine with its own ``MMKIT_LOCK_DIR``: its lock file cannot meet the first's, only the
store can refuse it. Real processes: the TrueX FIX simulator and two `mmkit start` (tests/faults/truex_run.py).
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from mmkit.app.outcome import EXIT_START_REFUSED
from tests.faults.test_market_claim import ACCOUNT, other_instance, quoting
from tests.faults.truex_run import TrueXRun, sigkill

pytestmark = [pytest.mark.e2e, pytest.mark.shared_data, pytest.mark.timeout(300)]


def test_an_instance_on_another_host_sharing_the_store_is_refused_by_the_store(
    pg_url: str, tmp_path: Path, shared_data: Path
) -> None:
    run = TrueXRun(tmp_path, shared_data / "binance_spot_btcusdt", extra_config=f"store:\n  url: {pg_url}\n")
    try:
        run.start_venue()
        first = run.start_engine("btc")
        quoting(run, "btc", first)
        other_host = {"MMKIT_LOCK_DIR": str(tmp_path / "host-b-locks")}
        second = other_instance(run, "eth", other_host)
        assert second.wait(timeout=120) == EXIT_START_REFUSED, run.log("eth")[-3000:]
        log = run.log("eth")
        assert (f"venue truex, account [{ACCOUNT}], symbol BTC-PYUSD is quoted by another mmkit process: "
                f"mmkit pid {first.pid} on ") in log and "(truex-btc)" in log, log[-3000:]
        assert "advisory lock on store postgresql" in log and "engine started" not in log
        assert first.poll() is None
        sigkill(first)  # its store session dies with it, and the advisory lock with the session
        after = other_instance(run, "eth-after-kill", other_host)
        quoting(run, "eth-after-kill", after)
        after.send_signal(signal.SIGINT)
        assert after.wait(timeout=60) == 0, run.log("eth-after-kill")[-3000:]
    finally:
        run.close()
