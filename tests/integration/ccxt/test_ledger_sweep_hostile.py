"""The in-run ledger check's trade history sweep against a hostile Kraken (and Gemini): down, malformed, paged.

Each test is a way a trade used to be lost without a word: the sweep's start moved on past
a window it never read (the history was down), a trade that did not parse was marked seen
(and never booked by anyone), and Kraken's TradesHistory answers only the newest 50 trades
of a window (the rest were never read), Gemini's mytrades 50 (at most 500) from a timestamp
on. Real ccxt code parses the mock's Kraken and Gemini payloads; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal as D
from typing import Any

import attrs
import pytest
from loguru import logger

from connectors.ccxt import ledger_check
from connectors.ccxt.connector import CcxtConnector, CcxtConnectorConfig
from mmkit.connector import TransientVenueError
from mmkit.model import Fill, OrderAccepted, OrderRequest, VenueEvent
from mmkit.stream import SYNTHETIC_PREFIX
from tests.integration.ccxt.conftest import ConnectorFactory
from tests.integration.ccxt.helpers import collect_until, of_type
from tests.integration.ccxt.mock_accounts import COINBASE_FILLS_PAGE, GEMINI_TRADES_PAGE_MAX
from tests.integration.ccxt.mock_venue import MockVenueServer
from tests.integration.ccxt.test_conformance_ccxt import make_venue_connector
from tests.integration.ccxt.test_ledger_ahead_ccxt import Ledger
from tests.integration.ccxt.test_ledger_check_ccxt import CHECKING, bid, run_ledger

pytestmark = [pytest.mark.integration, pytest.mark.shared_data]

#: No finding from the grace in these tests: they are about the sweep booking the real trade.
SWEEPING = attrs.evolve(CHECKING, ledger_behind_grace_s=60)


def _history_calls(server: MockVenueServer, venue: str = "kraken") -> list[dict[str, Any]]:
    """The trade history reads the venue got, each with its request (Kraken's form, Gemini's payload)."""
    if venue == "kraken":
        return [f for m, f in server.kraken_calls if m == "TradesHistory"]
    path = "mytrades" if venue == "gemini" else "GET orders/historical/fills"
    return [p for called, p in server.calls[venue] if called == path]


def _history_reads(server: MockVenueServer, venue: str = "kraken") -> int:
    return len(_history_calls(server, venue))


def _order(venue: str, client_id: str) -> OrderRequest:
    """A resting bid on the venue's BTC/USD (Gemini names it BTCUSD), far below its book."""
    symbol = {"gemini": "BTCUSD", "coinbase": "BTC-USD"}.get(venue, "BTC/USD")
    return attrs.evolve(bid(client_id), venue=venue, symbol=symbol)


@contextlib.asynccontextmanager
async def _connected(server: MockVenueServer, venue: str, config: CcxtConnectorConfig) -> AsyncIterator[CcxtConnector]:
    """A connector on the venue with its own credentials (Gemini's key names an account), disconnected after."""
    connector = await make_venue_connector(server, venue, config)
    await connector.connect()
    try:
        yield connector
    finally:
        await connector.disconnect()


def _same_millisecond_runs(server: MockVenueServer, venue: str, run: int) -> None:
    """Stamp the venue's trades ``run`` to a millisecond (a busy maker's fills of one sweep of the book).

    A page that ends inside such a run is where a pager moving on *past* the last stamp it saw skips
    the rest of the run; ``run`` not dividing the page size puts a page end inside one.
    """
    trades = server.trades[venue]
    base = trades[0].ts_ms
    for i, trade in enumerate(trades):
        trade.ts_ms = base + i // run


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


#: Per venue: trades landing between two rounds (more than ``SWEEP_MAX_PAGES`` of the venue's largest pages).
BUSY = {"kraken": 230, "gemini": 4 * GEMINI_TRADES_PAGE_MAX + 300, "coinbase": 4 * COINBASE_FILLS_PAGE + 130}


@pytest.mark.parametrize("venue", ["kraken", "gemini", "coinbase"])
async def test_a_busy_makers_trades_beyond_one_page_are_all_swept_across_rounds(
    server: MockVenueServer, venue: str
) -> None:
    """More trades land between two rounds than the round's pages hold; every one is booked, once.

    Kraken answers 50 a call, newest first (``ofs`` pages on); Gemini answers 50 by default, at
    most 500 (``limit_trades``), the oldest on or after ``timestamp``, with seven trades to a
    millisecond here (a page ends inside a run); Coinbase a page a call, its ``cursor`` pages
    on. Before: one call a round read one page and the sweep's start moved on: the rest were
    never read. Now the window is paged at most ``SWEEP_MAX_PAGES`` calls a round, the rest
    carried to the next round.
    """
    async with _connected(server, venue, SWEEPING) as connector:
        await _busy_maker_swept(server, connector, venue)


