"""The whole engine on real FIX (loopback) against a TrueX that re-sends an execution under a new ExecID.

docs/reliability.md, "a venue re-sends an execution under a new exec id": the
engine booked 0.005 twice on a 0.01 bid, the ledger said FILLED while the venue
rested the order with 0.005 filled, and only a restart noticed. Here the
simulator (``ExchangeConfig(hostile="resent")``) sends, right after our first
real fill, the same execution again under a new ExecID carrying the order's
true CumQty. The engine (assembled as ``mmkit start`` assembles it, the TrueX
connector as its venue) must book it once, quarantine the copy
(``beyond_venue_cum``), halt quoting saying why, and end the run with exit 5.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal as D

from connectors.truex.connector import TrueXConnector
from mmkit.app.outcome import EXIT_LEDGER_HALT
from mmkit.model import Fill, OrderAccepted, OrderStatusReport, Side, VenueEvent
from mmkit.orders.validation import QuarantineKind
from mmkit.testing.harness import Harness
from strategies.simple import SimpleConfig, SimpleController
from tests.integration.truex.harness import make_pair


class Arrivals:
    """Every event the connector queues for the engine, as it arrives (a tap): wait on one, not on time."""

    def __init__(self, connector: TrueXConnector) -> None:
        self.events: list[VenueEvent] = []
        self._waiters: list[tuple[Callable[[VenueEvent], bool], asyncio.Future[VenueEvent]]] = []
        connector.add_event_tap(self._arrived)

    def _arrived(self, event: VenueEvent) -> None:
        self.events.append(event)
        for predicate, future in self._waiters:
            if not future.done() and predicate(event):
                future.set_result(event)

    async def wait_for(self, predicate: Callable[[VenueEvent], bool], count: int = 1, timeout: float = 20) -> None:
        """Until ``count`` arrived events (so far, in all) match ``predicate``."""
        while sum(1 for e in self.events if predicate(e)) < count:
            future: asyncio.Future[VenueEvent] = asyncio.get_running_loop().create_future()
            self._waiters.append((predicate, future))
            try:
                await asyncio.wait_for(future, timeout)
            finally:
                self._waiters.remove((predicate, future))


async def test_a_resent_execution_is_booked_once_halts_and_the_run_exits_5() -> None:
    exchange, connector = make_pair(strict=True, cancel_on_disconnect=True, hostile="resent")
    exchange.start()
    arrivals = Arrivals(connector)
    controller = SimpleController(SimpleConfig(half_spread_bps=D(10), order_size=D("0.01")))
    h = Harness(controller, rules=connector.rules, venue=connector)  # type: ignore[arg-type]
    engine = h.engine
    try:
        await engine.start()
        h.set_fair("60000")
        h.tick()  # quotes go out over FIX
        await arrivals.wait_for(lambda e: isinstance(e, OrderAccepted), count=2)
        h.tick()
        [bid] = [o for o in engine.orders.open_orders() if o.side is Side.BUY]
        assert engine.outcome.exit_code() == 0 and h.quotes  # type: ignore[truthy-function]

        exchange.submit_taker(Side.SELL, D("0.005"), D("59000"))  # hits our bid for half of it
        resent = lambda e: isinstance(e, Fill) and e.trade_id.endswith("-RESENT")  # noqa: E731
        await arrivals.wait_for(resent)
        h.tick()

        fills = [e for e in arrivals.events if isinstance(e, Fill)]
        real, copy = fills
        assert real.qty == copy.qty == D("0.005") and real.venue_order_id == copy.venue_order_id
        assert real.venue_cum_qty == copy.venue_cum_qty == D("0.005")  # the venue's own count, on both
        # The connector saw its count (0.010 passed on) run ahead of the venue's and said so to the engine.
        shortfall = [e for e in arrivals.events if isinstance(e, OrderStatusReport)]
        assert [r.filled_qty for r in shortfall] == [D("0.005")] and connector.cum_qty_mismatches == 1

        # Booked once: the ledger is the venue's.
        assert h.position == D("0.005") and [f.trade_id for f in engine.fills] == [real.trade_id]
        order = engine.orders.get(bid.client_id)
        assert order is not None and order.filled_qty == D("0.005") and not order.is_done
        venue_side = [r for r in exchange.orders_snapshot() if r["clordid"] == bid.client_id]
        assert [r["cum_qty"] for r in venue_side] == ["0.005"]
        # Quarantined, said why, halted, exit 5.
        [bad] = engine.stream.quarantined
        assert bad.kind is QuarantineKind.BEYOND_VENUE_CUM and bad.fill.trade_id == copy.trade_id
        [problem] = engine.outcome.problems
        assert "beyond_venue_cum" in problem.reason and real.venue_order_id in problem.reason
        assert "mmkit reconcile" in problem.reason
        assert engine.outcome.exit_code() == EXIT_LEDGER_HALT
        kill_switch = engine.runner.kill_switch
        assert kill_switch is not None and kill_switch.ledger_halted
        h.tick()  # the halt pulls the quotes: nothing new goes out
        await arrivals.wait_for(lambda e: not exchange.open_orders(), timeout=20)
    finally:
        await connector.disconnect()
        exchange.stop()
    assert exchange.open_orders() == []
