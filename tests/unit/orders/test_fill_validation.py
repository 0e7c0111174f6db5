"""Fill validation in the UserStreamTracker (issue 11, cases 2, 3 and 4 of "What was seen").

Each test plays what a bad counterparty or a lossy session did and checks
that nothing impossible reaches the ledger: quarantined fills never reach
the order tracker or the fill listeners (inventory, PnL, hedge), each one
raises a ledger alarm, and a venue that reports more filled than we hold
gets a flagged synthetic fill plus an alarm, never just a warning.
"""

from __future__ import annotations

from decimal import Decimal as D

import attrs

from mmkit.connector import load_venue_rules
from mmkit.model import Fill, Liquidity, OrderRequest, OrderStatusReport, Side, VenueOrderStatus
from mmkit.orders.tracker import ClientOrderTracker
from mmkit.orders.validation import LedgerAlarm, QuarantinedFill, QuarantineKind
from mmkit.stream import SYNTHETIC_PREFIX, UserStreamTracker
from mmkit.testing.fake_connector import FakeConnector

SYM = "BTC-PYUSD"


class Setup:
    def __init__(self, fair: D | None = D(60000), venue: FakeConnector | None = None) -> None:
        self.venue = venue or FakeConnector(load_venue_rules("sim"))
        self.tracker = ClientOrderTracker(self.venue)
        self.stream = UserStreamTracker(self.tracker)
        self.fair = fair
        self.stream.fair_price = lambda: self.fair
        self.booked: list[Fill] = []
        self.quarantined: list[QuarantinedFill] = []
        self.alarms: list[LedgerAlarm] = []
        self.stream.add_fill_listener(self.booked.append)
        self.stream.add_quarantine_listener(self.quarantined.append)
        self.stream.add_alarm_listener(self.alarms.append)

    def order(self, cid: str = "c1", side: Side = Side.BUY, qty: str = "0.004", price: str = "59990") -> None:
        self.tracker.submit(OrderRequest(cid, "sim", SYM, side, D(qty), D(price)))
        self.stream.process(self.venue.drain())  # the ack

    def fill(self, trade_id: str, qty: str, price: str, cid: str = "c1", side: Side = Side.BUY) -> Fill:
        return Fill("sim", trade_id, cid, SYM, side, D(price), D(qty), D(0), "PYUSD", Liquidity.MAKER, 1, 1, "V1")


def test_identical_repeat_is_a_counted_duplicate_not_an_alarm() -> None:
    s = Setup()
    s.order()
    fill = s.fill("E1", "0.004", "59990")
    assert s.stream.push(fill) is True
    assert s.stream.push(attrs.evolve(fill, ts_recv=99)) is False  # received later: still the same fill
    assert s.booked == [fill] and s.stream.duplicate_fills == 1
    assert s.quarantined == [] and s.alarms == []


def test_same_exec_id_other_content_is_a_conflict_quarantined_and_alarmed() -> None:
    s = Setup()
    s.order(qty="0.012")
    real = s.fill("E1", "0.004", "59990")
    s.stream.push(real)
    conflicting = s.fill("E1", "0.012", "59980")  # 3x the quantity, another price, same ExecID
    assert s.stream.push(conflicting) is False
    assert s.booked == [real]
    assert [q.kind for q in s.quarantined] == [QuarantineKind.CONFLICT]
    assert "conflicts" in s.alarms[0].reason and "E1" in s.alarms[0].reason
    assert s.tracker.get("c1").filled_qty == D("0.004")  # type: ignore[union-attr]


def test_exec_id_reused_by_a_restarted_venue_is_not_dropped_silently() -> None:
    """Case 3: after a venue restart its ExecID counter starts over; another order's fill reuses an id."""
    s = Setup()
    s.order("c1")
    s.order("c2", side=Side.SELL, price="60010")
    s.stream.push(s.fill("TX1M", "0.004", "59990", cid="c1"))
    reused = s.fill("TX1M", "0.002", "60010", cid="c2", side=Side.SELL)
    s.stream.push(reused)
    assert s.stream.duplicate_fills == 0  # it was NOT counted as a harmless duplicate
    assert s.quarantined[0].fill == reused and s.alarms


