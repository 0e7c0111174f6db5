"""``mmkit reconcile CONFIG``: the venue's view of our orders against the ledger, and an audited way out.

Why: when recovery refuses to start (the venue reports fills the ledger does
not hold, and the venue has no fill history to fetch them from), the refusal
is sticky by design: nothing is written, so every restart refuses again. A
person must decide. This command shows the difference, order by order, and
with ``--accept-venue --reason TEXT`` books it as *synthetic* fills derived
from the venue's CumQty (and AvgPx where the venue reports it; else the
order's limit price, which is where a resting limit order fills). Each
synthetic fill carries the trade id prefix ``mmkit-synthetic:`` and the
reason, goes to the journal (fsynced), the store and the audit trail, so the
ledger says forever which fills were reconstructed and why.

Exit codes: 0 the ledger and the venue agree (or the difference was booked),
3 the venue or the store could not be read, 5 a difference remains (shown,
not accepted).
"""

from __future__ import annotations

import asyncio
import sys
import time
from decimal import Decimal
from typing import TextIO

from loguru import logger
from sqlalchemy.exc import SQLAlchemyError

from mmkit.app.build import build
from mmkit.app.config import ConfigOverrides, load_engine_config
from mmkit.app.engine import Engine, EngineStartError
from mmkit.app.outcome import EXIT_LEDGER_HALT, EXIT_OK, EXIT_START_REFUSED, EXIT_USAGE
from mmkit.app.persistence import built_accounts, default_audit_path, default_store_url
from mmkit.app.recovery import InstanceLedger, RecoveryPlan, Shortfall, plan_recovery
from mmkit.app.venue_account import ACCEPT_HINT, account_refusal, changed_accounts, store_account_refusal
from mmkit.clock import Clock, ClockMode
from mmkit.model import ZERO, Fill, Liquidity
from mmkit.store.accounts import reassign_accounts, stored_accounts
from mmkit.store.audit import AuditTrail
from mmkit.store.db import redact_url
from mmkit.store.instance_lock import InstanceInUse, StoreInstanceLock
from mmkit.store.journal import (
    SYNTHETIC_PREFIX,
    VOID_PREFIX,
    Journal,
    JournalCorrupt,
    JournalInUse,
    journal_path_for,
    read_journal,
)
from mmkit.store.private import restrict_umask
from mmkit.store.recorder import Recorder

RECONCILE_SESSION = "reconcile"


def synthetic_fills(plan: RecoveryPlan, engine: Engine, now_ns: int) -> list[Fill]:
    """One flagged fill per shortfall: the missing quantity at the price that makes the venue's AvgPx true."""
    out: list[Fill] = []
    quote = engine.runner.instrument.quote
    for short in plan.shortfalls:
        r = short.report
        out.append(Fill(
            venue=r.venue,
            trade_id=f"{SYNTHETIC_PREFIX}{r.venue_order_id or r.client_id}:{r.filled_qty}",
            client_id=r.client_id,
            symbol=r.symbol,
            side=r.side,
            price=_missing_price(short, plan),
            qty=short.missing,
            fee=ZERO,
            fee_currency=quote,
            liquidity=Liquidity.MAKER,
            ts_event=r.ts_event or now_ns,
            ts_recv=now_ns,
            venue_order_id=r.venue_order_id,
        ))
    return out


def _missing_price(short: Shortfall, plan: RecoveryPlan) -> Decimal:
    """AvgPx × CumQty minus what the ledger holds, over the missing quantity; else the limit price."""
    r = short.report
    avg_px = getattr(r, "avg_px", None)  # a venue report may carry it (FIX tag 6)
    if avg_px is not None and avg_px > 0:
        held = [
            f for f in plan.fills
            if f.venue == r.venue and (f.venue_order_id == r.venue_order_id if r.venue_order_id
                                       else f.client_id == r.client_id)
        ]
        notional = sum((f.price * f.qty for f in held), ZERO)
        return Decimal(avg_px * r.filled_qty - notional) / short.missing
    if r.price is not None:
        return r.price
    if short.order is not None and short.order.price is not None:
        return short.order.price
    raise ValueError(f"{r.client_id}: the venue gives no price and the ledger has no limit price")


