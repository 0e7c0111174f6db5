"""The ledger AHEAD of the venue, caught while running (docs/reliability.md, "a venue re-sends an execution").

A venue re-sent an execution under a new exec id: 0.005 was booked twice on a
0.01 bid, the ledger said FILLED while the venue rested the order with 0.005
filled, and nothing said so until a restart. Now every report that carries the
venue's cumulative filled quantity is set against what the ledger booked on
that venue order (across its ClOrdIDs, as FIX counts CumQty):

* a fill whose own report carries CumQty and would take the ledger above it is
  quarantined (``beyond_venue_cum``): never booked, alarmed (halt, exit 5);
* a status answer / report saying less is filled than the ledger booked halts
  with the order and both quantities, and removes nothing from the ledger.

And no false halts: random legal sequences (partial fills, replaces, cancels,
status answers, rounding in the venue's decimal text) never alarm.
"""

from __future__ import annotations

import random
from decimal import Decimal as D

import attrs
import pytest

from mmkit.connector import StatusCapabilities, load_venue_rules
from mmkit.model import (
    ZERO,
    Fill,
    Liquidity,
    OrderAccepted,
    OrderCanceled,
    OrderReplaced,
    OrderRequest,
    OrderStatusReport,
    Side,
    VenueOrderStatus,
)
from mmkit.orders.tracker import VOID_PREFIX
from mmkit.orders.validation import LedgerAlarm, QuarantineKind
from mmkit.store.journal import VOID_PREFIX as JOURNAL_VOID_PREFIX
from mmkit.stream import UserStreamTracker
from mmkit.testing.fake_connector import FakeConnector
from tests.unit.orders.test_fill_validation import Setup

SYM = "BTC-PYUSD"


class Rig(Setup):
    """Tracker + stream over a fake venue that answers nothing by itself: the test plays the venue.

    ``spans``: the venue's filled quantity in a status answer counts the whole venue order across replaces
    (FIX CumQty, as TrueX declares); else it counts the ClOrdID asked about (as the simulator does).
    """

    def __init__(self, spans: bool = True) -> None:
        venue = FakeConnector(load_venue_rules("sim"), auto_ack=False)
        venue.status_capabilities = StatusCapabilities(filled_spans_replaces=spans)  # type: ignore[attr-defined]
        super().__init__(D(60000), venue)
        self.ts = 0

    def now(self) -> int:
        self.ts += 1
        return self.ts

    def place(self, cid: str, vid: str, qty: str = "0.01", side: Side = Side.BUY, price: str = "59990") -> None:
        self.tracker.submit(OrderRequest(cid, "sim", SYM, side, D(qty), D(price)), self.now())
        self.stream.push(OrderAccepted("sim", cid, vid, self.now(), self.ts))

    def fill(self, exec_id: str, cid: str, vid: str, qty: str, cum: str | None, side: Side = Side.BUY,
             price: str = "59990") -> bool:
        ts = self.now()
        return self.stream.push(
            Fill("sim", exec_id, cid, SYM, side, D(price), D(qty), ZERO, "PYUSD", Liquidity.MAKER, ts, ts, vid,
                 venue_cum_qty=None if cum is None else D(cum))
        )

    def status(self, cid: str, vid: str, filled: str, status: VenueOrderStatus = VenueOrderStatus.PARTIALLY_FILLED,
               qty: str = "0.01", side: Side = Side.BUY) -> None:
        ts = self.now()
        self.stream.push(
            OrderStatusReport("sim", cid, vid, SYM, side, D("59990"), D(qty), D(filled), status, ts, ts)
        )

    def position(self) -> D:
        return sum((f.qty * f.side.sign for f in self.booked), ZERO)


def test_a_resent_execution_under_a_new_exec_id_is_quarantined_not_booked_twice() -> None:
    """The reliability row: 0.005 on a 0.01 bid, then the same execution under a new ExecID (same CumQty)."""
    r = Rig()
    r.place("b1", "V1")
    assert r.fill("E1", "b1", "V1", "0.005", cum="0.005") is True
    assert r.fill("E1-again", "b1", "V1", "0.005", cum="0.005") is False  # before: booked, ledger said FILLED
    assert r.position() == D("0.005") and [f.trade_id for f in r.booked] == ["E1"]
    [bad] = r.quarantined
    assert bad.kind is QuarantineKind.BEYOND_VENUE_CUM and bad.fill.trade_id == "E1-again"
    order = r.tracker.get("b1")
    assert order is not None and order.filled_qty == D("0.005") and not order.is_done  # still resting, as at the venue
    [alarm] = r.alarms
    assert "beyond_venue_cum" in alarm.reason and "V1" in alarm.reason and "mmkit reconcile" in alarm.reason
    assert "0.005" in alarm.reason and alarm.fill == bad.fill
    # Real trading on the order still books: the venue's next execution carries CumQty 0.01.
    assert r.fill("E2", "b1", "V1", "0.005", cum="0.010") is True
    assert r.position() == D("0.010") and len(r.alarms) == 1


