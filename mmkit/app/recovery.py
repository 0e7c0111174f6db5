"""Restart recovery: rebuild what the engine holds from the journal and the store, check it against the venue.

Recovery changes nothing until it succeeds (issue 11, case 1): it first
*plans* (reads the journal, the store and the venue, and works out every
fill to book and every order state to record), then *decides*, and only when
the decision is to trade does it *write*. A refusal leaves the journal, the
store and the venue exactly as it found them, so every restart refuses again,
for the same reason, until an operator resolves it (``mmkit reconcile CONFIG
--accept-venue``, see :mod:`mmkit.app.reconcile`).

The ledger is the union of the write-ahead journal (mmkit.store.journal: every
fill the engine saw, durable before it acted) and the store (which may lag the
journal after a crash or a store outage); the store is caught up from the
journal once recovery succeeds.

Why before quoting: after a crash the only trustworthy records are the
store (what we saw) and the venue (what happened). The engine must not quote
on a position it guessed. So on start, before the first tick:

1. **Ledger**: every fill this instance ever stored is replayed into the
   InventoryManager and PnLTracker (exact Decimals; the position is the sum of
   the fills, no snapshot involved). Their (venue, trade id) keys are
   remembered by the UserStreamTracker, so a fill the venue sends again after
   the restart is dropped there and counted nowhere twice (Hummingbot #2945).
2. **Missed fills**: where ``rules.supports_fill_history``, the venue is asked
   for our fills since the newest stored one (inclusive: the same
   nanosecond may hold more than one). Those not in the ledger went unrecorded
   (they happened while we were down, or were still queued when the process
   died); they go through the UserStreamTracker like live fills, so they are
   recorded, booked and seen by the controller exactly once.
3. **Orders**: the orders whose last recorded state was not terminal are
   compared with the venue's open orders. Ones it still lists are adopted by
   the normal open-order reconciliation that follows (``Engine.sync_state``).
   Each one it no longer lists is asked about (``fetch_order_status``): its
   final state is recorded; a definitive :class:`OrderNotFoundError` closes it;
   a :class:`TransientVenueError` means we could not ask, and recovery fails.
4. Where the venue has no fill history, a venue-reported filled quantity
   larger than the ledger's for that order means fills are missing that can
   never be fetched: recovery fails rather than trade on a wrong position.

Any failure raises :class:`~mmkit.app.engine.EngineStartError` with the reason,
so the engine refuses to quote. Nothing here is specific to a venue: the same
steps run against the simulated venues and the TrueX FIX connector.

:class:`InstanceLedger` is the instance-scoped read side used here and by
``mmkit status`` / ``mmkit history``: one PostgreSQL store may hold several
instances, told apart by their sessions.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

import attrs
from loguru import logger
from sqlalchemy import Engine as SqlEngine
from sqlalchemy import Row, Select, select

from mmkit.app.engine import Engine, EngineStartError
from mmkit.connector import OrderNotFoundError, TransientVenueError
from mmkit.model import ZERO, Fill, OrderStatusReport, VenueOrderStatus
from mmkit.store import schema
from mmkit.store.db import create_store_engine
from mmkit.store.journal import VOID_PREFIX, JournalContents
from mmkit.store.queries import fill_from_row
from mmkit.store.records import OrderRecord

#: The state recorded for an order the venue definitively does not know any more.
NOT_FOUND_STATE = "CANCELED"
_PNL_FIELDS = ("venue", "symbol", "position", "realized", "unrealized", "fees", "mark", "avg_price", "ts_ns")


@attrs.frozen(slots=True)
class StoredFill:
    """A stored fill with the session that recorded it (history groups by session)."""

    session_id: str
    fill: Fill


class InstanceLedger:
    """Reads one instance's records from a store (sessions, fills, orders, PnL marks)."""

    def __init__(self, url_or_engine: str | SqlEngine, instance: str) -> None:
        self._owns = isinstance(url_or_engine, str)
        self.engine = create_store_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
        self.instance = instance
        self._seq: bool | None = None

    def close(self) -> None:
        if self._owns:
            self.engine.dispose()

    def session_ids(self, exclude: str | None = None) -> list[str]:
        """This instance's sessions in start order (the store's sequence, not the wall clock)."""
        return [sid for sid, _, _ in self.sessions() if sid != exclude]

    def sessions(self) -> list[tuple[str, int, int | None]]:
        """(session id, started ns, stopped ns or None) in start order.

        Start order is the store's sequence (``sessions.seq``, schema v3): a wall clock set back between
        two sessions made the session running now look older than the one before it. A store not yet
        migrated to v3 (read by ``mmkit status`` before the next start) has only the start times.
        """
        t = schema.sessions
        query = select(t.c.session_id, t.c.started_ns, t.c.stopped_ns).where(t.c.instance == self.instance)
        query = query.order_by(t.c.seq, t.c.started_ns) if self._has_seq() else query.order_by(t.c.started_ns)
        return [
            (r.session_id, int(r.started_ns), None if r.stopped_ns is None else int(r.stopped_ns))
            for r in self._rows(query)
        ]

    def _has_seq(self) -> bool:
        if self._seq is None:
            with self.engine.connect() as conn:
                self._seq = schema.has_column(conn, schema.sessions.name, "seq")
        return self._seq

    def fills(self, venue: str | None = None) -> list[StoredFill]:
        """Every fill this instance stored, in venue-time order (ties by insertion)."""
        t, s = schema.fills, schema.sessions
        query = (
            select(t)
            .join(s, s.c.session_id == t.c.session_id)
            .where(s.c.instance == self.instance)
            .order_by(t.c.ts_event, t.c.id)
        )
        if venue is not None:
            query = query.where(t.c.venue == venue)
        return [StoredFill(r.session_id, fill_from_row(r)) for r in self._rows(query)]

    def latest_orders(self, venue: str | None = None) -> list[OrderRecord]:
        """The last recorded state of each order of this instance, oldest first."""
        t, s = schema.orders, schema.sessions
        query = (
            select(t)
            .join(s, s.c.session_id == t.c.session_id)
            .where(s.c.instance == self.instance)
            .order_by(t.c.id)
        )
        if venue is not None:
            query = query.where(t.c.venue == venue)
        latest: dict[tuple[str, str], OrderRecord] = {}
        for r in self._rows(query):
            key = (r.venue, r.client_id)
            latest.pop(key, None)  # re-insert: order by last change
            latest[key] = OrderRecord(
                r.client_id, r.venue, r.symbol, r.side, r.price, r.qty, r.filled_qty, r.state,
                r.venue_order_id, int(r.ts_ns), r.reason,
            )
        return list(latest.values())

    def open_orders(self, venue: str | None = None) -> list[OrderRecord]:
        """Orders whose last recorded state is not terminal (unknown states count as open)."""
        return [o for o in self.latest_orders(venue) if o.is_open]

    def marks(self) -> list[tuple[int, Decimal]]:
        """(ts, mark) of this instance's portfolio PnL snapshots, in time order (spread capture)."""
        t, s = schema.pnl_snapshots, schema.sessions
        query = (
            select(t.c.ts_ns, t.c.mark)
            .join(s, s.c.session_id == t.c.session_id)
            .where(s.c.instance == self.instance, t.c.venue == "*", t.c.mark.is_not(None))
            .order_by(t.c.ts_ns)
        )
        return [(int(r.ts_ns), r.mark) for r in self._rows(query)]

    def latest_pnl_rows(self) -> list[dict[str, Any]]:
        """The newest PnL snapshot of each (venue, symbol) of this instance."""
        t, s = schema.pnl_snapshots, schema.sessions
        query = select(t).join(s, s.c.session_id == t.c.session_id).where(s.c.instance == self.instance)
        latest: dict[tuple[str, str], Row[Any]] = {}
        for r in self._rows(query.order_by(t.c.id)):
            latest[(r.venue, r.symbol)] = r
        return [
            {k: getattr(r, k) for k in _PNL_FIELDS}
            for r in latest.values()
        ]

    def _rows(self, query: Select[Any]) -> list[Row[Any]]:
        with self.engine.connect() as conn:
            return list(conn.execute(query))


