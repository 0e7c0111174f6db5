"""Checks a start makes on the instance's store and journal before it trusts them as its ledger.

Why a module of its own: each answers one question about *whose* ledger this
is, and each refuses with EngineStartError (exit 3) before anything is sent:

* is another process using the instance (:func:`claim_instance`: the store's
  instance lock, mmkit.store.instance_lock, and the journal lock)?
* does the store belong to this venue account (:func:`check_store`;
  mmkit.app.venue_account)? The journal's account is checked by the caller
  as soon as it is read, before it is appended to.
* did the wall clock go backwards since the last session (a warning, not a
  refusal: mmkit.app.session_clock)?
"""

from __future__ import annotations

from typing import Any

from loguru import logger

from mmkit.app.engine import EngineStartError
from mmkit.app.session_clock import clock_warning_at_start
from mmkit.app.venue_account import store_account_refusal
from mmkit.store.db import redact_url
from mmkit.store.instance_lock import InstanceInUse, StoreInstanceLock
from mmkit.store.journal import Journal, JournalInUse


def claim_instance(lock: StoreInstanceLock | None, journal: Journal | None, instance: str) -> None:
    """Take the instance on its store and its journal for this process; EngineStartError if another holds one."""
    try:
        if lock is not None:
            lock.acquire()
        if journal is not None:
            journal.lock()  # before it is read: no other process may append to (or checkpoint) it
    except (InstanceInUse, JournalInUse) as exc:
        raise EngineStartError(str(exc)) from exc
    except Exception as exc:
        raise EngineStartError(f"cannot lock instance {instance!r} for this process: {exc}") from exc


def check_store(recorder: Any, instance: str, session_id: str, accounts: dict[str, str]) -> str | None:
    """Refuse a store of another account; return the clock warning to log and audit (None: none)."""
    refusal = store_account_refusal(recorder.engine, instance, accounts, redact_url(recorder.url))
    if refusal is not None:
        raise EngineStartError(refusal)
    clock = clock_warning_at_start(recorder.engine, instance, session_id)
    if clock is not None:  # the ledger is whole, the times are out of order: say so (mmkit status does too)
        logger.bind(instance=instance, session=session_id).warning("{}", clock)
    return clock
