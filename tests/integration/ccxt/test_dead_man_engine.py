"""The whole engine quoting on the Kraken mock: its quotes are pulled while the dead man's switch is not armed.

Real parts end to end: ``assemble()`` (the quoting gate it adds for a connector that names
why quotes must not rest), a REALTIME clock with a 20 ms tick, the simple controller pricing
off the venue's own book, the ccxt connector and ccxt's Kraken code against the mock, whose
open orders are the truth checked. Kraken answers ``CancelAllOrdersAfter`` with
``EGeneral:Permission denied`` for a while (a key whose permission was taken away): quoting
stops and the quotes are cancelled at the venue, though the REST session answers; when the
refresh is answered again, quoting resumes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal as D
from typing import Any

import attrs
import pytest

from mmkit.app.assembly import RiskSettings, assemble
from mmkit.clock import Clock, ClockMode
from mmkit.model import NS_PER_MS, NS_PER_S
from strategies.simple import SimpleConfig, SimpleController
from tests.integration.ccxt.mock_venue import MockVenueServer
from tests.integration.ccxt.test_conformance_ccxt import make_venue_connector
from tests.integration.ccxt.test_dead_man import ARMED

pytestmark = [pytest.mark.integration, pytest.mark.shared_data]

SYMBOL = "BTC/USD"


async def until(holds: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    """Wait while the engine's clock runs in its own task, until ``holds()`` (bounded; generous for CI)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while not holds():
        assert loop.time() < end, f"not within {timeout_s} s: {what}"
        await asyncio.sleep(0.02)


async def stop_and_leave_nothing_open(clock: Clock, running: asyncio.Task[None], connector: Any,
                                      server: MockVenueServer) -> None:
    """Stop the clock, cancel what still rests at the mock Kraken and wait until nothing does, disconnect."""
    clock.request_stop()
    await asyncio.wait_for(running, 10.0)
    for client_id in server.open_client_ids("kraken"):
        connector.cancel(client_id, SYMBOL)
    await until(lambda: server.open_client_ids("kraken") == [], "nothing left open")
    await connector.disconnect()


async def test_the_engine_pulls_its_quotes_while_kraken_refuses_the_dead_mans_switch(server: MockVenueServer) -> None:
    connector = await make_venue_connector(server, "kraken", attrs.evolve(ARMED, dead_man_halt_after_s=0.6))
    clock = Clock(ClockMode.REALTIME, tick_ns=20 * NS_PER_MS)
    controller = SimpleController(SimpleConfig(half_spread_bps=D(50), order_size=D("0.001")))
    engine = assemble(clock, connector, SYMBOL, controller, risk=RiskSettings(kill_switch=None),
                      staleness_ns=600 * NS_PER_S)  # the mock's book only moves when told to
    await engine.start()
    running = asyncio.get_running_loop().create_task(clock.run())
    try:
        await until(lambda: len(server.open_client_ids("kraken")) == 2, "two quotes resting")

        server.kraken_method_errors["CancelAllOrdersAfter"] = "EGeneral:Permission denied"
        await until(lambda: connector.quoting_halt_reason() is not None, "the halt")
        await until(lambda: server.open_client_ids("kraken") == [], "the quotes pulled at the venue")
        assert connector.connected, "the REST session answers: only quoting stopped"
        placed = sum(1 for m, _ in server.kraken_calls if m == "AddOrder")
        failures = connector.dead_man.failures
        await until(lambda: connector.dead_man.failures >= failures + 3, "three more refused refreshes")
        assert sum(1 for m, _ in server.kraken_calls if m == "AddOrder") == placed, "quoted while not armed"
        assert engine.runner.stats.halted_ticks > 0

        del server.kraken_method_errors["CancelAllOrdersAfter"]
        await until(lambda: len(server.open_client_ids("kraken")) == 2, "quoting resumed once armed")
        assert connector.dead_man.halts == 1
    finally:
        await stop_and_leave_nothing_open(clock, running, connector, server)
