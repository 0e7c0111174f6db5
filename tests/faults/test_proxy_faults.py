"""Network faults between the engine's FIX initiator and the TrueX simulator (issue 11, case 2).

Real parts on loopback: the strict TrueX simulator (published set only, the
venue's own fills log), a :class:`tests.faults.proxy.FaultProxy` in front of
its order-entry port, the TrueX connector, and mmkit's ClientOrderTracker and
UserStreamTracker (fill validation, CumQty checks). Each case asserts:

* position == the venue's own fills, exactly;
* no fill counted twice;
* nothing left open at the venue after stop;
* the ledger stayed correct, or it was halted (a LedgerAlarm) saying why.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path

import pytest

from connectors.truex.config import SessionEndpoint, TrueXConfig
from connectors.truex.connector import TrueXConnector
from connectors.truex.sim.exchange import ExchangeAccount, ExchangeConfig, TrueXExchange
from mmkit.model import ZERO, Fill, OrderRequest, Side
from mmkit.orders.states import OrderState
from mmkit.orders.tracker import ClientOrderTracker
from mmkit.orders.validation import LedgerAlarm, QuarantinedFill
from mmkit.stream import UserStreamTracker
from tests.faults.proxy import Direction, FaultProxy, Mode
from tests.integration.truex.harness import API_KEY, SECRET, free_ports, unique_comp_ids

SYMBOL = "BTC-PYUSD"


class LedgerRig:
    """Venue (strict TrueX sim) <- proxy <- TrueX connector -> order tracker -> stream (the ledger)."""

    def __init__(self, tmp: Path, exchange_config: dict[str, object] | None = None) -> None:
        self.oe_comp, self.md_comp = unique_comp_ids()
        oe_port, md_port = free_ports(2)
        self.fills_log = tmp / "venue-fills.jsonl"
        self.exchange = TrueXExchange(
            ExchangeConfig(
                oe_port=oe_port,
                md_port=md_port,
                accounts=(ExchangeAccount(self.oe_comp, self.md_comp, API_KEY, SECRET),),
                strict=True,
                fills_log=str(self.fills_log),
                **(exchange_config or {}),  # type: ignore[arg-type]
            )
        )
        self.exchange.set_reference_price(Decimal(60000))
        self.proxy = FaultProxy(oe_port)
        self._md_port = md_port
        self.connector: TrueXConnector | None = None
        self.booked: list[Fill] = []
        self.alarms: list[LedgerAlarm] = []
        self.quarantined: list[QuarantinedFill] = []

    async def start(self) -> None:
        self.exchange.start()
        self.proxy.start()
        config = TrueXConfig(
            oe=SessionEndpoint("127.0.0.1", self.proxy.port, self.oe_comp, "TRUEX_UAT_OE"),
            md=SessionEndpoint("127.0.0.1", self._md_port, self.md_comp, "TRUEX_UAT_MD"),
            party_id="PARTY1",
            connect_timeout_s=Decimal(10),
            request_timeout_s=Decimal(2),
            heartbeat_s=1,
            reconnect_s=1,
        )
        self.connector = TrueXConnector(config, env={"TRUEX_API_KEY": API_KEY, "TRUEX_SECRET_KEY": SECRET})
        self.tracker = ClientOrderTracker(self.connector)
        self.stream = UserStreamTracker(self.tracker)
        self.stream.fair_price = lambda: Decimal(60000)
        self.stream.add_fill_listener(self.booked.append)
        self.stream.add_alarm_listener(self.alarms.append)
        self.stream.add_quarantine_listener(self.quarantined.append)
        await self.connector.connect()

    async def stop(self) -> None:
        """Cancel everything and confirm with the venue's own view that nothing is open."""
        try:
            if self.connector is not None and self.connector.connected:
                self.tracker.cancel_all()
                await self.pump(lambda: not self.exchange.open_orders(self.oe_comp), 10)
        finally:
            if self.connector is not None:
                await self.connector.disconnect()
            self.proxy.stop()
            self.exchange.stop()

    async def pump(self, until: Callable[[], bool], timeout: float) -> None:
        """Feed the connector's events into the ledger until ``until()`` holds."""
        assert self.connector is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self.stream.process(self.connector.drain())
            self.tracker.tick(time.time_ns())
            if until():
                return
            if loop.time() > deadline:
                raise AssertionError(f"condition not met in {timeout}s; alarms={self.alarms}, booked={self.booked}")
            await asyncio.sleep(0.01)

    def submit(self, cid: str, side: Side, price: str, qty: str) -> None:
        request = OrderRequest(cid, "truex", SYMBOL, side, Decimal(qty), Decimal(price), post_only=True)
        self.tracker.submit(request, time.time_ns())

    def position(self) -> Decimal:
        return sum((f.qty * f.side.sign for f in self.booked), ZERO)

    def venue_fills(self) -> list[dict[str, str]]:
        lines = self.fills_log.read_text().splitlines() if self.fills_log.exists() else []
        return [json.loads(line) for line in lines if json.loads(line)["comp_id"] == self.oe_comp]

    def venue_position(self) -> Decimal:
        return sum(
            (Decimal(f["qty"]) * (1 if f["side"] == Side.BUY.value else -1) for f in self.venue_fills()), ZERO
        )

    def assert_ledger_matches_venue(self) -> None:
        assert self.position() == self.venue_position(), (self.booked, self.venue_fills())
        ids = [f.trade_id for f in self.booked]
        assert len(ids) == len(set(ids)), "a fill was counted twice"


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[LedgerRig]:
    rig = LedgerRig(tmp_path)
    await rig.start()
    try:
        yield rig
    finally:
        await rig.stop()
    assert rig.exchange.open_orders(rig.oe_comp) == [], "an order was left open at the venue"


