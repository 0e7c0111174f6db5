"""The venue-side dead man's switch: quotes die at the venue when the engine stops ticking.

Kraken's CancelAllOrdersAfter and Gemini's heartbeat session are played by the
mock venue with their own timers; the connector pushes them back only while
its inbox is drained (once per engine tick). The timeouts are shrunk to a
second so the test runs quickly; the shipped default is Kraken's recommended
60 s refreshed every 15 s (Gemini's 30 s is fixed by the venue).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import attrs
import pytest
from loguru import logger

from connectors.ccxt.connector import CcxtConnector
from mmkit.model import ConnectionStatus, OrderAccepted, OrderCanceled, OrderRequest, Side
from tests.integration.ccxt.conftest import FAST
from tests.integration.ccxt.mock_venue import MockVenueServer
from tests.integration.ccxt.test_conformance_ccxt import make_venue_connector

pytestmark = [pytest.mark.integration, pytest.mark.shared_data]

ARMED = attrs.evolve(FAST, dead_man_timeout_s=1.0, dead_man_refresh_s=0.1, dead_man_tick_grace_s=0.3)
SYMBOLS = {"kraken": "BTC/USD", "gemini": "BTCUSD"}


@pytest.fixture
async def server() -> AsyncIterator[MockVenueServer]:
    srv = MockVenueServer()
    srv.gemini_heartbeat_timeout_s = 1.0  # the mock's stand-in for Gemini's fixed 30 s
    await srv.start()
    yield srv
    await srv.stop()


async def _armed(server: MockVenueServer, venue: str) -> CcxtConnector:
    connector = await make_venue_connector(server, venue, ARMED)
    await connector.connect()
    return connector


async def _ticking(connector: CcxtConnector, seconds: float) -> list[object]:
    """Drain like the engine's router does, every 20 ms."""
    events: list[object] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        events.extend(connector.drain())
        await asyncio.sleep(0.02)
    return events


async def _place(connector: CcxtConnector, server: MockVenueServer, venue: str) -> str:
    bids, _ = server.books[venue].top(1)
    price = bids[0][0] - 50
    qty = connector.rules.instrument(SYMBOLS[venue]).min_qty * 100
    order = OrderRequest("dm1", venue, SYMBOLS[venue], Side.BUY, qty, price, post_only=True)
    connector.place(order)
    await _ticking_until(connector, lambda e: isinstance(e, OrderAccepted), "the order accepted")
    return order.client_id


async def _ticking_until(connector: CcxtConnector, wanted: Callable[[object], bool], what: str) -> None:
    """Drain like the engine (every 20 ms) until an event matches; generous for a loaded machine."""
    loop = asyncio.get_running_loop()
    end = loop.time() + 10.0
    while loop.time() < end:
        if any(wanted(e) for e in connector.drain()):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not within 10 s: {what}")


@pytest.mark.parametrize("venue", ["kraken", "gemini"])
async def test_orders_live_while_ticking_and_die_at_the_venue_when_ticks_stop(
    server: MockVenueServer, venue: str
) -> None:
    connector = await _armed(server, venue)
    try:
        client_id = await _place(connector, server, venue)
        await _ticking(connector, 2.0)  # twice the venue's timeout: the refreshes keep the order alive
        assert client_id in server.open_client_ids(venue)
        assert connector.dead_man.refreshes >= 5
        if venue == "kraken":
            assert server.kraken_deadman_calls and set(server.kraken_deadman_calls) == {1}

        # The engine hangs: nobody drains. The connector stops refreshing; the venue's timer runs out.
        loop = asyncio.get_running_loop()
        began = loop.time()
        while client_id in server.open_client_ids(venue):
            assert loop.time() - began < 5.0, "the venue did not cancel the quotes of a stalled engine"
            await asyncio.sleep(0.05)
        assert connector.dead_man.skipped > 0

        # Ticks resume: the engine learns that the venue cancelled the order.
        await _ticking_until(
            connector, lambda e: isinstance(e, OrderCanceled) and e.client_id == client_id, "the cancel seen"
        )
    finally:
        await connector.disconnect()
    if venue == "kraken":
        assert server.kraken_deadman_calls[-1] == 0, "a clean stop disarms the countdown"


async def test_coinbase_has_no_dead_mans_switch(server: MockVenueServer) -> None:
    """Coinbase Advanced Trade offers no cancel-after timer: nothing is armed, orders rest (documented)."""
    connector = await make_venue_connector(server, "coinbase")
    assert not connector.dead_man.active


# -- the switch failing: quoting halts while it is not armed ------------------------------------------------------

