"""Audit lines written by a thread of their own, so a slow disk never stalls the engine's tick.

Why a module of its own: the audit trail (mmkit.store.audit) writes and may
fsync each line; the engine thread only enqueues. This wrapper is the hand-off
and its shutdown (drain, join, close), used by the Persistence iterator.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

from loguru import logger

from mmkit.store.audit import AuditTrail


class AuditWriter:
    """Hands audit lines to a thread, so a slow disk never stalls the tick."""

    def __init__(self, trail: AuditTrail) -> None:
        self.trail = trail
        self._queue: queue.SimpleQueue[tuple[str, Any, int | None] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=f"mmkit-audit-{trail.instance}", daemon=True)
        self._thread.start()
        self._closed = False
        #: Lines put after close (never written).
        self.dropped = 0

    def put(self, kind: str, payload: Any, ts_ns: int | None = None) -> None:
        """Queue one line; after :meth:`close` the line cannot be written: counted in ``dropped`` and logged."""
        if not self._closed:
            self._queue.put((kind, payload, ts_ns))
            return
        self.dropped += 1
        if self.dropped == 1:  # once: a caller that keeps writing after the close must not flood the log
            logger.error("audit line {!r} after the audit trail {} was closed: not written (later ones counted "
                         "in AuditWriter.dropped)", kind, self.trail.path)

    def close(self, timeout_s: float = 5.0) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout_s)
        self.trail.close()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            kind, payload, ts_ns = item
            self.trail.write(kind, payload, ts_ns=ts_ns)  # never raises: errors are logged and counted

