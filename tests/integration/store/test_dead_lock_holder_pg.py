"""A claim held on the store by a process that is provably dead on this host is taken over; nothing else is.

Before: after an engine's connection to PostgreSQL was cut without a FIN
reaching the server (a blackholed network, a killed VM, a SIGKILL while a
proxy keeps the server's side open), the server kept the dead session and its
advisory lock until its TCP keepalive gave up (~2 h), and every restart of the
instance meanwhile was refused "held by mmkit pid N on HOST". Now the holder's
``application_name`` carries a marker of its machine, pid namespace and start
time (mmkit.store.lock_holder): a holder that ran here and is dead has its
backend ended, loudly, and the claim is taken. A live holder, another host,
another pid namespace, a name that does not parse: refused as before. The
lock's session also sets server-side keepalives, so the server drops a dead
client by itself in about a minute.

Real PostgreSQL; the dead holder is a real process SIGKILLed behind a TCP
proxy that keeps the server's side of its connection open.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from loguru import logger
from sqlalchemy.engine import make_url

from mmkit.store.advisory_lock import (
    CLIENT_KEEPALIVES,
    DEAD_CLIENT_DROPPED_S,
    KEEPALIVE_COUNT,
    KEEPALIVE_IDLE_S,
    KEEPALIVE_INTERVAL_S,
    AdvisoryLock,
    LockInUse,
    advisory_key,
)
from mmkit.store.instance_lock import StoreInstanceLock, instance_lock_key
from mmkit.store.lock_holder import marker
from mmkit.store.market_lock import MarketInUse, MarketKey, MarketLock
from tests.integration.store.conftest import _libpq
from tests.integration.store.test_advisory_lock_blackhole import BlackholeProxy, via

REPO = Path(__file__).resolve().parents[3]
BTC = MarketKey("truex", "PartyID=DESK1", "BTC-PYUSD")
HOST = socket.gethostname()

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
def proxy(pg_admin_url: str) -> Iterator[BlackholeProxy]:
    parsed = make_url(pg_admin_url)
    p = BlackholeProxy(parsed.host or "127.0.0.1", parsed.port or 5432)
    yield p
    p.close()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[[str], subprocess.Popen[str]]]:
    """A `truex-btc` holder process on this host (the test's lock directory), on the store at ``url``."""
    procs: list[subprocess.Popen[str]] = []

    def start(url: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(tmp_path / "locks"), url], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def holders(admin: psycopg.Connection, key: int, url: str) -> list[int]:
    """Backend pids holding ``key`` in the test's database (tests running in parallel share the keys)."""
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    rows = admin.execute(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = %s AND objid = %s "
        "AND objsubid = 1 AND database = (SELECT oid FROM pg_database WHERE datname = %s)",
        (unsigned >> 32, unsigned & 0xFFFF_FFFF, make_url(url).database)).fetchall()
    return [row[0] for row in rows]


def backends(admin: psycopg.Connection) -> set[int]:
    return {row[0] for row in admin.execute("SELECT pid FROM pg_stat_activity").fetchall()}


def claimant(pg_url: str, tmp_path: Path) -> MarketLock:
    """`truex-btc` restarted on this host: the same key, lock directory and store, refusing at once."""
    return MarketLock([BTC], "truex-btc", store_url=pg_url, directory=tmp_path / "locks", wait_s=0.0)


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="WARNING")
    yield lines
    logger.remove(sink)


def dead_pid() -> int:
    """The pid of a process that ran on this host and is gone (reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)
    return proc.pid


def place() -> str:
    """The marker's first half: this machine and pid namespace (as the test process sees them)."""
    mine = marker()
    assert mine is not None, "no /proc here: the dead-holder takeover cannot work on this platform"
    return mine[:4]


@pytest.fixture
def session(pg_url: str) -> Iterator[Callable[..., psycopg.Connection]]:
    """A raw session calling itself ``name`` and holding ``key``: a holder whose name the test chooses."""
    conns: list[psycopg.Connection] = []

    def hold(name: str, key: int, url: str = pg_url) -> psycopg.Connection:
        conn = psycopg.connect(_libpq(url), autocommit=True)
        conns.append(conn)
        conn.execute("SELECT set_config('application_name', %s, false)", (name,))
        assert conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone() == (True,)
        return conn

    yield hold
    for conn in conns:
        conn.close()


