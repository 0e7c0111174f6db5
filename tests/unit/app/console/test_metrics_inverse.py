"""The console's money and size metrics of an inverse (COIN-M) contract, scraped as Prometheus text.

An inverse contract's ledger is in the coin (BTC) and its sizes in contracts of 100 USD. A metric named
``_quote`` must carry the quote currency and one named ``_base`` the base coin, or an operator's alert
("total PnL below -5000 USD") compares a BTC figure of -0.08 and never fires. Every expected value here is
computed independently with exact fractions from the contract formula ``n · size · (1/entry − 1/exit)``
and the fills the venue reported, never read back from the PnL tracker. The engine is the real one
(mmkit.testing.Harness on conf/venues/binance_coinm.yml); the text is the registry's exposition, parsed
with prometheus_client's own parser, as a scrape of ``/metrics`` would be.
"""

from __future__ import annotations

import math
import urllib.request
from decimal import Decimal as D
from fractions import Fraction as F
from types import SimpleNamespace

import attrs
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from mmkit.app.console.metrics import Metrics, MetricsCollector, MetricsServer
from mmkit.model import Fill, Liquidity, Side
from mmkit.testing.harness import Harness
from strategies.simple import SimpleConfig, SimpleController

SIZE = F(100)  # USD per BTCUSD_PERP contract (conf/venues/binance_coinm.yml)
COMPONENTS = ("realized", "unrealized", "fees", "total")
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _scrape(metrics: Metrics, text: str | None = None) -> Samples:
    text = generate_latest(metrics.registry).decode() if text is None else text
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k != "instance")))] = s.value
    return out


def _http_scrape(metrics: Metrics) -> str:
    """One real scrape of ``/metrics`` from the console's server (its own thread, a free loopback port)."""
    server = MetricsServer(metrics, "127.0.0.1", 0)
    url = server.start()
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return str(response.read().decode())
    finally:
        server.close()


def _rig(rules: str, order_size: str) -> tuple[Harness, Metrics, MetricsCollector]:
    h = Harness(SimpleController(SimpleConfig(half_spread_bps=D(10), order_size=D(order_size))), rules=rules)
    metrics = Metrics("unit")
    collector = MetricsCollector(metrics, SimpleNamespace(engine=h.engine, hedge=None), None, interval_ms=1)
    collector.attach()
    return h, metrics, collector


def _fee_btc(fill: Fill) -> F:
    """The fill's fee in BTC as the venue charged it (a USD fee is worth fee/price BTC at the fill)."""
    if fill.fee_currency.upper() == "BTC":
        return F(fill.fee)
    assert fill.fee_currency.upper() == "USD", fill.fee_currency
    return F(fill.fee) / F(fill.price)


def _close(actual: float, expected: F) -> bool:
    return math.isclose(actual, float(expected), rel_tol=1e-9, abs_tol=1e-12)


def _assert_pnl(s: Samples, btc: dict[str, F], mark: F) -> None:
    for component, value in btc.items():
        quote = s[("mmkit_pnl_quote", (("component", component),))]
        assert _close(quote, value * mark), (component, quote, float(value * mark))
    for component, value in btc.items():
        coin = s[("mmkit_pnl_settlement", (("component", component), ("unit", "BTC")))]
        assert _close(coin, value), (component, coin, float(value))
    assert _close(s[("mmkit_pnl_mark_price_quote", ())], mark)


def test_an_inverse_contract_publishes_usd_at_the_mark_and_btc_with_its_unit() -> None:
    h, metrics, _ = _rig("binance_coinm", "3")
    h.set_fair("60000")
    h.tick(3)
    bid = next(o for o in h.venue.open_orders if o.side is Side.BUY)
    assert bid.remaining == 3
    buy = h.venue.fill(bid.client_id)
    entry = F(buy.price)
    h.set_fair("61000")
    h.tick(3)
    text = _http_scrape(metrics)
    s = _scrape(metrics, text)

    mark = F(61000)
    unrealized = 3 * SIZE * (1 / entry - 1 / mark)
    fees = _fee_btc(buy)
    _assert_pnl(s, {"realized": F(0), "unrealized": unrealized, "fees": fees, "total": unrealized - fees}, mark)
    assert unrealized > 0  # bought at ~59,940 and marked at 61,000
    assert 'mmkit_pnl_settlement{component="total",instance="unit",unit="BTC"}' in text
    # the bug this guards against: the BTC figure published under the USD name
    assert not _close(s[("mmkit_pnl_quote", (("component", "total"),))], unrealized - fees)

    labels = (("book", "quote"), ("side", "buy"))
    assert s[("mmkit_fill_volume_contracts_total", labels)] == 3
    assert _close(s[("mmkit_fill_volume_quote_total", labels)], 3 * SIZE)  # 300 USD, not 3 · 59,940
    assert _close(s[("mmkit_fill_volume_base_total", labels)], 3 * SIZE / entry)  # BTC at the fill price
    limit = F(h.engine.inventory.max_position)
    assert s[("mmkit_position_contracts", ())] == 3
    assert s[("mmkit_position_limit_contracts", ())] == float(limit)
    assert _close(s[("mmkit_position_base", ())], 3 * SIZE / mark)  # the coin the position is worth at the mark
    assert _close(s[("mmkit_position_limit_base", ())], limit * SIZE / mark)
    assert _close(s[("mmkit_inventory_utilization_ratio", ())], 3 / limit)

    # close the long at the ask: realized n · size · (1/entry − 1/exit), flat, fees of both fills
    ask = next(o for o in h.venue.open_orders if o.side is Side.SELL)
    assert ask.remaining >= 3
    sell = h.venue.fill(ask.client_id, qty=3)
    h.tick(2)
    s = _scrape(metrics)
    realized = 3 * SIZE * (1 / entry - 1 / F(sell.price))
    fees = _fee_btc(buy) + _fee_btc(sell)
    assert realized > 0
    _assert_pnl(s, {"realized": realized, "unrealized": F(0), "fees": fees, "total": realized - fees}, mark)
    assert s[("mmkit_fill_volume_contracts_total", (("book", "quote"), ("side", "sell")))] == 3
    assert _close(s[("mmkit_fill_volume_base_total", (("book", "quote"), ("side", "sell")))], 3 * SIZE / F(sell.price))
    assert s[("mmkit_position_contracts", ())] == 0 and s[("mmkit_position_base", ())] == 0


