"""The in-run ledger check of a ccxt venue (connectors/ccxt/ledger_check.py), against a hostile Kraken.

Kraken's executions and trade history carry no cumulative filled quantity, so a
trade booked twice or one that never reached us on an order that has *finished*
was seen only at the next restart. Now the connector sets the venue's answers
against what it passed on while running, and the engine's stream (the judge,
as for every status answer) halts when they disagree. Real ccxt code parses the
mock's Kraken payloads (no internet); every wait is bounded.
"""

from __future__ import annotations

from decimal import Decimal as D

import attrs
import pytest
from loguru import logger

from connectors.ccxt.connector import CcxtConnector
from mmkit.model import Fill, OrderAccepted, OrderCanceled, OrderRequest, OrderStatusReport, Side, VenueEvent
from mmkit.stream import SYNTHETIC_PREFIX
from tests.integration.ccxt.conftest import FAST, ConnectorFactory
from tests.integration.ccxt.helpers import collect_until, of_type
from tests.integration.ccxt.mock_venue import MockVenueServer
from tests.integration.ccxt.test_conformance_ccxt import make_venue_connector
from tests.integration.ccxt.test_ledger_ahead_ccxt import Ledger

pytestmark = [pytest.mark.integration, pytest.mark.shared_data]

SYMBOL = "BTC/USD"
WAIT_S = 5.0
#: The check runs often; the poller is out of the way unless a test wants it.
CHECKING = attrs.evolve(FAST, poll_interval_s=60, ledger_check_s=0.05, ledger_behind_grace_s=0.3)


def bid(client_id: str) -> OrderRequest:
    return OrderRequest(client_id, "kraken", SYMBOL, Side.BUY, D("0.01"), D("60000.0"), post_only=True)


async def run_ledger(connector: CcxtConnector, ledger: Ledger, events: list[VenueEvent], done: object,
                     what: str) -> None:
    """Drain into the ledger until ``done()`` holds (bounded)."""
    def check(ev: list[VenueEvent]) -> bool:
        ledger.stream.process(ev[len(check.seen):])  # type: ignore[attr-defined]
        check.seen = list(ev)  # type: ignore[attr-defined]
        return bool(done())  # type: ignore[operator]
    check.seen = list(events)  # type: ignore[attr-defined]
    try:
        await collect_until(connector, check, WAIT_S, into=events)
    except AssertionError as exc:
        raise AssertionError(f"{what}: {exc}") from None


async def test_a_trade_streamed_twice_after_the_order_was_cancelled_halts_as_ledger_ahead(
    server: MockVenueServer,
) -> None:
    """Kraken streams an execution again under a new exec id after the order finished: booked twice, then caught.

    Before: the copy was booked (the ledger said 0.008 on an order the venue filled 0.004)
    and nothing looked at the finished order again until a restart refused to start.
    """
    kraken = await make_venue_connector(server, "kraken", attrs.evolve(CHECKING, use_private_ws=True))
    await kraken.connect()
    try:
        ledger = Ledger(kraken)
        events: list[VenueEvent] = []
        ledger.tracker.submit(bid("dup1"))
        await run_ledger(kraken, ledger, events, lambda: of_type(events, OrderAccepted), "accepted")
        await collect_until(kraken, lambda ev: bool(server.kraken_private), WAIT_S, into=events)
        server.fill("kraken", "dup1", D("0.004"), D("60000.0"))
        await run_ledger(kraken, ledger, events, lambda: ledger.booked, "the fill")
        ledger.tracker.cancel("dup1")
        await run_ledger(kraken, ledger, events, lambda: of_type(events, OrderCanceled), "the cancel")
        tracked = kraken._orders["dup1"]
        await run_ledger(kraken, ledger, events, lambda: tracked.verified_filled == D("0.004"),
                         "the finished order read once and agreeing")
        assert ledger.alarms == []

        resent = server.resend_kraken_trade("dup1")
        await run_ledger(kraken, ledger, events, lambda: ledger.alarms, "the alarm")
        assert [f.trade_id for f in ledger.booked][-1] == resent  # the copy was booked: nothing told it apart
        [alarm] = ledger.alarms
        assert "ledger ahead of venue" in alarm.reason and "reports 0.004 filled on dup1" in alarm.reason
        assert "booked 0.008" in alarm.reason and "mmkit reconcile" in alarm.reason
        assert ledger.stream.ledger_ahead == 1 and kraken.ledger_reports == 1
    finally:
        await kraken.disconnect()


