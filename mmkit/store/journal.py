"""Write-ahead journal: every fill and order state change, durable before the engine acts on it.

Why a journal in front of the store: the store (SQLite/PostgreSQL) is written
by a thread, in batches, and may be down; a fill queued for it when the
process dies is gone (issue 11, case 1 and 5). The journal is a local
append-only file written on the engine thread:

* ``append`` writes one line with ``os.write`` at once. From that instant the
  line is in the kernel: a SIGKILL of the engine cannot lose it.
* ``sync`` (``fdatasync``) makes everything appended so far survive a power
  loss. The engine calls it once per tick, *before* the strategy step, so the
  executor never sends anything that depends on a fill that is not durable
  (see :class:`JournalBarrier` and docs/operations.md, "Durability contract").

Recovery reads the journal first, then the store; the store is a projection
that catches up from the journal (:func:`mmkit.app.recovery.recover`).

Format: one line per record, ``<json> <crc32 hex>\\n``; the JSON is
``{"s": seq, "k": kind, "d": data}``. A line whose CRC does not match is a
torn write: tolerated only as the very last line (the write the process died
in), anything else is corruption and :func:`read_journal` raises.

Kinds: ``session`` (a process opened the journal; names its instance), ``fill`` (a Fill; ``note``
marks a synthetic fill booked by ``mmkit reconcile --accept-venue``),
``order`` (an OrderRecord), ``actions`` (timestamps of order-entry actions
sent, so the rate limiter survives a restart), ``checkpoint`` (the store held
everything before this line when it was written; names its instance). ``session`` and ``checkpoint``
lines also carry the venue account fingerprints (mmkit.app.venue_account): the first ones a journal names
are its owner's (:attr:`JournalContents.accounts`).

Whose journal: a SQLite store's journal is named after the store file, so two
instances given one ``store.url`` would share it, and an operator may copy one.
So ``session`` and ``checkpoint`` lines name the instance, and
:func:`read_journal` refuses a journal that names another
(:class:`JournalForeign`): booking another instance's fills would be a silent
wrong position. And one process at a time: :meth:`Journal.lock` holds an
exclusive lock (``lockf``) on ``<journal>.lock`` from before the journal is read
until it is closed, so a second engine on the same journal, or ``mmkit
reconcile`` while the engine runs, is refused (:class:`JournalInUse`) instead
of appending to (or checkpointing away) the other's records.

A failed write (disk full, read-only, deleted directory) never raises into
the engine: ``healthy`` turns False with ``error`` saying why, and the app
layer halts quoting (mmkit.app.persistence_iterator).
"""

from __future__ import annotations

import json
import os
import time
import zlib
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
from loguru import logger

from mmkit.model import Fill, Liquidity, Side
from mmkit.store.pid_lock import LockHeld, take_pid_lock
from mmkit.store.private import FILE_MODE, open_private_append, private_dir
from mmkit.store.records import OrderRecord, to_jsonable

#: Prefix of the trade id of a fill that ``mmkit reconcile --accept-venue`` booked from the venue's CumQty.
SYNTHETIC_PREFIX = "mmkit-synthetic:"
#: Prefix of the trade id of a compensating fill ``mmkit reconcile --void-excess`` booked: the opposite side
#: of the order, for the quantity the ledger holds and the venue never filled. It reverses, never deletes.
VOID_PREFIX = "mmkit-void:"


class JournalCorrupt(Exception):
    """A journal line other than the last one is unreadable: the ledger cannot be trusted."""


class JournalForeign(JournalCorrupt):
    """The journal names another instance: its fills are not this instance's ledger."""


class JournalInUse(Exception):
    """Another process holds the journal (a running engine, or ``mmkit reconcile``)."""