def void_fills(plan: RecoveryPlan, engine: Engine, now_ns: int) -> list[Fill]:
    """One compensating fill per excess: the order's opposite side, for the quantity the venue never filled.

    Priced so the order's fills that remain average the venue's AvgPx where it reports one; else at the
    average price of what the ledger booked on the order (a re-sent execution repeats its price, so the
    void reverses it exactly). A reversal, never a deletion: every booked fill stays in the ledger.
    """
    out: list[Fill] = []
    quote = engine.runner.instrument.quote
    for excess in plan.excess:
        r = excess.report
        held = [f for f in plan.fills if f.venue == r.venue and f.client_id == r.client_id]
        notional = sum((-f.price * f.qty if f.trade_id.startswith(VOID_PREFIX) else f.price * f.qty
                        for f in held), ZERO)
        avg_px = getattr(r, "avg_px", None)
        if avg_px is not None and avg_px > 0:
            price = Decimal(notional - avg_px * r.filled_qty) / excess.extra
        else:
            price = notional / excess.ledger_filled
        out.append(Fill(
            venue=r.venue,
            trade_id=f"{VOID_PREFIX}{r.venue_order_id or r.client_id}:{excess.ledger_filled}",
            client_id=r.client_id,
            symbol=r.symbol,
            side=r.side.opposite,
            price=price,
            qty=excess.extra,
            fee=ZERO,
            fee_currency=quote,
            liquidity=Liquidity.MAKER,
            ts_event=now_ns,
            ts_recv=now_ns,
            venue_order_id=r.venue_order_id,
        ))
    return out


def describe(plan: RecoveryPlan, venue: str) -> list[str]:
    """The venue's view against the ledger, one line per order it told us about."""
    lines = [f"venue {venue}: {len(plan.reports)} order(s) reported, ledger holds {len(plan.fills)} fill(s)"]
    short_ids = {s.report.client_id: s for s in plan.shortfalls}
    excess_ids = {e.report.client_id: e for e in plan.excess}
    for r in plan.reports:
        short = short_ids.get(r.client_id)
        excess = excess_ids.get(r.client_id)
        if short is not None:
            versus = f", ledger {short.ledger_filled}  MISSING {short.missing}"
        elif excess is not None:
            versus = f", ledger {excess.ledger_filled}  EXCESS {excess.extra}"
        else:
            versus = ", ledger agrees"
        lines.append(
            f"  {r.client_id} {r.side.value} {r.qty} @ {r.price} status {r.status.value}: "
            f"venue filled {r.filled_qty}" + versus
        )
    for failure in plan.failures:
        lines.append(f"  could not ask: {failure}")
    if not plan.shortfalls and not plan.failures and not plan.excess:
        lines.append("ledger and venue agree")
    return lines


async def run_reconcile(
    engine: Engine, store_url: str, journal_path: str, audit_path: str, instance: str,
    *, accept_venue: bool, reason: str, out: TextIO, accounts: dict[str, str] | None = None,
    void_excess: bool = False, accept_account: bool = False,
) -> int:
    """Connect, plan (read-only), show; with ``accept_venue`` book the difference. Returns the exit code.

    ``accounts`` (venue -> fingerprint, mmkit.app.venue_account): a store or journal recorded under
    another account is refused (exit 3) before the venue is asked anything.

    The instance's journal (and, on a PostgreSQL store, the instance itself: mmkit.store.instance_lock) is
    held for the whole command: a running engine of the instance would otherwise lose the booked fill to its
    next checkpoint (and its venue session to ours).
    """
    journal = Journal(journal_path, instance=instance, accounts=accounts)
    store_lock = StoreInstanceLock(store_url, instance)
    try:
        store_lock.acquire()  # a PostgreSQL store: the instance, whatever output directory its engine runs from
        journal.lock()
    except (InstanceInUse, JournalInUse, OSError, SQLAlchemyError) as exc:
        store_lock.release()
        print(f"reconcile: {exc}", file=out)
        return EXIT_START_REFUSED
    try:
        return await _reconcile_locked(
            engine, store_url, journal, audit_path, instance, accept_venue=accept_venue, reason=reason, out=out,
            void_excess=void_excess, accept_account=accept_account,
        )
    finally:
        journal.close()
        store_lock.release()