async def test_a_fill_the_trade_history_never_shows_is_reported_after_the_grace_and_halts(
    server: MockVenueServer, make_connector: ConnectorFactory
) -> None:
    """The venue counts 0.004 filled; its trade history never lists the trade: a fill went missing."""
    kraken = await make_connector("kraken", book=False, config=attrs.evolve(CHECKING, poll_interval_s=0.05))
    ledger = Ledger(kraken)
    events: list[VenueEvent] = []
    ledger.tracker.submit(bid("lost1"))
    await run_ledger(kraken, ledger, events, lambda: of_type(events, OrderAccepted), "accepted")
    server.fill("kraken", "lost1", D("0.004"), D("60000.0"))
    server.trades["kraken"].clear()  # the venue lost the trade from its history
    await run_ledger(kraken, ledger, events, lambda: ledger.alarms, "the alarm")
    [alarm] = ledger.alarms
    assert "reports 0.004 filled on lost1" in alarm.reason and "fills missing" in alarm.reason
    [synthetic] = ledger.booked
    assert synthetic.trade_id.startswith(SYNTHETIC_PREFIX) and synthetic.qty == D("0.004")
    reads_before = sum(1 for m, _ in server.kraken_calls if m == "TradesHistory")
    await collect_until(kraken, lambda ev: sum(1 for m, _ in server.kraken_calls if m == "TradesHistory")
                        >= reads_before + 3, WAIT_S, into=events)
    assert len(of_type(events, OrderStatusReport)) == 1, "one report per venue figure, not one per round"


async def test_a_status_answer_above_the_trades_passed_on_waits_for_them_no_false_halt(
    server: MockVenueServer, make_connector: ConnectorFactory
) -> None:
    """A status query right after a fill, before the trade history was read: the trades reach the engine first.

    Before: the report (0.003) arrived before the trade; the stream booked 0.003 as missing
    (a synthetic fill and a halt), and then the trade itself: 0.006 on a 0.003 fill.
    """
    kraken = await make_connector("kraken", book=False, config=attrs.evolve(CHECKING, ledger_check_s=0))
    ledger = Ledger(kraken)
    events: list[VenueEvent] = []
    ledger.tracker.submit(bid("race1"))
    await run_ledger(kraken, ledger, events, lambda: of_type(events, OrderAccepted), "accepted")
    server.fill("kraken", "race1", D("0.003"), D("60000.0"))
    kraken.request_order_status("race1", SYMBOL)
    await run_ledger(kraken, ledger, events, lambda: of_type(events, OrderStatusReport), "the answer")
    assert [(f.qty, f.trade_id.startswith(SYNTHETIC_PREFIX)) for f in ledger.booked] == [(D("0.003"), False)]
    assert ledger.alarms == []


async def test_a_fill_that_raced_a_cancel_is_found_in_the_trade_history_while_running(
    server: MockVenueServer, make_connector: ConnectorFactory
) -> None:
    """No private stream, the order cancelled before any poll saw its fill: the sweep finds the trade.

    Before: the cancel closed the order with its whole size as leaves and the trade was
    booked only by the next restart's recovery.
    """
    kraken = await make_connector("kraken", book=False, config=CHECKING)
    ledger = Ledger(kraken)
    events: list[VenueEvent] = []
    ledger.tracker.submit(bid("race2"))
    await run_ledger(kraken, ledger, events, lambda: of_type(events, OrderAccepted), "accepted")
    server.fill("kraken", "race2", D("0.004"), D("60000.0"))
    ledger.tracker.cancel("race2")
    await run_ledger(kraken, ledger, events, lambda: ledger.booked, "the missed trade booked")
    [fill] = ledger.booked
    assert isinstance(fill, Fill) and fill.qty == D("0.004") and not fill.trade_id.startswith(SYNTHETIC_PREFIX)
    assert {fill.trade_id} == {f.trade_id for f in await kraken.fetch_fills(SYMBOL, 0)}  # restart's view
    assert kraken.ledger_missed_trades == 1 and ledger.alarms == []
    tracked = kraken._orders["race2"]
    await run_ledger(kraken, ledger, events, lambda: tracked.verified_filled == D("0.004"), "verified")
    assert ledger.alarms == []


