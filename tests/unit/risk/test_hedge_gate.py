"""The hedge gate (issue 11, "Risk controls for an emergency" and case 7).

Real parts: InventoryManager and KillSwitch with the shipped TrueX limits
(max_position 5, hedge_threshold 2, emergency_position 6), a HedgeExecutor on
a FakeConnector playing Kraken. The quoting kill switch must not stop hedging;
hedging stops only on its own named conditions (hedge venue down, hedge loss
limit), and a hedge the hedge venue cannot pay for is reported, not sent.
"""

from __future__ import annotations

import itertools
from decimal import Decimal

from mmkit.connector import rules_for
from mmkit.instrument import IncrementBand, Instrument
from mmkit.model import NS_PER_MS, FairValue, Fill, Liquidity, OrderType, Side
from mmkit.risk.hedge import STOP_LOSS_LIMIT, STOP_VENUE_DOWN, HedgeBalances, HedgeConfig, HedgeExecutor
from mmkit.risk.inventory import InventoryConfig, InventoryManager
from mmkit.risk.kill_switch import KillSwitch, KillSwitchConfig
from mmkit.testing.fake_connector import FakeConnector

D = Decimal
MS = NS_PER_MS
_ids = itertools.count(1)
#: The shipped strategies/truex_btc_pyusd.yml limits.
TRUEX_LIMITS = InventoryConfig(max_position=D(5), hedge_threshold=D(2), hedge_target=D(0), emergency_position=D(6))


def quote_fill(side: Side, qty: str) -> Fill:
    return Fill(venue="truex", trade_id=f"q{next(_ids)}", client_id="quote", symbol="BTC-PYUSD", side=side,
                price=D("100000"), qty=D(qty), fee=D(0), fee_currency="PYUSD", liquidity=Liquidity.MAKER,
                ts_event=0, ts_recv=0)


class Rig:
    def __init__(self, position: str, *, balances: HedgeBalances | None = None, **hedge: object) -> None:
        instrument = Instrument("kraken", "BTC/USD", "BTC", "USD", (IncrementBand(D(0), D("0.1"), D("0.00000001")),))
        self.fake = FakeConnector(rules_for([instrument], "kraken", supports_market_orders=True), validate=False)
        self.inventory = InventoryManager(TRUEX_LIMITS)
        self.kill = KillSwitch(KillSwitchConfig(resume="manual"))
        qty = D(position)
        if qty:
            self.inventory.on_fill(quote_fill(Side.BUY if qty > 0 else Side.SELL, str(abs(qty))))
        self.problems: list[tuple[str, dict[str, str]]] = []
        self.hedger = HedgeExecutor(
            self.fake, self.inventory, touch=lambda side: D("100000.0") if side is Side.SELL else D("100010.0"),
            config=HedgeConfig(**hedge),  # type: ignore[arg-type]
            kill_switch=self.kill, listeners=[self.inventory.on_fill], drain_connector=True, balances=balances,
        )
        self.hedger.problem_listeners.append(lambda event, detail: self.problems.append((event, detail)))
        self.hedger.start(None, 0)  # type: ignore[arg-type]

    def evaluate_kill_switch(self, now: int) -> bool:
        """What StrategyRunner does each tick: the emergency position is one of the triggers."""
        fair = FairValue(D("100000"), 1.0, now)
        return self.kill.evaluate(now, fair, D(0), self.inventory.emergency())

    def fill_all(self, price: str = "99990") -> None:
        for order in list(self.fake.open_orders):
            self.fake.fill(order.client_id, price=price if order.price is None else None)


def test_case7_past_emergency_position_the_kill_switch_trips_and_the_hedge_still_goes_out() -> None:
    rig = Rig("6.5")
    assert rig.evaluate_kill_switch(0) is True  # 6.5 > emergency_position 6: quoting halts
    assert "inventory emergency" in rig.kill.reason
    rig.hedger.tick(0)
    sells = rig.fake.placed
    assert {o.side for o in sells} == {Side.SELL}
    assert sum((o.qty for o in sells), D(0)) == D("6.5")  # the whole exposure, in clips of max_qty
    assert max(o.qty for o in sells) == D("1.0")
    rig.fill_all()
    rig.hedger.tick(1 * MS)
    assert rig.inventory.position == 0
    assert rig.kill.halted  # manual resume: quoting stays halted until an operator resumes it
    rig.hedger.tick(2 * MS)
    assert len(rig.fake.placed) == len(sells)  # flat: nothing more goes out


def test_case7_contrast_under_the_emergency_position_hedging_is_the_same() -> None:
    rig = Rig("5.9")
    assert rig.evaluate_kill_switch(0) is False
    rig.hedger.tick(0)
    assert sum((o.qty for o in rig.fake.placed), D(0)) == D("5.9")


def test_hedge_venue_down_is_a_named_stop_and_hedging_resumes_on_reconnect() -> None:
    rig = Rig("3")
    rig.fake._connected = False  # the session dropped (FakeConnector.disconnect is a coroutine)
    rig.hedger.tick(0)
    assert rig.fake.placed == []
    assert rig.hedger.stop_reason is not None and rig.hedger.stop_reason.startswith(STOP_VENUE_DOWN)
    assert rig.hedger.gate_status()["hedging"] == "stopped"
    assert rig.problems[-1][0] == "hedge_stopped" and STOP_VENUE_DOWN in rig.problems[-1][1]["reason"]
    rig.fake.reconnect()
    rig.hedger.tick(1 * MS)
    assert rig.hedger.stop_reason is None
    assert sum((o.qty for o in rig.fake.placed), D(0)) == D("3")
    assert rig.problems[-1][0] == "hedge_resumed"