def test_a_status_answer_below_what_the_ledger_booked_halts_and_removes_nothing() -> None:
    r = Rig()
    r.place("b1", "V1")
    r.fill("E1", "b1", "V1", "0.005", cum=None)
    r.fill("E2", "b1", "V1", "0.005", cum=None)  # a venue that gives no CumQty on fills: booked (0.010)
    assert r.alarms == []
    r.status("b1", "V1", "0.005")  # the periodic re-sync's answer: the venue has 0.005 filled
    [alarm] = r.alarms
    assert alarm.fill is None
    for part in ("ledger ahead of venue", "b1", "V1", "reports 0.005 filled", "booked 0.010", "mmkit reconcile"):
        assert part in alarm.reason, (part, alarm.reason)
    assert r.stream.ledger_ahead == 1
    assert r.position() == D("0.010") and r.tracker.ledger_filled("b1", "V1")[0] == D("0.010")  # nothing removed
    r.status("b1", "V1", "0.005")  # the same answer again: one finding
    assert r.stream.ledger_ahead == 1 and len(r.alarms) == 1
    r.status("b1", "V1", "0.004")  # a different (worse) one: counted and alarmed again
    assert r.stream.ledger_ahead == 2 and len(r.alarms) == 2


def test_cum_qty_going_backwards_across_a_replace_is_caught_on_the_venue_order() -> None:
    """FIX CumQty spans a replace chain: one OrderID, a new ClOrdID. The ledger is compared per OrderID."""
    r = Rig()
    r.place("b1", "V1")
    r.fill("E1", "b1", "V1", "0.004", cum="0.004")
    assert r.tracker.replace("b1", D("59980"), D("0.006"), r.now(), new_client_id="b2") is not None
    r.stream.push(OrderReplaced("sim", "b2", "b1", "V1", D("59980"), D("0.006"), r.now(), r.ts))
    # A legitimate fill on the replacement: CumQty counts the whole chain (0.004 + 0.002).
    assert r.fill("E2", "b2", "V1", "0.002", cum="0.006", price="59980") is True
    assert r.alarms == [] and r.position() == D("0.006")
    # The venue's next answer on b2 counts 0.002 only: backwards across the replace.
    r.status("b2", "V1", "0.002", qty="0.006")
    [alarm] = r.alarms
    assert "b2" in alarm.reason and "V1" in alarm.reason and "0.002" in alarm.reason and "0.006" in alarm.reason
    # And a fill on b2 re-sent with the chain's CumQty, under a new ExecID: quarantined.
    assert r.fill("E2-again", "b2", "V1", "0.002", cum="0.006", price="59980") is False
    assert [q.kind for q in r.quarantined] == [QuarantineKind.BEYOND_VENUE_CUM] and r.position() == D("0.006")


def test_a_venue_counting_per_clordid_is_compared_per_clordid() -> None:
    """The simulator's answer on a replacement counts the replacement's fills only: no finding. Its answer
    below what was booked under the ClOrdID asked about still is one."""
    r = Rig(spans=False)
    r.place("b1", "V1")
    r.fill("E1", "b1", "V1", "0.004", cum=None)
    assert r.tracker.replace("b1", D("59980"), D("0.006"), r.now(), new_client_id="b2") is not None
    r.stream.push(OrderReplaced("sim", "b2", "b1", "V1", D("59980"), D("0.006"), r.now(), r.ts))
    r.fill("E2", "b2", "V1", "0.002", cum=None, price="59980")
    r.status("b2", "V1", "0.002", qty="0.006")  # b2's own 0.002; the venue order's total is 0.006
    assert r.alarms == [] and r.stream.ledger_ahead == 0
    r.fill("E3", "b2", "V1", "0.002", cum=None, price="59980")  # booked, but the venue never made it
    r.status("b2", "V1", "0.002", qty="0.006")
    [alarm] = r.alarms
    assert "reports 0.002 filled on b2" in alarm.reason and "booked 0.004" in alarm.reason
    r.status("ghost", "V9", "0")  # a ClOrdID this run never booked under: nothing to fall short of
    assert len(r.alarms) == 1


