"""A lock connection whose server stops answering (socket left open) must not hang the watchdog or the stop.

Before: the watchdog's ``SELECT 1`` had no client-side bound. Through a path
that stops answering without closing the socket (a blackholed host, a hung
proxy, a paused VM: the near side's kernel still ACKs), it waited for the
kernel's TCP timeout (~15 min) holding ``_guard``, and ``release()`` (at the
engine's stop) waited behind it as long. The path here is a TCP proxy in the
test that stops relaying in both directions while keeping both sockets open.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url

from mmkit.store.advisory_lock import AdvisoryLock, LockInUse, advisory_key
from tests.integration.store.conftest import _libpq

CHECK_TIMEOUT_S = 1.0
BOUND_S = 15.0  # generous for a busy 2-core CI box; the hang it guards against is ~15 minutes


class BlackholeProxy:
    """Relays TCP between clients and the server; :meth:`blackhole` freezes the current flows, sockets open.

    Flows accepted after the blackhole relay normally (the path healthy again, as after a failover or a
    NAT entry that was lost): only the frozen ones stay silent, like a peer that will never answer.
    """

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._flows: list[tuple[socket.socket, socket.socket, threading.Event, threading.Event]] = []
        self._threads: list[threading.Thread] = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            ready, _, _ = select.select([self.listener], [], [], 0.05)
            if not ready:
                continue
            try:
                client, _ = self.listener.accept()
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                continue
            frozen, quiet = threading.Event(), threading.Event()
            with self._lock:
                self._flows.append((client, server, frozen, quiet))
            relay = threading.Thread(target=self._relay, args=(client, server, frozen, quiet), daemon=True)
            self._threads.append(relay)
            relay.start()

    def _relay(self, client: socket.socket, server: socket.socket, frozen: threading.Event,
               quiet: threading.Event) -> None:
        try:
            self._pump(client, server, frozen, quiet)
        finally:
            quiet.set()  # closed: as silent as it gets

    def _pump(self, client: socket.socket, server: socket.socket, frozen: threading.Event,
              quiet: threading.Event) -> None:
        peers = {client: server, server: client}
        while not self._closed.is_set():
            if frozen.is_set():  # read nothing, send nothing, close nothing: the peer just goes quiet
                quiet.set()
                self._closed.wait(0.05)
                continue
            ready, _, _ = select.select(list(peers), [], [], 0.05)
            for sock in ready:
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    client.close()
                    server.close()
                    return
                peers[sock].sendall(data)

    def blackhole(self) -> None:
        """Freeze every current flow; returns once each relay has stopped relaying (not mid-select, where it
        could still pass on a close that comes right after)."""
        with self._lock:
            flows = list(self._flows)
        for _, _, frozen, _ in flows:
            frozen.set()
        for _, _, _, quiet in flows:
            assert quiet.wait(10), "a relay never went quiet"

    def close(self) -> None:
        self._closed.set()
        for thread in self._threads:
            thread.join(5)
        self.listener.close()
        with self._lock:
            for client, server, _, _ in self._flows:
                client.close()
                server.close()


@pytest.fixture
def proxy(pg_admin_url: str) -> Iterator[BlackholeProxy]:
    parsed = make_url(pg_admin_url)
    p = BlackholeProxy(parsed.host or "127.0.0.1", parsed.port or 5432)
    yield p
    p.close()


def via(proxy: BlackholeProxy, pg_url: str) -> str:
    return make_url(pg_url).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)


def lock_on(url: str, key: int) -> AdvisoryLock:
    return AdvisoryLock(url, key, name="instance", note="alpha", refusal=lambda holder: f"held by {holder}",
                        check_interval_s=3600.0, check_timeout_s=CHECK_TIMEOUT_S)  # the test runs the checks


def bounded(action: Callable[[], None], bound_s: float = BOUND_S) -> float:
    """Run ``action`` in a thread; fail (never hang) if it has not returned within ``bound_s``; its duration."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            action()
        except BaseException as exc:
            errors.append(exc)

    started = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(bound_s)
    assert not thread.is_alive(), f"{action} still blocked after {bound_s} s on a blackholed connection"
    if errors:
        raise errors[0]
    return time.monotonic() - started


def holders(admin: psycopg.Connection, key: int) -> list[int]:
    """Backend pids holding ``key`` (any database: the key is unique to the test)."""
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    rows = admin.execute(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = %s AND objid = %s "
        "AND objsubid = 1", (unsigned >> 32, unsigned & 0xFFFF_FFFF)).fetchall()
    return [row[0] for row in rows]


