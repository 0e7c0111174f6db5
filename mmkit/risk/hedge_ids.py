"""Hedge client order ids: ``prefix + 4 instance digits + the start's ms + a counter``, never cut.

Why its own module, and not the quoting ids of ``mmkit.orders.ids``: hedges
go to a venue that other instances may hedge on too (hedge venues are
usually not claimed), so an id must tell instances apart (the instance
name's hash digits) and runs apart (the start's millisecond), and a counter
per run is enough inside one. The scheme must never cut an id to the venue's
18 characters: a cut drops counter digits and the id repeats, so an id that
would not fit raises instead (a duplicate id is worse than a refused hedge).
``tests/unit/risk/test_hedge_ids.py`` holds it to that.
"""

from __future__ import annotations

import itertools

from mmkit.model import MAX_CLIENT_ID_LEN, NS_PER_MS
from mmkit.orders.ids import base36, instance_prefix


class HedgeClientIds:
    """Hands out one run's hedge client ids; :meth:`start` must be called when the run starts."""

    def __init__(self, prefix: str, instance: str = "") -> None:
        self.prefix = prefix
        self._ids = itertools.count(1)
        #: Four base36 digits of the instance name's hash (mmkit.orders.ids.instance_prefix), so that
        #: instances hedging on one account never send the same id, even when started in the same ms.
        self._instance = instance_prefix(instance)[2:] if instance else ""
        self._stem = ""

    def start(self, ts_ns: int) -> None:
        """The run's start: its millisecond (7 base36 digits) sets this run's ids apart from the last run's."""
        self._stem = base36(ts_ns // NS_PER_MS)[-7:]

    def next(self) -> str:
        """The next id; raises rather than cut one past ``MAX_CLIENT_ID_LEN`` (over a million hedges a run)."""
        client_id = f"{self.prefix}{self._instance}{self._stem}{base36(next(self._ids))}"
        if len(client_id) > MAX_CLIENT_ID_LEN:
            raise RuntimeError(f"hedge client id {client_id} would exceed {MAX_CLIENT_ID_LEN} characters")
        return client_id