#: ccxt gives up on a call after this many ms (the mock never answers a stalled call).
CLIENT_TIMEOUT_MS = 150


async def _ticking_while(connector: CcxtConnector, holds: Callable[[], bool], what: str,
                         events: list[object]) -> None:
    """Drain like the engine (every 20 ms) until ``holds()``; the drained events are kept in ``events``."""
    loop = asyncio.get_running_loop()
    end = loop.time() + 10.0
    while not holds():
        assert loop.time() < end, f"not within 10 s: {what}; last events {events[-5:]}"
        events.extend(connector.drain())
        await asyncio.sleep(0.02)
    events.extend(connector.drain())


def _dead_man_statuses(events: list[object]) -> list[ConnectionStatus]:
    return [e for e in events if isinstance(e, ConnectionStatus) and e.session == "dead-man"]


async def test_refreshes_timing_out_halt_quoting_with_the_reason_until_one_is_answered(server: MockVenueServer) -> None:
    """Kraken's CancelAllOrdersAfter stops answering: every refresh times out at the client.

    The venue's countdown runs from the last answered refresh; past the bound the
    connector says why quotes must not rest there (the engine's quoting gate reads it),
    tells it once (ERROR, a ``dead-man`` ConnectionStatus, ``halts``), and each timed-out
    refresh was a REST outcome like any other (the session went down on it). One
    answered refresh arms the switch again and the halt ends by itself.
    """
    # A bound of six refresh periods: a refresh slowed by a busy machine must not halt before the stall.
    connector = await make_venue_connector(server, "kraken", attrs.evolve(ARMED, dead_man_halt_after_s=0.6))
    connector.exchange.timeout = CLIENT_TIMEOUT_MS
    await connector.connect()
    events: list[object] = []
    try:
        await _ticking_while(connector, lambda: connector.dead_man.refreshes >= 1, "the first refresh", events)
        assert connector.quoting_halt_reason() is None
        server.stall("CancelAllOrdersAfter")
        await _ticking_while(connector, lambda: connector.quoting_halt_reason() is not None, "the halt", events)
        reason = connector.quoting_halt_reason()
        assert reason is not None and "dead man's switch last refreshed" in reason
        await _ticking_while(connector, lambda: connector.dead_man.failures_in_a_row >= 2, "two timed-out refreshes",
                             events)
        assert "RequestTimeout" in str(connector.dead_man.last_error)
        assert "RequestTimeout" in str(connector.quoting_halt_reason())
        assert connector.dead_man.halts == 1
        [down] = _dead_man_statuses(events)
        assert not down.connected and "kraken: dead man's switch last refreshed" in down.reason
        rest_down = [e for e in events if isinstance(e, ConnectionStatus) and e.session == "rest" and not e.connected]
        assert any("RequestTimeout" in e.reason and "CancelAllOrdersAfter" in e.reason for e in rest_down), rest_down

        server.stall("CancelAllOrdersAfter", False)
        await _ticking_while(connector, lambda: connector.quoting_halt_reason() is None, "armed again", events)
        assert [s.connected for s in _dead_man_statuses(events)] == [False, True]
        assert connector.dead_man.halts == 1
    finally:
        await connector.disconnect()


async def test_a_refresh_the_venue_refuses_halts_quoting_at_once(server: MockVenueServer) -> None:
    """The venue answers no (a key without the permission): the session is up, but nothing protects the quotes."""
    server.kraken_method_errors["CancelAllOrdersAfter"] = "EGeneral:Permission denied"
    connector = await make_venue_connector(server, "kraken", ARMED)
    await connector.connect()
    events: list[object] = []
    try:
        await _ticking_while(connector, lambda: connector.dead_man.failures >= 1, "a refused refresh", events)
        reason = connector.quoting_halt_reason()
        assert reason is not None and "kraken refused the dead man's switch refresh" in reason
        assert "Permission denied" in reason
        assert connector.connected  # an answer: the REST session is up, only quoting must stop
        assert connector.dead_man.halts == 1
        del server.kraken_method_errors["CancelAllOrdersAfter"]
        await _ticking_while(connector, lambda: connector.quoting_halt_reason() is None, "armed", events)
    finally:
        await connector.disconnect()


async def test_no_quoting_before_the_switch_is_first_armed(server: MockVenueServer) -> None:
    """Right after connect, until the venue answered one refresh, the switch is not known to be armed."""
    held = server.hold_next("CancelAllOrdersAfter")
    connector = await make_venue_connector(server, "kraken", ARMED)
    await connector.connect()
    events: list[object] = []
    try:
        await asyncio.wait_for(held.arrived.wait(), 10.0)
        reason = connector.quoting_halt_reason()
        assert reason is not None and "not armed yet" in reason
        assert connector.dead_man.halts == 0  # waiting at start is not a failure
        held.release(None)
        await _ticking_while(connector, lambda: connector.quoting_halt_reason() is None, "armed", events)
    finally:
        await connector.disconnect()


