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

A SQLite store: the journal lock is per store file, so two output directories
sharing one ``store.url`` are refused already (``tests/faults/test_journal_identity.py``).
But the journal is named after the path as written: two *paths* to one file (a
symlink, a bind mount seen twice) gave two journals and two locks. So for
SQLite the lock is a ``lockf`` on ``<real file>.lock``, the path resolved, with
the holder's pid in it; the kernel drops it when the holder dies.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import socket
import time
from pathlib import Path

from loguru import logger
from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url

from mmkit.store.db import create_store_engine, redact_url
from mmkit.store.private import FILE_MODE, private_dir

#: How long a start waits for a holder that is going away (a SIGKILLed engine whose server session the
#: database has not reaped yet) before refusing. Bounded: a live holder is refused after this.
DEFAULT_WAIT_S = 3.0


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

    def __init__(self, url: str, instance: str, *, wait_s: float = DEFAULT_WAIT_S) -> None:
        self.url = url
        self.instance = instance
        self.wait_s = wait_s
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
            conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except Exception:
            self._dispose()
            raise
        try:
            conn.execute(text("SELECT set_config('application_name', :name, false)"), {"name": _holder_name()})
            deadline = time.monotonic() + self.wait_s
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
            self._dispose()
            raise
        self._conn = conn
        logger.bind(instance=self.instance, store=redact_url(self.url)).info(
            "instance {} locked on the store (advisory lock {})", self.instance, self.key
        )

    def _acquire_file(self, path: Path) -> None:
        """SQLite: a POSIX record lock on ``<real file>.lock`` (the process's: it dies with the process)."""
        if self._fd is not None:
            return
        private_dir(path.parent)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.read(fd, 64).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            if exc.errno not in (errno.EACCES, errno.EAGAIN):
                raise
            raise InstanceInUse(
                f"instance {self.instance!r} is in use on store {redact_url(self.url)} ({path.with_suffix('')}): "
                f"another process holds its lock (pid {holder}): another engine on this store file (through "
                f"another path to it), or `mmkit reconcile`, is running; stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

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
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            except Exception:
                logger.opt(exception=True).warning("instance lock: unlock failed (the closing connection drops it)")
            finally:
                self._conn.close()
                self._conn = None
        self._dispose()

    def _dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