def test_rounding_within_the_instruments_lot_is_not_a_finding() -> None:
    """sim's finest lot is 0.000001: a difference under half of it is the venue's decimal text, not a trade."""
    r = Rig()
    r.place("b1", "V1")
    assert r.fill("E1", "b1", "V1", "0.0050000001", cum="0.005") is True  # the venue rounds its CumQty
    r.status("b1", "V1", "0.005")
    assert r.fill("E2", "b1", "V1", "0.0010000002", cum="0.006") is True
    r.status("b1", "V1", "0.006")
    assert r.alarms == [] and r.quarantined == [] and r.stream.ledger_ahead == 0
    # One whole lot is a trade: caught.
    r.status("b1", "V1", "0.005999")
    assert r.stream.ledger_ahead == 1


def test_a_fill_without_cum_qty_and_a_tracker_less_stream_are_not_checked() -> None:
    """What the check needs is the venue's figure and the ledger's: without either, the old behaviour stands."""
    r = Rig()
    r.place("b1", "V1")
    assert r.fill("E1", "b1", "V1", "0.005", cum=None) and r.fill("E2", "b1", "V1", "0.005", cum=None)
    assert r.alarms == []
    bare = UserStreamTracker(None)
    alarms: list[LedgerAlarm] = []
    bare.add_alarm_listener(alarms.append)
    fill = Fill("sim", "X", "b9", SYM, Side.BUY, D(1), D(1), ZERO, "PYUSD", Liquidity.MAKER, 1, 1, "V9",
                venue_cum_qty=ZERO)
    assert bare.push(fill) is True and alarms == []


class LegalVenue:
    """A venue that behaves: every report tells the truth about its own fills, CumQty per OrderID across replaces."""

    def __init__(self, rig: Rig, rng: random.Random, spans: bool = True) -> None:
        self.r, self.rng, self.spans = rig, rng, spans
        self.cum: dict[str, D] = {}  # OrderID -> CumQty
        self.own: dict[str, D] = {}  # ClOrdID -> filled under it (what a venue counting per ClOrdID reports)
        self.live: dict[str, tuple[str, Side, D, D]] = {}  # ClOrdID -> (OrderID, side, price, open qty)
        self.exec_n = 0
        self.venue_position = ZERO

    def lots(self, most: D) -> D:
        lot = D("0.0001")
        count = int(most / lot)
        return lot * self.rng.randint(1, count) if count > 0 else ZERO

    def step(self, n: int) -> None:
        action = self.rng.random()
        if not self.live or action < 0.15:
            side = self.rng.choice([Side.BUY, Side.SELL])
            cid, vid = f"c{n}", f"V{n}"
            qty = self.lots(D("0.02"))
            self.r.place(cid, vid, str(qty), side, "59990" if side is Side.BUY else "60010")
            self.cum[vid] = ZERO
            self.live[cid] = (vid, side, D("59990") if side is Side.BUY else D("60010"), qty)
            return
        cid = self.rng.choice(sorted(self.live))
        vid, side, price, open_qty = self.live[cid]
        if action < 0.55:  # a partial (or full) fill
            qty = self.lots(open_qty)
            if qty == ZERO:
                return
            self.exec_n += 1
            self.cum[vid] += qty
            self.own[cid] = self.own.get(cid, ZERO) + qty
            self.venue_position += qty * side.sign
            # The venue's decimal text may carry noise below the lot (rounding): still legal.
            noise = D("0.0000000001") * self.rng.choice([-1, 0, 1])
            assert self.r.fill(f"X{self.exec_n}", cid, vid, str(qty), str(self.cum[vid] + noise), side, str(price))
            open_qty -= qty
            if open_qty == ZERO:
                del self.live[cid]
            else:
                self.live[cid] = (vid, side, price, open_qty)
        elif action < 0.7:  # a replace: same OrderID, new ClOrdID, new open quantity
            new_cid, new_qty = f"r{n}", self.lots(D("0.02"))
            new_price = price - D("0.5") if side is Side.BUY else price + D("0.5")
            if self.r.tracker.replace(cid, new_price, new_qty, self.r.now(), new_client_id=new_cid) is None:
                return
            self.r.stream.push(OrderReplaced("sim", new_cid, cid, vid, new_price, new_qty, self.r.now(), self.r.ts))
            del self.live[cid]
            self.live[new_cid] = (vid, side, new_price, new_qty)
        elif action < 0.8:  # a cancel, answered with the venue's leaves
            if not self.r.tracker.cancel(cid, self.r.now()):
                return
            self.r.stream.push(OrderCanceled("sim", cid, self.r.now(), self.r.ts, open_qty))
            self.r.status(cid, vid, str(self.filled(cid, vid)), VenueOrderStatus.CANCELED, str(open_qty), side)
            del self.live[cid]
        else:  # a status answer (re-sync) about a resting order
            filled = self.filled(cid, vid)
            status = VenueOrderStatus.PARTIALLY_FILLED if filled else VenueOrderStatus.NEW
            self.r.status(cid, vid, str(filled), status, str(open_qty), side)

    def filled(self, cid: str, vid: str) -> D:
        return self.cum[vid] if self.spans else self.own.get(cid, ZERO)


