"""One process per instance on a shared PostgreSQL store: a session-level advisory lock.

Why: the journal lock (:meth:`mmkit.store.journal.Journal.lock`) is a file. A
SQLite store's journal is named after the store file, so two engines of one
instance on one SQLite file (from any output directories) meet at the same
lock file and the second is refused. A PostgreSQL store's journal lives in the
*output directory*, so two engines of one instance started from two output
directories held two different journal locks, both started, and both wrote
fills and order states of the same instance into the same tables: two
positions for one account.

So for a PostgreSQL store the instance itself is locked in the database: a
session-level ``pg_try_advisory_lock`` keyed by a stable 64-bit hash of the
instance name, taken on a connection of its own and held for the whole run
(and for ``mmkit reconcile``). It is the database session's, so it dies with
the connection: a SIGKILLed holder never blocks its restart (the server
drops the lock when it sees the socket close). The connection's
``application_name`` names the holder (pid, host) so a refusal can say who.
Advisory locks are per database: one key per instance and store.

Dying with the connection cuts both ways: a PostgreSQL restart, or a
connection the server or a proxy ends, drops the lock of a *running* engine.
So a watchdog thread checks the connection every ``check_interval_s`` and
takes the lock again on a new one; if another process took it meanwhile,
:attr:`StoreInstanceLock.problem` says so and the engine halts quoting for
good (its ledger is no longer its alone). While the store cannot be reached
at all the lock cannot be taken either, by anyone.

A SQLite store: the journal lock is per store file, so two output directories
sharing one ``store.url`` are refused already (``tests/faults/test_journal_identity.py``).
But the journal is named after the path as written: two *paths* to one file (a
symlink, or a relative and an absolute path) gave two journals and two locks.
So for SQLite the lock is a ``lockf`` on ``<real file>.lock``, the path
resolved, with the holder's pid in it; the kernel drops it when the holder
dies. Not on the database file itself: SQLite keeps POSIX locks on it, and a
process that closes any descriptor of a file loses all its POSIX locks on it.
A hard link or a bind mount (another path the resolver cannot see through)
still names another lock file.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from pathlib import Path

from loguru import logger
from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url

from mmkit.store.db import create_store_engine, redact_url
from mmkit.store.pid_lock import LockHeld, take_pid_lock

#: How long a start waits for a holder that is going away (a SIGKILLed engine whose server session the
#: database has not reaped yet) before refusing. Bounded: a live holder is refused after this.
DEFAULT_WAIT_S = 3.0
#: How often a held PostgreSQL lock's connection is checked (and the lock taken again if it was dropped).
DEFAULT_CHECK_INTERVAL_S = 2.0


class InstanceInUse(Exception):
    """Another process (an engine, or ``mmkit reconcile``) holds this instance on this store."""


def instance_lock_key(instance: str) -> int:
    """A stable signed 64-bit key for ``instance`` (sha256, not ``hash()``: the same in every process)."""
    digest = hashlib.sha256(b"mmkit-instance\0" + instance.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _holder_name() -> str:
    return f"mmkit pid {os.getpid()} on {socket.gethostname()}"[:63]


class StoreInstanceLock:
    """Held from :meth:`acquire` until :meth:`release`: an advisory lock (PostgreSQL) or a lock file (SQLite)."""

    def __init__(
        self, url: str, instance: str, *, wait_s: float = DEFAULT_WAIT_S,
        check_interval_s: float = DEFAULT_CHECK_INTERVAL_S,
    ) -> None:
        self.url = url
        self.instance = instance
        self.wait_s = wait_s
        self.check_interval_s = check_interval_s
        #: Why the instance is no longer this process's alone (another process took the lock), else None.
        #: Set by the watchdog thread, read by the engine every tick (mmkit.app.persistence_iterator).
        self.problem: str | None = None
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._watchdog: threading.Thread | None = None
        self.key = instance_lock_key(instance)
        parsed = make_url(url)
        self.applies = parsed.get_backend_name() == "postgresql"
        self.file: Path | None = None
        if parsed.get_backend_name() == "sqlite" and parsed.database:
            real = Path(parsed.database).resolve()  # every path to the file meets at one lock
            self.file = real.with_name(real.name + ".lock")
        self._engine: Engine | None = None
        self._conn: Connection | None = None
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None or self._fd is not None

    def acquire(self) -> None:
        """Take the instance; InstanceInUse (naming instance, store and holder) if another process holds it."""
        if self.file is not None:
            self._acquire_file(self.file)
            return
        if not self.applies or self._conn is not None:
            return
        self._engine = create_store_engine(self.url)
        try:
            self._conn = self._take(self.wait_s)
        except BaseException:
            self._dispose()
            raise
        logger.bind(instance=self.instance, store=redact_url(self.url)).info(
            "instance {} locked on the store (advisory lock {})", self.instance, self.key
        )
        self._stop.clear()
        self._watchdog = threading.Thread(target=self._watch, name=f"mmkit-instance-lock-{self.instance}",
                                          daemon=True)
        self._watchdog.start()

    def _take(self, wait_s: float) -> Connection:
        """A new connection holding the lock; InstanceInUse (naming the holder) once ``wait_s`` has passed."""
        assert self._engine is not None
        conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            conn.execute(text("SELECT set_config('application_name', :name, false)"), {"name": _holder_name()})
            deadline = time.monotonic() + wait_s
            while not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar():
                if time.monotonic() >= deadline:
                    holder = self._holder(conn)
                    raise InstanceInUse(
                        f"instance {self.instance!r} is in use on store {redact_url(self.url)}: another process "
                        f"holds its lock ({holder}): another engine of this instance (from another output "
                        f"directory), or `mmkit reconcile`, is running; stop it first"
                    )
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
        log = logger.bind(instance=self.instance, store=redact_url(self.url))
        with self._guard:
            if self._engine is None or self.problem is not None or self._stop.is_set():
                return
            if self._conn is not None:
                try:
                    self._conn.execute(text("SELECT 1"))
                    return
                except Exception as exc:
                    log.warning("instance lock: its connection ended ({}); taking the lock again", exc)
                    self._close_quietly()
            try:
                self._conn = self._take(0.0)
            except InstanceInUse as exc:
                self.problem = f"instance lock lost: its connection to the store ended and {exc}"
                log.error("{}", self.problem)
            except Exception as exc:  # the store unreachable: nobody can take it; try again next time
                log.warning("instance lock: cannot take it again yet: {}", exc)
            else:
                log.warning("instance lock taken again on a new connection")

    def _close_quietly(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                logger.opt(exception=True).debug("instance lock: closing a dead connection failed")
            self._conn = None

    def _acquire_file(self, path: Path) -> None:
        """SQLite: a POSIX record lock on ``<real file>.lock`` (the process's: it dies with the process)."""
        if self._fd is not None:
            return
        try:
            self._fd = take_pid_lock(path)
        except LockHeld as held:
            raise InstanceInUse(
                f"instance {self.instance!r} is in use on store {redact_url(self.url)} ({path.with_suffix('')}): "
                f"another process holds its lock (pid {held.holder}): another engine on this store file (through "
                f"another path to it), or `mmkit reconcile`, is running; stop it first"
            ) from None

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
        if self._fd is not None:
            os.close(self._fd)  # releases the record lock
            self._fd = None
        self._stop.set()
        if self._watchdog is not None:
            self._watchdog.join(timeout=30)
            self._watchdog = None
        with self._guard:
            if self._conn is not None:
                try:
                    self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                except Exception:
                    logger.opt(exception=True).warning("instance lock: unlock failed (closing its connection drops it)")
                finally:
                    self._close_quietly()
            self._dispose()

    def _dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
