"""A venue's book feed that sends levels no book can hold: NaN, a negative or zero price, a negative size.

ccxt stores what the venue sends (Coinbase's level2 has no checksum to catch it). A NaN
Decimal in a BookSnapshot raises InvalidOperation at the first comparison in the
engine's book; a negative size is a book nobody can quote on. The connector must not
pass such a book on: the feed is marked down naming the level, counted
(``malformed_books``), and the socket is replaced so the venue sends a fresh snapshot;
the feed goes on. Real ccxt Coinbase code against the mock venue over loopback.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs
import pytest

from mmkit.model import BookSnapshot, ConnectionStatus
from tests.integration.ccxt.conftest import FAST, ConnectorFactory
from tests.integration.ccxt.helpers import collect_until, of_type
from tests.integration.ccxt.mock_venue import MockVenueServer

pytestmark = [pytest.mark.integration, pytest.mark.shared_data]
D = Decimal


def _sane(book: BookSnapshot) -> bool:
    return all(p.is_finite() and q.is_finite() and p > 0 and q > 0 for p, q in book.bids + book.asks)


# Each level lands at the top of its side (the best bid is 63299.95, the best ask 63300.05): in the emitted book.
@pytest.mark.parametrize("side,level", [("bid", ("NaN", "0.5")), ("bid", ("63299.99", "-0.5")),
                                        ("ask", ("-1", "0.5")), ("bid", ("63299.99", "NaN")),
                                        ("bid", ("Infinity", "0.5")), ("ask", ("0", "0.5"))])
async def test_a_book_level_that_is_not_a_price_and_size_is_never_passed_on_and_the_feed_resyncs(
    server: MockVenueServer, make_connector: ConnectorFactory, side: str, level: tuple[str, str]
) -> None:
    coinbase = await make_connector("coinbase", attrs.evolve(FAST, stale_s=30.0))  # no stale churn meanwhile
    events: list[Any] = await collect_until(coinbase, lambda ev: bool(of_type(ev, BookSnapshot)), timeout_s=5.0)
    connections = server.connections["coinbase"]
    await server._push_update("coinbase", [level] if side == "bid" else [], [level] if side == "ask" else [])
    await collect_until(coinbase, lambda ev: any(
        not e.connected and "malformed" in e.reason for e in of_type(ev, ConnectionStatus)), into=events)
    assert coinbase.malformed_books == 1
    # A fresh snapshot over a new socket, and the feed goes on with sane books.
    await collect_until(coinbase, lambda ev: server.connections["coinbase"] > connections, into=events, timeout_s=5.0)
    mark = len(of_type(events, BookSnapshot))
    await server.set_mid("coinbase", D("63350.00"))
    await collect_until(coinbase, lambda ev: len(of_type(ev, BookSnapshot)) > mark, into=events, timeout_s=5.0)
    assert all(_sane(b) for b in of_type(events, BookSnapshot)), "a book with an impossible level was passed on"
    assert not coinbase._tasks["book:BTC-USD"].done()
