"""Refused dashboard control requests into the audit trail, bounded so a flood cannot fill the disk.

Why audited: a desk reads the audit trail after an incident, and a control
request refused for a wrong or missing token (or one the page never sends)
is an attempt to move the engine that somebody made. Before, it was only
logged and shown on the page.

Why aggregated: the requests come from the network, unauthenticated. One
audit line (and one log line) each would let anybody who can reach the port
write as many lines as they can send requests: the disk, the store and the
log would fill. So per client address and per window (a minute of wall
clock, aligned on the minute):

* the **first** refusal is written in full (``kind: "control"``,
  ``phase: "refused"``: source, action, HTTP status, reason) and logged;
* the next ones are **counted**; when the window ends (or the run stops)
  one ``phase: "refused_summary"`` line per address says how many were
  refused in that window in all (``refused``, the full line included) and
  how many were not written one by one (``suppressed``), by action and
  reason (``[[text, count], ...]``).

At most ``max_peers`` addresses a window get lines of their own; refusals
from further addresses (an attacker rotating its source address) are
counted together in one summary line (``source: "web (other addresses)"``,
with how many distinct addresses, up to a cap). So a window writes at most
``2 * max_peers + 1`` lines and holds as many buckets in memory, whatever is
sent; every refusal is still counted. What an attacker chooses is cut: the
action text and the address to 64 characters, a reason (which may quote the
field names sent) to 200; and the distinct actions and reasons counted by
name are capped too.

Cost on the engine's loop: a dict lookup and a few additions per refusal;
the lines go to the audit writer's thread (``Persistence.audit.put``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import attrs
from loguru import logger

from mmkit.model import NS_PER_S

#: (kind, payload, ts_ns): Persistence.audit.put, or AuditTrail.write in tests.
AuditSink = Callable[[str, Any, int | None], object]

WINDOW_NS = 60 * NS_PER_S
MAX_PEERS = 16
#: Distinct actions / reasons counted per bucket; more are counted under "(other)".
MAX_KEYS = 8
#: Distinct addresses remembered for the overflow bucket's count of them.
MAX_OTHER_ADDRESSES = 1024
TEXT_LIMIT = 64
#: A reason is ours, but may quote what was sent ("unknown field(s) '...'"): cut longer.
REASON_LIMIT = 200
OTHER = "(other addresses)"


def clip(text: str, limit: int = TEXT_LIMIT) -> str:
    """Attacker-chosen text as written: at most ``limit`` characters, marked when cut."""
    return text if len(text) <= limit else text[:limit] + "…"


@attrs.define
class _Bucket:
    """One address's refusals in the current window (or the overflow's, for addresses past ``max_peers``)."""

    refused: int = 0
    suppressed: int = 0
    actions: dict[str, int] = attrs.Factory(dict)
    reasons: dict[str, int] = attrs.Factory(dict)
    addresses: set[str] = attrs.Factory(set)

    def count(self, action: str, reason: str) -> None:
        self.refused += 1
        self.suppressed += 1
        _bump(self.actions, action)
        _bump(self.reasons, reason)


def _pairs(counts: dict[str, int]) -> list[list[Any]]:
    """``[[text, count], ...]``, not a mapping: the trail redacts the value of any key that looks like a
    credential, and "wrong or missing control token" as a key would be written as ``"***"``."""
    return [[key, count] for key, count in counts.items()]


def _bump(counts: dict[str, int], key: str) -> None:
    if key not in counts and len(counts) >= MAX_KEYS:
        key = "(other)"
    counts[key] = counts.get(key, 0) + 1


class RefusalAudit:
    """Writes refused control requests to the audit trail: first per address and window in full, the rest counted."""

    def __init__(
        self,
        sink: AuditSink | None,
        *,
        window_ns: int = WINDOW_NS,
        max_peers: int = MAX_PEERS,
        now_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.sink = sink
        self.window_ns = window_ns
        self.max_peers = max_peers
        self._now = now_ns
        self._window: int | None = None
        self._peers: dict[str, _Bucket] = {}
        self._other = _Bucket()
        self._closed = False
        #: Every refusal counted since the start, and the audit lines written for them (full + summaries).
        self.refused = 0
        self.lines = 0
        self._log = logger.bind(component="dashboard")

    def record(self, peer: str, action: str, status: int, reason: str) -> None:
        """Count one refusal; write it in full if it is its address's first in this window."""
        now = self._now()
        self._roll(now)
        self.refused += 1
        action, peer, reason = clip(action), clip(peer), clip(reason, REASON_LIMIT)
        bucket = self._peers.get(peer)
        if bucket is not None:
            bucket.count(action, reason)
            return
        if len(self._peers) >= self.max_peers:
            other = self._other
            other.count(action, reason)
            if len(other.addresses) < MAX_OTHER_ADDRESSES:
                other.addresses.add(peer)
            return
        bucket = self._peers[peer] = _Bucket(refused=1)
        self._log.warning("dashboard refused {!r} from {}: {} (further refusals from it this minute are counted, "
                          "not logged one by one)", action, peer, reason)
        self._write({"phase": "refused", "source": f"web {peer}", "action": action, "status": status,
                     "reason": reason, "window_start_ns": self._window}, now)

    def flush(self) -> None:
        """Write the summaries of a window that has ended (the dashboard calls it on every snapshot)."""
        self._roll(self._now())

    def close(self) -> None:
        """Write the current window's summaries now (the run is ending); later refusals are only logged."""
        if self._closed:
            return
        self._summarize(self._now())
        self._closed = True

    # -- internals ----------------------------------------------------------

    def _roll(self, now: int) -> None:
        window = now - now % self.window_ns
        if self._window is not None and window != self._window:
            self._summarize(self._window + self.window_ns)
        self._window = window

    def _summarize(self, end_ns: int) -> None:
        """One line per bucket that counted refusals it did not write in full; then an empty window."""
        start = self._window
        for peer, bucket in self._peers.items():
            if bucket.suppressed:
                self._write(self._summary(f"web {peer}", bucket, start, end_ns), end_ns)
        other = self._other
        if other.refused:
            summary = self._summary(f"web {OTHER}", other, start, end_ns)
            summary["addresses"] = len(other.addresses)
            summary["addresses_capped"] = len(other.addresses) >= MAX_OTHER_ADDRESSES
            self._write(summary, end_ns)
        self._peers = {}
        self._other = _Bucket()

    def _summary(self, source: str, bucket: _Bucket, start: int | None, end_ns: int) -> dict[str, Any]:
        self._log.warning("dashboard refused {} control requests from {} in the window from {} ({} not logged "
                          "one by one): {}", bucket.refused, source.removeprefix("web "), start, bucket.suppressed,
                          bucket.reasons)
        return {"phase": "refused_summary", "source": source, "window_start_ns": start, "window_end_ns": end_ns,
                "refused": bucket.refused, "suppressed": bucket.suppressed, "actions": _pairs(bucket.actions),
                "reasons": _pairs(bucket.reasons)}

    def _write(self, payload: dict[str, Any], ts_ns: int) -> None:
        if self.sink is None or self._closed:
            return
        self.lines += 1
        try:
            self.sink("control", payload, ts_ns)
        except Exception:  # the audit writer logs and counts its own failures; a bug here must not 500 the page
            self._log.exception("could not audit a refused control request")