def journal_path_for(store_url: str, instance: str, output_dir: str | Path) -> Path:
    """Where an instance's journal lives: next to its SQLite file, else ``<output_dir>/store/``."""
    from sqlalchemy.engine import make_url

    parsed = make_url(store_url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        db = Path(parsed.database)
        return db.with_name(f"{db.stem}.journal")
    return Path(output_dir) / "store" / f"{instance}.journal"


def _encode(seq: int, kind: str, data: Any) -> bytes:
    body = json.dumps({"s": seq, "k": kind, "d": data}, separators=(",", ":"), ensure_ascii=False)
    crc = zlib.crc32(body.encode("utf-8"))
    return f"{body} {crc:08x}\n".encode()


def fill_from_data(data: dict[str, Any]) -> Fill:
    return Fill(
        venue=data["venue"],
        trade_id=data["trade_id"],
        client_id=data["client_id"],
        symbol=data["symbol"],
        side=Side(data["side"]),
        price=Decimal(data["price"]),
        qty=Decimal(data["qty"]),
        fee=Decimal(data["fee"]),
        fee_currency=data["fee_currency"],
        liquidity=Liquidity(data["liquidity"]),
        ts_event=int(data["ts_event"]),
        ts_recv=int(data["ts_recv"]),
        venue_order_id=data.get("venue_order_id", ""),
        is_hedge=bool(data.get("is_hedge", False)),
    )


def order_from_data(data: dict[str, Any]) -> OrderRecord:
    return OrderRecord(
        data["client_id"], data["venue"], data["symbol"], data["side"], data["price"], data["qty"],
        data["filled_qty"], data["state"], data["venue_order_id"], int(data["ts_ns"]), data.get("reason", ""),
    )


@attrs.frozen(slots=True)
class JournalContents:
    """What a journal holds, decoded: the input of recovery."""

    fills: tuple[Fill, ...]
    #: The last journaled state of each order, by (venue, client id), in order of last change.
    orders: tuple[OrderRecord, ...]
    #: Timestamps (ns, wall clock) of order-entry actions sent, oldest first.
    actions: tuple[int, ...]
    #: Synthetic fills' reasons, by trade id.
    notes: dict[str, str]
    records: int
    torn_tail: bool
    #: What the ledger held when the journal was last checkpointed (fills, signed position): the store
    #: must hold at least that, since the journal no longer does. None: never checkpointed.
    checkpoint: tuple[int, Decimal] | None = None
    #: Venue -> account fingerprint, from the *first* line naming them (a refused start appends a session
    #: line with its own accounts; the first stays the journal's owner), unless an ``accounts`` record
    #: (``mmkit reconcile --accept-account``) re-assigned them: the last one wins. Empty: none recorded.
    accounts: dict[str, str] = attrs.Factory(dict)


def read_journal(path: str | Path, instance: str | None = None) -> JournalContents:
    """Decode a journal (missing file = empty). Raises JournalCorrupt for a bad line before the last.

    With ``instance``: raises :class:`JournalForeign` when a ``session`` or ``checkpoint`` line names
    another instance (lines written before journals named their instance name none, and pass).
    """
    target = Path(path)
    if not target.exists():
        return JournalContents((), (), (), {}, 0, False, None)
    raw = target.read_bytes()
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    fills: dict[tuple[str, str], Fill] = {}
    orders: dict[tuple[str, str], OrderRecord] = {}
    actions: list[int] = []
    notes: dict[str, str] = {}
    checkpoint: tuple[int, Decimal] | None = None
    accounts: dict[str, str] = {}
    reassigned: dict[str, str] | None = None
    torn = False
    count = 0
    for index, line in enumerate(lines):
        record = decode_line(line)
        if record is None:
            if index == len(lines) - 1:
                torn = True  # the write the process died in: never acted upon
                logger.bind(journal=str(target)).warning("journal: torn last line ignored ({} bytes)", len(line))
                break
            raise JournalCorrupt(f"{target}: line {index + 1} is corrupt; refusing to trust the ledger")
        count += 1
        kind, data = record["k"], record["d"]
        owner = data.get("instance") if kind in ("session", "checkpoint") and isinstance(data, dict) else None
        if instance is not None and owner is not None and owner != instance:
            raise JournalForeign(
                f"journal {target} belongs to instance {owner!r}, not {instance!r} (line {index + 1}): "
                f"two instances share one store file (a SQLite store's journal is named after it), or the "
                f"journal was copied; give each instance its own store.url"
            )
        if kind in ("session", "checkpoint") and not accounts and isinstance(data.get("accounts"), dict):
            accounts = {str(k): str(v) for k, v in data["accounts"].items()}
        elif kind == "accounts":
            reassigned = {**(reassigned or accounts), **{str(k): str(v) for k, v in data["accounts"].items()}}
        if kind == "fill":
            fill = fill_from_data(data)
            fills.setdefault(fill.key, fill)
            if data.get("note"):
                notes[fill.trade_id] = str(data["note"])
        elif kind == "order":
            order = order_from_data(data)
            key = (order.venue, order.client_id)
            orders.pop(key, None)
            orders[key] = order
        elif kind == "actions":
            actions.extend(int(t) for t in data["ts"])
        elif kind == "checkpoint" and "fills" in data:
            checkpoint = (int(data["fills"]), Decimal(data["position"]))
    return JournalContents(
        tuple(fills.values()), tuple(orders.values()), tuple(actions), notes, count, torn, checkpoint,
        accounts if reassigned is None else reassigned,
    )


def decode_line(line: bytes) -> dict[str, Any] | None:
    body, sep, crc = line.rpartition(b" ")
    if not sep or len(crc) != 8:
        return None
    try:
        if zlib.crc32(body) != int(crc, 16):
            return None
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) and "k" in value and "d" in value else None


