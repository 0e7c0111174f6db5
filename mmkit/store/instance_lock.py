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
(and for ``mmkit reconcile``); the machinery is mmkit.store.advisory_lock,
shared with the market lock (mmkit.store.market_lock). It is the database session's, so it dies with
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

import os
from pathlib import Path

from loguru import logger
from sqlalchemy.engine import make_url

from mmkit.store.advisory_lock import AdvisoryLock, LockInUse, advisory_key
from mmkit.store.db import redact_url
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
    return advisory_key("mmkit-instance", instance)


class StoreInstanceLock:
    """Held from :meth:`acquire` until :meth:`release`: an advisory lock (PostgreSQL) or a lock file (SQLite)."""

    def __init__(
        self, url: str, instance: str, *, wait_s: float = DEFAULT_WAIT_S,
        check_interval_s: float = DEFAULT_CHECK_INTERVAL_S,
    ) -> None:
        self.url = url
        self.instance = instance
        #: Read at :meth:`acquire` (a test may set either before it).
        self.wait_s = wait_s
        self.check_interval_s = check_interval_s
        self.key = instance_lock_key(instance)
        parsed = make_url(url)
        self.applies = parsed.get_backend_name() == "postgresql"
        self.file: Path | None = None
        if parsed.get_backend_name() == "sqlite" and parsed.database:
            real = Path(parsed.database).resolve()  # every path to the file meets at one lock
            self.file = real.with_name(real.name + ".lock")
        self._advisory: AdvisoryLock | None = None
        self._fd: int | None = None

    @property
    def problem(self) -> str | None:
        """Why the instance is no longer this process's alone (another process took the lock), else None.

        Set by the watchdog thread, read by the engine every tick (mmkit.app.persistence_iterator).
        """
        return None if self._advisory is None else self._advisory.problem

    @property
    def held(self) -> bool:
        return (self._advisory is not None and self._advisory.held) or self._fd is not None

    def acquire(self) -> None:
        """Take the instance; InstanceInUse (naming instance, store and holder) if another process holds it."""
        if self.file is not None:
            self._acquire_file(self.file)
            return
        if not self.applies or self.held:
            return
        instance, url = self.instance, redact_url(self.url)
        self._advisory = AdvisoryLock(
            self.url, self.key, name="instance", note=instance, check_interval_s=self.check_interval_s,
            refusal=lambda holder: (
                f"instance {instance!r} is in use on store {url}: another process holds its lock ({holder}): "
                f"another engine of this instance (from another output directory), or `mmkit reconcile`, is "
                f"running; stop it first"
            ),
        )
        try:
            self._advisory.acquire(self.wait_s)
        except LockInUse as exc:
            self._advisory = None
            raise InstanceInUse(str(exc)) from None
        except BaseException:
            self._advisory = None
            raise
        logger.bind(instance=instance, store=url).info(
            "instance {} locked on the store (advisory lock {})", instance, self.key
        )

    def check_now(self) -> None:
        """Is the lock's connection alive? If not, take the lock again on a new one (the watchdog's step)."""
        if self._advisory is not None:
            self._advisory.check_now()

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

    def release(self) -> None:
        """Drop the lock (closing its connection drops it too: the server unlocks a session that ends)."""
        if self._fd is not None:
            os.close(self._fd)  # releases the record lock
            self._fd = None
        if self._advisory is not None:
            self._advisory.release()
            self._advisory = None
