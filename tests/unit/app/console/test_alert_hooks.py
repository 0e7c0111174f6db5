"""What raises an alert, on the real engine (mmkit.testing.Harness), delivered over real HTTP.

The console is opened as ``mmkit start`` opens it (Console(built) then ``open``); a receiver on
loopback records what arrives. Covered here: a kill-switch trip, a ledger problem recorded on the
run's outcome (what a quarantined fill or a ledger mismatch records), an engine failure, and the
quoting venue down longer than ``venue_down_after_s`` (then back).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from decimal import Decimal as D
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web

from mmkit.app.config import ConsoleAlertsSection, ConsoleSection, EngineSection, WebhookSection
from mmkit.app.console.runtime import Console
from mmkit.app.outcome import ProblemKind
from mmkit.connector import rules_for
from mmkit.instrument import IncrementBand, Instrument
from mmkit.model import Fill, Liquidity, Side
from mmkit.risk.hedge import HedgeConfig, HedgeExecutor
from mmkit.risk.inventory import InventoryConfig, InventoryManager
from mmkit.store.recorder import Recorder
from mmkit.testing.fake_connector import FakeConnector
from mmkit.testing.harness import Harness
from strategies.simple import SimpleConfig, SimpleController

pytestmark = pytest.mark.integration


@pytest.fixture
async def hook() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/alert", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/alert", received
    finally:
        await runner.cleanup()


async def _until(predicate: Any, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_trips_problems_and_venue_outages_alert(hook: tuple[str, list[dict[str, Any]]], tmp_path: Path) -> None:
    url, received = hook
    h = Harness(SimpleController(SimpleConfig(half_spread_bps=D(10), order_size=D("0.5"))))
    h.set_fair("60000")
    h.tick(2)
    alerts = ConsoleAlertsSection(
        webhooks=[WebhookSection(url)], backoff_s=D("0.05"), venue_down_after_s=D("0.5"), min_interval_s=D(60)
    )
    config = SimpleNamespace(
        console=ConsoleSection(alerts=alerts), engine=EngineSection(instance="unit", output_dir=str(tmp_path))
    )
    console = Console(SimpleNamespace(engine=h.engine, config=config, hedge=None))
    await console.open(None, None)
    try:
        kinds = lambda: [a["kind"] for a in received]  # noqa: E731

        kill = h.engine.runner.kill_switch
        assert kill is not None
        kill.trip(h.clock.now_ns, "unit emergency")
        await _until(lambda: "kill_switch" in kinds())

        h.engine.outcome.record(ProblemKind.LEDGER_HALT, "quarantined fill T-1 on sim", h.clock.now_ns)
        h.engine.outcome.record(ProblemKind.LEDGER_HALT, "quarantined fill T-1 on sim", h.clock.now_ns)  # repeat
        h.engine.outcome.record(ProblemKind.ENGINE_FAILURE, "controller failed 50 ticks in a row")
        await _until(lambda: "ledger" in kinds() and "problem" in kinds())
        ledger = [a for a in received if a["kind"] == "ledger"]
        assert len(ledger) == 1 and ledger[0]["details"] == {"problem": "ledger_halt", "exit_code": 5}

        checks = console.watch_checks
        await _until(lambda: console.watch_checks > checks)  # the watcher has seen the venue up
        await h.venue.disconnect()
        began = time.monotonic()
        await _until(lambda: "venue_down" in kinds())
        assert time.monotonic() - began >= 0.5  # not before venue_down_after_s
        await h.venue.connect()
        await _until(lambda: "venue_up" in kinds())
        assert kinds().count("venue_down") == 1
        trip = next(a for a in received if a["kind"] == "kill_switch")
        assert trip["message"] == "kill switch tripped: unit emergency" and trip["instance"] == "unit"
        assert trip["details"]["pnl_unit"] == "PYUSD" and trip["details"]["pnl_quote"] == trip["details"]["pnl"]
    finally:
        await console.close()


async def test_a_trip_on_an_inverse_contract_names_the_coin_and_its_usd_value(
    hook: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    """The alert's PnL of a COIN-M contract is in BTC: it says so, with its USD value at the mark."""
    url, received = hook
    h = Harness(SimpleController(SimpleConfig(half_spread_bps=D(10), order_size=D(3))), rules="binance_coinm")
    h.set_fair("60000")
    h.tick(3)
    buy = h.venue.fill(next(o for o in h.venue.open_orders if o.side is Side.BUY).client_id)
    h.set_fair("61000")
    h.tick(3)
    config = SimpleNamespace(
        console=ConsoleSection(alerts=ConsoleAlertsSection(webhooks=[WebhookSection(url)], backoff_s=D("0.05"))),
        engine=EngineSection(instance="unit", output_dir=str(tmp_path)),
    )
    console = Console(SimpleNamespace(engine=h.engine, config=config, hedge=None))
    await console.open(None, None)
    try:
        kill = h.engine.runner.kill_switch
        assert kill is not None
        kill.trip(h.clock.now_ns, "unit emergency")
        await _until(lambda: any(a["kind"] == "kill_switch" for a in received))
    finally:
        await console.close()
    details = next(a for a in received if a["kind"] == "kill_switch")["details"]
    fee_btc = buy.fee if buy.fee_currency == "BTC" else buy.fee / buy.price
    total_btc = 3 * D(100) * (1 / buy.price - 1 / D(61000)) - fee_btc
    assert details["pnl_unit"] == "BTC"
    assert abs(D(details["pnl"]) - total_btc) < D("1e-15"), (details, total_btc)
    assert abs(D(details["pnl_quote"]) - total_btc * 61000) < D("1e-9"), (details, total_btc * 61000)