async def test_fills_across_an_amend_are_no_finding(server: MockVenueServer, make_connector: ConnectorFactory) -> None:
    """Kraken's AmendOrder keeps the venue order under our new client id; the replaced id is not checked against it."""
    kraken = await make_connector("kraken", book=False, config=attrs.evolve(CHECKING, poll_interval_s=0.05))
    ledger = Ledger(kraken)
    events: list[VenueEvent] = []
    ledger.tracker.submit(bid("am1"))
    await run_ledger(kraken, ledger, events, lambda: of_type(events, OrderAccepted), "accepted")
    server.fill("kraken", "am1", D("0.002"), D("60000.0"))
    await run_ledger(kraken, ledger, events, lambda: ledger.booked, "the first fill")
    replacement = ledger.tracker.replace("am1", D("59990.0"), D("0.008"))
    assert replacement is not None
    await run_ledger(kraken, ledger, events, lambda: replacement.client_id in kraken._orders, "the amend")
    server.fill("kraken", "am1", D("0.003"), D("59990.0"))  # the venue order still carries our first cl_ord_id
    await run_ledger(kraken, ledger, events, lambda: len(ledger.booked) == 2, "the second fill")
    checks = kraken.ledger_checks
    await run_ledger(kraken, ledger, events, lambda: kraken.ledger_checks >= checks + 12, "rounds past the grace")
    assert ledger.alarms == [] and kraken.ledger_reports == 0
    assert [f.qty for f in ledger.booked] == [D("0.002"), D("0.003")]


@pytest.mark.parametrize("venue", ["kraken", "coinbase", "gemini"])
async def test_the_check_reads_each_venues_history_and_orders_and_agrees_with_an_honest_venue(
    server: MockVenueServer, venue: str
) -> None:
    """Each venue's trade history and order read parse (ccxt's code on the venue's payloads); nothing is found."""
    connector = await make_venue_connector(server, venue, CHECKING)
    await connector.connect()
    try:
        await _honest_round(server, connector, venue)
    finally:
        await connector.disconnect()


async def _honest_round(server: MockVenueServer, connector: CcxtConnector, venue: str) -> None:
    symbol = next(iter(connector.profile.symbols))
    instrument = connector.rules.instrument(symbol)
    bids, _ = server.books[venue].top(1)
    price = instrument.round_price(bids[0][0] * D("0.99"), Side.BUY)
    lot = instrument.lot_for(price)
    qty = (max(instrument.min_notional * 4 / price, instrument.min_qty * 2) / lot).to_integral_value() * lot
    ledger = Ledger(connector)
    events: list[VenueEvent] = []
    ledger.tracker.submit(OrderRequest("hon1", venue, symbol, Side.BUY, qty, price, post_only=True))
    await run_ledger(connector, ledger, events, lambda: of_type(events, OrderAccepted), "accepted")
    qty = qty / 2
    server.fill(venue, "hon1", qty, price)
    ledger.tracker.cancel("hon1")
    await run_ledger(connector, ledger, events, lambda: of_type(events, OrderCanceled), "the cancel")
    tracked = connector._orders["hon1"]
    await run_ledger(connector, ledger, events, lambda: tracked.verified_filled == qty, "verified")
    assert [f.qty for f in ledger.booked] == [qty]
    # One round by hand, the order read again: the history read and the order read both parse.
    tracked.verified_filled = None
    warnings: list[str] = []
    sink = logger.add(lambda m: warnings.append(str(m)), level="WARNING")
    try:
        await connector.check_ledger()
    finally:
        logger.remove(sink)
    assert warnings == [] and tracked.verified_filled == qty
    assert ledger.alarms == [] and connector.ledger_reports == 0


async def test_a_gap_in_the_private_stream_brings_the_check_forward(server: MockVenueServer) -> None:
    """Kraken's private socket drops: trades may have been lost in the gap, so the check runs now, not in a minute."""
    config = attrs.evolve(CHECKING, use_private_ws=True, ledger_check_s=60, private_ws_max_failures=100)
    kraken = await make_venue_connector(server, "kraken", config)
    await kraken.connect()
    try:
        kraken.place(bid("gap1"))
        events = await collect_until(kraken, lambda ev: bool(of_type(ev, OrderAccepted)), WAIT_S)
        await collect_until(kraken, lambda ev: bool(server.kraken_private), WAIT_S, into=events)
        assert kraken.ledger_checks == 0
        server.fill("kraken", "gap1", D("0.004"), D("60000.0"))
        await collect_until(kraken, lambda ev: bool(of_type(ev, Fill)), WAIT_S, into=events)
        for ws in list(server.kraken_private):
            await ws.close()
        await collect_until(kraken, lambda ev: kraken.ledger_checks >= 1, WAIT_S, into=events)
    finally:
        await kraken.disconnect()