def test_a_sigkilled_holder_whose_session_a_proxy_keeps_open_is_ended_and_the_claim_taken(
    pg_url: str, pg_admin: psycopg.Connection, proxy: BlackholeProxy, tmp_path: Path,
    spawn: Callable[[str], subprocess.Popen[str]], warnings: list[str],
    wait_until: Callable[[Callable[[], bool], float], bool],
) -> None:
    holder = spawn(via(proxy, pg_url))
    [backend] = holders(pg_admin, BTC.advisory_key(), pg_url)
    proxy.blackhole()  # the path goes silent: nothing the holder does from now on reaches the server
    holder.kill()
    holder.wait(timeout=30)
    # The server still shows the dead holder's session, holding the claim (it would for ~2 h).
    assert holders(pg_admin, BTC.advisory_key(), pg_url) == [backend]
    assert backend in backends(pg_admin)

    lock = claimant(pg_url, tmp_path)
    lock.acquire()
    try:
        assert lock.held and lock.check() is None
        assert wait_until(lambda: backend not in backends(pg_admin), 15.0), "the dead holder's backend lives on"
        [mine] = holders(pg_admin, BTC.advisory_key(), pg_url)
        assert mine != backend
        said = [line for line in warnings if "is dead" in line]
        assert len(said) == 1, warnings
        assert (f"market lock: its holder 'mmkit pid {holder.pid} on {HOST}:" in said[0]
                and f"pid {holder.pid} is not running on {HOST}" in said[0]
                and f"backend pid {backend})" in said[0] and "pg_terminate_backend" in said[0]), said[0]
    finally:
        lock.release()
    assert holders(pg_admin, BTC.advisory_key(), pg_url) == []


def test_a_live_holder_on_this_host_is_refused_even_when_its_connection_went_silent(
    pg_url: str, pg_admin: psycopg.Connection, proxy: BlackholeProxy, tmp_path: Path,
    spawn: Callable[[str], subprocess.Popen[str]],
) -> None:
    """The holder lives; only the path to the store is silent. A second directory: only the store can refuse."""
    holder = spawn(via(proxy, pg_url))
    [backend] = holders(pg_admin, BTC.advisory_key(), pg_url)
    proxy.blackhole()
    lock = MarketLock([BTC], "truex-btc", store_url=pg_url, directory=tmp_path / "elsewhere", wait_s=0.0)
    with pytest.raises(MarketInUse) as refused:
        lock.acquire()
    text = str(refused.value)
    assert f"is quoted by another mmkit process: mmkit pid {holder.pid} on {HOST}:" in text, text
    assert "(truex-btc)" in text and "is dead" not in text
    assert not lock.held and holder.poll() is None
    assert backend in backends(pg_admin)


def test_a_holder_whose_pid_now_is_another_process_is_dead(
    pg_url: str, pg_admin: psycopg.Connection, tmp_path: Path, session: Callable[..., psycopg.Connection],
    warnings: list[str], wait_until: Callable[[Callable[[], bool], float], bool],
) -> None:
    """The pid is running here, but it is not the holder: another start time (a pid reused after the death)."""
    other = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        live = marker(other.pid)
        assert live is not None
        wrong_start = live[:4] + ("0000" if live[4:] != "0000" else "0001")
        held = session(f"mmkit pid {other.pid} on {HOST}:{wrong_start} (truex-btc)", BTC.advisory_key())
        backend = held.info.backend_pid
        lock = claimant(pg_url, tmp_path)
        lock.acquire()
        lock.release()
        assert wait_until(lambda: backend not in backends(pg_admin), 15.0)
        assert any(f"pid {other.pid} on {HOST} is now another process" in line for line in warnings), warnings
        assert other.poll() is None  # only the store session was ended, never a process
    finally:
        other.kill()
        other.wait(timeout=30)


def refused_names() -> list[tuple[str, Callable[[int], str]]]:
    return [
        ("another host", lambda pid: f"mmkit pid {pid} on other-host-b:{place()}0000 (truex-btc)"),
        ("this host name, another machine or pid namespace",
         lambda pid: f"mmkit pid {pid} on {HOST}:{'zzzz' if place() != 'zzzz' else 'yyyy'}0000 (truex-btc)"),
        ("an older version's name (no marker)", lambda pid: f"mmkit pid {pid} on {HOST} (truex-btc)"),
        ("a marker cut at 63 bytes", lambda pid: f"mmkit pid {pid} on {HOST}:{place()}00"),
        ("not mmkit", lambda pid: "psql"),
        ("no name", lambda pid: ""),
    ]


