"""While Kraken refuses the dead man's switch, every display names the gate; once it is armed, none does.

The engine of tests/integration/ccxt/test_dead_man_engine.py (``assemble()``, a REALTIME clock, the
ccxt connector and ccxt's Kraken code against the mock), with the real ControlChannel on it: the
status block, the channel's status and the final report must say that the venue's guard holds
quoting and why while ``CancelAllOrdersAfter`` is refused, and say nothing of it once quoting resumed.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal as D
from types import SimpleNamespace

import attrs
import pytest

from mmkit.app.assembly import RiskSettings, assemble
from mmkit.app.control.channel import ControlChannel, TickWaiter
from mmkit.app.report import final_report, status_block
from mmkit.clock import Clock, ClockMode
from mmkit.model import NS_PER_MS, NS_PER_S
from strategies.simple import SimpleConfig, SimpleController
from tests.integration.ccxt.mock_venue import MockVenueServer
from tests.integration.ccxt.test_conformance_ccxt import make_venue_connector
from tests.integration.ccxt.test_dead_man import ARMED
from tests.integration.ccxt.test_dead_man_engine import SYMBOL, stop_and_leave_nothing_open, until

pytestmark = [pytest.mark.integration, pytest.mark.shared_data]


async def test_the_refused_dead_mans_switch_is_shown_while_it_holds_and_cleared_after(
    server: MockVenueServer,
) -> None:
    connector = await make_venue_connector(server, "kraken", attrs.evolve(ARMED, dead_man_halt_after_s=0.6))
    clock = Clock(ClockMode.REALTIME, tick_ns=20 * NS_PER_MS)
    controller = SimpleController(SimpleConfig(half_spread_bps=D(50), order_size=D("0.001")))
    engine = assemble(clock, connector, SYMBOL, controller, risk=RiskSettings(kill_switch=None),
                      staleness_ns=600 * NS_PER_S)
    ticks = TickWaiter()
    clock.add_iterator(ticks, name="control")
    channel = ControlChannel(engine, audit=None, ticks=ticks, instance="kraken-mock")
    runner = engine.runner
    await engine.start()
    running = asyncio.get_running_loop().create_task(clock.run())
    try:
        await until(lambda: len(server.open_client_ids("kraken")) == 2, "two quotes resting")
        assert channel.status()["gates"] == [] and channel.status()["quoting"] == "active"

        server.kraken_method_errors["CancelAllOrdersAfter"] = "EGeneral:Permission denied"
        await until(lambda: runner.gate_hold is not None, "the gate holding quoting")
        await until(lambda: server.open_client_ids("kraken") == [], "the quotes pulled at the venue")
        status = channel.status()
        (gate,) = status["gates"]
        assert gate["gate"] == "venue kraken", status
        assert "Permission denied" in gate["reason"] or "dead man" in gate["reason"], status
        assert status["quoting"].startswith("held by gate venue kraken: "), status
        block = status_block(engine, clock.now_ns)
        assert "[HELD by gate venue kraken for " in block, block

        del server.kraken_method_errors["CancelAllOrdersAfter"]
        await until(lambda: len(server.open_client_ids("kraken")) == 2, "quoting resumed once armed")
        await until(lambda: runner.gate_hold is None, "the hold over")
        assert channel.status()["gates"] == [] and channel.status()["quoting"] == "active"
        assert "[quoting]" in status_block(engine, clock.now_ns)
    finally:
        await stop_and_leave_nothing_open(clock, running, connector, server)
    built = SimpleNamespace(path="kraken.yml", description="mock", hedge=None)
    (tally,) = final_report(engine, built, [])["quoting_gates"]
    assert tally["gate"] == "venue kraken" and tally["holds"] >= 1
    assert 0 < tally["ticks"] <= runner.stats.halted_ticks + runner.stats.disconnected_ticks
    assert tally["first_ns"] <= tally["last_ns"]
