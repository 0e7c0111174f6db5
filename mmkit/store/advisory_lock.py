"""A PostgreSQL session-level advisory lock held for a whole run, with a watchdog that takes it back.

Why a module of its own: two claims use it, keyed differently. The instance
lock (mmkit.store.instance_lock: one process per instance on a shared store)
and the market lock (mmkit.store.market_lock: one instance per venue account
and symbol). Both need the same machinery, written once:

* ``pg_try_advisory_lock`` on a connection of its own (AUTOCOMMIT), held for
  the run. It is the database session's, so it dies with the connection: a
  SIGKILLed holder never blocks its restart (the server drops the lock when it
  sees the socket close). A start waits up to ``wait_s`` for a holder that is
  going away, then refuses.
* The connection's ``application_name`` names the holder (pid, host, and what
  it holds for), so a refusal can say who (read from ``pg_locks`` joined with
  ``pg_stat_activity``).
* Dying with the connection cuts both ways: a PostgreSQL restart, or a
  connection a proxy ends, drops the lock of a *running* engine. A watchdog
  thread checks the connection every ``check_interval_s`` and takes the lock
  again on a new one; if another process took it meanwhile, :attr:`problem`
  says so and the engine must halt quoting for good.
* Every statement on the lock's connection has a client-side bound
  (``check_timeout_s``, :func:`_bounded`): a server or path that stops
  answering *without closing the socket* (a blackholed host, a hung proxy, a
  paused VM) would otherwise block the check for the kernel's TCP timeout
  (~15 min) while holding ``_guard``, and :meth:`AdvisoryLock.release` (at the
  engine's stop) behind it. libpq's keepalives and ``tcp_user_timeout`` do not
  help when a proxy's kernel still ACKs, and ``statement_timeout`` needs a
  server that hears us; so a timer shuts the socket down from our side. A
  check that times out counts as a lost connection (the path above).
* After such a timeout the server may still hold our old session, and the
  lock with it, until it notices (its keepalive: hours by default). Taking the
  lock again then finds *ourselves* holding it: the old session (identified
  by backend pid and start time, recorded when the lock was taken) is ended
  with ``pg_terminate_backend`` and the lock taken on the new connection.
* Another process's session the server still holds after that process died
  (its connection cut without a FIN reaching the server: a blackholed
  network, a killed VM, a SIGKILL while a proxy keeps the server's side open)
  blocked every restart until the server's keepalive gave up (~2 h by
  default). The holder's ``application_name`` says its pid, host and a marker
  of its machine, pid namespace and start time (mmkit.store.lock_holder); a
  holder that ran *here* and is provably dead (pid gone, a zombie, or reused
  by another process) has its backend ended (that backend only, only while it
  holds our key under that name), loudly, and the lock is taken. Any other
  holder (another host, alive, a name that does not parse) is refused as
  before; a role that may not end the backend is refused with the statement
  an operator can run.
* The server notices a dead client by itself sooner: the lock's session sets
  ``tcp_keepalives_idle`` 30 s, ``tcp_keepalives_interval`` 10 s,
  ``tcp_keepalives_count`` 3 and ``tcp_user_timeout`` 60 s (the watchdog's
  ``SELECT 1`` every few seconds keeps a live holder's connection busy), so a
  holder on another host that died is dropped about 60 s after its last
  packet instead of ~2 h; libpq's client keepalives use the same figures.

Advisory locks are per database: keys from two claims share one 64-bit space,
so each claim hashes its key under its own domain (:func:`advisory_key`).
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from loguru import logger
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from mmkit.store.db import create_store_engine, redact_url
from mmkit.store.lock_holder import has_marker, holder_name, parse_holder, why_dead

#: How long one statement on the lock's connection may take before the connection is given up.
DEFAULT_CHECK_TIMEOUT_S = 5.0
#: Server-side keepalive of the lock's session: idle seconds before the first probe, seconds between probes,
#: unanswered probes before the server drops the session (and the lock). The default (the kernel's) is
#: 7200 s idle, so a dead holder's lock outlived it by ~2 h.
KEEPALIVE_IDLE_S = 30
KEEPALIVE_INTERVAL_S = 10
KEEPALIVE_COUNT = 3
#: How long after a dead client's last packet the server drops its session: the keepalive's figure, and the
#: server's ``tcp_user_timeout`` (the same bound while a reply of the server's is unacknowledged, where
#: keepalive probes are not sent and retransmissions would go on for ~15 min).
DEAD_CLIENT_DROPPED_S = KEEPALIVE_IDLE_S + KEEPALIVE_INTERVAL_S * KEEPALIVE_COUNT
_SESSION_SETTINGS = {
    "tcp_keepalives_idle": str(KEEPALIVE_IDLE_S),
    "tcp_keepalives_interval": str(KEEPALIVE_INTERVAL_S),
    "tcp_keepalives_count": str(KEEPALIVE_COUNT),
    "tcp_user_timeout": str(DEAD_CLIENT_DROPPED_S * 1000),
}
#: libpq's keepalives on the lock's connection (the client noticing a dead server by itself).
CLIENT_KEEPALIVES = {"keepalives": 1, "keepalives_idle": KEEPALIVE_IDLE_S,
                     "keepalives_interval": KEEPALIVE_INTERVAL_S, "keepalives_count": KEEPALIVE_COUNT}
#: SQLSTATE insufficient_privilege: pg_terminate_backend of another role's backend without pg_signal_backend.
_NO_PRIVILEGE = "42501"
#: Our name carries no marker (so our dead session is never recognised): said once per process (this list
#: holds the name once said).
_WARNED_UNMARKED: list[str] = []
_KEY_HOLDER = (
    "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :hi AND l.objid = :lo AND l.objsubid = 1 "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)  # advisory locks are per database: another database's holder of the same key is not ours


class LockInUse(Exception):
    """Another process holds the advisory lock; the message (made by the lock's owner) names the holder."""


def advisory_key(domain: str, *parts: str) -> int:
    """A stable signed 64-bit key (sha256, not ``hash()``: the same in every process and on every host).

    ``domain`` keeps two kinds of claim apart; the parts are joined by NUL so ``("a b", "c")`` and
    ``("a", "b c")`` differ.
    """
    raw = "\0".join([domain, *parts]).encode("utf-8")
    return int.from_bytes(hashlib.sha256(raw).digest()[:8], "big", signed=True)


@contextmanager
def _bounded(conn: Connection, timeout_s: float) -> Iterator[None]:
    """Statements run inside return within ``timeout_s`` or the connection is cut (TimeoutError).

    A timer shuts the connection's socket down (``shutdown(2)`` on a duplicate of its descriptor: the
    descriptor itself stays open, so it cannot be reused under psycopg's feet); psycopg's wait on the
    socket then wakes and fails. The shutdown happens under ``mutex`` and only while the block runs,
    so a late timer never touches a connection that has moved on.
    """
    fd = _socket_fd(conn)
    mutex = threading.Lock()
    state = {"done": False, "fired": False}

    def cut() -> None:
        with mutex:
            if state["done"] or fd is None:
                return
            state["fired"] = True
            try:
                with socket.socket(fileno=os.dup(fd)) as sock:
                    sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed: the statement fails on its own

    timer = threading.Timer(timeout_s, cut)
    timer.daemon = True
    timer.start()
    try:
        yield
    except Exception as exc:
        with mutex:
            state["done"] = True
        if state["fired"]:
            raise TimeoutError(f"no answer from the store within {timeout_s:g} s; connection cut") from exc
        raise
    finally:
        with mutex:
            state["done"] = True
        timer.cancel()
    if state["fired"]:  # it answered just as the timer cut it: the connection is unusable all the same
        raise TimeoutError(f"no answer from the store within {timeout_s:g} s; connection cut")


def _socket_fd(conn: Connection) -> int | None:
    """The descriptor of the DBAPI (psycopg) connection's socket; None if there is none (closed)."""
    dbapi: Any = conn.connection.dbapi_connection
    try:
        return int(dbapi.fileno())
    except Exception:
        return None


class AdvisoryLock:
    """Held from :meth:`acquire` until :meth:`release`. ``refusal(holder)`` words the LockInUse message."""

    def __init__(
        self, url: str, key: int, *, name: str, refusal: Callable[[str], str], note: str = "",
        check_interval_s: float, check_timeout_s: float = DEFAULT_CHECK_TIMEOUT_S,
    ) -> None:
        self.url = url
        self.key = key
        #: What is locked, first word of the log lines and of :attr:`problem` ("instance", "market").
        self.name = name
        self.refusal = refusal
        self.note = note
        self.check_interval_s = check_interval_s
        #: The client-side bound on each statement on the lock's connection (see :func:`_bounded`).
        self.check_timeout_s = check_timeout_s
        #: Why the lock is no longer this process's (another process took it after a drop), else None.
        #: Set by the watchdog thread, read by the engine every tick.
        self.problem: str | None = None
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._watchdog: threading.Thread | None = None
        self._engine: Engine | None = None
        self._conn: Connection | None = None
        #: (backend pid, backend start) of the session holding the lock: after a connection is given up
        #: the server may still hold it, and only that session of ours may be ended to take the lock back.
        self._session: tuple[int, datetime] | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None

    def acquire(self, wait_s: float) -> None:
        """Take the lock (LockInUse once ``wait_s`` has passed with another holder) and start the watchdog."""
        if self._conn is not None:
            return
        self._engine = create_store_engine(self.url, extra_connect_args=CLIENT_KEEPALIVES)
        try:
            self._conn = self._take(wait_s)
        except BaseException:
            self._dispose()
            raise
        self._stop.clear()
        self._watchdog = threading.Thread(target=self._watch, name=f"mmkit-{self.name}-lock-{self.note}",
                                          daemon=True)
        self._watchdog.start()

    def _take(self, wait_s: float) -> Connection:
        """A new connection holding the lock; LockInUse (naming the holder) once ``wait_s`` has passed.

        A holder that is our own earlier session (given up on, still alive on the server) is ended first.
        """
        assert self._engine is not None
        conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            name = holder_name(self.note)
            self._configure(conn, name)
            deadline = time.monotonic() + wait_s
            ended: set[int] = set()
            while not self._try_lock(conn):
                if self._end_stale_session(conn) or self._end_dead_holder(conn, ended):
                    deadline = max(deadline, time.monotonic() + self.check_timeout_s)  # until its exit frees it
                if time.monotonic() >= deadline:
                    with _bounded(conn, self.check_timeout_s):
                        holder = self._holder(conn)
                    raise LockInUse(self.refusal(holder))
                time.sleep(0.1)  # a dying holder: the server drops its session once it sees the socket close
            with _bounded(conn, self.check_timeout_s):
                row = conn.execute(text("SELECT pid, backend_start FROM pg_stat_activity "
                                        "WHERE pid = pg_backend_pid()")).one()
            self._session = (int(row[0]), row[1])
        except BaseException:
            conn.close()
            raise
        return conn

    def _configure(self, conn: Connection, name: str) -> None:
        """Name the session (the holder, for refusals and :meth:`_end_dead_holder`) and set its keepalives."""
        settings = {"application_name": name, **_SESSION_SETTINGS}
        calls = ", ".join(f"set_config(:k{i}, :v{i}, false)" for i in range(len(settings)))
        params: dict[str, str] = {}
        for i, (key, value) in enumerate(settings.items()):
            params[f"k{i}"], params[f"v{i}"] = key, value
        with _bounded(conn, self.check_timeout_s):
            conn.execute(text(f"SELECT {calls}"), params)
        if not has_marker(name) and not _WARNED_UNMARKED:
            _WARNED_UNMARKED.append(name)  # once per process, not per key and retake
            logger.bind(store=redact_url(self.url)).warning(
                "{} lock: this process's name on the store ({!r}) carries no holder marker (a host name too long "
                "for 63 bytes, or no /proc): if it dies with its connection cut, a restart on this host is refused "
                "until the store drops its session (about {} s)", self.name, name, DEAD_CLIENT_DROPPED_S)

    def _key_params(self) -> dict[str, int]:
        unsigned = self.key & 0xFFFF_FFFF_FFFF_FFFF
        return {"hi": unsigned >> 32, "lo": unsigned & 0xFFFF_FFFF}

    def _end_dead_holder(self, conn: Connection, ended: set[int]) -> bool:
        """If the key's holder ran on this host and is provably dead (mmkit.store.lock_holder.why_dead), end its
        backend (True). A holder not judged dead: False (refused as before). A role that may not end it:
        LockInUse saying so, with the statement an operator can run.

        The terminate names the backend pid *and* the holder's name and requires that it still holds our key,
        so a holder that let go, or another that took the key meanwhile, is never ended.
        """
        with _bounded(conn, self.check_timeout_s):
            row = conn.execute(text(f"SELECT a.pid, a.application_name {_KEY_HOLDER}"), self._key_params()).first()
        if row is None:
            return False
        backend, name = int(row[0]), str(row[1] or "")
        if backend in ended:
            return False  # ended already, still exiting: its wait was granted once, not again and again
        why = why_dead(name)
        if why is None:
            return False
        log = logger.bind(store=redact_url(self.url))
        try:
            with _bounded(conn, self.check_timeout_s):
                gone = conn.execute(text(f"SELECT pg_terminate_backend(a.pid) {_KEY_HOLDER} "
                                         "AND a.pid = :pid AND a.application_name = :name"),
                                    {**self._key_params(), "pid": backend, "name": name}).first()
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) != _NO_PRIVILEGE:
                raise
            with _bounded(conn, self.check_timeout_s):
                holder = self._holder(conn)
            diag = getattr(exc.orig, "diag", None)
            reason = getattr(diag, "message_primary", None) or str(exc.orig).strip().splitlines()[0]
            message = (
                f"{self.refusal(holder)}; that holder is dead ({why}) but the store still holds its session "
                f"(backend pid {backend}), and this database role may not end it ({reason}): end it as a "
                f"superuser or a member of pg_signal_backend with `SELECT pg_terminate_backend({backend});` "
                f"(or wait until the store drops it by itself), then start again"
            )
            raise LockInUse(message) from None  # the start's refusal says it (exit 3)
        if gone is None:
            return False  # it let go, or another took the key, meanwhile: look again
        ended.add(backend)
        dead = parse_holder(name)
        assert dead is not None  # why_dead judged it
        log.warning(
            "{} lock: its holder {!r} is dead ({}): pid {} on {}, but the store still held its session (backend "
            "pid {}) and the lock with it; ended that backend with pg_terminate_backend and taking the lock",
            self.name, name, why, dead.pid, dead.host, backend)
        return True

    def _try_lock(self, conn: Connection) -> bool:
        with _bounded(conn, self.check_timeout_s):
            return bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar())

    def _end_stale_session(self, conn: Connection) -> bool:
        """If the key's holder is the session this lock gave up on, end it (True); anyone else: False."""
        if self._session is None:
            return False
        pid, started = self._session
        unsigned = self.key & 0xFFFF_FFFF_FFFF_FFFF
        with _bounded(conn, self.check_timeout_s):
            ended = conn.execute(text(
                "SELECT pg_terminate_backend(a.pid) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :hi AND l.objid = :lo "
                "AND l.objsubid = 1 AND a.pid = :pid AND a.backend_start = :started "
                "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ), {"hi": unsigned >> 32, "lo": unsigned & 0xFFFF_FFFF, "pid": pid, "started": started}).scalar()
        if ended:
            logger.bind(store=redact_url(self.url)).warning(
                "{} lock: our earlier session (backend pid {}) still held it on the server; ended it", self.name,
                pid)
            self._session = None
            return True
        return False

    def _watch(self) -> None:
        while not self._stop.wait(self.check_interval_s):
            self.check_now()

    def check_now(self) -> None:
        """Is the lock's connection alive? If not, take the lock again on a new one (the watchdog's step)."""
        log = logger.bind(store=redact_url(self.url))
        with self._guard:
            if self._engine is None or self.problem is not None or self._stop.is_set():
                return
            if self._conn is not None:
                try:
                    with _bounded(self._conn, self.check_timeout_s):
                        self._conn.execute(text("SELECT 1"))
                    return
                except Exception as exc:
                    log.warning("{} lock: its connection ended ({}); taking the lock again", self.name, exc)
                    self._close_quietly(dead=True)
                    if self._stop.is_set():  # the stop came while we waited: release() has nothing to unlock
                        return
            try:
                self._conn = self._take(0.0)
            except LockInUse as exc:
                self.problem = f"{self.name} lock lost: its connection to the store ended and {exc}"
                log.error("{}", self.problem)
            except Exception as exc:  # the store unreachable: nobody can take it; try again next time
                log.warning("{} lock: cannot take it again yet: {}", self.name, exc)
            else:
                log.warning("{} lock taken again on a new connection", self.name)

    def _close_quietly(self, dead: bool = False) -> None:
        """Close the lock's connection; a ``dead`` one is invalidated, never handed back to the pool."""
        if self._conn is not None:
            try:
                if dead:
                    self._conn.invalidate()
                self._conn.close()
            except Exception:
                logger.opt(exception=True).debug("{} lock: closing a dead connection failed", self.name)
            self._conn = None

    def _holder(self, conn: Connection) -> str:
        """Who holds the key (its application_name says the pid and host), best effort."""
        try:
            row = conn.execute(text(f"SELECT a.application_name, a.client_addr {_KEY_HOLDER}"),
                               self._key_params()).first()
        except Exception:
            return "holder unknown"
        if row is None:
            return "holder unknown"
        return f"{row[0] or 'unnamed client'}" + (f" from {row[1]}" if row[1] else "")

    def release(self) -> None:
        """Drop the lock (closing its connection drops it too: the server unlocks a session that ends).

        Bounded even on a connection that stopped answering: the watchdog's step and the unlock each give up
        after ``check_timeout_s`` (the stop must not wait ~15 min for the kernel's TCP timeout). A session
        the server still holds then keeps the lock until the server notices the session is gone (or a
        restart of ours ends it: see :meth:`_end_stale_session`); the warning says so.
        """
        self._stop.set()
        if self._watchdog is not None:
            self._watchdog.join(timeout=30)
            self._watchdog = None
        with self._guard:
            if self._conn is not None:
                dead = False
                try:
                    with _bounded(self._conn, self.check_timeout_s):
                        self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                except Exception as exc:
                    dead = True
                    logger.bind(store=redact_url(self.url)).warning(
                        "{} lock: unlock failed ({}); the server drops the lock when it sees the session end",
                        self.name, exc)
                finally:
                    self._close_quietly(dead=dead)
            self._dispose()

    def _dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