# ---------------------------------------------------------------------------------------------
# Recovery: plan, decide, then write
# ---------------------------------------------------------------------------------------------


@attrs.frozen(slots=True)
class RecoveryResult:
    """What recovery restored and what it learned from the venue."""

    restored_fills: int
    missed_fills: int
    position: Decimal
    #: Orders recorded open that the venue still lists (adopted by the reconciliation that follows).
    still_open: tuple[str, ...]
    #: Orders recorded open that the venue reported finished (or did not know): now recorded closed.
    closed: tuple[str, ...]
    #: Fills and order states the journal held that the store did not (the store caught up with them).
    caught_up_fills: int = 0
    caught_up_orders: int = 0


@attrs.frozen(slots=True)
class Shortfall:
    """The venue reports more filled on an order than the ledger holds: fills we can never fetch."""

    report: OrderStatusReport
    ledger_filled: Decimal
    #: The order as last recorded, when we have it (its limit price prices a synthetic fill without AvgPx).
    order: OrderRecord | None

    @property
    def missing(self) -> Decimal:
        return self.report.filled_qty - self.ledger_filled

    def describe(self) -> str:
        r = self.report
        return f"{r.client_id} (venue filled {r.filled_qty}, ledger {self.ledger_filled})"


@attrs.frozen(slots=True)
class Excess:
    """The ledger holds more filled on an order than the venue reports: fills the venue did not make.

    Compared per ClOrdID: a venue's filled quantity for an order is its own (per ClOrdID) or the whole
    order's up to it (FIX CumQty across replaces), never less than what the ledger booked under that
    ClOrdID, unless the ledger booked something the venue did not do (an execution re-sent under a new
    id, or another account's fills under the same venue name).
    """

    report: OrderStatusReport
    ledger_filled: Decimal

    @property
    def extra(self) -> Decimal:
        return self.ledger_filled - self.report.filled_qty

    def describe(self) -> str:
        r = self.report
        return f"{r.client_id} (ledger {self.ledger_filled}, venue {r.filled_qty})"


