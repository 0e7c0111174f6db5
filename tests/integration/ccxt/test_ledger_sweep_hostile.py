"""The in-run ledger check's trade history sweep against a hostile Kraken: down for rounds, malformed, paged.

Each test is a way a trade used to be lost without a word: the sweep's start moved on past
a window it never read (the history was down), a trade that did not parse was marked seen
(and never booked by anyone), and Kraken's TradesHistory answers only the newest 50 trades
of a window (the rest were never read). Real ccxt code parses the mock's Kraken payloads;
every wait is bounded.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal as D

import attrs
import pytest
from loguru import logger

from connectors.ccxt import ledger_check
from mmkit.model import Fill, OrderAccepted, VenueEvent
from mmkit.stream import SYNTHETIC_PREFIX
from tests.integration.ccxt.conftest import ConnectorFactory
from tests.integration.ccxt.helpers import collect_until, of_type
from tests.integration.ccxt.mock_venue import MockVenueServer
from tests.integration.ccxt.test_ledger_ahead_ccxt import Ledger
from tests.integration.ccxt.test_ledger_check_ccxt import CHECKING, bid, run_ledger

pytestmark = [pytest.mark.integration, pytest.mark.shared_data]

#: No finding from the grace in these tests: they are about the sweep booking the real trade.
SWEEPING = attrs.evolve(CHECKING, ledger_behind_grace_s=60)


def _history_reads(server: MockVenueServer) -> int:
    return sum(1 for m, _ in server.kraken_calls if m == "TradesHistory")


async def test_a_trade_history_down_for_rounds_is_read_back_from_where_it_stopped(
    server: MockVenueServer, make_connector: ConnectorFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TradesHistory is refused for three rounds (Kraken's rate limit) while a fill races a cancel: swept once back.

    The overlap is shrunk to nothing so the outage is longer than it (in production: three
    30 s rounds against a minute of overlap). Before: each failed round moved the sweep's
    start on, and the trade, stamped before the last failed round began, was never read.
    """
    monkeypatch.setattr(ledger_check, "SWEEP_OVERLAP_MS", 0)
    kraken = await make_connector("kraken", book=False, config=SWEEPING)
    ledger = Ledger(kraken)
    events: list[VenueEvent] = []
    ledger.tracker.submit(bid("down1"))
    await run_ledger(kraken, ledger, events, lambda: of_type(events, OrderAccepted), "accepted")
    reads = _history_reads(server)
    await run_ledger(kraken, ledger, events, lambda: _history_reads(server) > reads, "a sweep of the order")

    server.kraken_method_errors["TradesHistory"] = "EAPI:Rate limit exceeded"
    server.fill("kraken", "down1", D("0.004"), D("60000.0"))
    ledger.tracker.cancel("down1")
    reads = _history_reads(server)
    await run_ledger(kraken, ledger, events, lambda: _history_reads(server) >= reads + 3, "three failed rounds")
    assert not ledger.booked
    del server.kraken_method_errors["TradesHistory"]
    await run_ledger(kraken, ledger, events, lambda: ledger.booked, "the trade swept after the outage")
    [fill] = ledger.booked
    assert fill.qty == D("0.004") and not fill.trade_id.startswith(SYNTHETIC_PREFIX)
    assert fill.trade_id == server.trades["kraken"][-1].trade_id
    assert ledger.alarms == []