def test_without_a_mark_the_quote_figures_are_nan_and_the_coin_figures_stay() -> None:
    """A ledger recovered at start has coin PnL before any price: no made-up USD number, NaN until the mark."""
    h, metrics, collector = _rig("binance_coinm", "3")
    h.tick()  # no fair price yet: the PnL tracker has no mark
    engine = h.engine
    assert engine.pnl.mark_price is None
    fill = Fill(venue="binance_coinm", trade_id="R1", client_id="c1", symbol="BTCUSD_PERP", side=Side.SELL,
                price=D("50000"), qty=D(2), fee=D("0.0000008"), fee_currency="BTC",
                liquidity=Liquidity.MAKER, ts_event=1, ts_recv=1)
    engine.inventory.on_fill(fill)  # what recovery.py does with the store's fills before the first tick
    engine.pnl.on_fill(fill, None)
    collector.refresh(h.clock.now_ns)
    text = _http_scrape(metrics)
    s = _scrape(metrics, text)
    for component in COMPONENTS:
        assert math.isnan(s[("mmkit_pnl_quote", (("component", component),))]), component
    assert 'mmkit_pnl_quote{component="total",instance="unit"} NaN' in text
    fee = F("0.0000008")
    assert _close(s[("mmkit_pnl_settlement", (("component", "fees"), ("unit", "BTC")))], fee)
    assert _close(s[("mmkit_pnl_settlement", (("component", "total"), ("unit", "BTC")))], -fee)
    assert math.isnan(s[("mmkit_pnl_mark_price_quote", ())])
    assert s[("mmkit_position_contracts", ())] == -2
    assert math.isnan(s[("mmkit_position_base", ())]) and math.isnan(s[("mmkit_position_limit_base", ())])

    h.set_fair("40000")
    h.tick(2)
    s = _scrape(metrics)
    mark = F(40000)
    unrealized = -2 * SIZE * (1 / F(50000) - 1 / mark)  # short 2 contracts from 50,000, marked at 40,000
    assert unrealized > 0
    _assert_pnl(s, {"realized": F(0), "unrealized": unrealized, "fees": fee, "total": unrealized - fee}, mark)
    assert _close(s[("mmkit_position_base", ())], -2 * SIZE / mark)


def test_a_linear_instrument_is_unchanged_and_names_its_quote_currency() -> None:
    h, metrics, _ = _rig("sim", "0.5")
    h.set_fair("60000")
    h.tick(3)
    bid = next(o for o in h.venue.open_orders if o.side is Side.BUY)
    buy = h.venue.fill(bid.client_id)
    assert buy.fee_currency == "PYUSD"
    h.set_fair("60100")
    h.tick(3)
    s = _scrape(metrics)
    entry, qty, mark = F(buy.price), F(buy.qty), F(60100)
    unrealized = qty * (mark - entry)
    expected = {"realized": F(0), "unrealized": unrealized, "fees": F(buy.fee), "total": unrealized - F(buy.fee)}
    pnl = h.engine.pnl
    for component, value in expected.items():
        quote = s[("mmkit_pnl_quote", (("component", component),))]
        assert _close(quote, value), (component, quote)
        assert quote == float(getattr(pnl, component)())  # the very value it always published
        assert s[("mmkit_pnl_settlement", (("component", component), ("unit", "PYUSD")))] == quote
    labels = (("book", "quote"), ("side", "buy"))
    assert s[("mmkit_fill_volume_base_total", labels)] == float(qty)
    assert _close(s[("mmkit_fill_volume_quote_total", labels)], qty * entry)
    assert s[("mmkit_position_base", ())] == float(qty)
    assert not [k for k in s if "contracts" in k[0]]  # no contract series for a linear instrument


@pytest.mark.parametrize("rules", ["binance_coinm", "sim"])
def test_the_unit_label_is_the_ledgers_unit(rules: str) -> None:
    h, metrics, _ = _rig(rules, "1")
    h.tick()
    s = _scrape(metrics)
    units = {dict(k[1])["unit"] for k in s if k[0] == "mmkit_pnl_settlement"}
    assert units == {h.engine.pnl.unit} == {"BTC" if rules == "binance_coinm" else "PYUSD"}


def test_a_ledger_whose_unit_changes_before_any_fill_leaves_no_stale_unit_series() -> None:
    """The PnL settings may be replaced before the first fill (PnLTracker.config): one unit label, the new one."""
    h, metrics, collector = _rig("sim", "1")
    h.tick()
    assert {dict(k[1])["unit"] for k in _scrape(metrics) if k[0] == "mmkit_pnl_settlement"} == {"PYUSD"}
    pnl = h.engine.pnl
    pnl.config = attrs.evolve(pnl.config, quote_asset="USDC")
    collector.refresh(h.clock.now_ns)
    s = _scrape(metrics)
    assert {dict(k[1])["unit"] for k in s if k[0] == "mmkit_pnl_settlement"} == {"USDC"}
    assert len([k for k in s if k[0] == "mmkit_pnl_settlement"]) == 4
