"""A ccxt venue whose order answer says LESS is filled than the ledger booked: halt while running, no false halts.

Real ccxt code parses the mock venue's Kraken payloads (``vol_exec`` as Kraken
sends it; no internet). The order's ``filled`` in an answer is set against the
trades the connector passed on before that request went out; below it, the
engine's stream halts (docs/reliability.md, "ledger ahead of the venue"). An
answer that only predates trades passed on while it was in flight is not a
finding: the status query is "could not ask" and is asked again.
"""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import attrs
import pytest

from connectors.ccxt.connector import CcxtConnector
from mmkit.connector import TransientVenueError
from mmkit.model import Fill, OrderAccepted, OrderQueryFailed, OrderRequest, OrderStatusReport, Side, VenueEvent
from mmkit.orders.tracker import ClientOrderTracker
from mmkit.orders.validation import LedgerAlarm
from mmkit.stream import UserStreamTracker
from tests.integration.ccxt.conftest import FAST, ConnectorFactory
from tests.integration.ccxt.helpers import collect_until, of_type
from tests.integration.ccxt.mock_venue import MockVenueServer

pytestmark = [pytest.mark.integration, pytest.mark.shared_data]


class Ledger:
    """Order tracker + stream on a connector: what the engine books, and its alarms."""

    def __init__(self, connector: CcxtConnector) -> None:
        self.tracker = ClientOrderTracker(connector)
        self.stream = UserStreamTracker(self.tracker)
        self.booked: list[Fill] = []
        self.alarms: list[LedgerAlarm] = []
        self.stream.add_fill_listener(self.booked.append)
        self.stream.add_alarm_listener(self.alarms.append)

    def take(self, events: list[VenueEvent], start: int) -> int:
        self.stream.process(events[start:])
        return len(events)


async def test_an_order_listing_below_the_booked_quantity_halts_once(
    server: MockVenueServer, make_connector: ConnectorFactory
) -> None:
    kraken = await make_connector("kraken", book=False)
    ledger = Ledger(kraken)
    ledger.tracker.submit(OrderRequest("la1", "kraken", "BTC/USD", Side.BUY, D("0.01"), D("60000.0")))
    events = await collect_until(kraken, lambda ev: bool(of_type(ev, OrderAccepted)))
    server.fill("kraken", "la1", D("0.004"), D("60000.0"))
    await collect_until(kraken, lambda ev: bool(of_type(ev, Fill)), timeout_s=5.0, into=events)
    seen = ledger.take(events, 0)
    assert [f.qty for f in ledger.booked] == [D("0.004")] and ledger.alarms == []

    # The venue now answers 0.002 filled on it (Kraken's vol_exec "0.00200000"): the ledger is ahead.
    server.find_by_client_id("la1").vol_exec = D("0.002")
    await collect_until(kraken, lambda ev: bool(of_type(ev, OrderStatusReport)), timeout_s=5.0, into=events)
    calls = len(server.kraken_calls)
    await collect_until(kraken, lambda ev: len(server.kraken_calls) >= calls + 3, timeout_s=5.0, into=events)
    ledger.take(events, seen)
    [report] = of_type(events, OrderStatusReport)  # one report, not one per poll
    assert report.filled_qty == D("0.002") and report.client_id == "la1"
    [alarm] = ledger.alarms
    assert "ledger ahead of venue" in alarm.reason and "reports 0.002 filled on la1" in alarm.reason
    assert "booked 0.004" in alarm.reason and "mmkit reconcile" in alarm.reason
    assert ledger.stream.ledger_ahead == 1 and sum(f.qty for f in ledger.booked) == D("0.004")  # nothing removed


async def test_a_status_answer_that_predates_trades_passed_on_meanwhile_is_not_a_finding(
    server: MockVenueServer, make_connector: ConnectorFactory
) -> None:
    """The REST answer left the venue before a trade the connector passed on while it was in flight."""
    kraken = await make_connector("kraken", book=False, config=attrs.evolve(FAST, poll_interval_s=60))
    ledger = Ledger(kraken)
    ledger.tracker.submit(OrderRequest("lr1", "kraken", "BTC/USD", Side.BUY, D("0.01"), D("60000.0")))
    events = await collect_until(kraken, lambda ev: bool(of_type(ev, OrderAccepted)))
    fetch = kraken._fetch_raw_order

    async def answer_then_a_trade_lands(client_id: str, symbol: str, tracked: Any) -> Any:
        raw = await fetch(client_id, symbol, tracked)  # the venue's view: nothing filled yet
        server.fill("kraken", "lr1", D("0.003"), D("60000.0"))  # ... and meanwhile a trade, passed on first
        trades = await kraken._exchange.fetch_my_trades("BTC/USD")
        kraken._book_trades(trades, "BTC/USD")
        return raw

    kraken._fetch_raw_order = answer_then_a_trade_lands  # type: ignore[method-assign]
    with pytest.raises(TransientVenueError, match="predates trades"):
        await kraken.fetch_order_status("lr1", "BTC/USD")
    kraken._fetch_raw_order = fetch  # type: ignore[method-assign]
    ledger.take(events + kraken.drain(), 0)
    assert [f.qty for f in ledger.booked] == [D("0.003")]
    assert ledger.alarms == [] and ledger.stream.ledger_ahead == 0
    # Asked again, the answer is current: a report that agrees with the ledger.
    kraken.request_order_status("lr1", "BTC/USD")
    later = await collect_until(kraken, lambda ev: bool(of_type(ev, OrderStatusReport | OrderQueryFailed)))
    ledger.take(later, 0)
    [report] = of_type(later, OrderStatusReport)
    assert report.filled_qty == D("0.003") and ledger.alarms == []