@attrs.frozen(slots=True)
class RecoveryPlan:
    """Everything recovery would do, computed without writing anything."""

    #: The ledger: journal ∪ store, each (venue, trade id) once, in venue-time order.
    fills: tuple[Fill, ...]
    #: Fills the venue's fill history holds that the ledger does not (to book).
    missed: tuple[Fill, ...]
    #: Final states to record for orders recorded open that the venue says are finished.
    closures: tuple[OrderRecord, ...]
    still_open: tuple[str, ...]
    #: What the venue reports that the ledger lacks (only where the venue has no fill history).
    shortfalls: tuple[Shortfall, ...]
    #: Orders recorded open we could not ask the venue about.
    failures: tuple[str, ...]
    #: The journal's records the store lacks.
    catch_up_fills: tuple[Fill, ...]
    catch_up_orders: tuple[OrderRecord, ...]
    #: The venue's own view of every order it told us about (open listing and status answers).
    reports: tuple[OrderStatusReport, ...]
    #: Ledger fills of an instrument this engine does not trade (see :func:`foreign_fills`).
    foreign: tuple[Fill, ...] = ()
    #: What the refusal for ``foreign`` names: (instance, this engine's symbol).
    trades: tuple[str, str] = ("", "")
    #: Orders on which the ledger holds more filled than the venue reports.
    excess: tuple[Excess, ...] = ()

    def refusal(self, venue: str) -> str | None:
        """Why the engine must not trade on this ledger, or None."""
        if self.foreign:
            instance, symbol = self.trades
            kinds = sorted({f"{f.symbol} on {f.venue}" for f in self.foreign})
            ids = ", ".join(f.trade_id for f in self.foreign[:5]) + (", ..." if len(self.foreign) > 5 else "")
            return (
                f"the ledger of instance {instance} holds {len(self.foreign)} fill(s) of another instrument "
                f"({'; '.join(kinds)}: {ids}); this engine trades {symbol} on {venue}: their position and PnL "
                f"would be booked as {symbol}'s. Give each instrument its own engine.instance"
            )
        if self.failures:
            return (
                f"could not ask {venue} about {len(self.failures)} order(s) recorded open: "
                + "; ".join(self.failures)
            )
        if self.excess:
            return (
                f"the ledger holds more filled than {venue} reports on "
                + ", ".join(e.describe() for e in self.excess)
                + ": fills booked that the venue did not make (an execution re-sent under a new id, or "
                "another account's ledger); nothing was changed; see `mmkit reconcile CONFIG`"
            )
        if self.shortfalls:
            return (
                f"{venue} has no fill history and reports fills the store does not hold: "
                + ", ".join(s.describe() for s in self.shortfalls)
                + " (nothing was changed; resolve with `mmkit reconcile CONFIG`)"
            )
        return None


