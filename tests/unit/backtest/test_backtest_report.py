"""Report metrics from per-tick samples and the fill ledger."""

from __future__ import annotations

import json
import math
from decimal import Decimal as D
from pathlib import Path

from mmkit.backtest.html import plotly_js, render_tearsheet, write_tearsheet
from mmkit.backtest.plots import tearsheet_figures
from mmkit.backtest.progress import ProgressBar
from mmkit.backtest.report import build_report, format_table, write_json
from mmkit.backtest.sampler import BacktestSampler
from mmkit.connector import load_venue_rules
from mmkit.model import NS_PER_S, Fill, Liquidity, OrderAccepted, OrderRequest, Side
from mmkit.orders.tracker import ClientOrderTracker
from mmkit.risk.inventory import InventoryConfig, InventoryManager
from mmkit.risk.pnl import PnLTracker
from mmkit.testing.fake_connector import FakeConnector


def fill(n: int, side: Side, price: str, qty: str, ts: int) -> Fill:
    return Fill("v", f"f{n}", f"c{n}", "BTC-PYUSD", side, D(price), D(qty), D("0.01"), "USD", Liquidity.MAKER, ts, ts)


class Harness:
    """A sampler over real trackers, driven by hand."""

    def __init__(self) -> None:
        self.pnl = PnLTracker()
        self.inventory = InventoryManager(InventoryConfig(max_position=D(1), hedge_threshold=D("0.5"),
                                                          emergency_position=D(2)))
        self.orders = ClientOrderTracker(FakeConnector(load_venue_rules("sim"), validate=False))
        self.mid = D(100)
        from mmkit.model import FairValue

        self.sampler = BacktestSampler(self.pnl, self.inventory, self.orders, "BTC-PYUSD",
                                       lambda: FairValue(self.mid, 1.0, 0))
        self.fills: list[Fill] = []

    def add_fill(self, f: Fill) -> None:
        self.fills.append(f)
        self.inventory.on_fill(f)
        self.pnl.on_fill(f, self.mid)


def test_report_figures_from_samples_and_fills(tmp_path: Path) -> None:
    h = Harness()
    fake = h.orders  # accepted orders: one buy of 2 offered
    fake.submit(OrderRequest("c1", "sim", "BTC-PYUSD", Side.BUY, D("2"), D(99)), 0)
    h.sampler.on_order_event(OrderAccepted("sim", "c1", "o1", 0, 0))
    for i in range(10):
        h.pnl.mark(h.mid, i * NS_PER_S)
        if i == 2:
            h.add_fill(fill(1, Side.BUY, "99", "1", i * NS_PER_S))
        if i == 6:
            h.add_fill(fill(2, Side.SELL, "101", "0.5", i * NS_PER_S))
        h.sampler.tick(i * NS_PER_S)
    report = build_report(h.sampler, h.fills, h.pnl, max_position=D(1), meta={"setup": "test"})
    assert report["setup"] == "test"
    assert report["ticks"] == 10
    assert report["fills"]["count"] == 2 and report["fills"]["buys"] == 1
    assert report["fills"]["fill_ratio"] == 0.75  # 1.5 filled of 2 offered
    assert D(report["fills"]["spread_capture_bps"]) == D(100)  # bought 1 below, sold 1 above a mid of 100
    assert D(report["pnl"]["fees"]) == D("0.02")
    assert D(report["pnl"]["realized"]) == D("1.0")  # 0.5 bought at 99, sold at 101
    # |position| was 1 (the limit) from tick 2 to tick 5: 4 of 10 ticks
    assert report["inventory"]["time_at_limits"] == 0.4
    assert report["inventory"]["max"] == 1.0 and report["inventory"]["final"] == "0.5"
    assert report["quoting"]["uptime"] == 0.0  # the order is still pending: never live
    path = tmp_path / "r.json"
    write_json(report, path)
    assert json.loads(path.read_text())["fills"]["count"] == 2
    table = format_table(report)
    assert "time at limits" in table and "40.0 %" in table


def test_tearsheet_is_self_contained_with_every_chart(tmp_path: Path) -> None:
    h = Harness()
    for i in range(20):
        h.mid = D(100) + D(i) / 10
        h.pnl.mark(h.mid, i * NS_PER_S)
        if i == 5:
            h.add_fill(fill(1, Side.BUY, "100.4", "0.5", i * NS_PER_S))
        h.sampler.tick(i * NS_PER_S)
    report = build_report(h.sampler, h.fills, h.pnl, max_position=D(1))
    figures = tearsheet_figures(report, h.sampler, h.fills)
    assert list(figures) == ["equity", "inventory", "quotes", "markouts"]  # no data health in this report
    assert all(trace["x"] for fig in figures.values() for trace in fig["data"][:1])
    page = render_tearsheet(report, h.sampler, h.fills)
    assert "<script src" not in page and "Plotly.newPlot" in page
    assert "time_at_limits" in page and "health-missing" in page
    assert "1970-01-01T00:00:05.000Z" in page  # readable UTC, not raw ns


def test_written_page_is_the_rendered_page_with_plotly_embedded_once(tmp_path: Path) -> None:
    """write_tearsheet copies plotly.js from its file between the rendered halves: same bytes as the string."""
    from plotly.offline import get_plotlyjs

    h = Harness()
    for i in range(5):
        h.mid = D(100) + D(i) / 10
        h.pnl.mark(h.mid, i * NS_PER_S)
        h.sampler.tick(i * NS_PER_S)
    report = build_report(h.sampler, h.fills, h.pnl, max_position=D(1))
    page = render_tearsheet(report, h.sampler, h.fills, title="t <&> ü")
    written = write_tearsheet(report, h.sampler, h.fills, tmp_path / "report.html", title="t <&> ü").read_bytes()
    assert written == page.encode("utf-8")
    assert plotly_js() == get_plotlyjs()  # the file read directly is what plotly itself would embed
    assert written.count(b"<script>" + get_plotlyjs().encode() + b"</script>") == 1
    assert b"\x00" not in written


def test_sampler_nan_when_no_quotes() -> None:
    h = Harness()
    h.sampler.tick(0)
    assert math.isnan(h.sampler.bid[0]) and math.isnan(h.sampler.ask[0])
    assert h.sampler.mid[0] == 100.0


def test_progress_bar_draws_and_stays_quiet_when_disabled() -> None:
    import io

    stream = io.StringIO()
    bar = ProgressBar(100, stream=stream, min_interval_s=0.0)
    bar.update(50)
    assert "50.0 %" in stream.getvalue()
    bar.close()
    assert stream.getvalue().endswith("\n") and "100.0 %" in stream.getvalue()
    quiet = io.StringIO()
    off = ProgressBar(100, stream=quiet, enabled=False)
    off.update(50)
    off.close()
    assert quiet.getvalue() == ""
