"""Books through real ccxt.pro code: snapshot, updates, checksum/sequence failure -> resync, reconnects."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from mmkit.model import BookSnapshot, ConnectionStatus
from tests.integration.ccxt.conftest import ConnectorFactory
from tests.integration.ccxt.helpers import collect_until, of_type
from tests.integration.ccxt.mock_venue import MockVenueServer

pytestmark = [pytest.mark.integration, pytest.mark.shared_data]
D = Decimal


def books(events: list[Any]) -> list[BookSnapshot]:
    return of_type(events, BookSnapshot)


async def test_kraken_snapshot_is_the_recorded_fixture(make_connector: ConnectorFactory) -> None:
    kraken = await make_connector("kraken")
    events = await collect_until(kraken, lambda ev: bool(books(ev)))
    snap = books(events)[0]
    assert snap.symbol == "BTC/USD"
    assert snap.bids[0] == (D("63299.4"), D("0.00209987"))
    assert snap.asks[0] == (D("63299.5"), D("0.4388201"))
    assert snap.checksum == 1490766955  # the venue's checksum from ccxt's recorded frame
    assert kraken.checksum_failures == 0


async def test_kraken_updates_pass_checksum(server: MockVenueServer, make_connector: ConnectorFactory) -> None:
    kraken = await make_connector("kraken")
    await collect_until(kraken, lambda ev: bool(books(ev)))
    for mid in ("63310.0", "63320.0", "63305.5"):
        await server.set_mid("kraken", D(mid))
    events = await collect_until(kraken, lambda ev: any(b.bids[0][0] == D("63305.0") for b in books(ev)))
    assert books(events)[-1].asks[0][0] == D("63306.0")
    assert kraken.checksum_failures == 0
    assert server.connections["kraken"] == 1


async def test_kraken_checksum_failure_resyncs(server: MockVenueServer, make_connector: ConnectorFactory) -> None:
    kraken = await make_connector("kraken")
    await collect_until(kraken, lambda ev: bool(books(ev)))
    server.corrupt_next_checksum()
    await server.set_mid("kraken", D("63400.0"))
    events = await collect_until(
        kraken, lambda ev: any(b.bids[0][0] == D("63399.5") for b in books(ev)) and server.connections["kraken"] == 2
    )
    downs = [e for e in of_type(events, ConnectionStatus) if not e.connected]
    assert downs and "checksum mismatch" in downs[0].reason
    assert kraken.checksum_failures == 1
    assert server.subscribes["kraken"] == 2  # a fresh snapshot was asked for
    # the book after the bad frame was never published: the first new book follows the resync
    index_down = events.index(downs[0])
    assert all(b.bids[0][0] != D("63399.5") for b in books(events[:index_down]))


async def test_coinbase_sequence_gap_resyncs(server: MockVenueServer, make_connector: ConnectorFactory) -> None:
    coinbase = await make_connector("coinbase")
    await collect_until(coinbase, lambda ev: bool(books(ev)))
    server.skip_next_sequence()
    await server.set_mid("coinbase", D("63350.00"))
    events = await collect_until(coinbase, lambda ev: server.subscribes["coinbase"] >= 2 and bool(books(ev)))
    assert coinbase.sequence_gaps == 1
    assert any("sequence gap" in e.reason for e in of_type(events, ConnectionStatus) if not e.connected)
    # the gapped update was dropped; the resync snapshot carries the venue's current book
    assert books(events)[-1].bids[0][0] == D("63349.95")


async def test_coinbase_subscribes_heartbeats(server: MockVenueServer, make_connector: ConnectorFactory) -> None:
    coinbase = await make_connector("coinbase")
    await collect_until(coinbase, lambda ev: bool(books(ev)))
    await server.set_mid("coinbase", D("63301.00"))
    events = await collect_until(coinbase, lambda ev: any(b.bids[0][0] == D("63300.95") for b in books(ev)))
    assert books(events)
    assert coinbase.sequence_gaps == 0  # heartbeats share the sequence and are counted


async def test_gemini_book(make_connector: ConnectorFactory) -> None:
    gemini = await make_connector("gemini")
    events = await collect_until(gemini, lambda ev: bool(books(ev)))
    assert books(events)[0].symbol == "BTCUSD"
    assert books(events)[0].bids[0] == (D("63299.95"), D("0.5"))


async def test_disconnect_reconnects_with_fresh_snapshot(
    server: MockVenueServer, make_connector: ConnectorFactory
) -> None:
    kraken = await make_connector("kraken")
    await collect_until(kraken, lambda ev: bool(books(ev)))
    await server.drop_connections("kraken")
    events = await collect_until(kraken, lambda ev: server.connections["kraken"] >= 2 and bool(books(ev)))
    statuses = of_type(events, ConnectionStatus)
    assert [s.connected for s in statuses][:1] == [False]
    assert statuses[-1].connected
    assert kraken.checksum_failures == 0


async def test_silent_hang_is_caught_by_the_watchdog(server: MockVenueServer, make_connector: ConnectorFactory) -> None:
    kraken = await make_connector("kraken")
    await collect_until(kraken, lambda ev: bool(books(ev)))
    server.hang("kraken")  # socket stays open, nothing arrives
    events = await collect_until(kraken, lambda ev: any(not s.connected for s in of_type(ev, ConnectionStatus)))
    assert "stale" in next(s for s in of_type(events, ConnectionStatus) if not s.connected).reason
    assert kraken.watchdogs["book:BTC/USD"].stale_events >= 1
    server.hang("kraken", False)
    await collect_until(kraken, lambda ev: bool(books(ev)), into=[])
    assert server.connections["kraken"] >= 2