@pytest.mark.parametrize(("case", "name"), refused_names(), ids=[case for case, _ in refused_names()])
def test_a_holder_not_provably_dead_here_is_refused_and_left_alone(
    pg_url: str, pg_admin: psycopg.Connection, tmp_path: Path, session: Callable[..., psycopg.Connection],
    warnings: list[str], case: str, name: Callable[[int], str],
) -> None:
    """Its pid is not running here, but nothing proves it ran *here*: refused exactly as before."""
    pid = dead_pid()
    held = session(name(pid), BTC.advisory_key())
    lock = claimant(pg_url, tmp_path)
    with pytest.raises(MarketInUse) as refused:
        lock.acquire()
    text = str(refused.value)
    assert "is quoted by another mmkit process" in text and "is dead" not in text, text
    assert not lock.held
    assert holders(pg_admin, BTC.advisory_key(), pg_url) == [held.info.backend_pid]
    assert held.execute("SELECT 1").fetchone() == (1,)  # its session untouched
    assert not any("is dead" in line for line in warnings), (case, warnings)


@pytest.fixture
def roles(pg_admin: psycopg.Connection, pg_url: str) -> Iterator[tuple[str, str]]:
    """Two plain roles: a holder's and a claimant's that may not end the holder's backends."""
    suffix = uuid.uuid4().hex[:8]
    names = (f"mmkit_holder_{suffix}", f"mmkit_claim_{suffix}")
    for role in names:
        pg_admin.execute(f'CREATE ROLE "{role}" LOGIN')
    yield names
    database = make_url(pg_url).database
    for role in names:
        pg_admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
        pg_admin.execute(f'REVOKE ALL ON DATABASE "{database}" FROM "{role}"')
        pg_admin.execute(f'DROP ROLE IF EXISTS "{role}"')


def test_a_dead_holder_this_role_may_not_end_is_refused_with_the_statement_to_run(
    pg_url: str, pg_admin: psycopg.Connection, tmp_path: Path, session: Callable[..., psycopg.Connection],
    roles: tuple[str, str],
) -> None:
    holder_role, claim_role = roles
    as_holder = make_url(pg_url).set(username=holder_role).render_as_string(hide_password=False)
    as_claimant = make_url(pg_url).set(username=claim_role).render_as_string(hide_password=False)
    pid = dead_pid()
    held = session(f"mmkit pid {pid} on {HOST}:{place()}0000 (truex-btc)", BTC.advisory_key(), as_holder)
    backend = held.info.backend_pid
    lock = claimant(as_claimant, tmp_path)
    with pytest.raises(MarketInUse) as refused:
        lock.acquire()
    text = str(refused.value)
    assert f"is quoted by another mmkit process: mmkit pid {pid} on {HOST}:" in text, text
    assert f"that holder is dead (pid {pid} is not running on {HOST})" in text, text
    assert "this database role may not end it (" in text and "pg_signal_backend" in text, text
    assert f"`SELECT pg_terminate_backend({backend});`" in text, text
    assert not lock.held and holders(pg_admin, BTC.advisory_key(), pg_url) == [backend]


def test_the_instance_lock_takes_over_a_dead_holder_too(
    pg_url: str, pg_admin: psycopg.Connection, session: Callable[..., psycopg.Connection],
    warnings: list[str],
) -> None:
    """Same machinery: a dead `mmkit start` of the instance no longer blocks its restart for hours."""
    pid = dead_pid()
    held = session(f"mmkit pid {pid} on {HOST}:{place()}0000 (alpha)", instance_lock_key("alpha"))
    lock = StoreInstanceLock(pg_url, "alpha", wait_s=0.0)
    lock.acquire()
    try:
        assert lock.held
        assert holders(pg_admin, instance_lock_key("alpha"), pg_url) != [held.info.backend_pid]
        assert any("instance lock: its holder" in line and "is dead" in line for line in warnings), warnings
    finally:
        lock.release()


def _server_socket_keepalive_s(server_port: int, client_port: int) -> float | None:
    """Seconds left on the keepalive timer of the server's side of a loopback connection (/proc/net/tcp).

    The ``tr:tm->when`` column: timer 2 is the keepalive, ``when`` in USER_HZ (100) ticks. None if no such
    socket or another timer is running just now.
    """
    want_local, want_remote = f":{server_port:04X}", f":{client_port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(want_local) and fields[2].endswith(want_remote):
            timer, when = fields[5].split(":")
            return int(when, 16) / 100 if timer == "02" else None
    return None


