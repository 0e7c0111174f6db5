"""Recorder: persists orders, fills, hedges, PnL and sampled top-of-book off the hot path.

Why a thread and a queue: database drivers block, and a slow or dead database
must never delay a quote. The engine's tick only *enqueues* (a lock, a deque
append, no I/O); one writer thread drains the queue in batches, one
transaction per batch, in enqueue order.

Outage behaviour: any connection-level failure (server down, connection
dropped, SQLite locked) is an outage. The batch stays at the head of the
queue and is retried with exponential backoff (``retry_initial_s`` doubling
up to ``retry_max_s``); records keep queueing behind it, so when the database
returns they arrive complete and in order. Each outage is logged once when it
starts and once when it ends, and counted in :meth:`Recorder.stats`.

Spill policy (the queue is bounded by ``max_queued`` records): top-of-book
samples are refused first, as soon as the backlog passes half the bound;
at the bound, further records are dropped and counted as ``dropped``, with
an error logged at the first drop of each outage. Nothing is written to a side
file: the JSONL audit trail (``mmkit.store.audit``) is the durable record of
every order, fill and hedge, and ``stats().backlog`` lets risk halt quoting
before the bound is reached. The default bound (1,000,000) covers hours of
outage at a busy desk's rate.

A record the database refuses on its own merits (a constraint or data error,
not a connection problem) is isolated by retrying the batch record by record;
the offender is logged with its content and counted as ``rejected`` so it
cannot wedge the queue. A fill whose (venue, trade_id) is already stored with
the same content is a duplicate (a journal catch-up, a replay) and is skipped by
the INSERT itself. One whose key is stored with *other* content is a different
fill the store cannot hold (a venue simulated in the engine process restarts
its trade ids every run; two venues of one name in a shared store): it is not
written, logged with both, and counted as ``conflicts``. Whoever stops the run
turns ``rejected`` and ``conflicts`` into "not persisted" (the Persistence does:
exit 6, and the journal is kept); before, ON CONFLICT DO NOTHING dropped such a
fill without a word.

Clean stop: :meth:`close` writes everything queued (and the session's stop
time) before returning; it returns how many records it could *not* write
(0 unless the database stayed down past the timeout, which is logged).
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import attrs
from loguru import logger
from sqlalchemy import ARRAY, Connection, Engine, Select, String, Table, and_, func, literal, select, update
from sqlalchemy import exc as sa_exc

from mmkit.model import Fill, Side
from mmkit.store import schema
from mmkit.store.db import DEFAULT_URL, create_store_engine, insert_ignoring_duplicates, redact_url
from mmkit.store.records import (
    HedgeRecord,
    OrderRecord,
    PnLRecord,
    QuarantinedFillRecord,
    Record,
    SessionStart,
    SessionStop,
    TopOfBookRecord,
)

_TRANSIENT = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError, sa_exc.TimeoutError)


def new_session_id() -> str:
    """Sortable by start time and unique across hosts: ``YYYYmmddTHHMMSSZ-<8 hex>``."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:8]


@attrs.frozen(slots=True)
class RecorderStats:
    """Counters for monitoring; all monotonic except ``backlog`` and ``in_outage``."""

    enqueued: int
    written: int
    dropped: int
    rejected: int
    tob_skipped: int
    backlog: int
    outages: int
    db_errors: int
    in_outage: bool
    #: Fills not written: the store holds another fill under their (venue, trade id).
    conflicts: int = 0

    def not_kept(self) -> str | None:
        """Why records the store answered for were not kept (refused, or conflicts), or None.

        Not an outage (nothing stays queued), so the caller must say it on its own: before, a clean stop
        exited 0 and checkpointed the journal, the only other copy of such a fill.
        """
        parts = []
        if self.rejected:
            parts.append(f"{self.rejected} record(s) the store refused (logged: `store refused record`)")
        if self.conflicts:
            parts.append(
                f"{self.conflicts} fill(s) the store holds another fill under the same (venue, trade id) "
                f"(logged: `NOT stored`); a venue simulated in the engine process restarts its trade ids "
                f"every run: give each such run its own engine.instance"
            )
        return "; ".join(parts) if parts else None


def is_transient(exc: BaseException) -> bool:
    """True when the failure is about reaching the database, not about the data."""
    if isinstance(exc, _TRANSIENT):
        return True
    return isinstance(exc, sa_exc.DBAPIError) and bool(exc.connection_invalidated)


