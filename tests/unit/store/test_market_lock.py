"""One instance per venue account and symbol on a machine (mmkit.store.market_lock), against a real other process.

The other process is a real one (``python -c``) holding a MarketLock, as a
running engine of another instance would: lockf locks are per process, so
a holder in this process would not be refused.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmkit.app.market_claim import UNIDENTIFIED, account_identities
from mmkit.store.market_lock import (
    ENV_LOCK_DIR,
    MarketInUse,
    MarketKey,
    MarketLock,
    market_lock_dir,
)
from mmkit.store.pid_lock import LockHeld, take_pid_lock

REPO = Path(__file__).resolve().parents[3]
BTC = MarketKey("truex", "PartyID=DESK1", "BTC-PYUSD")

HOLDER = """
import sys
from pathlib import Path
from mmkit.store.market_lock import MarketKey, MarketLock
keys = [MarketKey(*k.split("|")) for k in sys.argv[3:]]
lock = MarketLock(keys, sys.argv[2], directory=Path(sys.argv[1]))
lock.acquire()
print("holding", flush=True)
sys.stdin.read()  # until the test kills us
"""


def spawn_holder(directory: Path, instance: str, *keys: MarketKey) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(directory), instance, *(f"{k.venue}|{k.account}|{k.symbol}" for k in keys)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
    return proc


def try_in_another_process(directory: Path, key: MarketKey) -> str:
    """"took" or "refused": another process (instance "probe") tries to claim ``key`` and exits."""
    script = (
        "import sys; from pathlib import Path; from mmkit.store.market_lock import MarketKey, MarketLock, "
        "MarketInUse\ntry:\n    MarketLock([MarketKey(*sys.argv[2:5])], 'probe', directory=Path(sys.argv[1]))"
        ".acquire()\nexcept MarketInUse:\n    print('refused')\nelse:\n    print('took')"
    )
    done = subprocess.run([sys.executable, "-c", script, str(directory), key.venue, key.account, key.symbol],
                          capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Instance truex-btc, in another process, quoting BTC-PYUSD on TrueX account DESK1."""
    proc = spawn_holder(tmp_path, "truex-btc", BTC)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def test_the_same_account_and_symbol_from_another_instance_is_refused_naming_everything(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    lock = MarketLock([BTC], "truex-eth", directory=tmp_path)
    with pytest.raises(MarketInUse) as refused:
        lock.acquire()
    text = str(refused.value)
    assert "venue truex, account [PartyID=DESK1], symbol BTC-PYUSD" in text
    assert f"pid {holder.pid}, instance truex-btc on {socket.gethostname()}" in text
    assert "'truex-eth'" in text  # who was refused
    assert not lock.held


def test_other_symbols_and_other_accounts_are_allowed(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    for key in (MarketKey("truex", "PartyID=DESK1", "ETH-PYUSD"),  # one account, another symbol
                MarketKey("truex", "PartyID=DESK2", "BTC-PYUSD"),  # the symbol, another account
                MarketKey("kraken", "PartyID=DESK1", "BTC-PYUSD")):  # another venue
        lock = MarketLock([key], "other", directory=tmp_path)
        lock.acquire()
        assert lock.held
        lock.release()


def test_sharing_any_one_identity_of_the_account_is_refused_and_nothing_stays_held(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    """A second FIX session (another SenderCompID) on the same PartyID is the same account."""
    mine = MarketKey("truex", "SenderCompID=OE2/TargetCompID=TRUEX", "BTC-PYUSD")
    lock = MarketLock([mine, BTC], "truex-eth", directory=tmp_path)
    with pytest.raises(MarketInUse, match=r"account \[PartyID=DESK1\]"):
        lock.acquire()
    assert not lock.held
    again = MarketLock([mine], "third", directory=tmp_path)  # the key taken before the refusal was let go
    again.acquire()
    again.release()


def test_sigkill_of_the_holder_frees_the_market_and_its_file_blocks_nobody(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    with pytest.raises(MarketInUse):
        MarketLock([BTC], "truex-eth", directory=tmp_path).acquire()
    holder.kill()  # SIGKILL: no release; the kernel drops its record locks
    holder.wait(timeout=30)
    assert (tmp_path / BTC.file_name()).exists()  # left behind, and harmless
    lock = MarketLock([BTC], "truex-eth", directory=tmp_path)
    lock.acquire()
    assert lock.check() is None
    lock.release()


def test_a_lock_file_deleted_while_held_is_taken_again_or_the_claim_is_lost(tmp_path: Path) -> None:
    """A /tmp cleaner removes the file: a new engine would lock a new file of that name while we quote."""
    lock = MarketLock([BTC], "truex-btc", directory=tmp_path)
    lock.acquire()
    path = tmp_path / BTC.file_name()
    path.unlink()
    assert lock.check() is None  # taken again on a new file ...
    assert try_in_another_process(tmp_path, BTC) == "refused"  # ... which refuses another instance again
    path.unlink()  # deleted again, and another instance takes the new file before we look
    other = spawn_holder(tmp_path, "truex-eth", BTC)
    try:
        problem = lock.check()
        assert problem is not None and problem.startswith("market lock lost:")
        assert f"pid {other.pid}, instance truex-eth" in problem
        assert lock.check() == problem  # lost for good
    finally:
        other.kill()
        other.wait(timeout=30)
        lock.release()


def test_the_default_directory_is_machine_wide_not_per_home_or_session(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(ENV_LOCK_DIR, raising=False)
    first = market_lock_dir()
    for variable, value in (("MMKIT_HOME", str(tmp_path / "h")), ("XDG_RUNTIME_DIR", str(tmp_path / "x")),
                            ("TMPDIR", str(tmp_path / "t")), ("HOME", str(tmp_path / "home"))):
        monkeypatch.setenv(variable, value)
    monkeypatch.chdir(tmp_path)
    assert market_lock_dir() == first
    assert str(tmp_path) not in str(first) and f"mmkit-{os.getuid()}" in str(first)
    monkeypatch.setenv(ENV_LOCK_DIR, str(tmp_path / "desk-locks"))
    assert market_lock_dir() == tmp_path / "desk-locks"


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to make a directory another user owns")
def test_a_lock_directory_another_user_owns_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "foreign"
    directory.mkdir()
    os.chown(directory, 4242, 4242)
    with pytest.raises(OSError, match=r"belongs to uid 4242"):
        MarketLock([BTC], "truex-btc", directory=directory).acquire()


def test_account_identities_name_each_login_and_never_a_secret() -> None:
    truex = {"oe": {"sender_comp_id": "OE1", "target_comp_id": "TRUEX"}, "party_id": "DESK1",
             "api_key": "k-123", "secret_key": "s3cret"}
    found = account_identities(truex)
    assert found[:2] == ["SenderCompID=OE1/TargetCompID=TRUEX", "PartyID=DESK1"]
    assert re.fullmatch(r"api-key-sha256:[0-9a-f]{12}", found[2])
    assert not [f for f in found if "k-123" in f or "s3cret" in f]
    from_env = account_identities({"api_key_env": "DESK_KEY"}, env={"DESK_KEY": "k"})
    assert from_env == account_identities({"api_key": "k"})
    assert account_identities({}) == [UNIDENTIFIED]  # refused against another unidentified, not let through


def test_a_pid_lock_refusal_carries_the_holders_note(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    fd = take_pid_lock(path, "instance a on h")
    try:
        assert path.read_text() == f"{os.getpid()} instance a on h\n"
    finally:
        os.close(fd)
    proc = subprocess.Popen([sys.executable, "-c", (
        "import sys; from pathlib import Path; from mmkit.store.pid_lock import take_pid_lock; "
        "take_pid_lock(Path(sys.argv[1]), 'instance b on h'); print('holding', flush=True); sys.stdin.read()"),
        str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
        with pytest.raises(LockHeld) as held:
            take_pid_lock(path)
        assert (held.value.holder, held.value.note) == (str(proc.pid), "instance b on h")
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_a_symlink_planted_at_a_lock_files_name_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    """Before: the lock opened through the link (O_CREAT without O_NOFOLLOW), truncated the target and wrote the
    pid over it: anyone who could write in a lock directory could have a claim destroy a file of ours."""
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me\n")
    directory = tmp_path / "locks"
    directory.mkdir(mode=0o700)
    (directory / BTC.file_name()).symlink_to(victim)
    with pytest.raises(OSError, match="not a regular file"):
        MarketLock([BTC], "truex-btc", directory=directory).acquire()
    assert victim.read_text() == "keep me\n"
    with pytest.raises(OSError, match="not a regular file"):
        take_pid_lock(directory / BTC.file_name(), "n")
    assert victim.read_text() == "keep me\n"


def test_a_lock_directory_others_may_write_in_is_refused(tmp_path: Path) -> None:
    """Another user who may write in the directory may delete or plant our lock files: the claim could not hold."""
    directory = tmp_path / "shared-locks"
    directory.mkdir()
    os.chmod(directory, 0o777)
    with pytest.raises(OSError, match="writable by other users"):
        MarketLock([BTC], "truex-btc", directory=directory).acquire()
    assert not list(directory.iterdir())


def test_two_api_keys_on_one_exchange_account_meet_when_the_configs_name_the_account(tmp_path: Path) -> None:
    """Two keys of one Kraken account are two identities: their claims never met, and both instances adopted and
    cancelled each other's orders. ``account:`` in the venue settings names the exchange account; two configs
    naming the same one meet on it, whatever their keys."""
    from mmkit.app.market_claim import account_identities as claimed

    first = claimed({"api_key": "key-one", "account": "desk-main"})
    second = claimed({"api_key": "key-two", "account": "desk-main"})
    assert "account=desk-main" in first and "account=desk-main" in second
    assert first != second  # the keys still differ
    holder = spawn_holder(tmp_path, "kraken-btc", *(MarketKey("kraken", i, "BTC/USD") for i in first))
    try:
        lock = MarketLock([MarketKey("kraken", i, "BTC/USD") for i in second], "kraken-btc-2", directory=tmp_path)
        with pytest.raises(MarketInUse, match=r"account \[account=desk-main\]"):
            lock.acquire()
        other_account = claimed({"api_key": "key-three", "account": "desk-other"})
        allowed = MarketLock([MarketKey("kraken", i, "BTC/USD") for i in other_account], "x", directory=tmp_path)
        allowed.acquire()
        allowed.release()
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_the_ledgers_account_fingerprint_does_not_change_when_a_config_names_its_account() -> None:
    """Adding ``account:`` to a running desk's config must not make its own store refuse the next start."""
    from mmkit.app.venue_account import account_fingerprint

    assert account_fingerprint({"api_key": "k", "account": "desk-main"}) == account_fingerprint({"api_key": "k"})
