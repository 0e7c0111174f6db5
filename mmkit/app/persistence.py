"""Persistence wired into an engine: the recorder, the audit trail, Redis hot state and the journal.

Why this module: it is the documented entry point (docs/operations.md,
``attach_persistence``) and holds only the wiring: where the store and the
audit trail go by default, and which listeners, gate, iterator, start hook
and closer an engine gets. What runs each tick is the Persistence iterator
(mmkit.app.persistence_iterator), whose docstring gives the design: the
write-ahead journal first, the store as a projection, the failure policy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmkit.app.config import StoreSection
from mmkit.app.engine import Engine
from mmkit.app.persistence_iterator import Persistence
from mmkit.app.venue_account import account_fingerprint
from mmkit.app.write_ahead import WriteAheadConnector
from mmkit.model import NS_PER_MS, NS_PER_S
from mmkit.sim.base_venue import SimulatedVenue
from mmkit.store.audit import AuditTrail
from mmkit.store.instance_lock import StoreInstanceLock
from mmkit.store.journal import Journal, journal_path_for
from mmkit.store.private import restrict_umask
from mmkit.store.recorder import Recorder, new_session_id


def default_store_url(store: StoreSection, instance: str, output_dir: str | Path) -> str:
    """``store.url``, else a SQLite file ``<output_dir>/store/<instance>.sqlite``."""
    if store.url:
        return store.url
    return f"sqlite:///{Path(output_dir) / 'store' / f'{instance}.sqlite'}"


def default_audit_path(store: StoreSection, instance: str, output_dir: str | Path) -> Path:
    """``store.audit_path``, else ``<output_dir>/audit/<instance>.jsonl``."""
    if store.audit_path:
        return Path(store.audit_path)
    return Path(output_dir) / "audit" / f"{instance}.jsonl"


def attach_persistence(
    engine: Engine,
    store_section: StoreSection,
    instance: str,
    output_dir: str | Path,
    *,
    session_id: str | None = None,
    pnl_interval_s: float = 1.0,
    recover_on_start: bool = True,
    recorder_options: dict[str, Any] | None = None,
    accounts: dict[str, str] | None = None,
) -> Persistence:
    """Wire recording, audit, hot state and restart recovery into ``engine`` (before it starts).

    Registers listeners on the engine's UserStreamTracker and kill switch, a
    post-strategy iterator on its clock, a start hook (store migration +
    recovery, before quoting) and a closer (flush on stop). ``accounts``: venue -> account fingerprint
    (mmkit.app.venue_account), recorded at the first start and checked at every later one.
    """
    for closer in engine.closers:  # attached already (by the build or the lifecycle): one recorder per engine
        owner = getattr(closer, "__self__", None)
        if isinstance(owner, Persistence):
            return owner
    sid = session_id or new_session_id()
    url = default_store_url(store_section, instance, output_dir)
    tob_ms = store_section.sample_top_of_book_ms
    recorder = Recorder(
        url, instance=instance, session_id=sid,
        tob_interval_ns=(tob_ms or 1000) * NS_PER_MS, **(recorder_options or {}),
    )
    audit = AuditTrail(
        default_audit_path(store_section, instance, output_dir), instance=instance, fsync=store_section.audit_fsync
    )
    redis_state = None
    if store_section.redis_url:  # the redis client only when Redis is configured (its import is ~7 MB resident)
        from mmkit.store.redis_state import RedisState

        redis_state = RedisState(store_section.redis_url, instance, session_id=sid)
    persistence = Persistence(
        engine, recorder, audit, redis_state, instance,
        pnl_interval_ns=int(pnl_interval_s * NS_PER_S),
        sample_top_of_book=tob_ms is not None,
        recover_on_start=recover_on_start,
        journal=Journal(journal_path_for(url, instance, output_dir), instance=instance, accounts=accounts),
        outage_grace_s=float(getattr(store_section, "outage_grace_s", 5.0)),
        instance_lock=StoreInstanceLock(url, instance),
        accounts=accounts,
    )
    engine.runner.add_gate(persistence.gate, "store")
    engine.orders.connector = WriteAheadConnector(engine.orders.connector, persistence)
    engine.stream.add_fill_listener(persistence.on_fill)
    engine.stream.add_order_listener(persistence.on_order_event)
    engine.stream.add_quarantine_listener(  # issue 11: fills that failed validation, stored apart
        lambda q: recorder.record_quarantined_fill(q.fill, q.kind.value, q.reason)
    )
    kill = engine.runner.kill_switch
    if kill is not None:
        kill.add_trip_listener(persistence.on_kill_switch)
        kill.add_resume_listener(persistence.on_kill_switch)
    engine.clock.add_iterator(persistence, name="recorder")
    engine.start_hooks.append(persistence.open)
    engine.closers.append(persistence.close)
    return persistence


def persist_built(built: Any) -> Persistence:
    """Attach persistence to a BuiltEngine from its config (store section, instance, output dir, hedge).

    A venue simulated inside this process (``connector: sim``, ``--paper``) is a new, empty account
    every run, so there is nothing to recover: its ledger starts empty and each session stands alone.
    An out-of-process venue (a real one, or the local TrueX FIX exchange) outlives the engine and is
    recovered against.
    """
    restrict_umask()  # everything this run writes (store, journal, audit, reports, plots): 0600 in 0700 dirs
    cfg = built.config
    in_process = isinstance(built.engine.venue, SimulatedVenue)
    persistence = attach_persistence(
        built.engine, cfg.store, cfg.engine.instance, cfg.engine.output_dir, recover_on_start=not in_process,
        accounts={} if in_process else built_accounts(built),
    )
    if built.hedge is not None and persistence.on_hedge_fill not in built.hedge.listeners:
        persistence.watch_hedge(built.hedge)
    return persistence


def built_accounts(built: Any) -> dict[str, str]:
    """Venue -> account fingerprint of the quoting venue and the hedge venue (those that log on as one)."""
    cfg = built.config
    pairs = [(built.engine.venue.venue, cfg.venue.settings)]
    if built.hedge is not None and cfg.hedge.venue is not None:
        pairs.append((built.hedge.connector.venue, cfg.hedge.venue.settings))
    return {venue: fp for venue, settings in pairs if (fp := account_fingerprint(settings)) is not None}
