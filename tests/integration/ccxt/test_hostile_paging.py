"""A trade history whose paging never ends: Coinbase answering, page after page, the cursor it was sent.

Restart recovery reads every page (at most 200); a venue that hands back the cursor it got
would have it read the same page 200 times (200 calls against the venue's rate limit)
before it said "more than 200 pages". A cursor that comes back unchanged is a venue
that repeats itself: refused at once, naming it. Real ccxt Coinbase code against the mock.
"""

from __future__ import annotations

from decimal import Decimal

import attrs
import pytest

from mmkit.connector import TransientVenueError
from mmkit.model import OrderAccepted
from tests.integration.ccxt.helpers import collect_until, of_type
from tests.integration.ccxt.mock_venue import MockVenueServer
from tests.integration.ccxt.test_ledger_sweep_hostile import SWEEPING, _connected, _history_calls, _order

pytestmark = [pytest.mark.integration, pytest.mark.shared_data]
D = Decimal


async def test_a_cursor_that_comes_back_unchanged_stops_recovery_at_once_naming_it(server: MockVenueServer) -> None:
    order = _order("coinbase", "cur1")
    async with _connected(server, "coinbase", attrs.evolve(SWEEPING, ledger_check_s=0)) as coinbase:
        coinbase.place(order)
        await collect_until(coinbase, lambda ev: bool(of_type(ev, OrderAccepted)), 5.0)
        for _ in range(250):
            server.fill("coinbase", "cur1", D("0.000001"), D("60000.0"))
        reads = len(_history_calls(server, "coinbase"))
        server.coinbase_cursor_repeats = True
        with pytest.raises(TransientVenueError, match=r"cursor .* again"):
            await coinbase.fetch_fills(order.symbol, 0)
        # The first page, then its cursor sent and handed back: two calls, not 200.
        assert len(_history_calls(server, "coinbase")) - reads == 2