#: Records a final order state on behalf of recovery: (record, ts_ns).
OrderSink = Callable[[OrderRecord], None]
#: Hands the store a record the journal holds and it lacks (catch-up; not journaled again).
StoreSink = Callable[[Fill | OrderRecord], None]


def remember_fill_keys(engine: Engine, keys: Iterable[tuple[str, str]]) -> None:
    """Make the engine's UserStreamTracker treat these fills as already seen.

    InventoryManager and PnLTracker dedupe on their own, which replaying the
    ledger already primes.
    """
    engine.stream.remember_fills(keys)


def restore_ledger(engine: Engine, fills: Iterable[Fill]) -> int:
    """Replay stored fills into inventory and PnL (not the controller: it already lived through them)."""
    count = 0
    for fill in fills:
        engine.fills.append(fill)
        engine.inventory.on_fill(fill)
        engine.pnl.on_fill(fill, None)
        count += 1
    return count


def merge_orders(stored: Iterable[OrderRecord], journaled: Iterable[OrderRecord]) -> list[OrderRecord]:
    """Last known state of each order: the journal's (written first, synchronously) wins over the store's."""
    latest: dict[tuple[str, str], OrderRecord] = {}
    for record in [*stored, *journaled]:
        key = (record.venue, record.client_id)
        latest.pop(key, None)
        latest[key] = record
    return list(latest.values())


def foreign_fills(fills: Iterable[Fill], engine: Engine) -> list[Fill]:
    """Ledger fills this engine must not book: another base asset (the inventory would skip them, the PnL
    tracker would not), or a quote fill on this venue in another symbol (another quote currency in the
    same PnL book). Hedge fills and quote fills on other venues in the same base are the instance's own
    (the position is the base asset's, across venues)."""
    base = engine.inventory.symbol_base
    venue, symbol = engine.venue.venue, engine.symbol
    return [
        f for f in fills
        if not f.symbol.upper().startswith(base) or (not f.is_hedge and f.venue == venue and f.symbol != symbol)
    ]


def _signature(o: OrderRecord) -> tuple[str, Decimal, str]:
    return (o.state, o.filled_qty, o.venue_order_id)