def test_the_locks_session_has_short_keepalives_on_both_sides(
    pg_url: str, wait_until: Callable[[Callable[[], bool], float], bool],
) -> None:
    """The server drops a dead holder in about a minute (not ~2 h): its keepalive GUCs on the lock's session,
    in effect on the server's socket; and libpq's on ours."""
    lock = AdvisoryLock(pg_url, advisory_key("test-keepalive", pg_url), name="market", note="x",
                        refusal=lambda holder: holder, check_interval_s=3600.0)
    lock.acquire(0.0)
    try:
        conn = lock._conn
        assert conn is not None
        from sqlalchemy import text

        got = dict(conn.execute(text(
            "SELECT name, setting FROM pg_settings WHERE name IN ('tcp_keepalives_idle', "
            "'tcp_keepalives_interval', 'tcp_keepalives_count', 'tcp_user_timeout')")).all())
        assert got == {"tcp_keepalives_idle": str(KEEPALIVE_IDLE_S),
                       "tcp_keepalives_interval": str(KEEPALIVE_INTERVAL_S),
                       "tcp_keepalives_count": str(KEEPALIVE_COUNT),
                       "tcp_user_timeout": str(DEAD_CLIENT_DROPPED_S * 1000)}, got
        assert DEAD_CLIENT_DROPPED_S == 60  # the figure docs/operations.md gives

        fd = conn.connection.dbapi_connection.fileno()  # type: ignore[union-attr]
        with socket.socket(fileno=os.dup(fd)) as sock:
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == CLIENT_KEEPALIVES["keepalives_idle"]
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == KEEPALIVE_INTERVAL_S
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == KEEPALIVE_COUNT
            client_port = sock.getsockname()[1]
        server_port = make_url(pg_url).port or 5432
        # The kernel's default would show ~7200 s left; the server set its socket to 30 s idle.
        left: list[float | None] = [None]

        def armed() -> bool:
            left[0] = _server_socket_keepalive_s(server_port, client_port)
            return left[0] is not None

        assert wait_until(armed, 10.0), "no keepalive timer on the server's socket"
        assert left[0] is not None and left[0] <= KEEPALIVE_IDLE_S, left[0]
    finally:
        lock.release()


def test_a_refused_lock_says_the_holder_and_takes_nothing(pg_url: str, session: Callable[..., psycopg.Connection],
                                                         pg_admin: psycopg.Connection) -> None:
    """AdvisoryLock directly: a live holder (this test process, marker and all) is never ended."""
    key = advisory_key("test-live-self", pg_url)
    mine = marker()
    assert mine is not None
    held = session(f"mmkit pid {os.getpid()} on {HOST}:{mine} (x)", key)
    lock = AdvisoryLock(pg_url, key, name="market", note="y", refusal=lambda holder: f"held by {holder}",
                        check_interval_s=3600.0)
    with pytest.raises(LockInUse, match=f"held by mmkit pid {os.getpid()} on {HOST}:{mine}"):
        lock.acquire(0.0)
    assert holders(pg_admin, key, pg_url) == [held.info.backend_pid]


def test_a_name_without_a_marker_is_warned_of_at_the_claim(
    pg_url: str, warnings: list[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A host name too long for the marker: the claim is taken, but the operator learns that a restart after a
    cut connection will wait for the store (no dead-holder takeover for this process)."""
    from mmkit.store import advisory_lock, lock_holder

    monkeypatch.setattr(lock_holder.socket, "gethostname", lambda: "h" * 40)
    monkeypatch.setattr(advisory_lock, "_WARNED_UNMARKED", [])
    for note in ("a", "b"):  # two keys: one warning
        lock = AdvisoryLock(pg_url, advisory_key("test-unmarked", note), name="market", note=note,
                            refusal=lambda holder: holder, check_interval_s=3600.0)
        lock.acquire(0.0)
        lock.release()
    said = [line for line in warnings if "carries no holder marker" in line]
    assert len(said) == 1 and f"'mmkit pid {os.getpid()} on {'h' * 40}" in said[0], warnings
    assert "refused until the store drops its session (about 60 s)" in said[0], said[0]