async def test_store_write_failures_alert(hook: tuple[str, list[dict[str, Any]]], tmp_path: Path) -> None:
    """A real recorder whose SQLite database is locked by another connection: its writes fail, the console alerts."""
    url, received = hook
    (tmp_path / "store").mkdir()
    db = tmp_path / "store" / "mmkit.sqlite"
    recorder = Recorder(f"sqlite:///{db}", instance="unit", connect_timeout_s=0.2, retry_initial_s=0.01,
                        retry_max_s=0.05)  # fmt: skip
    recorder.start()
    h = Harness(SimpleController(SimpleConfig(half_spread_bps=D(10), order_size=D("0.5"))))
    alerts = ConsoleAlertsSection(webhooks=[WebhookSection(url)], backoff_s=D("0.05"))
    config = SimpleNamespace(
        console=ConsoleSection(alerts=alerts), engine=EngineSection(instance="unit", output_dir=str(tmp_path))
    )
    console = Console(SimpleNamespace(engine=h.engine, config=config, hedge=None))
    # the persistence the console watches: the real recorder, and an audit trail with no errors
    persistence = SimpleNamespace(recorder=recorder, audit=SimpleNamespace(trail=SimpleNamespace(errors=0)))
    await console.open(persistence, None)
    lock = sqlite3.connect(db, isolation_level=None)
    try:
        lock.execute("BEGIN EXCLUSIVE")
        assert recorder.record_order("c1", "sim", "BTC-USD", Side.BUY, price=D("100"), qty=D("1"),
                                     filled_qty=D("0"), state="OPEN", venue_order_id="V1", ts_ns=1)  # fmt: skip
        await _until(lambda: any(a["kind"] == "store" for a in received), 30)
        alert = next(a for a in received if a["kind"] == "store")
        assert alert["subject"] == "write" and alert["details"]["db_errors"] >= 1, alert
        assert "store write failures" in alert["message"]
    finally:
        lock.execute("COMMIT")
        lock.close()
        await console.close()
        recorder.close(timeout_s=5.0)


async def test_a_hedge_that_cannot_complete_alerts(hook: tuple[str, list[dict[str, Any]]], tmp_path: Path) -> None:
    """A real HedgeExecutor with a position to hedge and its venue down: the gate stops hedging, the console alerts."""
    url, received = hook
    h = Harness(SimpleController(SimpleConfig(half_spread_bps=D(10), order_size=D("0.5"))))
    instrument = Instrument("kraken", "BTC/USD", "BTC", "USD", (IncrementBand(D(0), D("0.1"), D("0.00000001")),))
    kraken = FakeConnector(rules_for([instrument], "kraken", supports_market_orders=True), validate=False)
    inventory = InventoryManager(InventoryConfig(max_position=D(5), hedge_threshold=D(2), emergency_position=D(6)))
    inventory.on_fill(
        Fill(venue="truex", trade_id="q1", client_id="quote", symbol="BTC-PYUSD", side=Side.BUY, price=D("100000"),
             qty=D(3), fee=D(0), fee_currency="PYUSD", liquidity=Liquidity.MAKER, ts_event=0, ts_recv=0)
    )  # fmt: skip
    hedger = HedgeExecutor(
        kraken, inventory, touch=lambda side: D("100000.0"), config=HedgeConfig(), listeners=[inventory.on_fill],
        drain_connector=True,
    )  # fmt: skip
    hedger.start(None, 0)  # type: ignore[arg-type]
    alerts = ConsoleAlertsSection(webhooks=[WebhookSection(url)], backoff_s=D("0.05"))
    config = SimpleNamespace(
        console=ConsoleSection(alerts=alerts), engine=EngineSection(instance="unit", output_dir=str(tmp_path))
    )
    console = Console(SimpleNamespace(engine=h.engine, config=config, hedge=hedger))
    await console.open(None, None)
    try:
        kraken._connected = False  # the hedge venue's session dropped (as the hedge gate's own tests do)
        hedger.tick(0)
        assert kraken.placed == [] and hedger.stop_reason is not None
        await _until(lambda: any(a["kind"] == "hedge" for a in received))
        alert = next(a for a in received if a["kind"] == "hedge")
        assert alert["subject"] == "hedge_stopped" and "kraken is not connected" in alert["message"], alert
        assert alert["details"]["position"] == "3"
    finally:
        await console.close()