async def plan_recovery(
    engine: Engine,
    ledger: InstanceLedger,
    journal: JournalContents | None,
    *,
    session_id: str,
) -> RecoveryPlan:
    """Read the journal, the store and the venue; work out what recovery would do. Writes nothing.

    Raises EngineStartError when the store or the venue cannot be read at all.
    """
    venue = engine.venue
    name = venue.venue
    journal = journal or JournalContents((), (), (), {}, 0, False, None)
    try:
        stored = await asyncio.to_thread(ledger.fills)
        stored_orders = await asyncio.to_thread(ledger.latest_orders)
        previous_sessions = await asyncio.to_thread(ledger.sessions)
    except Exception as exc:
        raise EngineStartError(f"cannot read the store for recovery: {exc}") from exc

    if journal.checkpoint is not None:
        count, position = journal.checkpoint
        held = sum((s.fill.qty * s.fill.side.sign for s in stored), ZERO)
        if len(stored) < count or held != position:
            raise EngineStartError(
                f"the store holds {len(stored)} fills (position {held}) but held {count} (position {position}) "
                f"when the journal was last checkpointed: the store lost records; restore it from a backup"
            )
    stored_keys = {s.fill.key for s in stored}
    by_key: dict[tuple[str, str], Fill] = {s.fill.key: s.fill for s in stored}
    catch_up_fills = [f for f in journal.fills if f.key not in stored_keys]
    for fill in catch_up_fills:
        by_key[fill.key] = fill
    fills = sorted(by_key.values(), key=lambda f: f.ts_event)
    known = set(by_key)

    stored_latest = {(o.venue, o.client_id): o for o in stored_orders}
    catch_up_orders = [
        o for o in journal.orders
        if (prev := stored_latest.get((o.venue, o.client_id))) is None or _signature(prev) != _signature(o)
    ]
    orders = merge_orders(stored_orders, journal.orders)
    recorded_open = [o for o in orders if o.venue == name and o.is_open]

    # Missed fills: since the newest ledger fill of this venue, else since this instance first ran.
    missed: list[Fill] = []
    if venue.rules.supports_fill_history:
        venue_ts = [f.ts_event for f in fills if f.venue == name]
        earlier = [started for sid, started, _ in previous_sessions if sid != session_id]
        since = max(venue_ts) if venue_ts else (min(earlier) if earlier else None)
        if since is not None:
            try:
                venue_fills = await venue.fetch_fills(engine.symbol, since)
            except TransientVenueError as exc:
                raise EngineStartError(f"cannot fetch fills since {since} from {name}: {exc}") from exc
            for fill in sorted(venue_fills, key=lambda f: f.ts_event):
                if fill.key not in known:
                    known.add(fill.key)
                    missed.append(fill)

    try:
        listed = {r.client_id: r for r in await venue.fetch_open_orders(engine.symbol)}
    except TransientVenueError as exc:
        raise EngineStartError(f"cannot list open orders on {name}: {exc}") from exc

    # A venue's filled quantity is the whole order's: one venue order id across replaces (FIX CumQty),
    # while the ledger books each fill under the ClOrdID live at the time. So the ledger is compared
    # with the venue per venue order id; per ClOrdID only when the venue gave none.
    filled_by_order: dict[str, Decimal] = defaultdict(lambda: ZERO)
    filled_by_venue_order: dict[str, Decimal] = defaultdict(lambda: ZERO)
    chained: dict[str, set[str]] = defaultdict(set)  # venue order id -> ClOrdIDs that have fills on it
    for fill in [*fills, *missed]:
        if fill.venue == name:
            # A void (`mmkit reconcile --void-excess`) takes back what the venue never filled on the order.
            qty = -fill.qty if fill.trade_id.startswith(VOID_PREFIX) else fill.qty
            filled_by_order[fill.client_id] += qty
            if fill.venue_order_id:
                filled_by_venue_order[fill.venue_order_id] += qty
                chained[fill.venue_order_id].add(fill.client_id)

    def ledger_filled(report: OrderStatusReport) -> Decimal:
        if report.venue_order_id and report.venue_order_id in filled_by_venue_order:
            return filled_by_venue_order[report.venue_order_id]
        return filled_by_order[report.client_id]

    def own_filled(report: OrderStatusReport) -> Decimal:
        """This ClOrdID's filled quantity: the venue's, unless it spans earlier ClOrdIDs of the order."""
        if chained.get(report.venue_order_id, set()) - {report.client_id}:
            return filled_by_order[report.client_id]
        return report.filled_qty

    now = engine.clock.now_ns
    still_open: list[str] = []
    closures: list[OrderRecord] = []
    failures: list[str] = []
    reports: list[OrderStatusReport] = list(listed.values())
    for order in recorded_open:
        if order.client_id in listed:
            still_open.append(order.client_id)
            continue
        if order.symbol != engine.symbol:
            continue  # another instrument's orders are for the engine that trades it
        try:
            report = await venue.fetch_order_status(order.client_id, order.symbol)
        except OrderNotFoundError:
            closures.append(attrs.evolve(
                order, state=NOT_FOUND_STATE, ts_ns=now,
                reason=f"restart: venue has no such order (was {order.state})",
            ))
            continue
        except TransientVenueError as exc:
            failures.append(f"{order.client_id}: {exc}")
            continue
        reports.append(report)
        if report.status.is_open:
            # Listed a moment ago as not open, now open: the reconciliation that follows will adopt
            # it if it is still open then. Nothing to record yet.
            still_open.append(order.client_id)
            continue
        closures.append(attrs.evolve(
            order,
            state=_state_of(report.status),
            filled_qty=own_filled(report),
            venue_order_id=report.venue_order_id or order.venue_order_id,
            ts_ns=now,
            reason=f"restart: venue reports {report.status.value}",
        ))
    shortfalls: list[Shortfall] = []
    if not venue.rules.supports_fill_history:
        by_cid = {o.client_id: o for o in orders if o.venue == name}
        shortfalls = [
            Shortfall(r, ledger_filled(r), by_cid.get(r.client_id))
            for r in reports
            if r.filled_qty > ledger_filled(r)
        ]
    excess = [
        Excess(r, filled_by_order[r.client_id]) for r in reports
        if r.venue == name and filled_by_order[r.client_id] > r.filled_qty
    ]
    return RecoveryPlan(
        tuple(fills), tuple(missed), tuple(closures), tuple(still_open), tuple(shortfalls), tuple(failures),
        tuple(catch_up_fills), tuple(catch_up_orders), tuple(reports),
        tuple(foreign_fills(fills, engine)), (ledger.instance, engine.symbol), tuple(excess),
    )


