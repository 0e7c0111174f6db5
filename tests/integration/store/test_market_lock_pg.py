"""One instance per venue account and symbol across hosts that share a PostgreSQL store (mmkit.store.market_lock).

Two hosts do not share a lock directory, so the lock files cannot meet; the
store's advisory lock (keyed by the same hash) can. Here "another host" is
another process with its own lock directory: only the store can refuse it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from mmkit.store.market_lock import MarketInUse, MarketKey, MarketLock
from tests.integration.store.conftest import _libpq

REPO = Path(__file__).resolve().parents[3]
BTC = MarketKey("truex", "PartyID=DESK1", "BTC-PYUSD")

HOLDER = """
import sys
from pathlib import Path
from mmkit.store.market_lock import MarketKey, MarketLock
lock = MarketLock([MarketKey("truex", "PartyID=DESK1", "BTC-PYUSD")], "truex-btc", store_url=sys.argv[2],
                  directory=Path(sys.argv[1]))
lock.acquire()
print("holding", flush=True)
sys.stdin.read()  # until the test kills us
"""


@pytest.fixture
def other_host(pg_url: str, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """truex-btc on "another host": its own lock directory, the shared store."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "host-a"), pg_url], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def holders(pg_url: str) -> int:
    unsigned = BTC.advisory_key() & 0xFFFF_FFFF_FFFF_FFFF
    with psycopg.connect(_libpq(pg_url), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = %s AND objid = %s "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            (unsigned >> 32, unsigned & 0xFFFF_FFFF),
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_another_host_on_the_shared_store_is_refused_and_a_sigkill_frees_it(
    pg_url: str, tmp_path: Path, other_host: subprocess.Popen[str], wait_until: Callable[..., bool]
) -> None:
    lock = MarketLock([BTC], "truex-eth", store_url=pg_url, directory=tmp_path / "host-b", wait_s=0.0)
    with pytest.raises(MarketInUse) as refused:
        lock.acquire()
    text = str(refused.value)
    assert "venue truex, account [PartyID=DESK1], symbol BTC-PYUSD is quoted by another mmkit process" in text
    assert f"mmkit pid {other_host.pid} on " in text and "(truex-btc)" in text  # the holder's application_name
    assert "advisory lock on store postgresql" in text and str(make_url(pg_url).password or "\0") not in text
    assert not lock.held  # its own lock file, taken first, was let go

    other = MarketLock([MarketKey("truex", "PartyID=DESK1", "ETH-PYUSD")], "truex-eth", store_url=pg_url,
                       directory=tmp_path / "host-b")
    other.acquire()  # another symbol on the account: allowed
    other.release()

    other_host.kill()  # SIGKILL: the server drops the dead session's advisory locks
    other_host.wait(timeout=30)
    assert wait_until(lambda: holders(pg_url) == 0, 30.0), "the dead holder's lock was never released"
    lock.acquire()
    assert holders(pg_url) == 1 and lock.check() is None
    lock.release()
    assert holders(pg_url) == 0


def test_a_sqlite_store_takes_no_advisory_lock(tmp_path: Path) -> None:
    """Two hosts without a shared PostgreSQL store cannot be checked: only the local lock file is taken."""
    lock = MarketLock([BTC], "truex-btc", store_url=f"sqlite:///{tmp_path / 's.sqlite'}", directory=tmp_path)
    assert lock.store_url is None
    lock.acquire()
    assert lock.held
    lock.release()


EXCHANGE_HOLDER = """
import sys
from pathlib import Path
from mmkit.store.market_lock import MarketKey, MarketLock
key = MarketKey("kraken", "api-key-sha256:abc", "*", "per key", exchange=True, named=sys.argv[3])
lock = MarketLock([key], "kraken-btc", store_url=sys.argv[2], directory=Path(sys.argv[1]))
lock.acquire()
print("holding", flush=True)
sys.stdin.read()  # until the test kills us
"""


@pytest.mark.parametrize("holder_name", ["kraken", "a-venue-name-too-long-for-application-name"])
def test_another_host_on_the_exchange_under_another_venue_name_is_refused_naming_both(
    pg_url: str, tmp_path: Path, holder_name: str
) -> None:
    """A renamed copy of the rules on another host: the store's lock on the exchange key refuses it, naming the
    holder's venue from its application_name; a name the 63 bytes cut is said to be unknown, never a cut one."""
    proc = subprocess.Popen(
        [sys.executable, "-c", EXCHANGE_HOLDER, str(tmp_path / "host-a"), pg_url, holder_name],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
        mine = MarketKey("kraken", "api-key-sha256:abc", "*", "per key", exchange=True, named="kraken_fast")
        lock = MarketLock([mine], "kraken-fast", store_url=pg_url, directory=tmp_path / "host-b", wait_s=0.0)
        with pytest.raises(MarketInUse) as refused:
            lock.acquire()
        text = str(refused.value)
        assert ("exchange kraken (as venue kraken_fast), account [api-key-sha256:abc] (every symbol) is quoted by "
                f"another mmkit process: mmkit pid {proc.pid} on ") in text
        assert "advisory lock on store postgresql" in text and not lock.held
        if holder_name == "kraken":
            assert "this instance's venue kraken_fast and the holder's venue kraken are two names" in text, text
        else:
            assert "its venue name is not known here, but it trades exchange kraken" in text, text
            assert "holder's venue a-venue" not in text
    finally:
        proc.kill()
        proc.wait(timeout=30)