def test_restart_preloaded_fill_content_makes_a_reuse_a_conflict() -> None:
    s = Setup()
    s.order("c2", side=Side.SELL, price="60010")
    earlier = s.fill("TX1M", "0.004", "59990", cid="c0")
    s.stream.remember_fills([earlier])
    s.stream.push(s.fill("TX1M", "0.002", "60010", cid="c2", side=Side.SELL))
    assert [q.kind for q in s.quarantined] == [QuarantineKind.CONFLICT]
    s.stream.remember_fills([("sim", "K9")])  # a bare key: content unknown, a repeat is taken as one
    assert s.stream.push(s.fill("K9", "0.001", "60010", cid="c2", side=Side.SELL)) is False
    assert s.stream.duplicate_fills == 1


def test_zero_and_negative_quantity_are_quarantined() -> None:
    s = Setup()
    s.order()
    s.stream.push(s.fill("E1", "-0.004", "59990"))
    s.stream.push(s.fill("E2", "0", "59990"))
    assert [q.kind for q in s.quarantined] == [QuarantineKind.QTY, QuarantineKind.QTY]
    assert s.booked == [] and len(s.alarms) == 2
    assert s.tracker.get("c1").filled_qty == 0  # type: ignore[union-attr]


def test_overfill_is_quarantined_and_never_booked() -> None:
    """Case 4: 5 BTC on a 0.004 order was booked and hedged."""
    s = Setup()
    s.order(qty="0.004")
    s.stream.push(s.fill("E1", "0.003", "59990"))
    s.stream.push(s.fill("E2", "5", "59990"))
    assert [f.trade_id for f in s.booked] == ["E1"]
    assert s.quarantined[0].kind is QuarantineKind.OVERFILL
    assert "exceeds the order's 0.004" in s.quarantined[0].reason
    s.stream.push(s.fill("E3", "0.001", "59990"))  # the true rest still books
    assert [f.trade_id for f in s.booked] == ["E1", "E3"]


def test_fill_through_the_limit_is_quarantined_on_both_sides() -> None:
    s = Setup()
    s.order("b", Side.BUY, price="59990")
    s.order("a", Side.SELL, price="60010")
    s.stream.push(s.fill("E1", "0.001", "59990.1", cid="b"))  # a buy above its limit
    s.stream.push(s.fill("E2", "0.001", "60009.9", cid="a", side=Side.SELL))  # a sell below its limit
    s.stream.push(s.fill("E3", "0.001", "59980", cid="b"))  # better than the limit: fine
    assert [q.kind for q in s.quarantined] == [QuarantineKind.LIMIT, QuarantineKind.LIMIT]
    assert [f.trade_id for f in s.booked] == ["E3"]


def test_price_outside_the_band_around_fair_is_quarantined() -> None:
    """Case 4: a fill at 999,999,999 moved PnL by 100,000. Unknown order: only qty/price/band apply."""
    s = Setup(fair=D(60000))
    s.stream.push(s.fill("E1", "0.001", "999999999", cid="unknown"))
    s.stream.push(s.fill("E2", "0.001", "61400", cid="unknown"))  # within 2.5 %
    s.stream.push(s.fill("E3", "0.001", "61600", cid="unknown"))  # beyond 2.5 %
    assert [q.fill.trade_id for q in s.quarantined] == ["E1", "E3"]
    assert all(q.kind is QuarantineKind.BAND for q in s.quarantined)
    assert [f.trade_id for f in s.booked] == ["E2"]


def test_no_fair_price_yet_means_no_band_check() -> None:
    s = Setup(fair=None)
    assert s.stream.push(s.fill("E1", "0.001", "61600", cid="unknown")) is True


def _status(filled: str, avg: str | None, cid: str = "c1") -> OrderStatusReport:
    return OrderStatusReport(
        "sim", cid, "V1", SYM, Side.BUY, D("59990"), D("0.01"), D(filled), VenueOrderStatus.PARTIALLY_FILLED,
        5, 5, avg_px=None if avg is None else D(avg),
    )


def test_venue_reports_more_filled_books_a_flagged_synthetic_fill_and_alarms() -> None:
    """Case 2: 'venue reports 0.01 filled, we have 0: fills missing' was a warning; now it books and halts."""
    s = Setup()
    s.order(qty="0.01")
    s.stream.push(s.fill("E1", "0.004", "59990"))
    s.stream.push(_status("0.01", "59986"))  # venue: 0.01 filled at avg 59986; we hold 0.004 @ 59990
    synthetic = s.booked[-1]
    assert synthetic.trade_id.startswith(SYNTHETIC_PREFIX)
    assert synthetic.qty == D("0.006")
    assert synthetic.price == D("59983.33333333")  # (0.01*59986 - 0.004*59990) / 0.006
    assert s.tracker.get("c1").filled_qty == D("0.01")  # type: ignore[union-attr]
    assert len(s.alarms) == 1 and "fills missing" in s.alarms[0].reason
    s.stream.push(_status("0.01", "59986"))  # the same report again: the ledger agrees now
    assert len(s.alarms) == 1 and s.stream.synthetic_fills == 1


