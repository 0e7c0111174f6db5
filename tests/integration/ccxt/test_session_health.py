"""The REST session's health follows when calls were sent, not when their answers came back.

The race (seen in CI on a loaded machine): a call sent while the venue was down comes
back 503 *after* a later call saw the venue answer again. That failure is older than
the proof of life, so it must not take the session down: a down session refuses
orders (NOT_CONNECTED) and the engine stops quoting until the next answer.

The Kraken mock holds one call in flight (``MockVenueServer.hold_next``: an order read,
a placement, a cancel) while the venue goes down, the venue comes back and a probe is
answered, and only then is the held call answered 503.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import attrs
import pytest

from connectors.ccxt.connector import CcxtConnector
from mmkit.connector import TransientVenueError
from mmkit.model import (
    ConnectionStatus,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderQueryFailed,
    OrderRejected,
    OrderRequest,
    RejectReason,
    Side,
    VenueEvent,
)
from tests.integration.ccxt.conftest import FAST, ConnectorFactory
from tests.integration.ccxt.helpers import collect_until, of_type
from tests.integration.ccxt.mock_venue import HeldRequest, MockVenueServer

pytestmark = [pytest.mark.integration, pytest.mark.shared_data]

SYMBOL = "BTC/USD"
#: Generous for a busy 2-core CI machine; every wait ends as soon as its condition holds.
WAIT_S = 5.0


def rest_statuses(events: list[VenueEvent]) -> list[ConnectionStatus]:
    return [e for e in of_type(events, ConnectionStatus) if e.session == "rest"]


def query_failed(events: list[VenueEvent], client_id: str) -> bool:
    return any(e.client_id == client_id for e in of_type(events, OrderQueryFailed))


def answers(events: list[VenueEvent]) -> list[VenueEvent]:
    """The venue's or the connector's verdict on a placed order."""
    return [e for e in events if isinstance(e, (OrderAccepted, OrderRejected))]


def order(client_id: str) -> OrderRequest:
    return OrderRequest(client_id, "kraken", SYMBOL, Side.BUY, Decimal("0.01"), Decimal("60000.0"))


async def take_down_with_a_call_held(server: MockVenueServer, kraken: CcxtConnector, call: str = "read") -> HeldRequest:
    """The venue goes down with one call of ours in flight (held), and a later read takes the session down.

    ``call``: "read" holds a status query (client id ``held-read``), "place" an order placement (``held-order``).
    """
    await collect_until(kraken, lambda ev: bool(rest_statuses(ev)), WAIT_S)  # connect's "up"
    server.set_rest_down(True)
    if call == "read":
        held = server.hold_next("QueryOrders", lambda form: "held-read" in form.values())
        kraken.request_order_status("held-read", SYMBOL)  # sent while the venue is down; answered on release
    else:
        held = server.hold_next("AddOrder", lambda form: form.get("cl_ord_id") == "held-order")
        kraken.place(order("held-order"))
    await asyncio.wait_for(held.arrived.wait(), WAIT_S)
    kraken.request_order_status("later-read", SYMBOL)  # sent after it: its 503 is news
    events = await collect_until(
        kraken, lambda ev: query_failed(ev, "later-read") and any(not s.connected for s in rest_statuses(ev)),
        WAIT_S,
    )
    assert not kraken.connected, events
    return held


async def release_stale_failure(kraken: CcxtConnector, held: HeldRequest, client_id: str = "held-read"
                                ) -> list[VenueEvent]:
    """Answer the held call 503 now that the session is up again; return the events until it was handled.

    A status query's or a placement's 503 both end in OrderQueryFailed ("could not ask"; "create outcome
    unknown"), emitted after the outcome went into the session health.
    """
    held.release(503)
    return await collect_until(kraken, lambda ev: query_failed(ev, client_id), WAIT_S)


@pytest.mark.parametrize(("call", "client_id"), [("read", "held-read"), ("place", "held-order")])
async def test_a_failure_sent_before_the_venue_answered_again_leaves_the_session_up(
    server: MockVenueServer, make_connector: ConnectorFactory, call: str, client_id: str
) -> None:
    kraken = await make_connector("kraken", book=False)
    held = await take_down_with_a_call_held(server, kraken, call)
    server.set_rest_down(False)
    # The poller probes while the session is down; its answer brings the session up.
    await collect_until(kraken, lambda ev: any(s.connected for s in rest_statuses(ev)), WAIT_S)
    assert kraken.connected
    events = await release_stale_failure(kraken, held, client_id)
    assert [s for s in rest_statuses(events) if not s.connected] == [], "a stale 503 took the session down"
    assert kraken.connected
    assert kraken.rest_health.stale_failures == 1
    kraken.place(order("after-stale"))
    events = await collect_until(kraken, lambda ev: bool(answers(ev)), WAIT_S)
    assert [type(e) for e in answers(events)] == [OrderAccepted], events


async def test_a_cancel_answered_503_after_the_venue_came_back_leaves_the_session_up(
    server: MockVenueServer, make_connector: ConnectorFactory
) -> None:
    """A cancel that reached the venue as it went down; the poller's failures since take the session down."""
    kraken = await make_connector("kraken", book=False)
    kraken.place(order("resting"))
    await collect_until(kraken, lambda ev: bool(answers(ev)), WAIT_S)
    held = server.hold_next("CancelOrder")
    kraken.cancel("resting", SYMBOL)
    await asyncio.wait_for(held.arrived.wait(), WAIT_S)
    server.set_rest_down(True)  # the poller's next listing (sent after the cancel) fails
    await collect_until(kraken, lambda ev: any(not s.connected for s in rest_statuses(ev)), WAIT_S)
    server.set_rest_down(False)
    await collect_until(kraken, lambda ev: any(s.connected for s in rest_statuses(ev)), WAIT_S)
    held.release(503)
    events = await collect_until(kraken, lambda ev: bool(of_type(ev, OrderCancelRejected)), WAIT_S)
    assert [s for s in rest_statuses(events) if not s.connected] == [], "a stale 503 took the session down"
    assert kraken.connected
    assert kraken.rest_health.stale_failures == 1
    kraken.cancel("resting", SYMBOL)  # asked again, now answered: the order is gone at the venue
    events = await collect_until(kraken, lambda ev: bool(of_type(ev, OrderCanceled)), WAIT_S)
    assert "resting" not in server.open_client_ids("kraken")


async def test_a_failure_sent_after_the_recovery_still_takes_the_session_down(
    server: MockVenueServer, make_connector: ConnectorFactory
) -> None:
    kraken = await make_connector("kraken", book=False)
    held = await take_down_with_a_call_held(server, kraken)
    server.set_rest_down(False)
    await collect_until(kraken, lambda ev: any(s.connected for s in rest_statuses(ev)), WAIT_S)
    await release_stale_failure(kraken, held)
    assert kraken.connected
    # The venue goes away again: a read sent now is fresh news and must take the session down.
    server.set_rest_down(True)
    kraken.request_order_status("fresh-read", SYMBOL)
    events = await collect_until(
        kraken, lambda ev: query_failed(ev, "fresh-read") and any(not s.connected for s in rest_statuses(ev)),
        WAIT_S,
    )
    assert not kraken.connected
    assert "503" in next(s for s in rest_statuses(events) if not s.connected).reason
    kraken.place(order("while-down"))
    events = await collect_until(kraken, lambda ev: bool(answers(ev)), WAIT_S)
    refused = of_type(events, OrderRejected)
    assert refused and refused[0].reason is RejectReason.NOT_CONNECTED, events


async def test_a_failure_sent_before_a_reconnect_leaves_the_session_up(
    server: MockVenueServer, make_connector: ConnectorFactory
) -> None:
    """The race CI met: ``connect()`` after the venue came back, then a 503 of a read sent before it.

    The poller is slowed so that ``connect()`` alone brings the session back.
    """
    kraken = await make_connector("kraken", book=False, config=attrs.evolve(FAST, poll_interval_s=60))
    held = await take_down_with_a_call_held(server, kraken)
    server.set_rest_down(False)
    await kraken.connect()
    assert kraken.connected
    events = await release_stale_failure(kraken, held)
    assert [s for s in rest_statuses(events) if not s.connected] == [], "a stale 503 took the session down"
    assert kraken.connected
    kraken.place(order("after-reconnect"))
    events = await collect_until(kraken, lambda ev: bool(answers(ev)), WAIT_S)
    assert [type(e) for e in answers(events)] == [OrderAccepted], events


async def test_a_reconnect_while_the_venue_is_still_down_says_so_and_stays_down(
    server: MockVenueServer, make_connector: ConnectorFactory
) -> None:
    """``connect()`` on a running connector that is down says "up" only on the venue's answer, never by itself."""
    kraken = await make_connector("kraken", book=False, config=attrs.evolve(FAST, poll_interval_s=60))
    await collect_until(kraken, lambda ev: bool(rest_statuses(ev)), WAIT_S)
    server.set_rest_down(True)
    kraken.request_order_status("down-read", SYMBOL)
    await collect_until(kraken, lambda ev: any(not s.connected for s in rest_statuses(ev)), WAIT_S)
    with pytest.raises(TransientVenueError, match="does not answer"):
        await kraken.connect()
    assert not kraken.connected
    server.set_rest_down(False)
    before = len(server.kraken_calls)
    await kraken.connect()
    assert kraken.connected
    assert [method for method, _ in server.kraken_calls[before:]] == ["BalanceEx"]  # the probe that proved it
