"""The Persistence iterator: records what the engine does, publishes what it holds, keeps the journal.

Why a post-iterator plus listeners: order state changes come from two places.
Venue events (acks, fills, cancels) reach the UserStreamTracker's listeners,
after the ClientOrderTracker has applied them; our own actions (submit,
cancel, replace) change states inside the strategy step. So the listeners
record what each event changed, and the post-iterator, which runs after the
strategy every tick, sweeps the open orders for the rest. An order is
recorded whenever its (state, filled quantity, venue order id) differs from
what was last recorded for it, so a change is written once however it was
seen.

The write-ahead journal (mmkit.store.journal) comes first: every fill and
every order state change is appended to it on the engine thread (one
``os.write``, so a SIGKILL cannot lose it) before the store's recorder gets
it, and :meth:`Persistence.gate`, which the strategy step calls before the
controller and the executor act, fsyncs it once per tick. Nothing else does
I/O on the tick: the Recorder and RedisState only enqueue (their threads
write), and audit lines go to a small writer thread of their own.

Store failure policy: a journal that cannot be written or synced halts
quoting at once and for good (the ledger can no longer be made durable); a
store outage longer than ``outage_grace_s`` halts quoting until the store has
caught up again (the journal holds everything meanwhile). Either way the run
records ``NOT_PERSISTED`` when something was not persisted at stop (exit 6),
and a store or journal that cannot be written at start refuses the start.

On start (an ``Engine.start_hooks`` step, before quoting) the recorder
migrates the store, Redis is started, and :func:`mmkit.app.recovery.recover`
restores the ledger and reconciles with the venue. On stop
(``Engine.closers``) the last order states and a final PnL snapshot are
recorded and everything queued is written (``Recorder.close``).

This module holds the Persistence class (its listeners, its write-ahead gate,
its store failure policy); mmkit.app.persistence builds one and wires it into
an engine (attach_persistence), mmkit.app.write_ahead wraps the send path and
mmkit.app.audit_writer hands audit lines to a thread.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs
from loguru import logger

from mmkit.app.audit_writer import AuditWriter
from mmkit.app.engine import Engine, EngineStartError
from mmkit.app.outcome import ProblemKind
from mmkit.app.rate_window import RateWindowJournal
from mmkit.app.recovery import InstanceLedger, RecoveryResult, recover
from mmkit.app.start_checks import check_store, claim_instance
from mmkit.app.venue_account import account_refusal
from mmkit.clock import Clock
from mmkit.model import NS_PER_MS, NS_PER_S, ZERO, Fill, VenueEvent
from mmkit.orders.client_order import ClientOrder
from mmkit.risk.kill_switch import KillSwitchEvent
from mmkit.store.accounts import record_accounts
from mmkit.store.audit import AuditTrail
from mmkit.store.file_watch import StoreFileWatch
from mmkit.store.instance_lock import StoreInstanceLock
from mmkit.store.journal import Journal, JournalContents, JournalCorrupt, read_journal
from mmkit.store.recorder import Recorder
from mmkit.store.records import OrderRecord, PnLRecord

if TYPE_CHECKING:
    from mmkit.store.redis_state import RedisState

#: Portfolio-total PnL rows use this venue and symbol (the store's convention).
TOTAL = "*"

_Signature = tuple[str, Decimal, str]


@attrs.frozen(slots=True)
class PersistenceStats:
    """Health of every sink, for the status block and monitoring."""

    orders_recorded: int
    fills_recorded: int
    recorder: dict[str, Any]
    redis: dict[str, Any] | None
    audit_errors: int



class Persistence:
    """Records what the engine does and publishes what it holds. A TimeIterator (post-strategy)."""

    def __init__(
        self,
        engine: Engine,
        recorder: Recorder,
        audit: AuditTrail,
        redis_state: RedisState | None,
        instance: str,
        *,
        pnl_interval_ns: int = NS_PER_S,
        hot_interval_ns: int = 200 * NS_PER_MS,
        heartbeat_interval_ns: int = NS_PER_S,
        sample_top_of_book: bool = False,
        recover_on_start: bool = True,
        journal: Journal | None = None,
        outage_grace_s: float = 5.0,
        instance_lock: StoreInstanceLock | None = None,
        accounts: dict[str, str] | None = None,
    ) -> None:
        self.engine = engine
        self.recorder = recorder
        self.journal = journal
        #: One process per instance on a shared PostgreSQL store (mmkit.store.instance_lock), held until close.
        self.instance_lock = instance_lock
        #: Venue -> account fingerprint (mmkit.app.venue_account): checked against the store and the journal.
        self.accounts = dict(accounts or {})
        #: A running engine checkpoints its journal past this size, once the store has caught up.
        self.journal_checkpoint_bytes = 32 * 1024 * 1024
        self.outage_grace_ns = int(outage_grace_s * NS_PER_S)
        #: Why quoting is halted by persistence (None: it is not); read by :meth:`gate` every tick.
        self.halt_reason: str | None = None
        self._halt_permanent = False
        self._outage_since: int | None = None
        self.rate_window = RateWindowJournal(engine)
        self._store_file: StoreFileWatch | None = None
        #: The store holds (or has been handed) everything the journal held at start: only then may a clean
        #: stop checkpoint the journal. Never after a refused recovery: the journal is the only copy.
        self._caught_up = False
        #: The start was refused because the store cannot be written: closing must not wait for it.
        self._unwritable = False
        self.audit = AuditWriter(audit)
        self.redis = redis_state
        self.instance = instance
        self.session_id = recorder.session_id
        self.pnl_interval_ns = pnl_interval_ns
        self.hot_interval_ns = hot_interval_ns
        self.heartbeat_interval_ns = heartbeat_interval_ns
        self.sample_top_of_book = sample_top_of_book
        self.recover_on_start = recover_on_start
        self.recovery: RecoveryResult | None = None
        self._last: OrderedDict[str, _Signature] = OrderedDict()
        self._last_memory = 100_000
        self._next_pnl = 0
        self._next_hot = 0
        self._next_heartbeat = 0
        #: The gate holds last published to Redis (``GateHold.as_dict`` each, gate order), []: none holds.
        self._gates_published: list[dict[str, object]] = []
        self._last_fair: tuple[Decimal | None, float] | None = None
        self._orders_recorded = 0
        self._fills_recorded = 0
        self._started = False
        self._closed = False
        self._log = logger.bind(instance=instance, session=self.session_id, component="persistence")

    # ------------------------------------------------------------------ start (before quoting)

    def claim(self) -> None:
        """Take the instance on its store and its journal for this process (held until :meth:`close`).

        EngineStartError (exit 3) if another process holds either. ``mmkit start`` calls it before the venue
        connects (a second session must not even log on); :meth:`open` calls it again (a no-op if held).
        """
        claim_instance(self.instance_lock, self.journal, self.instance)

    async def open(self) -> None:
        """Claim the instance, open the journal, start the recorder and prove both writable, then recover.

        EngineStartError (exit 3) if the journal or the store cannot be written:
        a run must not start on a ledger it cannot keep.
        """
        contents: JournalContents | None = None
        await asyncio.to_thread(self.claim)
        if self.journal is not None:
            try:
                contents = await asyncio.to_thread(read_journal, self.journal.path, self.journal.instance)
                refusal = account_refusal(self.accounts, contents.accounts, f"the journal {self.journal.path}")
                if refusal is not None:  # before open(): a refused start must not stamp its account into it
                    raise EngineStartError(refusal)
                await asyncio.to_thread(self.journal.open)
            except JournalCorrupt as exc:
                raise EngineStartError(str(exc)) from exc
            except OSError as exc:
                raise EngineStartError(f"journal {self.journal.path} cannot be written: {exc}") from exc
        try:
            await asyncio.to_thread(self.recorder.start)
        except Exception as exc:
            raise EngineStartError(f"store unavailable, refusing to trade without a ledger: {exc}") from exc
        self._started = True
        # A write probe: migrating an existing database writes nothing, so a read-only or locked store
        # would otherwise only show at the first fill. The session's start row must reach it.
        grace_s = max(self.outage_grace_ns / NS_PER_S, 1.0)
        if not await asyncio.to_thread(self.recorder.flush, grace_s) or self.recorder.stats().db_errors:
            self._unwritable = True
            raise EngineStartError(
                f"store cannot be written (nothing reached it within {grace_s:.0f} s); refusing to trade"
            )
        self._store_file = StoreFileWatch(self.recorder.engine.url)
        clock = await asyncio.to_thread(check_store, self.recorder, self.instance, self.session_id, self.accounts)
        if clock is not None:
            self.audit.put("risk", {"event": "clock_backwards", "reason": clock}, self.engine.clock.now_ns)
        if self.redis is not None:
            self.redis.start()
            self.redis.replace_open_orders(())  # what a previous run left is stale; the sweep re-publishes
            self._publish_kill_switch(False, "", self.engine.clock.now_ns)
        if self.recover_on_start:
            ledger = InstanceLedger(self.recorder.engine, self.instance)
            self.recovery = await recover(
                self.engine, ledger, record_order=self._record_recovered, session_id=self.session_id,
                journal=contents, to_store=self._to_store,
            )
            self.audit.put("risk", {"event": "recovery", **attrs.asdict(self.recovery)}, self.engine.clock.now_ns)
            self._caught_up = True
        elif contents is not None and (contents.fills or contents.orders):
            await self._catch_up_without_recovery(contents)
        else:
            self._caught_up = True
        # Recorded once recovery accepted the ledger (a refused start writes nothing); kept if recorded.
        await asyncio.to_thread(record_accounts, self.recorder.engine, self.instance, self.accounts, self.session_id)
        self.rate_window.seed(contents.actions if contents is not None else ())

    async def _catch_up_without_recovery(self, contents: JournalContents) -> None:
        """No recovery (a venue simulated in this process): still hand the store what only the journal holds
        (a run that died), so the journal can be checkpointed again."""
        ledger = InstanceLedger(self.recorder.engine, self.instance)
        try:
            stored = {s.fill.key for s in await asyncio.to_thread(ledger.fills)}
            latest = {(o.venue, o.client_id): o for o in await asyncio.to_thread(ledger.latest_orders)}
        except Exception as exc:
            self._log.warning("journal not caught up into the store (kept as it is): {}", exc)
            return
        for fill in contents.fills:
            if fill.key not in stored:
                self._to_store(fill)
        for order in contents.orders:
            if latest.get((order.venue, order.client_id)) != order:
                self._to_store(order)
        self._caught_up = True

    def _to_store(self, record: Fill | OrderRecord) -> None:
        """Store catch-up from the journal: the record is journaled already, only the store lacks it."""
        if isinstance(record, Fill):
            self.recorder.record_fill(record)
        else:
            self.recorder.record_order(
                record.client_id, record.venue, record.symbol, record.side, price=record.price, qty=record.qty,
                filled_qty=record.filled_qty, state=record.state, venue_order_id=record.venue_order_id,
                ts_ns=record.ts_ns, reason=record.reason,
            )

    def _record_recovered(self, record: OrderRecord) -> None:
        self._enqueue_order(record)

    # ------------------------------------------------------------------ TimeIterator

    def start(self, clock: Clock, ts_ns: int) -> None:
        self._next_pnl = ts_ns
        self._next_hot = ts_ns
        self._next_heartbeat = ts_ns

    def tick(self, ts_ns: int) -> None:
        self.sweep(ts_ns)
        self.rate_window.journal_new(self.journal)
        self._check_store(ts_ns)
        journal = self.journal
        if journal is not None and journal.bytes_since_checkpoint > self.journal_checkpoint_bytes:
            self._checkpoint_running()
        if ts_ns >= self._next_pnl:
            self._next_pnl = ts_ns + self.pnl_interval_ns
            self.snapshot_pnl(ts_ns)
        if self.redis is not None:
            if ts_ns >= self._next_hot:
                self._next_hot = ts_ns + self.hot_interval_ns
                self._publish_hot(ts_ns)
            if ts_ns >= self._next_heartbeat:
                self._next_heartbeat = ts_ns + self.heartbeat_interval_ns
                self.redis.heartbeat()
        if self.sample_top_of_book:
            self._sample_book(ts_ns)

    def stop(self, clock: Clock) -> None:
        self.sweep(clock.now_ns)
        self.rate_window.journal_new(self.journal)

    # ------------------------------------------------------------------ the write-ahead gate

    def gate(self, ts_ns: int) -> str | None:
        """Before the controller and the executor act: make the journal durable; a reason halts quoting.

        Called by the StrategyRunner every tick (``StrategyRunner.gates``), so
        everything the venue told us this tick (fills, order states, applied in
        the router step) is fsynced before anything that depends on it is sent.
        """
        journal = self.journal
        if journal is not None and not journal.sync():
            self._halt(f"journal: {journal.error}", ts_ns, permanent=True)
        return self.halt_reason

    def _halt(self, reason: str, ts_ns: int, *, permanent: bool = False,
              kind: ProblemKind = ProblemKind.NOT_PERSISTED) -> None:
        """Halt quoting. Permanent (journal, audit): records were lost, the run ends NOT_PERSISTED (exit 6)."""
        if self._halt_permanent or self.halt_reason == reason:
            return
        self.halt_reason = reason
        self._halt_permanent = permanent
        self._log.error("quoting halted: {}", reason)
        self.audit.put("risk", {"event": "persistence_halt", "reason": reason}, ts_ns)
        if permanent:
            self.engine.outcome.record(kind, reason, ts_ns)

    def _check_store(self, ts_ns: int) -> None:
        """Store failure policy: an outage past the grace halts quoting until the store caught up."""
        lost = None if self.instance_lock is None else self.instance_lock.problem
        if lost is not None:  # another process took the instance: the ledger is not this run's alone
            self._halt(lost, ts_ns, permanent=True, kind=ProblemKind.LEDGER_HALT)
        stats = self.recorder.stats()
        if self.audit.trail.errors:  # the desk's record of the run is incomplete: as bad as a lost fill
            self._halt(f"audit trail {self.audit.trail.path} cannot be written", ts_ns, permanent=True)
            return
        problem = self._store_file_problem()
        if stats.in_outage or problem:
            if self._outage_since is None:
                self._outage_since = ts_ns
            if problem or ts_ns - self._outage_since >= self.outage_grace_ns:
                self._halt(problem or f"store unreachable for more than {self.outage_grace_ns / NS_PER_S:g} s "
                           f"({stats.backlog} records queued; the journal holds them)", ts_ns)
            return
        self._outage_since = None
        if self.halt_reason is not None and not self._halt_permanent and stats.backlog == 0:
            self._log.warning("store reachable and caught up again: quoting resumes")
            self.audit.put("risk", {"event": "persistence_resume", "reason": self.halt_reason}, ts_ns)
            self.halt_reason = None

    def _store_file_problem(self) -> str | None:
        return None if self._store_file is None else self._store_file.problem()

    def _checkpoint_running(self) -> None:
        """Truncate a long-running engine's journal once the store holds everything it holds.

        Every journal append happens on this thread and is handed to the
        recorder in the same call, so a backlog of 0 seen here means the store
        has every record the journal has.
        """
        journal = self.journal
        stats = self.recorder.stats()
        if journal is None or not journal.healthy or not self._caught_up or self.halt_reason is not None:
            return
        if stats.backlog or stats.in_outage or stats.rejected or stats.conflicts:
            return
        if self._store_file_problem() is not None:
            return
        carry = self.rate_window.carry()
        fills = self.engine.fills
        position = sum((f.qty * f.side.sign for f in fills), ZERO)
        journal.sync()
        if self.recover_on_start:
            ok = journal.checkpoint(carry, len(fills), position, reopen=True)
        else:
            ok = journal.checkpoint(carry, reopen=True)
        if ok:
            self._log.info("journal checkpointed while running: the store holds all {} fills", len(fills))

    # ------------------------------------------------------------------ listeners (engine loop)

    def on_order_event(self, event: VenueEvent) -> None:
        """After the order tracker applied ``event``: record every order it may have changed."""
        ts = getattr(event, "ts_recv", 0) or self.engine.clock.now_ns
        why = type(event).__name__
        message = getattr(event, "message", "")
        reason = getattr(event, "reason", None)
        if reason is not None:
            why = f"{why} {getattr(reason, 'value', reason)}"
        if message:
            why = f"{why}: {message}"
        for cid in (
            getattr(event, "client_id", None),
            getattr(event, "orig_client_id", None),
            getattr(event, "new_client_id", None),
        ):
            if cid:
                self._record_related(cid, ts, why)

    def before_send(self, client_id: str, ts_ns: int) -> None:
        """An order about to be sent: journal (and record) its pending state first (WriteAheadConnector)."""
        self._record_related(client_id, ts_ns or self.engine.clock.now_ns, "sent")

    def on_fill(self, fill: Fill) -> None:
        """A fill (already deduplicated by the stream): journal it, then persist it and the order state it produced."""
        if self.journal is not None:
            self.journal.append_fill(fill)
        self.recorder.record_fill(fill)
        self._fills_recorded += 1
        self.audit.put("fill", fill, fill.ts_event)
        self._record_related(fill.client_id, fill.ts_recv or self.engine.clock.now_ns, f"fill {fill.trade_id}")

    def on_hedge_fill(self, fill: Fill) -> None:
        """Hedge fills (from the HedgeExecutor) are part of the ledger too."""
        if self.journal is not None:
            self.journal.append_fill(fill)
        self.recorder.record_fill(fill)
        self._fills_recorded += 1
        self.audit.put("hedge", fill, fill.ts_event)

    def on_kill_switch(self, event: KillSwitchEvent) -> None:
        name = "kill_switch_trip" if event.halted else "kill_switch_resume"
        self.audit.put("risk", {"event": name, "reason": event.reason}, event.ts_ns)
        self._publish_kill_switch(event.halted, event.reason, event.ts_ns)

    def watch_hedge(self, hedge: Any) -> None:
        """Record the fills of a HedgeExecutor (it calls each of ``hedge.listeners`` with a fill)."""
        hedge.listeners.append(self.on_hedge_fill)

    # ------------------------------------------------------------------ recording

    def sweep(self, ts_ns: int) -> None:
        """Record each open order whose state changed since last recorded (our own actions)."""
        for order in self.engine.orders.open_orders():
            self._record_if_changed(order, ts_ns, "")

    def snapshot_pnl(self, ts_ns: int) -> None:
        """Persist (and publish) a PnL snapshot per venue and the portfolio total."""
        pnl = self.engine.pnl
        mark = pnl.mark_price
        for venue, row in pnl.by_venue().items():
            record = PnLRecord(
                venue,
                self.engine.symbol,
                row.get("quote_position", ZERO) + row.get("hedge_position", ZERO),
                row.get("quote_realized", ZERO) + row.get("hedge_realized", ZERO),
                row.get("quote_unrealized", ZERO) + row.get("hedge_unrealized", ZERO),
                row.get("quote_fees", ZERO) + row.get("hedge_fees", ZERO),
                ts_ns,
                mark=mark,
            )
            self.recorder.record_pnl(record)
            if self.redis is not None:
                self.redis.publish_pnl(record)
        total = PnLRecord(
            TOTAL, TOTAL, self.engine.inventory.position, pnl.realized(), pnl.unrealized(), pnl.fees(), ts_ns,
            mark=mark, avg_price=self.engine.inventory.entry_price,
        )
        self.recorder.record_pnl(total)
        if self.redis is not None:
            self.redis.publish_pnl(total)

    def _record_related(self, client_id: str, ts_ns: int, reason: str) -> None:
        order = self.engine.orders.get(client_id)
        if order is None:
            return
        self._record_if_changed(order, ts_ns, reason)
        for other in (order.replaces, order.replaced_by):
            if other:
                linked = self.engine.orders.get(other)
                if linked is not None:
                    self._record_if_changed(linked, ts_ns, reason)

    def _record_if_changed(self, order: ClientOrder, ts_ns: int, reason: str) -> None:
        cid = order.request.client_id
        signature = (order.state.value, order.filled_qty, order.venue_order_id)
        if self._last.get(cid) == signature:
            return
        self._last[cid] = signature
        self._last.move_to_end(cid)
        if len(self._last) > self._last_memory:
            self._last.popitem(last=False)
        request = order.request
        self._enqueue_order(
            OrderRecord(
                cid, request.venue, request.symbol, request.side, request.price, request.qty, order.filled_qty,
                order.state.value, order.venue_order_id, max(order.updated_ns, ts_ns), reason,
            )
        )

    def _enqueue_order(self, record: OrderRecord) -> None:
        if self.journal is not None:
            self.journal.append_order(record)
        self.recorder.record_order(
            record.client_id, record.venue, record.symbol, record.side, price=record.price, qty=record.qty,
            filled_qty=record.filled_qty, state=record.state, venue_order_id=record.venue_order_id,
            ts_ns=record.ts_ns, reason=record.reason,
        )
        self._orders_recorded += 1
        self.audit.put("order", record, record.ts_ns)
        if self.redis is not None:
            self.redis.publish_order(record)

    # ------------------------------------------------------------------ hot state

    def _publish_hot(self, ts_ns: int) -> None:
        assert self.redis is not None
        engine = self.engine
        self.redis.publish_position(engine.venue.venue, engine.symbol, engine.inventory.position)
        # Every holding runner gate, for `mmkit status` without a dashboard: on every change of holds (a new
        # hold or a release), and their reasons refreshed at the hot cadence while they hold.
        holds = engine.runner.gate_holds
        if holds or self._gates_published:
            shown = [hold.as_dict() for hold in holds]
            if shown != self._gates_published:
                self._gates_published = shown
                self.redis.publish_quoting_gates(shown)
        fair = engine.runner.last_fair
        if (fair.price, fair.confidence) != self._last_fair:
            self._last_fair = (fair.price, fair.confidence)
            self.redis.publish_fair_value(engine.symbol, fair.price, fair.confidence, ts_ns)

    def _publish_kill_switch(self, active: bool, reason: str, ts_ns: int) -> None:
        if self.redis is not None:
            self.redis.publish_kill_switch(active, reason, ts_ns)

    def _sample_book(self, ts_ns: int) -> None:
        tracker = self.engine.runner.book
        if tracker is None or not tracker.is_valid:
            return
        bid, ask = tracker.book.best_bid(), tracker.book.best_ask()
        self.recorder.record_top_of_book(
            tracker.venue, tracker.symbol,
            bid=bid[0] if bid else None, bid_qty=bid[1] if bid else None,
            ask=ask[0] if ask else None, ask_qty=ask[1] if ask else None,
            ts_ns=ts_ns,
        )

    # ------------------------------------------------------------------ stop

    def close(self, timeout_s: float = 10.0) -> int:
        """Record final states and PnL, write everything queued; returns records NOT persisted (0 = all)."""
        if self._closed:
            return 0
        self._closed = True
        if not self._started:  # never opened (the start failed earlier): nothing was recorded
            self.audit.close()
            self.recorder.engine.dispose()
            if self.journal is not None:
                self.journal.close()
            self._release_instance()
            return 0
        now = self.engine.clock.now_ns or time.time_ns()
        for order in self.engine.orders.finished_orders():  # states reached in the stop sequence
            self._record_if_changed(order, now, "stop")
        self.sweep(now)
        self.snapshot_pnl(now)
        if self.redis is not None:
            self._publish_hot(now)
            self.redis.heartbeat()
        self.audit.put("risk", {"event": "stop", "position": self.engine.inventory.position}, now)
        self.rate_window.journal_new(self.journal)
        journal = self.journal
        if journal is not None:
            journal.sync()
        remaining = self.recorder.close(min(timeout_s, 1.0) if self._unwritable else timeout_s)
        self.audit.close()
        if remaining:
            self.engine.outcome.record(
                ProblemKind.NOT_PERSISTED,
                f"{remaining} records NOT persisted to the store"
                + (" (the journal holds them; the next start catches the store up)"
                   if journal is not None and journal.healthy else ""),
                now,
            )
        if self.audit.trail.errors:
            errors = self.audit.trail.errors
            self.engine.outcome.record(ProblemKind.NOT_PERSISTED, f"{errors} audit lines not written", now)
        store_problem = self._store_file_problem()
        if store_problem is not None:
            self.engine.outcome.record(ProblemKind.NOT_PERSISTED, store_problem, now)
        refused = self.recorder.stats().not_kept()  # answered but not kept: the journal is their only copy
        if refused is not None:
            self.engine.outcome.record(ProblemKind.NOT_PERSISTED, refused, now)
            if self.recover_on_start:  # a real account's fills: keep the journal (a paper run's start afresh)
                store_problem = store_problem or refused
        if journal is not None:
            if not journal.healthy:
                self.engine.outcome.record(ProblemKind.NOT_PERSISTED, f"journal: {journal.error}", now)
                journal.close()
            elif remaining == 0 and self._caught_up and store_problem is None:
                carry = self.rate_window.carry()
                fills = self.engine.fills
                position = sum((f.qty * f.side.sign for f in fills), ZERO)
                # The store holds everything: the journal keeps only the rate window and what the store
                # must still hold at the next start (a store that lost it is refused, not trusted).
                # Checkpointed before it is closed: closing releases the journal to other processes.
                if self.recover_on_start:
                    journal.checkpoint(carry, len(fills), position)
                else:  # a new simulated account each run: this run's fills are not the instance's ledger
                    journal.checkpoint(carry)
                journal.close()
            else:
                journal.close()
        if self.redis is not None:
            self.redis.close()
        self._release_instance()
        self._log.info(
            "persistence closed: {} order changes, {} fills recorded; {} records not persisted",
            self._orders_recorded, self._fills_recorded, remaining,
        )
        return remaining

    def _release_instance(self) -> None:
        if self.instance_lock is not None:
            self.instance_lock.release()

    def stats(self) -> PersistenceStats:
        redis_stats = attrs.asdict(self.redis.stats()) if self.redis is not None else None
        return PersistenceStats(
            self._orders_recorded,
            self._fills_recorded,
            attrs.asdict(self.recorder.stats()),
            redis_stats,
            self.audit.trail.errors,
        )
