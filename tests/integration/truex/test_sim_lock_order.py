"""The local TrueX exchange survives its market thread and a client's order flow and logouts at once.

Regression test for a lock-order deadlock: QuickFIX runs ``onLogout`` while
holding the session's mutex (``Session::disconnect``) and that callback takes
the exchange's lock; the market driver used to hold the exchange's lock while
calling ``sendToTarget``, which needs the session mutex. A client logging out
while the driver published market data froze the simulator: the next logon
was never answered and ``stop()`` never returned. Here the driver runs in its
own thread at a millisecond interval (a 35=X to the client on every step and
taker fills of the client's orders), while the client places, cancels, logs
out and logs back on, round after round, over real QuickFIX on loopback.
"""

from __future__ import annotations

import asyncio
import threading
import time
from decimal import Decimal

import pytest

from connectors.truex.sim.driver import MarketDriver, RandomWalk
from mmkit.model import Fill, OrderAccepted, OrderCanceled, OrderRejected, OrderRequest, Side, VenueEvent
from tests.integration.truex.harness import Collector, make_pair

pytestmark = pytest.mark.integration

ROUNDS = 8
ORDERS_PER_ROUND = 10
QTY = Decimal("0.003")
STOP_BOUND_S = 20.0


def _stop_within(bound_s: float, *stoppers: object) -> float:
    """Run the stop calls on a daemon thread; the elapsed seconds, or an assertion if they hang."""
    done = threading.Event()

    def run() -> None:
        for stop in stoppers:
            stop()  # type: ignore[operator]
        done.set()

    started = time.monotonic()
    threading.Thread(target=run, name="stop-under-test", daemon=True).start()
    assert done.wait(bound_s), f"stopping the simulator took more than {bound_s}s (deadlocked?)"
    return time.monotonic() - started


def _terminal(events: list[VenueEvent], client_id: str) -> int | None:
    """Index of the event after which the order can get no more reports (canceled, rejected or filled)."""
    filled = Decimal(0)
    for index, event in enumerate(events):
        if getattr(event, "client_id", None) != client_id:
            continue
        if isinstance(event, (OrderCanceled, OrderRejected)):
            return index
        if isinstance(event, Fill):
            filled += event.qty
            if filled >= QTY:
                return index
    return None


async def test_driver_and_client_logouts_do_not_deadlock() -> None:
    exchange, connector = make_pair(enforce_rate_limits=False, cancel_on_disconnect=True)
    driver = MarketDriver(
        exchange,
        RandomWalk(Decimal(60000), Decimal(0)),
        interval_s=0.001,
        taker_probability=1.0,
        taker_qty=Decimal("0.001"),
        taker_reach_bps=Decimal(12),
        maker_levels=3,
        seed=5,
    )
    oe_comp = exchange.config.accounts[0].oe_comp_id
    exchange.start()
    driver.step()
    driver.start()
    stopped = False
    try:
        placed: list[str] = []
        collector = Collector(connector)
        for round_no in range(ROUNDS):
            await asyncio.wait_for(connector.connect(), timeout=30)  # a frozen simulator never answers
            connector.subscribe_book("BTC-PYUSD")
            ids = []
            for i in range(ORDERS_PER_ROUND):
                k = round_no * ORDERS_PER_ROUND + i
                side = Side.BUY if i % 2 == 0 else Side.SELL
                price = Decimal(59999 - k % 60) if side is Side.BUY else Decimal(60001 + k % 60)
                client_id = f"lk{round_no}-{i}"
                connector.place(OrderRequest(client_id, "truex", "BTC-PYUSD", side, QTY, price, post_only=True))
                ids.append(client_id)
            for client_id in ids:
                await collector.wait_for(
                    lambda e, c=client_id: isinstance(e, (OrderAccepted, OrderRejected)) and e.client_id == c,
                    timeout=15,
                )
            for client_id in ids:
                if _terminal(collector.of_type(object), client_id) is None:
                    connector.cancel(client_id, "BTC-PYUSD")
            for client_id in ids:
                await collector.wait_for(lambda _e, c=client_id: _terminal(collector.events, c) is not None, 15)
            placed.extend(ids)
            await connector.disconnect()  # logout while the driver keeps publishing to this session
        driver.stop()
        elapsed = _stop_within(STOP_BOUND_S, exchange.stop)
        stopped = True
        assert elapsed < STOP_BOUND_S

        # every order got its reports, in order: by its last report, the client had heard of every fill
        venue = {o["clordid"]: Decimal(o["cum_qty"]) for o in exchange.orders_snapshot(oe_comp)}
        events = collector.of_type(object)
        fills_seen = 0
        for client_id in placed:
            end = _terminal(events, client_id)
            assert end is not None, f"{client_id}: no final report"
            fills = [(n, e) for n, e in enumerate(events) if isinstance(e, Fill) and e.client_id == client_id]
            before = sum((e.qty for n, e in fills if n <= end), Decimal(0))
            after = [e for n, e in fills if n > end]
            assert not after, f"{client_id}: a fill came after the order's final report"
            assert before == venue.get(client_id, Decimal(0)), f"{client_id}: client heard {before}, venue {venue}"
            fills_seen += before > 0
        assert fills_seen > 0, "the driver's takers never filled a client order: the test exercised nothing"
        assert exchange.outbox.sent > 0
    finally:
        await connector.disconnect()
        if not stopped:
            driver.stop()
            _stop_within(STOP_BOUND_S, exchange.stop)


def test_outbox_keeps_order_and_drops_what_a_logout_left_behind() -> None:
    """One FIFO, one sender: messages leave in queue order; those queued before a logout never leave."""
    import quickfix as fix

    from connectors.truex.sim.outbox import Outbox

    sent: list[tuple[str, str]] = []
    gate = threading.Event()

    def send(session_id: fix.SessionID, message: fix.Message) -> bool:
        gate.wait(10)  # hold the sender so that the logout happens while messages are still queued
        sent.append((session_id.getTargetCompID().getValue(), message.getField(11)))
        return True

    a = fix.SessionID("FIXT.1.1", "EX", "A")
    b = fix.SessionID("FIXT.1.1", "EX", "B")
    outbox = Outbox("t", send)
    outbox.start()
    for n in range(200):
        message = fix.Message()
        message.setField(11, str(n))
        outbox.put(a if n % 2 == 0 else b, message)
    outbox.session_ended(b)  # B logs out before anything left: its queued messages are stale
    late = fix.Message()
    late.setField(11, "late")
    outbox.put(b, late)  # queued after the logout: belongs to B's next connection
    gate.set()
    assert outbox.stop(timeout_s=30)
    assert sent == [("A", str(n)) for n in range(0, 200, 2)] + [("B", "late")]
    assert outbox.dropped_stale == 100 and outbox.sent == 101