async def _reconcile_locked(
    engine: Engine, store_url: str, journal: Journal, audit_path: str, instance: str,
    *, accept_venue: bool, reason: str, out: TextIO, void_excess: bool, accept_account: bool,
) -> int:
    try:
        contents = read_journal(journal.path, instance)
    except JournalCorrupt as exc:
        print(f"reconcile: {exc}", file=out)
        return EXIT_START_REFUSED
    ledger = InstanceLedger(store_url, instance)
    try:
        refusal = account_refusal(journal.accounts, contents.accounts, f"the journal {journal.path}") or (
            store_account_refusal(ledger.engine, instance, journal.accounts, redact_url(store_url)))
        if refusal is not None and not accept_account:
            print(f"reconcile: {refusal}; {ACCEPT_HINT}", file=out)
            return EXIT_START_REFUSED
        if refusal is not None:
            reassign(ledger, journal, contents.accounts, audit_path, reason, out)
        try:
            await engine.venue.connect()
        except Exception as exc:  # any way of not reaching the venue: one line, no traceback
            print(f"reconcile: cannot connect to {engine.venue.venue}: {exc}", file=out)
            return EXIT_START_REFUSED
        plan = await plan_recovery(engine, ledger, contents, session_id=RECONCILE_SESSION)
    except EngineStartError as exc:
        print(f"reconcile: {exc}", file=out)
        return EXIT_START_REFUSED
    finally:
        ledger.close()
    for line in describe(plan, engine.venue.venue):
        print(line, file=out)
    if plan.foreign:  # not a difference with the venue that booking could settle: the start refuses
        print(f"reconcile: {plan.refusal(engine.venue.venue)}", file=out)
        return EXIT_START_REFUSED
    if plan.failures:
        return EXIT_START_REFUSED
    # All or nothing: a difference is booked only when every one of them is settled by a flag.
    if plan.excess and not void_excess:  # a person must find which fill the venue did not make
        print("not changed: the ledger holds fills the venue did not make; --accept-venue books only missing "
              "fills, never removes one; run again with --void-excess --reason TEXT to book a flagged "
              "compensating fill for each EXCESS (docs/operations.md, mmkit reconcile)", file=out)
        return EXIT_LEDGER_HALT
    if plan.shortfalls and not accept_venue:
        print("not changed: run again with --accept-venue --reason TEXT to book the difference", file=out)
        return EXIT_LEDGER_HALT
    if not plan.shortfalls and not plan.excess:
        return EXIT_OK
    now = time.time_ns()
    fills = synthetic_fills(plan, engine, now)
    voids = void_fills(plan, engine, now)
    if not journal.is_open:
        journal.open()
    for fill in [*fills, *voids]:
        journal.append_fill(fill, note=reason)
    if not journal.sync():
        print(f"reconcile: {journal.error}; nothing booked", file=out)
        return EXIT_START_REFUSED
    journal.close()
    audit = AuditTrail(audit_path, instance=instance, fsync="always")
    for fill in fills:
        audit.write("risk", {"event": "reconcile_accept_venue", "reason": reason, "fill": fill}, now)
    for fill in voids:
        audit.write("risk", {"event": "reconcile_void_excess", "reason": reason, "fill": fill}, now)
    audit.close()
    recorder = Recorder(store_url, instance=instance)
    recorder.start()
    for fill in [*fills, *voids]:
        recorder.record_fill(fill)
    left = recorder.close()
    for fill in fills:
        print(f"booked synthetic fill {fill.trade_id}: {fill.side.value} {fill.qty} @ {fill.price} ({reason})",
              file=out)
    for fill in voids:
        print(f"voided {fill.qty} of {fill.client_id}: compensating fill {fill.trade_id} {fill.side.value} "
              f"{fill.qty} @ {fill.price} ({reason})", file=out)
    if left:
        print(f"{left} records not written to the store: the journal holds them, the next start catches up",
              file=out)
    if fills:
        logger.warning("reconcile: {} synthetic fill(s) booked from the venue's CumQty: {}", len(fills), reason)
    if voids:
        logger.warning("reconcile: {} excess fill quantity(ies) voided by compensating fills: {}", len(voids), reason)
    return EXIT_OK


