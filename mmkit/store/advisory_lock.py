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

Advisory locks are per database: keys from two claims share one 64-bit space,
so each claim hashes its key under its own domain (:func:`advisory_key`).
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from collections.abc import Callable

from loguru import logger
from sqlalchemy import Connection, Engine, text

from mmkit.store.db import create_store_engine, redact_url


class LockInUse(Exception):
    """Another process holds the advisory lock; the message (made by the lock's owner) names the holder."""


def advisory_key(domain: str, *parts: str) -> int:
    """A stable signed 64-bit key (sha256, not ``hash()``: the same in every process and on every host).

    ``domain`` keeps two kinds of claim apart; the parts are joined by NUL so ``("a b", "c")`` and
    ``("a", "b c")`` differ.
    """
    raw = "\0".join([domain, *parts]).encode("utf-8")
    return int.from_bytes(hashlib.sha256(raw).digest()[:8], "big", signed=True)


def holder_name(note: str = "") -> str:
    """What the lock's connection calls itself (``application_name``, 63 bytes at most): ``mmkit pid N on HOST``.

    ``note`` (e.g. the instance) is appended in parentheses when it fits.
    """
    name = f"mmkit pid {os.getpid()} on {socket.gethostname()}"
    if note:
        name += f" ({note})"
    return name[:63]


class AdvisoryLock:
    """Held from :meth:`acquire` until :meth:`release`. ``refusal(holder)`` words the LockInUse message."""

    def __init__(
        self, url: str, key: int, *, name: str, refusal: Callable[[str], str], note: str = "",
        check_interval_s: float,
    ) -> None:
        self.url = url
        self.key = key
        #: What is locked, first word of the log lines and of :attr:`problem` ("instance", "market").
        self.name = name
        self.refusal = refusal
        self.note = note
        self.check_interval_s = check_interval_s
        #: Why the lock is no longer this process's (another process took it after a drop), else None.
        #: Set by the watchdog thread, read by the engine every tick.
        self.problem: str | None = None
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._watchdog: threading.Thread | None = None
        self._engine: Engine | None = None
        self._conn: Connection | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None

    def acquire(self, wait_s: float) -> None:
        """Take the lock (LockInUse once ``wait_s`` has passed with another holder) and start the watchdog."""
        if self._conn is not None:
            return
        self._engine = create_store_engine(self.url)
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
        """A new connection holding the lock; LockInUse (naming the holder) once ``wait_s`` has passed."""
        assert self._engine is not None
        conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            conn.execute(text("SELECT set_config('application_name', :name, false)"),
                         {"name": holder_name(self.note)})
            deadline = time.monotonic() + wait_s
            while not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar():
                if time.monotonic() >= deadline:
                    raise LockInUse(self.refusal(self._holder(conn)))
                time.sleep(0.1)  # a dying holder: the server drops its session once it sees the socket close
        except BaseException:
            conn.close()
            raise
        return conn

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
                    self._conn.execute(text("SELECT 1"))
                    return
                except Exception as exc:
                    log.warning("{} lock: its connection ended ({}); taking the lock again", self.name, exc)
                    self._close_quietly()
            try:
                self._conn = self._take(0.0)
            except LockInUse as exc:
                self.problem = f"{self.name} lock lost: its connection to the store ended and {exc}"
                log.error("{}", self.problem)
            except Exception as exc:  # the store unreachable: nobody can take it; try again next time
                log.warning("{} lock: cannot take it again yet: {}", self.name, exc)
            else:
                log.warning("{} lock taken again on a new connection", self.name)

    def _close_quietly(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                logger.opt(exception=True).debug("{} lock: closing a dead connection failed", self.name)
            self._conn = None

    def _holder(self, conn: Connection) -> str:
        """Who holds the key (its application_name says the pid and host), best effort."""
        query = text(
            "SELECT a.application_name, a.client_addr FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :hi AND l.objid = :lo AND l.objsubid = 1 "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )  # advisory locks are per database: another database's holder of the same key is not ours
        unsigned = self.key & 0xFFFF_FFFF_FFFF_FFFF
        try:
            row = conn.execute(query, {"hi": unsigned >> 32, "lo": unsigned & 0xFFFF_FFFF}).first()
        except Exception:
            return "holder unknown"
        if row is None:
            return "holder unknown"
        return f"{row[0] or 'unnamed client'}" + (f" from {row[1]}" if row[1] else "")

    def release(self) -> None:
        """Drop the lock (closing its connection drops it too: the server unlocks a session that ends)."""
        self._stop.set()
        if self._watchdog is not None:
            self._watchdog.join(timeout=30)
            self._watchdog = None
        with self._guard:
            if self._conn is not None:
                try:
                    self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                except Exception:
                    logger.opt(exception=True).warning("{} lock: unlock failed (closing its connection drops it)",
                                                       self.name)
                finally:
                    self._close_quietly()
            self._dispose()

    def _dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