class Recorder:
    """Batched, non-blocking persistence of what the engine did, to any SQLAlchemy URL.

    Call :meth:`start` once (it migrates the schema and raises if the store
    cannot be opened: a run must not start without its ledger), then the
    ``record_*`` methods from the engine loop, and :meth:`close` on stop.
    The ``record_*`` methods never block on I/O and never raise on a database
    problem; they return False only when the record was not accepted.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        instance: str = "default",
        session_id: str | None = None,
        max_queued: int = 1_000_000,
        batch_max: int = 1000,
        tob_interval_ns: int = 1_000_000_000,
        retry_initial_s: float = 0.05,
        retry_max_s: float = 5.0,
        connect_timeout_s: float = 2.0,
    ) -> None:
        if max_queued < 2 or batch_max < 1:
            raise ValueError("max_queued must be >= 2 and batch_max >= 1")
        self.url = url
        self.instance = instance
        self.session_id = session_id or new_session_id()
        self._max_queued = max_queued
        self._batch_max = batch_max
        self._tob_interval_ns = tob_interval_ns
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._engine: Engine = create_store_engine(url, connect_timeout_s=connect_timeout_s)
        self._log = logger.bind(store=redact_url(url), session=self.session_id, instance=instance)

        self._cond = threading.Condition()
        self._queue: deque[tuple[int, Record]] = deque()
        self._in_flight = 0
        self._next_seq = 1
        self._written_seq = 0
        self._writer_idle = False
        self._stopping = False
        self._abort = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._tob_last: dict[tuple[str, str], int] = {}

        self._enqueued = 0
        self._written = 0
        self._dropped = 0
        self._rejected = 0
        self._conflicts = 0
        self._tob_skipped = 0
        self._outages = 0
        self._db_errors = 0
        self._in_outage = False
        self._outage_began = 0.0
        self._dropped_this_outage = False

        self._enqueue(SessionStart(self.session_id, instance, time.time_ns()))

    # ------------------------------------------------------------------ lifecycle

    @property
    def engine(self) -> Engine:
        return self._engine

    def start(self) -> None:
        """Migrate the schema (raises if the store is unreachable or too new) and start writing."""
        if self._thread is not None:
            raise RuntimeError("recorder already started")
        version = schema.migrate(self._engine)
        self._thread = threading.Thread(target=self._run, name=f"mmkit-recorder-{self.instance}", daemon=True)
        self._thread.start()
        self._log.info("recorder started (schema v{}, pid {})", version, os.getpid())

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until everything recorded before this call is written; False on timeout."""
        with self._cond:
            target = self._next_seq - 1
            self._cond.notify_all()
            return self._cond.wait_for(lambda: self._written_seq >= target, timeout=timeout_s)

    def close(self, timeout_s: float = 10.0) -> int:
        """Write everything queued, stop the writer, and return how many records were NOT written."""
        with self._cond:
            if self._closed:
                return self._backlog()
            self._enqueue_locked(SessionStop(self.session_id, time.time_ns()))
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                with self._cond:
                    self._abort = True
                    self._cond.notify_all()
                self._thread.join(5.0)
        with self._cond:
            self._closed = True
            remaining = self._backlog()
        if remaining:
            self._log.error("recorder closed with {} records NOT persisted (store unreachable)", remaining)
        else:
            self._log.info("recorder closed: {} records written, nothing left queued", self._written)
        self._engine.dispose()
        return remaining

    def stats(self) -> RecorderStats:
        with self._cond:
            return RecorderStats(
                enqueued=self._enqueued,
                written=self._written,
                dropped=self._dropped,
                rejected=self._rejected,
                tob_skipped=self._tob_skipped,
                backlog=self._backlog(),
                outages=self._outages,
                db_errors=self._db_errors,
                in_outage=self._in_outage,
                conflicts=self._conflicts,
            )

    # ------------------------------------------------------------------ hot path

    def record_order(
        self,
        client_id: str,
        venue: str,
        symbol: str,
        side: Side | str,
        *,
        price: Decimal | None,
        qty: Decimal,
        filled_qty: Decimal,
        state: str,
        venue_order_id: str,
        ts_ns: int,
        reason: str = "",
    ) -> bool:
        """Record one state change of an order (call on every transition).

        Money and state are keyword-only: with five Decimals in a row, a swapped
        price and quantity must be a TypeError, not a wrong ledger.
        """
        record = OrderRecord(
            client_id, venue, symbol, side, price, qty, filled_qty, state, venue_order_id or "", ts_ns, reason
        )
        return self._enqueue(record)

    def record_fill(self, fill: Fill) -> bool:
        """Record a fill; a fill already stored under the same (venue, trade_id) is skipped."""
        return self._enqueue(fill)

    def record_quarantined_fill(self, fill: Fill, kind: str, reason: str) -> bool:
        """Record a fill that failed validation in ``quarantined_fills`` (never in ``fills``)."""
        return self._enqueue(QuarantinedFillRecord(fill, kind, reason))

    def record_hedge(
        self,
        hedge_id: str,
        venue: str,
        symbol: str,
        side: Side | str,
        *,
        qty: Decimal,
        price: Decimal | None,
        state: str,
        ts_ns: int,
        ref: str = "",
        reason: str = "",
    ) -> bool:
        return self._enqueue(HedgeRecord(hedge_id, venue, symbol, side, qty, price, state, ts_ns, ref, reason))

    def record_pnl(self, snapshot: PnLRecord) -> bool:
        return self._enqueue(snapshot)

    def record_top_of_book(
        self,
        venue: str,
        symbol: str,
        *,
        bid: Decimal | None,
        bid_qty: Decimal | None,
        ask: Decimal | None,
        ask_qty: Decimal | None,
        ts_ns: int,
    ) -> bool:
        """Sample the top of book: at most one record per ``tob_interval_ns`` per (venue, symbol)."""
        key = (venue, symbol)
        last = self._tob_last.get(key)
        if last is not None and ts_ns - last < self._tob_interval_ns:
            return False
        with self._cond:
            if self._backlog() >= self._max_queued // 2:
                self._tob_skipped += 1
                return False
        self._tob_last[key] = ts_ns
        return self._enqueue(TopOfBookRecord(venue, symbol, bid, bid_qty, ask, ask_qty, ts_ns))

    def _enqueue(self, record: Record) -> bool:
        with self._cond:
            return self._enqueue_locked(record)

    def _enqueue_locked(self, record: Record) -> bool:
        if self._stopping:
            self._dropped += 1
            self._log.error("record after close() dropped: {!r}", record)
            return False
        if self._backlog() >= self._max_queued:
            self._dropped += 1
            if not self._dropped_this_outage:
                self._dropped_this_outage = True
                self._log.error("recorder queue full ({} records): dropping records until it drains", self._max_queued)
            return False
        self._queue.append((self._next_seq, record))
        self._next_seq += 1
        self._enqueued += 1
        if self._writer_idle:
            self._cond.notify_all()
        return True

    def _backlog(self) -> int:
        return len(self._queue) + self._in_flight

    # ------------------------------------------------------------------ writer thread

    def _run(self) -> None:
        pending: list[tuple[int, Record]] = []
        delay = self._retry_initial_s
        while True:
            with self._cond:
                if self._abort:
                    break
                if not pending:
                    while not self._queue and not self._stopping:
                        self._writer_idle = True
                        self._cond.wait()
                    self._writer_idle = False
                    if not self._queue:
                        break  # stopping and drained
                    count = min(self._batch_max, len(self._queue))
                    pending = [self._queue.popleft() for _ in range(count)]
                    self._in_flight = count
            try:
                conflicts = self._write_batch(pending)
                self._mark_done(pending, rejected=0, conflicts=conflicts)
                pending = []
                delay = self._retry_initial_s
            except Exception as exc:
                if is_transient(exc):
                    self._on_outage(exc)
                    with self._cond:
                        if not self._abort:
                            self._cond.wait(delay)
                    delay = min(delay * 2, self._retry_max_s)
                    continue
                pending = self._write_individually(pending)
                if pending:  # the database went away while isolating the bad record
                    with self._cond:
                        self._cond.wait(delay)
                    delay = min(delay * 2, self._retry_max_s)

    def _write_individually(self, pending: list[tuple[int, Record]]) -> list[tuple[int, Record]]:
        """Write one record per transaction so one bad record cannot block the rest."""
        remaining = list(pending)
        while remaining:
            item = remaining[0]
            try:
                conflicts = self._write_batch([item])
                self._mark_done([item], rejected=0, conflicts=conflicts)
            except Exception as exc:
                if is_transient(exc):
                    self._on_outage(exc)
                    return remaining
                self._log.opt(exception=exc).error("store refused record #{}, skipped: {!r}", item[0], item[1])
                self._mark_done([item], rejected=1)
            remaining.pop(0)
        return remaining

    def _mark_done(self, done: list[tuple[int, Record]], rejected: int, conflicts: int = 0) -> None:
        with self._cond:
            self._written_seq = done[-1][0]
            self._in_flight = max(0, self._in_flight - len(done))
            self._written += len(done) - rejected - conflicts
            self._rejected += rejected
            self._conflicts += conflicts
            if self._in_outage:
                self._in_outage = False
                self._dropped_this_outage = False
                self._log.warning(
                    "store reachable again after {:.1f} s; backlog {} records",
                    time.monotonic() - self._outage_began,
                    self._backlog(),
                )
            self._cond.notify_all()

    def _on_outage(self, exc: BaseException) -> None:
        with self._cond:
            self._db_errors += 1
            if self._in_outage:
                return
            self._in_outage = True
            self._outages += 1
            self._outage_began = time.monotonic()
            backlog = self._backlog()
        self._log.error("store outage #{}: {}; {} records queued, retrying", self._outages, _first_line(exc), backlog)

    def _write_batch(self, batch: list[tuple[int, Record]]) -> int:
        """Write one batch in one transaction; returns how many fills were left out as conflicts."""
        groups: dict[str, list[dict[str, Any]]] = {}
        conflicts = 0
        stops: list[SessionStop] = []
        for seq, record in batch:
            if isinstance(record, SessionStop):
                stops.append(record)
                continue
            table, row = _row_for(record, seq, self.session_id)
            groups.setdefault(table.name, []).append(row)
        with self._engine.begin() as conn:
            for name, rows in groups.items():
                if name == schema.fills.name:
                    conflicts += self._insert_fills(conn, rows)
                else:
                    _insert(conn, self._engine, schema.metadata.tables[name], rows)
            for stop in stops:
                conn.execute(
                    update(schema.sessions)
                    .where(schema.sessions.c.session_id == stop.session_id)
                    .values(stopped_ns=stop.ts_ns)
                )
        return conflicts

    def _insert_fills(self, conn: Connection, rows: list[dict[str, Any]]) -> int:
        """Insert fills, skipping keys already stored; returns how many skipped ones are *other* fills (logged).

        One key lookup per batch first (by the (venue, trade_id) index); only keys found there (rare: a
        journal catch-up, a conflict) are compared field by field with what the store holds.
        """
        t = schema.fills
        stored = self._stored_fills(conn, rows)
        conflicts = 0
        keep: list[dict[str, Any]] = []
        seen: dict[tuple[str, str], dict[str, Any]] = {}
        for row in rows:
            key = (row["venue"], row["trade_id"])
            other = stored.get(key) or seen.get(key)
            if other is None:
                seen[key] = row
                keep.append(row)
                continue
            if all(other[c] == row[c] for c in _FILL_CONTENT):
                continue  # the same fill again
            conflicts += 1
            self._log.error(
                "fill {} on {} NOT stored: the store holds another fill under that (venue, trade id) "
                "(session {}); ours: {}; stored: {}", row["trade_id"], row["venue"], other["session_id"],
                {c: row[c] for c in _FILL_CONTENT}, {c: other[c] for c in _FILL_CONTENT},
            )
        if keep:
            conn.execute(insert_ignoring_duplicates(self._engine, t), keep)
        return conflicts

    def _stored_fills(self, conn: Connection, rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
        """The stored fills sharing a (venue, trade id) with ``rows``: keys first, whole rows only for hits."""
        t = schema.fills
        found: list[tuple[str, str]] = []
        by_venue: dict[str, list[str]] = {}
        for row in rows:
            by_venue.setdefault(row["venue"], []).append(row["trade_id"])
        for venue, ids in by_venue.items():
            for start in range(0, len(ids), 1000):
                chunk = ids[start:start + 1000]
                found += [(venue, r[0]) for r in conn.execute(_keys_query(self._engine, venue, chunk))]
        stored: dict[tuple[str, str], dict[str, Any]] = {}
        for venue, trade_id in found:
            for r in conn.execute(select(t).where(t.c.venue == venue, t.c.trade_id == trade_id)):
                stored[(venue, trade_id)] = r._asdict()
        return stored


def _keys_query(engine: Engine, venue: str, ids: list[str]) -> Select[Any]:
    """The trade ids among ``ids`` stored for ``venue``.

    On PostgreSQL a join with ``unnest`` of one bound array: an ``IN``/``ANY`` list of a thousand ids
    got a generic plan (psycopg prepares repeated statements) that scanned the table comparing every
    row with every id, ~90 ms a batch at 20k fills and growing; the join is a hash join or index probes.
    """
    t = schema.fills
    if engine.dialect.name != "postgresql":
        return select(t.c.trade_id).where(t.c.venue == venue, t.c.trade_id.in_(ids))
    wanted = func.unnest(literal(ids, ARRAY(String))).table_valued("id").render_derived()
    return select(t.c.trade_id).join_from(t, wanted, and_(t.c.venue == venue, t.c.trade_id == wanted.c.id))


#: What makes two fills under one (venue, trade id) the same fill (not where or when we received it).
_FILL_CONTENT = (
    "client_id", "symbol", "side", "price", "qty", "fee", "fee_currency", "liquidity", "is_hedge", "ts_event",
)


def _insert(conn: Connection, engine: Engine, table: Table, rows: Iterable[dict[str, Any]]) -> None:
    if table is schema.sessions:  # numbered by the store in the same transaction: start order without the clock
        first = schema.next_session_seq(conn)
        numbered = [{**row, "seq": first + i} for i, row in enumerate(rows)]
        conn.execute(insert_ignoring_duplicates(engine, table), numbered)
    else:
        conn.execute(table.insert(), list(rows))


def _row_for(record: Record, seq: int, session_id: str) -> tuple[Table, dict[str, Any]]:
    """Map a record to its table and row; money stays Decimal (ExactDecimal stores it)."""
    if isinstance(record, OrderRecord):
        return schema.orders, {
            "session_id": session_id,
            "seq": seq,
            "client_id": record.client_id,
            "venue": record.venue,
            "symbol": record.symbol,
            "side": record.side,
            "price": record.price,
            "qty": record.qty,
            "filled_qty": record.filled_qty,
            "state": record.state,
            "venue_order_id": record.venue_order_id,
            "reason": record.reason,
            "ts_ns": record.ts_ns,
        }
    if isinstance(record, Fill):
        return schema.fills, {
            "session_id": session_id,
            "seq": seq,
            "venue": record.venue,
            "trade_id": record.trade_id,
            "client_id": record.client_id,
            "venue_order_id": record.venue_order_id,
            "symbol": record.symbol,
            "side": record.side.value,
            "price": record.price,
            "qty": record.qty,
            "fee": record.fee,
            "fee_currency": record.fee_currency,
            "liquidity": record.liquidity.value,
            "is_hedge": record.is_hedge,
            "ts_event": record.ts_event,
            "ts_recv": record.ts_recv,
        }
    if isinstance(record, QuarantinedFillRecord):
        bad = record.fill
        return schema.quarantined_fills, {
            "session_id": session_id, "seq": seq, "venue": bad.venue, "trade_id": bad.trade_id,
            "client_id": bad.client_id, "venue_order_id": bad.venue_order_id, "symbol": bad.symbol,
            "side": bad.side.value, "price": bad.price, "qty": bad.qty, "fee": bad.fee,
            "kind": record.kind, "reason": record.reason, "ts_event": bad.ts_event, "ts_recv": bad.ts_recv,
        }  # fmt: skip
    if isinstance(record, HedgeRecord):
        return schema.hedges, {"session_id": session_id, "seq": seq, **_fields(record)}
    if isinstance(record, PnLRecord):
        return schema.pnl_snapshots, {"session_id": session_id, "seq": seq, **_fields(record)}
    if isinstance(record, TopOfBookRecord):
        return schema.top_of_book, {"session_id": session_id, **_fields(record)}
    if isinstance(record, SessionStart):
        return schema.sessions, {
            "session_id": record.session_id,
            "instance": record.instance,
            "started_ns": record.ts_ns,
            "stopped_ns": None,
        }
    raise TypeError(f"cannot persist {type(record).__name__}")


def _fields(record: Any) -> dict[str, Any]:
    return {f.name: getattr(record, f.name) for f in attrs.fields(type(record))}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"