@pytest.mark.parametrize("spans", [True, False], ids=["filled-spans-replaces", "filled-per-clordid"])
def test_random_legal_sequences_never_halt(spans: bool) -> None:
    """No false halts: 200 seeds x 60 steps of legal partial fills, replaces, cancels and status answers,
    from a venue that counts filled across replaces (FIX) and from one that counts it per ClOrdID (the
    simulator: after a replace, the replacement's answer is below the venue order's total, legitimately)."""
    for seed in range(200):
        rig = Rig(spans)
        venue = LegalVenue(rig, random.Random(seed), spans)
        for n in range(60):
            venue.step(n)
        assert rig.alarms == [], (seed, rig.alarms)
        assert rig.quarantined == [] and rig.stream.ledger_ahead == 0, seed
        assert rig.stream.synthetic_fills == 0, seed
        assert rig.position() == venue.venue_position, seed


def test_the_check_reads_one_dict_entry_per_fill() -> None:
    """What the check costs per fill: the venue order's booked quantity, one lookup (no scan of orders)."""
    r = Rig()
    r.place("b1", "V1")
    r.fill("E1", "b1", "V1", "0.004", cum="0.004")
    fill = attrs.evolve(r.booked[0], trade_id="E2", qty=D("0.001"), venue_cum_qty=D("0.005"))
    assert r.tracker.booked_before(fill) == D("0.004")
    assert r.tracker.booked_before(attrs.evolve(fill, venue_order_id="")) == D("0.004")  # via the order's id
    assert r.tracker.booked_before(attrs.evolve(fill, venue_order_id="V-other")) == ZERO  # another venue order
    assert r.tracker.booked_before(attrs.evolve(fill, client_id="nobody", venue_order_id="")) == ZERO


def test_a_void_remembered_at_restart_takes_its_quantity_back() -> None:
    """After ``mmkit reconcile --void-excess`` the ledger holds the original, its re-sent copy and a void
    (opposite side): the venue order's booked quantity is the venue's 0.005, not 0.015."""
    r = Rig()
    real = Fill("sim", "E1", "b1", SYM, Side.BUY, D("59990"), D("0.005"), ZERO, "PYUSD", Liquidity.MAKER, 1, 1, "V1")
    copy = attrs.evolve(real, trade_id="E1-again")
    void = attrs.evolve(real, trade_id=f"{VOID_PREFIX}V1:0.010", side=Side.SELL)
    r.stream.remember_fills([real, copy, void])
    assert r.tracker.ledger_filled("b1", "V1")[0] == D("0.005")
    r.place("b1", "V1")
    r.status("b1", "V1", "0.005")
    assert r.fill("E2", "b1", "V1", "0.005", cum="0.010") is True
    assert r.alarms == [] and r.quarantined == []


def test_the_void_prefix_is_the_journals() -> None:
    assert VOID_PREFIX == JOURNAL_VOID_PREFIX


def test_a_fill_already_counted_by_the_cum_qty_report_before_it_is_not_booked_twice() -> None:
    """TrueX: when an earlier ExecutionReport was lost, the next one's CumQty (0.015) goes out first as a status
    report and the engine books the missing 0.015 as one synthetic fill, which covers this report's own 0.005
    as well. Before: the 0.005 was then booked too (ledger 0.020, venue 0.015). Now it is beyond the CumQty."""
    r = Rig()
    r.place("b1", "V1", qty="0.03")
    r.status("b1", "V1", "0.015", qty="0.03")  # what the connector emits ahead of the fill
    assert r.stream.synthetic_fills == 1 and r.position() == D("0.015")
    assert r.fill("E3", "b1", "V1", "0.005", cum="0.015") is False
    assert r.position() == D("0.015") and [q.kind for q in r.quarantined] == [QuarantineKind.BEYOND_VENUE_CUM]
