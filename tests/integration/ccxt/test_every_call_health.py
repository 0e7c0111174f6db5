"""Every ccxt REST call feeds the REST session's health, ordered by when it was sent.

Before: the reconciliation reads (open orders, order status by the engine, balances,
trade history) and the dead man's switch refreshes did not count: a venue whose
``OpenOrders`` answered 503 while ``AddOrder`` worked left the session "up", so the
engine kept sending orders while it could not see its own. Now every call takes a
send number before its await (``CcxtBase._rest``), and the newest-sent call whose
outcome is known decides, whichever of the connector's paths made it.

The Kraken mock answers with Kraken's own payloads and status codes, parsed by
ccxt's real code (no internet): ``kraken_method_status`` makes one endpoint answer
503 while the others work, ``hold_next`` keeps one call in flight so that its
outcome arrives after a later call's.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import attrs
import pytest

from connectors.ccxt.connector import CcxtConnector
from mmkit.connector import TransientVenueError
from mmkit.model import ConnectionStatus, OrderAccepted, OrderRejected, OrderRequest, RejectReason, Side, VenueEvent
from tests.integration.ccxt.conftest import FAST, ConnectorFactory
from tests.integration.ccxt.helpers import collect_until, of_type
from tests.integration.ccxt.mock_venue import MockVenueServer

pytestmark = [pytest.mark.integration, pytest.mark.shared_data]

SYMBOL = "BTC/USD"
WAIT_S = 5.0
#: The poller out of the way: only the calls a test makes reach the venue.
QUIET = attrs.evolve(FAST, poll_interval_s=60)


def rest_statuses(events: list[VenueEvent]) -> list[ConnectionStatus]:
    return [e for e in of_type(events, ConnectionStatus) if e.session == "rest"]


def order(client_id: str) -> OrderRequest:
    return OrderRequest(client_id, "kraken", SYMBOL, Side.BUY, Decimal("0.01"), Decimal("60000.0"))


def verdicts(events: list[VenueEvent]) -> list[VenueEvent]:
    return [e for e in events if isinstance(e, (OrderAccepted, OrderRejected))]


#: The reconciliation reads, each with the Kraken private method behind it.
RECONCILIATION: dict[str, tuple[str, Callable[[CcxtConnector], Awaitable[Any]]]] = {
    "fetch_open_orders": ("OpenOrders", lambda c: c.fetch_open_orders(SYMBOL)),
    "fetch_balances": ("BalanceEx", lambda c: c.fetch_balances()),
    "fetch_fills": ("TradesHistory", lambda c: c.fetch_fills(SYMBOL, 1)),
    "fetch_order_status": ("QueryOrders", lambda c: c.fetch_order_status("ok1", SYMBOL)),
}


@pytest.mark.parametrize("call", sorted(RECONCILIATION))
async def test_a_503_of_a_reconciliation_read_sent_after_an_accepted_order_takes_the_session_down(
    server: MockVenueServer, make_connector: ConnectorFactory, call: str
) -> None:
    """One endpoint failing while order entry works: the newest-sent call failed, so the session is down."""
    kraken = await make_connector("kraken", book=False, config=QUIET)
    kraken.place(order("ok1"))
    events = await collect_until(kraken, lambda ev: bool(verdicts(ev)), WAIT_S)
    assert [type(e) for e in verdicts(events)] == [OrderAccepted]
    assert kraken.connected

    method, read = RECONCILIATION[call]
    server.kraken_method_status[method] = 503
    with pytest.raises(TransientVenueError):
        await read(kraken)
    assert not kraken.connected, f"a 503 from {method} left the session up"
    events = await collect_until(kraken, lambda ev: any(not s.connected for s in rest_statuses(ev)), WAIT_S)
    assert "ExchangeNotAvailable" in next(s for s in rest_statuses(events) if not s.connected).reason

    kraken.place(order("refused1"))  # nothing is sent while the newest-sent call failed
    events = await collect_until(kraken, lambda ev: bool(verdicts(ev)), WAIT_S)
    [refused] = verdicts(events)
    assert isinstance(refused, OrderRejected) and refused.reason is RejectReason.NOT_CONNECTED
    assert [f.get("cl_ord_id") for m, f in server.kraken_calls if m == "AddOrder"] == ["ok1"]


async def test_an_order_answered_late_does_not_bring_up_a_session_a_later_listing_found_down(
    server: MockVenueServer, make_connector: ConnectorFactory
) -> None:
    """Out of order, one way: the order was sent first, the failing listing second; the order's answer last."""
    kraken = await make_connector("kraken", book=False, config=QUIET)
    held = server.hold_next("AddOrder", lambda form: form.get("cl_ord_id") == "late1")
    kraken.place(order("late1"))
    await asyncio.wait_for(held.arrived.wait(), WAIT_S)
    server.kraken_method_status["OpenOrders"] = 503
    with pytest.raises(TransientVenueError):
        await kraken.fetch_open_orders(SYMBOL)
    assert not kraken.connected
    held.release(None)  # the venue answers the order now: accepted, but older news than the listing's 503
    events = await collect_until(kraken, lambda ev: bool(verdicts(ev)), WAIT_S)
    assert [type(e) for e in verdicts(events)] == [OrderAccepted]
    assert not kraken.connected, "a late answer to an older call brought the session up"
    assert kraken.rest_health.stale_answers == 1
    assert [s.connected for s in rest_statuses(events)][-1] is False, "an 'up' was told after the 503"


async def test_a_listing_503_that_arrives_after_a_later_order_was_answered_leaves_the_session_up(
    server: MockVenueServer, make_connector: ConnectorFactory
) -> None:
    """Out of order, the other way: the listing was sent first and fails last; the order sent after it worked."""
    kraken = await make_connector("kraken", book=False, config=QUIET)
    await collect_until(kraken, lambda ev: bool(rest_statuses(ev)), WAIT_S)  # connect's "up"
    held = server.hold_next("OpenOrders")
    listing = asyncio.get_running_loop().create_task(kraken.fetch_open_orders(SYMBOL))
    await asyncio.wait_for(held.arrived.wait(), WAIT_S)
    kraken.place(order("after1"))
    events = await collect_until(kraken, lambda ev: bool(verdicts(ev)), WAIT_S)
    assert [type(e) for e in verdicts(events)] == [OrderAccepted]
    held.release(503)
    with pytest.raises(TransientVenueError):
        await asyncio.wait_for(listing, WAIT_S)  # its caller still sees the failure
    events = kraken.drain()
    assert kraken.connected and [s for s in rest_statuses(events) if not s.connected] == []
    assert kraken.rest_health.stale_failures == 1


async def test_the_poller_listing_503_while_order_entry_works_is_told_each_time_the_state_changes(
    server: MockVenueServer, make_connector: ConnectorFactory
) -> None:
    """OpenOrders down for good, AddOrder fine: the session follows the newest-sent call, both ways, loudly.

    The poller's listing fails (down), its probe and its order reads are answered (up): the
    state changes only with a fresh outcome, and each change is one ConnectionStatus.
    """
    kraken = await make_connector("kraken", book=False)
    kraken.place(order("rest1"))
    await collect_until(kraken, lambda ev: bool(verdicts(ev)), WAIT_S)
    server.kraken_method_status["OpenOrders"] = 503
    events = await collect_until(
        kraken, lambda ev: sum(1 for s in rest_statuses(ev) if not s.connected) >= 2, WAIT_S)
    changes = [s.connected for s in rest_statuses(events)]
    assert all(a != b for a, b in itertools.pairwise(changes)), f"a repeated state was told: {changes}"
    assert "rest1" in server.open_client_ids("kraken")
