"""The order tracker's connector, wrapped so that an order is journaled before it is sent.

Why a module of its own: it is the one place where the write-ahead rule
touches the send path (docs/operations.md, "Durability contract"); the
Persistence iterator does the journaling, this wrapper only makes sure it
happens first. attach_persistence (mmkit.app.persistence) installs it.
"""

from __future__ import annotations

from typing import Any

from mmkit.app.persistence_iterator import Persistence


class WriteAheadConnector:
    """The order tracker's connector, wrapped so that an order is journaled *before* it is sent.

    Why: an order the venue holds and the journal does not know cannot be
    asked about after a crash; a fill on it would be lost to the ledger. The
    tracker files a new order (or a replace) before calling ``place`` /
    ``replace``, so here it is already tracked: its PENDING state is journaled
    (one ``write(2)``, SIGKILL-safe) and recorded, then sent. Everything else
    is the wrapped connector's own.
    """

    def __init__(self, inner: Any, persistence: Persistence) -> None:
        self._inner = inner
        self._persistence = persistence

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def place(self, order: Any) -> None:
        self._persistence.before_send(order.client_id, order.ts_created)
        self._inner.place(order)

    def replace(self, request: Any) -> None:
        self._persistence.before_send(request.client_id, request.ts_created)
        self._inner.replace(request)