def _open(rig: LedgerRig, cid: str) -> Callable[[], bool]:
    return lambda: (o := rig.tracker.get(cid)) is not None and o.state is OrderState.OPEN


async def _lose_fills_then_heal(rig: LedgerRig, mode: Mode) -> None:
    rig.submit("s1", Side.SELL, "60005", "0.03")
    await rig.pump(_open(rig, "s1"), 5)
    rig.proxy.set(Direction.DOWN, mode)
    rig.exchange.submit_taker(Side.BUY, Decimal("0.01"), Decimal("60010"))
    rig.exchange.submit_taker(Side.BUY, Decimal("0.01"), Decimal("60010"))
    assert rig.connector is not None
    connector = rig.connector
    await rig.pump(lambda: not connector.connected, 10)  # within ~2 heartbeats, not 24 s
    rig.proxy.heal()
    await rig.pump(lambda: bool(rig.alarms), 20)


async def test_dropped_venue_to_engine_bytes_book_the_missing_fills_and_halt(rig: LedgerRig) -> None:
    await _lose_fills_then_heal(rig, Mode.DROP)
    assert rig.booked and all(f.trade_id.startswith("SYN-") for f in rig.booked)
    assert "fills missing" in rig.alarms[0].reason
    rig.assert_ledger_matches_venue()
    assert rig.position() == Decimal("-0.02")


async def test_corrupted_venue_to_engine_bytes_book_the_missing_fills_and_halt(rig: LedgerRig) -> None:
    await _lose_fills_then_heal(rig, Mode.CORRUPT)
    assert "fills missing" in rig.alarms[0].reason
    rig.assert_ledger_matches_venue()
    assert rig.position() == Decimal("-0.02")


async def test_silent_venue_is_declared_down_within_two_heartbeats(rig: LedgerRig) -> None:
    assert rig.connector is not None
    connector = rig.connector
    rig.proxy.set(Direction.DOWN, Mode.BLACKHOLE)
    loop = asyncio.get_running_loop()
    began = loop.time()
    await rig.pump(lambda: not connector.connected, 10)
    assert loop.time() - began < 2 * 1 + 0.75  # heartbeat 1 s; 0.25 s watchdog period; a busy box
    assert connector.watchdog_drops == 1
    rig.proxy.heal()
    await rig.pump(lambda: connector.connected, 15)
    rig.assert_ledger_matches_venue()


async def test_blackholed_engine_to_venue_orders_are_found_missing_not_assumed(rig: LedgerRig) -> None:
    rig.proxy.set(Direction.UP, Mode.BLACKHOLE)
    for n in range(3):
        rig.submit(f"b{n}", Side.BUY, f"5999{n}", "0.001")
    assert rig.connector is not None
    connector = rig.connector
    # Down either way: our watchdog (three actions unanswered) or the venue's (our heartbeats unanswered).
    await rig.pump(lambda: not connector.connected, 15)
    rig.proxy.heal()
    await rig.pump(lambda: all(rig.tracker.get(f"b{n}").is_done for n in range(3)), 20)  # type: ignore[union-attr]
    # FAILED when the venue never saw them; CANCELED when the held bytes reached it late and the
    # reconnect's probe (or the venue's cancel-on-disconnect) took them down. Never assumed filled or live.
    states = {rig.tracker.get(f"b{n}").state for n in range(3)}  # type: ignore[union-attr]
    assert states <= {OrderState.FAILED, OrderState.CANCELED}, states
    assert rig.alarms == [] and rig.position() == 0
    rig.assert_ledger_matches_venue()


async def test_delayed_traffic_keeps_a_correct_ledger(rig: LedgerRig) -> None:
    rig.proxy.set_both(Mode.DELAY, delay_s=0.2)
    rig.submit("d1", Side.SELL, "60005", "0.03")
    await rig.pump(_open(rig, "d1"), 10)
    rig.exchange.submit_taker(Side.BUY, Decimal("0.01"), Decimal("60010"))
    rig.exchange.submit_taker(Side.BUY, Decimal("0.005"), Decimal("60010"))
    await rig.pump(lambda: rig.position() == Decimal("-0.015"), 10)
    assert rig.alarms == [] and rig.quarantined == []
    rig.assert_ledger_matches_venue()