def reassign(
    ledger: InstanceLedger, journal: Journal, in_journal: dict[str, str], audit_path: str, reason: str, out: TextIO,
) -> None:
    """``--accept-account``: the ledger (store rows, an ``accounts`` journal record) is this account's now."""
    current = journal.accounts
    in_store = changed_accounts(current, stored_accounts(ledger.engine, ledger.instance))
    changed = {**changed_accounts(current, in_journal), **in_store}
    if in_store:
        reassign_accounts(ledger.engine, ledger.instance, {v: new for v, (_, new) in in_store.items()},
                          RECONCILE_SESSION)
    journal.open()
    journal.append("accounts", {"accounts": dict(current), "reason": reason,
                                "previous": {v: old for v, (old, _) in changed.items()}})
    if not journal.sync():
        raise EngineStartError(f"{journal.error}; the journal's account is not re-assigned")
    now = time.time_ns()
    audit = AuditTrail(audit_path, instance=ledger.instance, fsync="always")
    for venue, (old, new) in changed.items():
        audit.write("risk", {"event": "reconcile_accept_account", "venue": venue, "previous": old, "account": new,
                             "reason": reason}, now)
        print(f"ledger of venue {venue} re-assigned from account [{old}] to [{new}] ({reason})", file=out)
    audit.close()
    logger.warning("reconcile: ledger re-assigned to another account fingerprint on {}: {}", sorted(changed), reason)


def reconcile_command(
    config_path: str, *, accept_venue: bool, reason: str | None, overrides: ConfigOverrides | None = None,
    out: TextIO = sys.stdout, void_excess: bool = False, accept_account: bool = False,
) -> int:
    """``mmkit reconcile CONFIG [--accept-venue] [--void-excess] [--accept-account] [--reason TEXT]``."""
    flags = (("--accept-venue", accept_venue), ("--void-excess", void_excess), ("--accept-account", accept_account))
    for flag, given in flags:
        if given and not (reason and reason.strip()):
            print(f"reconcile: {flag} needs --reason TEXT (it is written to the ledger and the audit trail)",
                  file=out)
            return EXIT_USAGE
    restrict_umask()
    loaded = load_engine_config(config_path, overrides)
    cfg = loaded.config
    clock = Clock(ClockMode.REALTIME, tick_ns=cfg.engine.tick_ms * 1_000_000)
    built = build(loaded, clock)
    instance, output_dir = cfg.engine.instance, cfg.engine.output_dir
    url = default_store_url(cfg.store, instance, output_dir)

    async def main() -> int:
        try:
            return await run_reconcile(
                built.engine, url, str(journal_path_for(url, instance, output_dir)),
                str(default_audit_path(cfg.store, instance, output_dir)), instance,
                accept_venue=accept_venue, reason=(reason or "").strip(), out=out, accounts=built_accounts(built),
                void_excess=void_excess, accept_account=accept_account,
            )
        finally:
            try:
                await built.engine.venue.disconnect()
            except Exception:
                logger.opt(exception=True).warning("error while disconnecting {}", built.engine.venue.venue)

    return asyncio.run(main())