async def recover(
    engine: Engine,
    ledger: InstanceLedger,
    *,
    record_order: OrderSink,
    session_id: str,
    journal: JournalContents | None = None,
    to_store: StoreSink | None = None,
) -> RecoveryResult:
    """Restore the ledger (journal, then store) and reconcile it with the venue; write only on success.

    Raises EngineStartError (with the reason) when the engine must not quote;
    then nothing has been written anywhere. On success: the store catches up
    with the journal (``to_store``), missed fills go through the
    UserStreamTracker (booked, journaled, recorded once), and ``record_order``
    receives the final state of each order that was recorded open and turned
    out to be finished.
    """
    name = engine.venue.venue
    log = logger.bind(venue=name, instance=ledger.instance)
    plan = await plan_recovery(engine, ledger, journal, session_id=session_id)
    reason = plan.refusal(name)
    if reason is not None:
        raise EngineStartError(reason)

    # Decided: write.
    if to_store is not None:
        for fill in plan.catch_up_fills:
            to_store(fill)
        for order in plan.catch_up_orders:
            to_store(order)
    if plan.catch_up_fills or plan.catch_up_orders:
        log.warning(
            "store caught up from the journal: {} fills, {} order states it did not hold",
            len(plan.catch_up_fills), len(plan.catch_up_orders),
        )
    restored = restore_ledger(engine, plan.fills)
    engine.stream.remember_fills(plan.fills)  # with their content: a reused exec id is a conflict (issue 11)
    log.info("ledger restored: {} fills, position {}", restored, engine.inventory.position)
    for fill in plan.missed:
        log.warning("fill {} not in the store: booking it now", fill.trade_id)
        engine.stream.push(fill)
    for record in plan.closures:
        record_order(record)
    result = RecoveryResult(
        restored, len(plan.missed), engine.inventory.position, plan.still_open,
        tuple(o.client_id for o in plan.closures), len(plan.catch_up_fills), len(plan.catch_up_orders),
    )
    log.info(
        "recovery: {} stored fills, {} missed fills booked, position {}; {} recorded-open orders still open, "
        "{} closed",
        restored, len(plan.missed), result.position, len(plan.still_open), len(plan.closures),
    )
    return result


def _state_of(status: VenueOrderStatus) -> str:
    """Our order-state name for a finished venue status (EXPIRED is a venue-side cancel)."""
    return "CANCELED" if status is VenueOrderStatus.EXPIRED else status.value