async def test_a_refresh_loop_ended_by_a_stray_cancel_halts_quoting_says_why_and_is_restarted(
    server: MockVenueServer,
) -> None:
    """ccxt cancels its pending calls when a session closes: a refresh raises CancelledError nobody asked for.

    The error comes out of ccxt's own method (the one place ccxt is stood in for: a mock
    venue cannot make ccxt's session close under one call). Before: the loop ended,
    ``running`` went False, and the guard said "armed" while nothing refreshed the venue's
    timer until the next connect (refreshes stopped, quoting went on). Now the ended loop
    is a halt reason, logged at ERROR with its cause, and the loop starts again: the halt
    ends once a refresh is answered.
    """
    connector = await make_venue_connector(server, "kraken", ARMED)
    await connector.connect()
    events: list[object] = []
    errors: list[str] = []
    sink = logger.add(lambda m: errors.append(str(m)), level="ERROR")
    try:
        await _ticking_while(connector, lambda: connector.dead_man.refreshes >= 1, "the first refresh", events)
        assert connector.quoting_halt_reason() is None
        real = connector.exchange.cancel_all_orders_after

        async def session_closed(*args: object) -> object:
            connector.exchange.cancel_all_orders_after = real  # once: the next session answers
            raise asyncio.CancelledError()

        connector.exchange.cancel_all_orders_after = session_closed
        await _ticking_while(connector, lambda: bool(_dead_man_statuses(events)), "the halt", events)
        [down] = _dead_man_statuses(events)
        assert not down.connected and "dead man's switch loop ended" in down.reason
        assert "CancelledError" in down.reason
        assert [e for e in errors if "loop ended" in e and "CancelledError" in e], errors
        assert connector.dead_man.halts == 1
        refreshes = connector.dead_man.refreshes
        await _ticking_while(connector, lambda: connector.quoting_halt_reason() is None, "armed again", events)
        assert connector.dead_man.refreshes > refreshes and connector.loop_restarts == 1
        assert [s.connected for s in _dead_man_statuses(events)] == [False, True]
        calls = len(server.kraken_deadman_calls)
        await _ticking_while(connector, lambda: len(server.kraken_deadman_calls) >= calls + 3, "refreshes go on",
                             events)
        assert connector.quoting_halt_reason() is None
    finally:
        logger.remove(sink)
        await connector.disconnect()
    assert server.kraken_deadman_calls[-1] == 0, "a clean stop disarms the countdown"
    assert connector.loop_restarts == 1, "a disconnect is no death"


async def test_a_switch_left_to_the_keys_new_holder_is_neither_refreshed_nor_disarmed(server: MockVenueServer) -> None:
    """After our market claim is lost (mmkit.app.market_claim.MarketClaimGate), Kraken's per-key countdown guards
    the new holder's quotes: the connector stops refreshing it for good (the watchdog does not restart the loop)
    and its clean stop does not send CancelAllOrdersAfter(0). Before: refreshes went on, and the stop disarmed."""
    connector = await make_venue_connector(server, "kraken", ARMED)
    await connector.connect()
    events: list[object] = []
    try:
        await _ticking_while(connector, lambda: connector.dead_man.refreshes >= 2, "refreshes", events)
        assert connector.yield_shared_switch("market lock lost: instance theirs holds it")
        calls = len(server.kraken_deadman_calls)
        # Ten refresh periods of ticking (the loop refreshes every 0.1 s): nothing more reaches the venue's timer.
        loop = asyncio.get_running_loop()
        end = loop.time() + 10 * connector.dead_man.refresh_s
        while loop.time() < end:
            events.extend(connector.drain())
            await asyncio.sleep(0.02)
        assert len(server.kraken_deadman_calls) in (calls, calls + 1)  # at most the refresh already in flight
        assert connector.loop_restarts == 0 and "dead-man" not in connector._tasks
        assert connector.dead_man_yielded is not None
    finally:
        await connector.disconnect()
    assert 0 not in server.kraken_deadman_calls, "the stop disarmed the new holder's countdown"


async def test_a_connector_without_a_per_key_switch_has_nothing_to_leave(server: MockVenueServer) -> None:
    connector = await make_venue_connector(server, "coinbase", ARMED)
    await connector.connect()
    try:
        assert not connector.yield_shared_switch("market lock lost") and connector.dead_man_yielded is None
    finally:
        await connector.disconnect()