def test_hedge_loss_limit_is_a_named_sticky_stop_until_reset_by_hand() -> None:
    # 1 BTC sold 60 under the hedge venue's mid (100005) costs 60: past a max_loss of 50.
    rig = Rig("3.5", max_loss=D(50), max_qty=D("1"))
    rig.hedger.tick(0)
    first, second, third, fourth = rig.fake.placed
    rig.fake.fill(first.client_id, price="99945")
    rig.hedger.tick(1 * MS)
    assert rig.hedger.hedge_cost == D("60.0")
    reason = rig.hedger.stop_reason
    assert reason is not None and reason.startswith(STOP_LOSS_LIMIT)
    assert set(rig.fake.canceled) == {second.client_id, third.client_id, fourth.client_id}  # pulled
    rig.hedger.tick(10_000 * MS)
    assert len(rig.fake.placed) == 4  # no market fallback, no new hedge
    assert rig.hedger.stop_reason == reason  # sticky: the cost does not go down by itself
    assert rig.hedger.reset_by_hand() is True
    rig.hedger.tick(10_001 * MS)
    assert rig.hedger.stop_reason is None
    assert sum((o.qty for o in rig.fake.placed[4:]), D(0)) == D("2.5")  # the rest of the exposure


def test_the_kill_switch_is_not_a_hedge_stop_even_with_a_loss_limit_configured() -> None:
    rig = Rig("2.5", max_loss=D(1000))
    rig.kill.trip(0, "operator")
    rig.hedger.tick(0)
    assert rig.hedger.stop_reason is None
    assert sum((o.qty for o in rig.fake.placed), D(0)) == D("2.5")


def test_unknown_balances_mean_the_hedge_is_reported_not_sent() -> None:
    rig = Rig("2.5", balances=HedgeBalances())
    rig.hedger.tick(0)
    assert rig.fake.placed == []
    assert rig.hedger.funding_problem is not None and "unknown" in rig.hedger.funding_problem
    assert rig.problems[-1][0] == "hedge_unfunded"


def test_a_hedge_is_cut_to_what_the_venue_can_fund_and_the_rest_reported() -> None:
    balances = HedgeBalances()
    rig = Rig("4", balances=balances, max_qty=D("5"))
    rig.fake.set_balance("BTC", "1.5")  # a BalanceUpdate on the hedge venue's stream
    rig.hedger.tick(0)
    assert [o.qty for o in rig.fake.placed] == [D("1.5")]
    problem = rig.hedger.funding_problem
    assert problem is not None and "cannot be funded" in problem and "2.5 not sent" in problem
    rig.hedger.tick(1 * MS)
    assert len(rig.fake.placed) == 1  # the 1.5 sent is reserved: no second order spends it again
    rig.fake.set_balance("BTC", "10")  # funds arrive
    rig.hedger.tick(2 * MS)
    assert [o.qty for o in rig.fake.placed] == [D("1.5"), D("2.5")]
    assert rig.hedger.funding_problem is None


def test_a_short_position_needs_quote_currency_to_buy_back() -> None:
    balances = HedgeBalances()
    rig = Rig("-2.5", balances=balances, max_qty=D("5"), protection_bps=D(0))
    rig.fake.set_balance("USD", "100010")  # one BTC at the ask
    rig.hedger.tick(0)
    assert [(o.side, o.qty) for o in rig.fake.placed] == [(Side.BUY, D("1.00000000"))]
    assert rig.hedger.funding_problem is not None


def test_operator_flatten_hedges_below_the_threshold_until_flat() -> None:
    rig = Rig("1.2")  # under hedge_threshold 2: normally left alone
    rig.hedger.tick(0)
    assert rig.fake.placed == []
    rig.hedger.request_flatten("operator flatten")
    rig.hedger.tick(1 * MS)
    assert [(o.side, o.qty, o.order_type) for o in rig.fake.placed] == [(Side.SELL, D("1.0"), OrderType.LIMIT),
                                                                          (Side.SELL, D("0.2"), OrderType.LIMIT)]
    assert rig.hedger.flattening
    rig.hedger.tick(2 * MS)
    assert len(rig.fake.placed) == 2  # in flight counts: not hedged twice
    rig.fill_all()
    rig.hedger.tick(3 * MS)
    rig.hedger.tick(4 * MS)
    assert rig.inventory.position == 0
    assert not rig.hedger.flattening


def test_a_timed_out_limit_hedge_gives_its_reservation_back_to_its_market_fallback() -> None:
    balances = HedgeBalances()
    rig = Rig("4", balances=balances, max_qty=D("5"), limit_timeout_ms=100)
    rig.fake.set_balance("BTC", "1.5")
    rig.hedger.tick(0)
    assert [(o.qty, o.order_type) for o in rig.fake.placed] == [(D("1.5"), OrderType.LIMIT)]
    for step in range(1, 6):  # time out, cancel, confirm, fall back to market
        rig.hedger.tick((100 + step) * MS)
    market = [o for o in rig.fake.placed if o.order_type is OrderType.MARKET]
    assert [o.qty for o in market] == [D("1.5")], rig.fake.placed  # not cut by the canceled limit's reservation
    assert balances.available("BTC") == D(0)  # the market order reserves what it spends
