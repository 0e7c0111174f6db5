"""Which venue account an instance's ledger belongs to (the ``venue_accounts`` table, schema v4).

Read and written here, decided in mmkit.app.venue_account: a fingerprint is
recorded once per (instance, venue) and never replaced by this code; a
different one at a later start means the store was copied from another
account (or the config points at another account), and the start is refused.
"""

from __future__ import annotations

import time

from sqlalchemy import Engine, delete, inspect, select

from mmkit.store import schema
from mmkit.store.db import insert_ignoring_duplicates


def stored_accounts(engine: Engine, instance: str) -> dict[str, str]:
    """Venue -> fingerprint recorded for ``instance`` ({} on a store older than v4, or none recorded)."""
    t = schema.venue_accounts
    with engine.connect() as conn:
        if not inspect(conn).has_table(t.name):
            return {}
        rows = conn.execute(select(t.c.venue, t.c.fingerprint).where(t.c.instance == instance)).all()
    return {str(venue): str(fingerprint) for venue, fingerprint in rows}


def reassign_accounts(engine: Engine, instance: str, accounts: dict[str, str], session_id: str) -> None:
    """Replace the recorded fingerprints of ``accounts``' venues (``mmkit reconcile --accept-account``)."""
    t = schema.venue_accounts
    now = time.time_ns()
    with engine.begin() as conn:
        for venue, fp in sorted(accounts.items()):
            conn.execute(delete(t).where(t.c.instance == instance, t.c.venue == venue))
            conn.execute(t.insert().values(instance=instance, venue=venue, fingerprint=fp, session_id=session_id,
                                           recorded_ns=now))


def record_accounts(engine: Engine, instance: str, accounts: dict[str, str], session_id: str) -> None:
    """Record the fingerprints not recorded yet (an existing row is kept: the first account owns the ledger)."""
    if not accounts:
        return
    now = time.time_ns()
    rows = [
        {"instance": instance, "venue": venue, "fingerprint": fp, "session_id": session_id, "recorded_ns": now}
        for venue, fp in sorted(accounts.items())
    ]
    with engine.begin() as conn:
        conn.execute(insert_ignoring_duplicates(engine, schema.venue_accounts), rows)