def test_synthetic_fill_without_avg_px_uses_the_limit_and_is_still_validated() -> None:
    s = Setup()
    s.order(qty="0.01")
    s.stream.push(_status("0.005", None))
    assert s.booked[-1].price == D("59990") and s.booked[-1].qty == D("0.005")
    s.stream.push(_status("0.5", None))  # more than the order: the synthetic fill is an over-fill
    assert s.quarantined[-1].kind is QuarantineKind.OVERFILL
    assert len(s.alarms) == 3  # mismatch 1, then quarantine + mismatch


def test_status_equal_to_ledger_is_quiet() -> None:
    s = Setup()
    s.order(qty="0.01")
    s.stream.push(s.fill("E1", "0.004", "59990"))
    s.stream.push(_status("0.004", "59990"))
    assert s.alarms == [] and s.stream.synthetic_fills == 0


def test_a_synthetic_fill_on_an_inverse_contract_is_charged_in_the_coin_on_its_coin_value() -> None:
    """COIN-M: 10 missing contracts of 100 USD at 50,000 are 0.02 BTC; the taker fee (5 bps) is 0.00001 BTC.

    The linear formula charged 5 bps of 10 × 50,000 = 250 "quote" units, booked as a fee of 250 in a ledger
    kept in BTC: 12.5 million times the venue's charge.
    """
    venue = FakeConnector(load_venue_rules("binance_coinm"))
    tracker = ClientOrderTracker(venue)
    stream = UserStreamTracker(tracker)
    booked: list[Fill] = []
    stream.add_fill_listener(booked.append)
    tracker.submit(OrderRequest("c1", "binance_coinm", "BTCUSD_PERP", Side.BUY, D(10), D(50000)))
    stream.process(venue.drain())
    stream.push(OrderStatusReport("binance_coinm", "c1", "V1", "BTCUSD_PERP", Side.BUY, D(50000), D(10), D(10),
                                  VenueOrderStatus.FILLED, 5, 5, avg_px=D(50000)))
    synthetic = booked[-1]
    assert synthetic.trade_id.startswith(SYNTHETIC_PREFIX) and synthetic.qty == D(10)
    assert synthetic.fee_currency == "BTC"
    assert synthetic.fee == D("0.00001")


def test_a_synthetic_fill_on_a_linear_instrument_is_charged_in_the_quote() -> None:
    s = Setup()
    s.order(qty="0.01")
    s.stream.push(_status("0.01", "59990"))
    rules = load_venue_rules("sim")
    assert s.booked[-1].trade_id.startswith(SYNTHETIC_PREFIX)
    assert s.booked[-1].fee_currency == rules.instruments[0].quote
    assert s.booked[-1].fee == rules.fees.fee(D("599.90"), is_maker=False) > 0


def test_an_inverse_instrument_without_contract_size_still_gets_its_missing_fill_booked_and_alarmed() -> None:
    """A fee that cannot be valued must not lose the fill: it is booked (fee 0, logged) and the alarm fires."""
    from mmkit.connector import rules_for
    from mmkit.instrument import IncrementBand, Instrument

    odd = Instrument("binance_coinm", "ODD_PERP", "BTC", "USD", (IncrementBand(D(0), D("0.1"), D(1)),), inverse=True)
    venue = FakeConnector(rules_for([odd], "binance_coinm"))
    tracker = ClientOrderTracker(venue)
    stream = UserStreamTracker(tracker)
    booked: list[Fill] = []
    alarms: list[LedgerAlarm] = []
    stream.add_fill_listener(booked.append)
    stream.add_alarm_listener(alarms.append)
    tracker.submit(OrderRequest("c1", "binance_coinm", "ODD_PERP", Side.BUY, D(10), D(50000)))
    stream.process(venue.drain())
    stream.push(OrderStatusReport("binance_coinm", "c1", "V1", "ODD_PERP", Side.BUY, D(50000), D(10), D(10),
                                  VenueOrderStatus.FILLED, 5, 5, avg_px=D(50000)))
    assert booked and booked[-1].qty == D(10) and booked[-1].fee == 0 and booked[-1].fee_currency == "BTC"
    assert alarms and "fills missing" in alarms[-1].reason
