"""Did the wall clock go backwards between two sessions of an instance?

Why: every time the store keeps is wall-clock time (the venue's and ours), and
an NTP step, a restored VM or an operator's ``date -s`` can set it back between
two runs. Sessions are ordered by the store's sequence (``sessions.seq``), so
nothing picks the wrong session any more; but the times themselves are then
out of order (a fill of today's session stamped before yesterday's last one),
and an operator reading them must be told. The start logs it and writes it to
the audit trail; ``mmkit status`` shows it while it is the latest session.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from loguru import logger
from sqlalchemy import Engine as SqlEngine

from mmkit.model import NS_PER_S


def _utc(ts_ns: int) -> str:
    return dt.datetime.fromtimestamp(ts_ns / NS_PER_S, dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def clock_went_back(sessions: Sequence[tuple[str, int, int | None]]) -> str | None:
    """Why the last session's start is before an earlier session's end (or start), else None.

    ``sessions``: (session id, started ns, stopped ns or None) in the store's order, the newest last.
    """
    if len(sessions) < 2:
        return None
    session_id, started, _ = sessions[-1]
    prev_id, prev_started, prev_stopped = max(sessions[:-1], key=lambda s: max(s[1], s[2] or 0))
    prev_end = max(prev_started, prev_stopped or 0)
    if started >= prev_end:
        return None
    what = "ended" if prev_stopped is not None and prev_stopped >= prev_started else "started"
    return (
        f"clock went backwards: session {session_id} started at {_utc(started)}, "
        f"{(prev_end - started) / NS_PER_S:.1f} s before session {prev_id} {what} at {_utc(prev_end)}; "
        f"the store orders sessions by its own sequence, but the times it holds are out of order"
    )


def clock_warning_at_start(store: SqlEngine, instance: str, session_id: str) -> str | None:
    """The warning for a session that just started (its row is in the store), or None.

    Best effort: the start has already proven the store writable; a failed read here is logged, not fatal
    (the ordering itself does not depend on it).
    """
    from mmkit.app.recovery import InstanceLedger  # the app's ledger reader; imported late, it pulls the engine

    try:
        sessions = InstanceLedger(store, instance).sessions()
    except Exception as exc:
        logger.warning("could not compare this session's start with the previous one's end: {}", exc)
        return None
    if not sessions or sessions[-1][0] != session_id:
        return None
    return clock_went_back(sessions)
