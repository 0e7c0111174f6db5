"""The dashboard's data names its units: an inverse contract's coin PnL is never handed to the page as quote.

The snapshot is built by the real Dashboard from the real engine (mmkit.testing.Harness on
conf/venues/binance_coinm.yml: contracts of 100 USD, PnL in BTC) and checked against figures computed
independently with exact fractions from the fills the venue reported. It must stay valid JSON (no NaN:
the page and ``mmkit status`` parse it). The page's drawing of these fields is checked in a real browser
by tests/e2e/test_console_units_browser.py.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal as D
from fractions import Fraction as F
from types import SimpleNamespace
from typing import Any

from mmkit.app.config import ConsoleDashboardSection, EngineSection
from mmkit.app.console.dashboard import Dashboard
from mmkit.model import Fill, Liquidity, Side
from mmkit.testing.harness import Harness
from strategies.simple import SimpleConfig, SimpleController

SIZE = F(100)


def _dashboard(rules: str, order_size: str) -> tuple[Harness, Dashboard]:
    h = Harness(SimpleController(SimpleConfig(half_spread_bps=D(10), order_size=D(order_size))), rules=rules)
    config = SimpleNamespace(engine=EngineSection(instance="t", output_dir="unused"))
    built = SimpleNamespace(engine=h.engine, config=config, hedge=None)
    return h, Dashboard(built, ConsoleDashboardSection(port=0), None)


def _snapshot(dashboard: Dashboard) -> dict[str, Any]:
    dashboard.refresh()
    return dict(json.loads(json.dumps(dashboard.snapshot, allow_nan=False)))  # what /api/state serves


def _close(actual: float, expected: F) -> bool:
    return math.isclose(actual, float(expected), rel_tol=1e-9, abs_tol=1e-12)


def _buy_then_mark(h: Harness, fair: str, mark: str) -> Fill:
    """Quote at ``fair``, fill the whole bid at its price, then move the fair value to ``mark``."""
    h.set_fair(fair)
    h.tick(3)
    bid = next(o for o in h.venue.open_orders if o.side is Side.BUY)
    buy = h.venue.fill(bid.client_id)
    h.set_fair(mark)
    h.tick(3)
    return buy


def _fee_btc(fill: Fill) -> F:
    assert fill.fee_currency == "BTC"  # the fake venue charges an inverse contract's fee in the coin
    return F(fill.fee)


def test_an_inverse_contract_sends_btc_named_and_usd_at_the_mark() -> None:
    h, dashboard = _dashboard("binance_coinm", "3")
    buy = _buy_then_mark(h, "60000", "61000")
    snap = _snapshot(dashboard)
    mark = F(61000)
    unrealized = 3 * SIZE * (1 / F(buy.price) - 1 / mark)
    fees = _fee_btc(buy)
    btc = {"realized": F(0), "unrealized": unrealized, "fees": fees, "total": unrealized - fees}
    p = snap["pnl"]
    assert (p["unit"], p["quote"], p["inverse"], p["mark"]) == ("BTC", "USD", True, 61000.0)
    for name, value in btc.items():
        assert _close(p["in_quote"][name], value * mark), (name, p["in_quote"][name])
        assert _close(p[name], value), (name, p[name])
    assert not _close(p["total"], (unrealized - fees) * mark)  # the coin figure is not the USD one
    assert snap["inventory"]["unit"] == "contracts" and snap["inventory"]["position"] == 3
    fill = snap["fills"][0]
    assert fill["qty"] == 3 and fill["fee_currency"] == buy.fee_currency
    point = snap["point"]
    assert _close(point["pnl"], unrealized - fees) and _close(point["pnl_quote"], (unrealized - fees) * mark)
    state = {**dashboard.snapshot, "history": list(dashboard.history)}
    assert all("pnl_quote" in h for h in json.loads(json.dumps(state, allow_nan=False))["history"])


def test_an_inverse_contract_without_a_mark_sends_no_quote_figures() -> None:
    h, dashboard = _dashboard("binance_coinm", "3")
    h.tick()
    engine = h.engine
    fill = Fill(venue="binance_coinm", trade_id="R1", client_id="c1", symbol="BTCUSD_PERP", side=Side.BUY,
                price=D("50000"), qty=D(4), fee=D("0.000001"), fee_currency="BTC", liquidity=Liquidity.MAKER,
                ts_event=1, ts_recv=1)
    engine.inventory.on_fill(fill)  # a recovered ledger, before the first price
    engine.pnl.on_fill(fill, None)
    snap = _snapshot(dashboard)
    p = snap["pnl"]
    assert p["in_quote"] is None and p["mark"] is None and p["unit"] == "BTC"
    assert _close(p["fees"], F("0.000001")) and _close(p["total"], -F("0.000001"))
    assert snap["point"]["pnl_quote"] is None

    h.set_fair("40000")
    h.tick(2)
    p = _snapshot(dashboard)["pnl"]
    unrealized = 4 * SIZE * (1 / F(50000) - 1 / F(40000))
    assert unrealized < 0  # long from 50,000 marked at 40,000
    assert _close(p["in_quote"]["total"], (unrealized - F("0.000001")) * 40000)


def test_a_linear_instrument_sends_what_it_always_did_with_its_unit_named() -> None:
    h, dashboard = _dashboard("sim", "0.5")
    buy = _buy_then_mark(h, "60000", "60100")
    snap = _snapshot(dashboard)
    p, pnl = snap["pnl"], h.engine.pnl
    unrealized = F(buy.qty) * (60100 - F(buy.price))
    assert _close(p["total"], unrealized - F(buy.fee))
    for name in ("realized", "unrealized", "fees", "total"):
        assert p[name] == float(getattr(pnl, name)()) == p["in_quote"][name]
    assert (p["unit"], p["quote"], p["inverse"]) == ("PYUSD", "PYUSD", False)
    assert snap["inventory"]["unit"] == "BTC" and snap["point"]["pnl"] == snap["point"]["pnl_quote"]
