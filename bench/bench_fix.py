"""TrueX FIX round trip through the local exchange on loopback.

1. NOS -> ExecutionReport(New) latency, one order at a time: measured from
   ``place()`` until the OrderAccepted event is in the connector's inbox
   on the asyncio loop (so it includes the QuickFIX thread -> loop hand-off).
   Target: median < 1 ms.
2. Sustained throughput with the exchange's rate limits lifted: N orders
   submitted in bursts, every one must come back accepted (zero loss).
   Target: >= 1,000 orders/s.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from decimal import Decimal

from loguru import logger

from mmkit.model import OrderAccepted, OrderRequest, Side
from tests.integration.truex.harness import make_pair

LATENCY_ORDERS = 1000
THROUGHPUT_ORDERS = 5000
BURST = 250


def _signal_on_event(connector) -> asyncio.Event:
    """Wake the waiter when an event lands in the inbox (a busy poll would fight QuickFIX for the GIL)."""
    arrived = asyncio.Event()
    inbox = connector._inbox
    original = inbox.put

    def put(event) -> None:
        original(event)
        arrived.set()

    inbox.put = put
    return arrived


async def _wait_accepted(connector, arrived: asyncio.Event, pending: set[str], deadline: float) -> None:
    while pending and time.perf_counter() < deadline:
        for event in connector.drain():
            if isinstance(event, OrderAccepted):
                pending.discard(event.client_id)
        if pending:
            arrived.clear()
            if len(connector._inbox) == 0:
                try:
                    await asyncio.wait_for(arrived.wait(), timeout=max(0.0, deadline - time.perf_counter()))
                except TimeoutError:
                    return


def _order(i: int, prefix: str) -> OrderRequest:
    # distinct prices so the duplicate-order rule never fires; all rest (no crossing)
    price = Decimal(59000) + Decimal(i % 9000) / 10
    return OrderRequest(f"{prefix}{i}", "truex", "BTC-PYUSD", Side.BUY, Decimal("0.0001"), price, post_only=True)


async def _run() -> None:
    exchange, connector = make_pair(enforce_rate_limits=False)
    exchange.start()
    try:
        await connector.connect()
        arrived = _signal_on_event(connector)
        # 1. latency, one at a time
        samples: list[float] = []
        for i in range(LATENCY_ORDERS):
            order = _order(i, "L")
            began = time.perf_counter()
            connector.place(order)
            await _wait_accepted(connector, arrived, {order.client_id}, began + 5)
            samples.append((time.perf_counter() - began) * 1e6)
        samples.sort()
        p99 = samples[int(len(samples) * 0.99) - 1]
        print(
            f"   NOS->ER(New) round trip over {LATENCY_ORDERS}: median {statistics.median(samples):.0f} us, "
            f"p99 {p99:.0f} us, max {samples[-1]:.0f} us (target median < 1000 us)"
        )
        # 2. sustained throughput, rate limits lifted
        pending: set[str] = set()
        began = time.perf_counter()
        for start in range(0, THROUGHPUT_ORDERS, BURST):
            for i in range(start, start + BURST):
                order = _order(LATENCY_ORDERS + i, "T")
                pending.add(order.client_id)
                connector.place(order)
            await asyncio.sleep(0)
        await _wait_accepted(connector, arrived, pending, began + 60)
        elapsed = time.perf_counter() - began
        lost = len(pending)
        resting = len(exchange.open_orders())
        rate = THROUGHPUT_ORDERS / elapsed
        print(
            f"   sustained: {THROUGHPUT_ORDERS} orders in {elapsed:.2f} s = {rate:,.0f} orders/s, "
            f"lost {lost}, resting on exchange {resting} (target >= 1,000/s, zero loss)"
        )
    finally:
        await connector.disconnect()
        exchange.stop()


def main() -> None:
    logger.remove()  # keep the figures readable
    asyncio.run(_run())