def test_a_blackholed_lock_connection_is_given_up_and_the_lock_taken_again_on_a_new_one(
    pg_url: str, pg_admin: psycopg.Connection, proxy: BlackholeProxy, caplog: pytest.LogCaptureFixture,
) -> None:
    key = advisory_key("test-blackhole", pg_url)
    lock = lock_on(via(proxy, pg_url), key)
    lock.acquire(0.0)
    try:
        [first] = holders(pg_admin, key)
        proxy.blackhole()  # the server still holds the session (its socket to the proxy is open) and the lock

        took = bounded(lock.check_now)
        assert took < CHECK_TIMEOUT_S + 5, took
        # The stale session of our own was ended and the lock taken again on a new connection through the
        # (healthy for new flows) proxy: not a "lost to another process" halt.
        assert lock.problem is None
        assert lock.held
        [second] = holders(pg_admin, key)
        assert second != first
        bounded(lock.check_now, CHECK_TIMEOUT_S + 5)  # the new connection answers
        assert lock.problem is None
    finally:
        bounded(lock.release)
    assert holders(pg_admin, key) == []


def test_release_returns_promptly_when_the_lock_connection_is_blackholed(
    pg_url: str, pg_admin: psycopg.Connection, proxy: BlackholeProxy,
) -> None:
    key = advisory_key("test-blackhole-release", pg_url)
    lock = lock_on(via(proxy, pg_url), key)
    lock.acquire(0.0)
    proxy.blackhole()
    took = bounded(lock.release)
    assert took < CHECK_TIMEOUT_S + 5, took
    assert not lock.held


def test_the_watchdog_thread_does_not_hold_up_release_when_blackholed(
    pg_url: str, pg_admin: psycopg.Connection, proxy: BlackholeProxy,
    wait_until: Callable[[Callable[[], bool], float], bool],
) -> None:
    """The watchdog is mid-check on the dead connection when the stop comes: the stop waits the bound only."""
    key = advisory_key("test-blackhole-watchdog", pg_url)
    lock = AdvisoryLock(via(proxy, pg_url), key, name="instance", note="alpha", refusal=lambda h: f"held by {h}",
                        check_interval_s=0.05, check_timeout_s=CHECK_TIMEOUT_S)
    lock.acquire(0.0)
    proxy.blackhole()
    [first] = holders(pg_admin, key)
    # The watchdog finds the dead connection by itself and takes the lock again on a new one.
    assert wait_until(lambda: holders(pg_admin, key) not in ([first], []), BOUND_S), "never taken again"
    proxy.blackhole()  # and again, now possibly mid-check
    took = bounded(lock.release)
    assert took < 2 * CHECK_TIMEOUT_S + 5, took
    assert lock.problem is None


def test_another_process_took_the_lock_meanwhile_sets_problem(
    pg_url: str, pg_admin: psycopg.Connection, proxy: BlackholeProxy,
    wait_until: Callable[[Callable[[], bool], float], bool],
) -> None:
    key = advisory_key("test-blackhole-taken", pg_url)
    lock = lock_on(via(proxy, pg_url), key)
    lock.acquire(0.0)
    try:
        [first] = holders(pg_admin, key)
        proxy.blackhole()
        # The server gives up on the silent session (its keepalive, here an admin) and another process takes it.
        pg_admin.execute("SELECT pg_terminate_backend(%s)", (first,))
        with psycopg.connect(_libpq(pg_url), autocommit=True) as other:
            assert wait_until(lambda: bool(other.execute("SELECT pg_try_advisory_lock(%s)", (key,))
                                           .fetchone()[0]), BOUND_S), "the terminated session's lock stayed"  # type: ignore[index]
            bounded(lock.check_now)
            assert lock.problem is not None and "instance lock lost" in lock.problem, lock.problem
            assert holders(pg_admin, key) == [other.info.backend_pid]
    finally:
        bounded(lock.release)


def test_a_lock_held_by_someone_else_is_still_refused(pg_url: str, proxy: BlackholeProxy) -> None:
    """Ending a stale session of our own must never end another holder's: a second lock is refused as before."""
    key = advisory_key("test-blackhole-refused", pg_url)
    a = lock_on(via(proxy, pg_url), key)
    a.acquire(0.0)
    try:
        b = lock_on(via(proxy, pg_url), key)
        with pytest.raises(LockInUse):
            b.acquire(0.0)
        assert a.held
    finally:
        bounded(a.release)