@pytest.mark.parametrize("malformed", [{"vol": "n/a"}, {"vol": "NaN"}, {"price": "-60000.0"}])
async def test_a_malformed_trade_is_logged_counted_and_booked_once_the_venue_corrects_it(
    server: MockVenueServer, make_connector: ConnectorFactory, malformed: dict[str, str]
) -> None:
    """Kraken's history lists one of our trades with a field that does not parse.

    Before: the trade was marked seen before it was parsed, and booked as it came (a fill of
    0, or NaN): the real 0.004 was never booked by anyone, and nothing was logged.
    Now: ERROR with the trade id, ``malformed_trades``, nothing booked, the check goes on,
    and once the venue answers the trade correctly it is booked, once.
    """
    kraken = await make_connector("kraken", book=False, config=SWEEPING)
    ledger = Ledger(kraken)
    events: list[VenueEvent] = []
    ledger.tracker.submit(bid("bad1"))
    await run_ledger(kraken, ledger, events, lambda: of_type(events, OrderAccepted), "accepted")
    errors: list[str] = []
    sink = logger.add(lambda m: errors.append(str(m)), level="ERROR")
    try:
        server.fill("kraken", "bad1", D("0.004"), D("60000.0"))
        trade_id = server.trades["kraken"][-1].trade_id
        server.kraken_trade_overrides[trade_id] = malformed
        reads = _history_reads(server)
        await run_ledger(kraken, ledger, events, lambda: _history_reads(server) >= reads + 4, "rounds read it")
    finally:
        logger.remove(sink)
    assert ledger.booked == []
    assert kraken.malformed_trades == 1, "counted once per trade, not once per round"
    assert kraken.health_counters()["malformed_trades"] == 1  # and in the final report (venue_counters)
    assert [e for e in errors if trade_id in e and "malformed" in e], errors
    assert len([e for e in errors if trade_id in e]) == 1
    del server.kraken_trade_overrides[trade_id]
    await run_ledger(kraken, ledger, events, lambda: ledger.booked, "the corrected trade booked")
    [fill] = ledger.booked
    assert (fill.trade_id, fill.qty, fill.price) == (trade_id, D("0.004"), D("60000.0"))
    checks = kraken.ledger_checks
    await run_ledger(kraken, ledger, events, lambda: kraken.ledger_checks >= checks + 2, "rounds after")
    assert len(of_type(events, Fill)) == 1 and ledger.alarms == []


async def test_a_busy_makers_trades_beyond_krakens_50_a_page_are_all_swept_across_rounds(
    server: MockVenueServer, make_connector: ConnectorFactory
) -> None:
    """230 trades land between two rounds; Kraken answers 50 a call, newest first.

    Before: one call a round read the newest 50 and the sweep's start moved on: 180 trades
    were never read. Now the window is paged (``ofs``) at most ``SWEEP_MAX_PAGES`` calls a
    round, the rest carried to the next round: every trade booked once, no call wasted.
    """
    kraken = await make_connector("kraken", book=False, config=SWEEPING)
    ledger = Ledger(kraken)
    events: list[VenueEvent] = []
    ledger.tracker.submit(bid("busy1"))
    await run_ledger(kraken, ledger, events, lambda: of_type(events, OrderAccepted), "accepted")
    reads = _history_reads(server)
    await run_ledger(kraken, ledger, events, lambda: _history_reads(server) > reads, "a first sweep")
    rounds_before = kraken.ledger_checks
    for _ in range(230):
        server.fill("kraken", "busy1", D("0.00001"), D("60000.0"))
    expected = {t.trade_id for t in server.trades["kraken"]}
    assert len(expected) == 230
    await run_ledger(kraken, ledger, events, lambda: len(ledger.booked) >= 230, "all 230 trades swept")
    assert sorted(f.trade_id for f in ledger.booked) == sorted(expected)
    assert ledger.alarms == []
    rounds = kraken.ledger_checks - rounds_before
    assert rounds >= 2, "five pages do not fit one round's budget"
    pages = [f for m, f in server.kraken_calls if m == "TradesHistory"][reads:]
    assert max(int(f.get("ofs", "0")) for f in pages) >= 200
    assert len(pages) <= rounds * ledger_check.SWEEP_MAX_PAGES