class Journal:
    """The append side: ``append`` (SIGKILL-safe at once), ``sync`` (power-safe), ``checkpoint``."""

    def __init__(
        self, path: str | Path, *, fsync: bool = True, instance: str | None = None,
        accounts: dict[str, str] | None = None,
    ) -> None:
        self.path = Path(path)
        self.fsync = fsync
        #: Written into every ``session`` and ``checkpoint`` line (see :func:`read_journal`).
        self.instance = instance
        #: Venue account fingerprints (mmkit.app.venue_account), written with the instance.
        self.accounts = dict(accounts or {})
        self._lock_fd: int | None = None
        self.error: str | None = None
        self.appended = 0
        #: Bytes appended since the journal was opened or last checkpointed (a running engine checkpoints
        #: when this grows past its limit and the store has caught up: recovery reads the whole file).
        self.bytes_since_checkpoint = 0
        self.syncs = 0
        self.sync_ns = 0
        self._dirty = False
        self._seq = 0
        self._fd: int | None = None
        self._log = logger.bind(journal=str(self.path))

    @property
    def healthy(self) -> bool:
        return self.error is None

    @property
    def is_open(self) -> bool:
        return self._fd is not None

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    def lock(self) -> None:
        """Take the journal for this process (held until :meth:`close`); JournalInUse if another holds it.

        A separate lock file, never replaced: a checkpoint renames a new journal over the old one, and a
        lock on the journal's own inode would be lost with it (:mod:`mmkit.store.pid_lock` says why a
        record lock).
        """
        if self._lock_fd is not None:
            return
        try:
            self._lock_fd = take_pid_lock(self.lock_path)
        except LockHeld as held:
            raise JournalInUse(
                f"journal {self.path} is in use by another process (pid {held.holder}): another engine, or "
                f"`mmkit reconcile`, on this instance's store is running; stop it first"
            ) from None

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = None

    def open(self) -> None:
        """Lock, then open for appending (created 0600 in a 0700 directory); raises OSError if it cannot be
        written, JournalInUse if another process holds it."""
        self.lock()
        self._drop_torn_tail()
        self._fd = open_private_append(self.path)
        self._seq = 0
        # A write probe: a read-only file system or a full disk must refuse the start, not the first fill.
        self._write(_encode(0, "session", self._stamp({"pid": os.getpid(), "ts_ns": time.time_ns()})))
        self._sync_now()

    def _stamp(self, data: dict[str, Any]) -> dict[str, Any]:
        if self.instance is not None:
            data["instance"] = self.instance
        if self.accounts:
            data["accounts"] = dict(self.accounts)
        return data

    def _drop_torn_tail(self) -> None:
        """Cut a torn last line (a write the process died in, or a disk that filled mid-line) before appending.

        Why: :func:`read_journal` tolerates a bad line only as the *last* one; the next append would glue
        itself to the torn bytes, and that line, no longer last, would refuse every later start as corrupt.
        The torn record was never acted upon (nothing is sent before a sync succeeds).
        """
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        if size == 0:
            return
        with open(self.path, "rb") as f:
            f.seek(max(0, size - 1))
            if f.read(1) == b"\n":
                return
            f.seek(0)
            keep = f.read().rfind(b"\n") + 1
        self._log.warning("journal: cutting a torn last line ({} bytes) before appending", size - keep)
        os.truncate(self.path, keep)

    # ------------------------------------------------------------------ append side (engine thread)

    def append_fill(self, fill: Fill, note: str = "") -> bool:
        data = to_jsonable(fill)
        if note:
            data["note"] = note
        return self.append("fill", data)

    def append_order(self, record: OrderRecord) -> bool:
        return self.append("order", to_jsonable(record))

    def append_actions(self, times_ns: Iterable[int]) -> bool:
        times = list(times_ns)
        return self.append("actions", {"ts": times}) if times else True

    def append(self, kind: str, data: Any) -> bool:
        """Write one record now (no fsync). False (and ``healthy`` False) if it could not be written."""
        if self._fd is None or self.error is not None:
            if self.error is None:
                self.error = "journal is not open"
            return False
        self._seq += 1
        try:
            line = _encode(self._seq, kind, data)
            self._write(line)
            self.bytes_since_checkpoint += len(line)
        except OSError as exc:
            self._fail(f"journal write failed: {exc}")
            return False
        self.appended += 1
        self._dirty = True
        return True

    def sync(self) -> bool:
        """Make everything appended durable (one fdatasync, only if something was appended)."""
        if not self._dirty or self._fd is None:
            return self.error is None
        try:
            if os.fstat(self._fd).st_nlink == 0:  # deleted under us: writes would go to a ghost inode
                self._fail(f"journal file {self.path} was deleted")
                return False
        except OSError as exc:
            self._fail(f"journal stat failed: {exc}")
            return False
        try:
            self._sync_now()
        except OSError as exc:
            self._fail(f"journal fsync failed: {exc}")
            return False
        return self.error is None

    def close(self) -> None:
        """Sync and close the journal, and release it to other processes."""
        if self._fd is None:
            self.unlock()
            return
        try:
            if self._dirty:
                self._sync_now()
        except OSError as exc:
            self._fail(f"journal fsync failed at close: {exc}")
        finally:
            os.close(self._fd)
            self._fd = None
            self.unlock()

    def checkpoint(
        self, carry_actions: Iterable[int], fills: int | None = None, position: Decimal | None = None,
        *, reopen: bool = False,
    ) -> bool:
        """The store holds everything journaled: start a fresh journal holding only the rate-limit window.

        Written to a temp file, fsynced, renamed over the journal, directory
        fsynced: at every instant either the old journal or the new one is
        complete. Call only when the store confirmed every record (clean stop),
        and before :meth:`close`: the lock must be held until the new journal is in place.
        """
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            private_dir(self.path.parent)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
            try:
                summary: dict[str, Any] = self._stamp({"ts_ns": time.time_ns()})
                if fills is not None and position is not None:
                    summary.update(fills=fills, position=format(position, "f"))
                os.write(fd, _encode(0, "checkpoint", summary))
                times = list(carry_actions)
                if times:
                    os.write(fd, _encode(1, "actions", {"ts": times}))
                os.fsync(fd)
            finally:
                os.close(fd)
            if self._fd is not None:
                if self._dirty:  # the old journal stays complete should the rename below fail
                    self._sync_now()
                os.close(self._fd)
                self._fd = None
            os.replace(tmp, self.path)
            _fsync_dir(self.path.parent)
            self.bytes_since_checkpoint = 0
            if reopen:
                self._fd = open_private_append(self.path)
                self._seq = 1
        except OSError as exc:
            self._log.error("journal checkpoint failed (the journal stays as it was): {}", exc)
            return False
        return True

    # ------------------------------------------------------------------ internals

    def _write(self, line: bytes) -> None:
        assert self._fd is not None
        view = memoryview(line)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def _sync_now(self) -> None:
        assert self._fd is not None
        if self.fsync:
            began = time.perf_counter_ns()
            os.fdatasync(self._fd)
            self.sync_ns += time.perf_counter_ns() - began
            self.syncs += 1
        self._dirty = False

    def _fail(self, reason: str) -> None:
        if self.error is None:
            self.error = reason
            self._log.error("{}: quoting must halt, the ledger can no longer be made durable", reason)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