async def _busy_maker_swept(server: MockVenueServer, connector: CcxtConnector, venue: str) -> None:
    ledger = Ledger(connector)
    events: list[VenueEvent] = []
    ledger.tracker.submit(_order(venue, "busy1"))
    await run_ledger(connector, ledger, events, lambda: of_type(events, OrderAccepted), "accepted")
    reads = _history_reads(server, venue)
    await run_ledger(connector, ledger, events, lambda: _history_reads(server, venue) > reads, "a first sweep")
    count = BUSY[venue]
    rounds_before = connector.ledger_checks
    reads = _history_reads(server, venue)
    for _ in range(count):
        server.fill(venue, "busy1", D("0.000001"), D("60000.0"))
    if venue == "gemini":
        _same_millisecond_runs(server, venue, 7)
    expected = {t.trade_id for t in server.trades[venue]}
    assert len(expected) == count
    await run_ledger(connector, ledger, events, lambda: len(ledger.booked) >= count, f"all {count} trades swept")
    assert sorted(f.trade_id for f in ledger.booked) == sorted(expected)
    assert ledger.alarms == []
    rounds = connector.ledger_checks - rounds_before
    assert rounds >= 2, "the pages do not fit one round's budget"
    pages = _history_calls(server, venue)[reads:]
    assert len(pages) <= rounds * ledger_check.SWEEP_MAX_PAGES
    if venue == "kraken":
        assert max(int(f.get("ofs", "0")) for f in pages) >= 200
    elif venue == "coinbase":
        assert any(p.get("cursor") for p in pages), "paged on the answer's cursor"
        assert all(p.get("end_sequence_timestamp") for p in pages), "each window paged against a fixed end"
    else:
        assert {p.get("limit_trades") for p in pages} == {GEMINI_TRADES_PAGE_MAX}, "the largest page, every call"


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


#: Per venue: trades since the recovery point (more than one page), and the pages recovery reads for them.
RECOVERY = {"kraken": (120, 3), "gemini": (2 * GEMINI_TRADES_PAGE_MAX + 200, 3), "coinbase": (250, 3)}


@pytest.mark.parametrize("venue", ["kraken", "gemini", "coinbase"])
async def test_a_restarts_recovery_reads_every_page_of_the_trade_history(
    server: MockVenueServer, venue: str
) -> None:
    """More trades since the recovery point than one call answers: recovery gets all (it read one page before).

    Gemini's trades run seven to a millisecond: each page after the first starts at the last
    page's newest millisecond (not past it), and the trades read twice are one fill each.
    """
    count, calls = RECOVERY[venue]
    order = _order(venue, "rec1")
    async with _connected(server, venue, attrs.evolve(SWEEPING, ledger_check_s=0)) as connector:
        connector.place(order)
        await collect_until(connector, lambda ev: bool(of_type(ev, OrderAccepted)), 5.0)
        for _ in range(count):
            server.fill(venue, "rec1", D("0.000001"), D("60000.0"))
        if venue == "gemini":
            _same_millisecond_runs(server, venue, 7)
        reads = _history_reads(server, venue)
        fills = await connector.fetch_fills(order.symbol, 0)
    assert sorted(f.trade_id for f in fills) == sorted(t.trade_id for t in server.trades[venue])
    assert len(fills) == count and all(f.client_id == "rec1" for f in fills)
    pages = _history_calls(server, venue)[reads:]
    assert len(pages) == calls
    if venue == "kraken":
        assert [int(f.get("ofs", "0")) for f in pages] == [0, 50, 100]


async def test_a_gemini_page_all_in_one_millisecond_refuses_recovery_rather_than_skip(
    server: MockVenueServer,
) -> None:
    """More trades in one millisecond than Gemini's largest page: no timestamp pages past them without a skip.

    Recovery raises TransientVenueError (the start is refused, loudly) rather than recover from
    the first 500 (the in-run sweep, on the same page reader, keeps its window and warns each round).
    """
    order = _order("gemini", "ms1")
    async with _connected(server, "gemini", attrs.evolve(SWEEPING, ledger_check_s=0)) as gemini:
        gemini.place(order)
        await collect_until(gemini, lambda ev: bool(of_type(ev, OrderAccepted)), 5.0)
        for _ in range(GEMINI_TRADES_PAGE_MAX + 20):
            server.fill("gemini", "ms1", D("0.000001"), D("60000.0"))
        _same_millisecond_runs(server, "gemini", GEMINI_TRADES_PAGE_MAX + 20)
        with pytest.raises(TransientVenueError, match="one millisecond"):
            await gemini.fetch_fills(order.symbol, 0)


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