async def test_a_ledger_check_loop_ended_by_a_stray_cancel_is_logged_and_started_again(
    server: MockVenueServer, make_connector: ConnectorFactory
) -> None:
    """ccxt cancels a pending call when its session closes: CancelledError ends the check's loop.

    ccxt's own method raises it (a mock venue cannot close ccxt's session under one call).
    Before: the loop ended with nothing logged and no trade history was swept again
    until the next connect. Now: ERROR with the cause, and the loop runs again.
    """
    kraken = await make_connector("kraken", book=False, config=SWEEPING)
    ledger = Ledger(kraken)
    events: list[VenueEvent] = []
    ledger.tracker.submit(bid("loop1"))
    await run_ledger(kraken, ledger, events, lambda: of_type(events, OrderAccepted), "accepted")
    real = kraken.exchange.fetch_my_trades

    async def session_closed(*args: object) -> object:
        kraken.exchange.fetch_my_trades = real
        raise asyncio.CancelledError()

    errors: list[str] = []
    sink = logger.add(lambda m: errors.append(str(m)), level="ERROR")
    try:
        kraken.exchange.fetch_my_trades = session_closed
        await run_ledger(kraken, ledger, events, lambda: kraken.loop_restarts >= 1, "the loop's end noticed")
        assert [e for e in errors if "ledger check loop ended" in e and "CancelledError" in e], errors
        server.fill("kraken", "loop1", D("0.004"), D("60000.0"))
        await run_ledger(kraken, ledger, events, lambda: ledger.booked, "a sweep after the restart")
    finally:
        logger.remove(sink)
    assert [f.qty for f in ledger.booked] == [D("0.004")] and kraken.loop_restarts == 1


async def test_a_restarts_recovery_reads_every_page_of_krakens_trade_history(
    server: MockVenueServer, make_connector: ConnectorFactory
) -> None:
    """120 trades since the recovery point, Kraken answers 50 a call: recovery gets all 120 (it read 50 before)."""
    kraken = await make_connector("kraken", book=False, config=attrs.evolve(SWEEPING, ledger_check_s=0))
    kraken.place(bid("rec1"))
    await collect_until(kraken, lambda ev: bool(of_type(ev, OrderAccepted)), 5.0)
    for _ in range(120):
        server.fill("kraken", "rec1", D("0.00001"), D("60000.0"))
    fills = await kraken.fetch_fills("BTC/USD", 0)
    assert sorted(f.trade_id for f in fills) == sorted(t.trade_id for t in server.trades["kraken"])
    assert len(fills) == 120 and all(f.client_id == "rec1" for f in fills)
    offsets = [int(f.get("ofs", "0")) for m, f in server.kraken_calls if m == "TradesHistory"]
    assert offsets == [0, 50, 100]


async def test_a_symbol_whose_history_read_failed_keeps_its_window_while_another_moves_on(
    server: MockVenueServer, make_connector: ConnectorFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One round: the BTC/USD read is refused once (a temporary lockout), the BTC/USDT read answers.

    Before: the one sweep start moved on for both symbols, and the BTC/USD trade (stamped
    before the round, no overlap left) was never read. Now each symbol keeps its own window.
    """
    monkeypatch.setattr(ledger_check, "SWEEP_OVERLAP_MS", 0)
    kraken = await make_connector("kraken", book=False, config=SWEEPING)
    ledger = Ledger(kraken)
    events: list[VenueEvent] = []
    ledger.tracker.submit(bid("usd1"))
    usdt = attrs.evolve(bid("usdt1"), symbol="BTC/USDT")
    ledger.tracker.submit(usdt)
    await run_ledger(kraken, ledger, events, lambda: len(of_type(events, OrderAccepted)) == 2, "both accepted")
    reads = _history_reads(server)
    await run_ledger(kraken, ledger, events, lambda: _history_reads(server) >= reads + 2, "a sweep of both")
    server.fill("kraken", "usd1", D("0.004"), D("60000.0"))
    server.fill("kraken", "usdt1", D("0.003"), D("60000.0"))
    server.kraken_errors.append("EGeneral:Temporary lockout")  # the next private call: the BTC/USD read
    await run_ledger(kraken, ledger, events, lambda: len(ledger.booked) == 2, "both trades swept")
    assert sorted((f.symbol, f.qty) for f in ledger.booked) == [("BTC/USD", D("0.004")), ("BTC/USDT", D("0.003"))]
    assert not server.kraken_errors and ledger.alarms == []
