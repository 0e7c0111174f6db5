"""The tearsheet in a real browser: Debian's headless Chromium opens report.html from disk.

The page comes from a real backtest (setup replay, three minutes of the shared
Binance recording) with the data-health section that backtest wrote, plus a
second, fabricated book of the same shape. The browser must log no console error, and every chart must
be drawn by plotly with data in it. A screenshot is kept in the test's tmp dir.

Needs ``chromium`` and ``chromium-driver`` (``.ci/install-system``); selenium
uses the system chromedriver, never a downloaded one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from mmkit.app.assembly import RiskSettings
from mmkit.app.backtest_cmd import load_events, run_backtest, write_outputs
from mmkit.model import NS_PER_S
from mmkit.risk.inventory import InventoryConfig
from strategies.layered import LayeredConfig, LayeredController

pytestmark = [pytest.mark.e2e, pytest.mark.shared_data]
REPO = Path(__file__).resolve().parents[2]

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = "/usr/bin/chromium"
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
)
#: A second book beside the run's own, so the page is shown to lay out several books.
EXTRA_HEALTH = {
    "binance:ETHUSDT": {"snapshots": 1, "diffs_applied": 1_000, "gaps": 0, "resyncs": 0, "events_refused": 0,
                        "crossed": 2, "invalid_ns": 0, "invalid_pct": 0.0},
}


def browser(profile: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert Path(CHROMEDRIVER).is_file() and shutil.which("chromium"), (
        "chromium and chromium-driver are missing: run .ci/install-system"
    )
    options = webdriver.ChromeOptions()
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    events = load_events(shared_data / "binance_spot_btcusdt")
    start = events[0].ts_recv
    risk = RiskSettings(inventory=InventoryConfig(max_position=Decimal("0.05"), hedge_threshold=Decimal("0.03"),
                                                  emergency_position=Decimal("0.1")))
    controller = LayeredController(LayeredConfig(levels=2, base_spread_pct=Decimal("0.02"),
                                                 order_size=Decimal("0.01")))
    result = run_backtest(controller, events, setup="replay", risk=risk, end_ns=start + 180 * NS_PER_S,
                          meta={"data": str(shared_data / "binance_spot_btcusdt")})
    assert result.engine.fills, "the window must have fills for the fill markers and markouts to mean anything"
    real = result.report.get("data_health")
    assert real, "a replay backtest must report the health of the recorded book"
    result.report["data_health"] = {**real, **EXTRA_HEALTH}
    out = tmp_path_factory.mktemp("tearsheet")
    paths = write_outputs(result, out)
    return paths["report.html"]


Inspection = tuple[list[dict[str, Any]], list[Any], dict[str, str]]


def inspect(page: Path, tmp_path: Path, element_ids: tuple[str, ...]) -> Inspection:
    """Open ``page`` from disk: each chart's trace lengths and whether plotly drew it, the console log, texts."""
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium must not fetch a driver: the system one is given
    driver = browser(tmp_path / "profile")
    try:
        driver.get(page.as_uri())
        charts = driver.execute_script(
            "return Array.from(document.querySelectorAll('.chart')).map(function (el) {"
            "  return {id: el.id, traces: (el.data || []).map(function (t) {"
            "    return (t.x || []).length; }), drawn: !!el.querySelector('svg.main-svg')}; });"
        )
        logs = driver.get_log("browser")
        texts = {key: driver.find_element("id", key).text for key in element_ids}
        driver.set_window_size(1400, driver.execute_script("return document.body.scrollHeight") + 100)
        driver.save_screenshot(str(tmp_path / "tearsheet.png"))
    finally:
        driver.quit()
    return charts, logs, texts


def test_tearsheet_opens_offline_without_console_errors_and_every_chart_has_data(page: Path, tmp_path: Path) -> None:
    html = page.read_text(encoding="utf-8")
    assert "<script src" not in html and "<link" not in html  # nothing fetched: plotly.js is inlined
    charts, logs, texts = inspect(
        page, tmp_path, ("headline", "sharpe-note", "health-table", "parameters", "data-files", "fills-table")
    )
    errors = [entry for entry in logs if entry["level"] == "SEVERE"]
    assert errors == []
    ids = {c["id"] for c in charts}
    assert ids == {"chart-equity", "chart-inventory", "chart-quotes", "chart-markouts", "chart-data_health"}
    for chart in charts:
        assert chart["drawn"], chart["id"]
        assert chart["traces"] and all(n > 0 for n in chart["traces"][:1]), chart
        assert sum(chart["traces"]) > 0, chart
    quotes = next(c for c in charts if c["id"] == "chart-quotes")
    assert sum(quotes["traces"][3:]) > 0  # fill markers
    health = next(c for c in charts if c["id"] == "chart-data_health")
    assert all(n == 2 for n in health["traces"])  # the recorded book and the extra one
    assert "binance:ETHUSDT" in texts["health-table"] and "binance:BTCUSDT" in texts["health-table"]
    assert "under 20 days" in texts["sharpe-note"]
    assert "levels" in texts["parameters"] and "base_spread_pct" in texts["parameters"]
    assert "spot_btcusdt_20240808.gz" in texts["data-files"] and "1,274,097" in texts["data-files"]
    assert "2024-08-08T23:5" in texts["fills-table"]  # readable UTC times, not raw nanoseconds
    assert "PnL total" in texts["headline"] and "quote ccy" in texts["headline"]
    assert (tmp_path / "tearsheet.png").stat().st_size > 20_000


def test_a_live_runs_tearsheet_opens_too(tmp_path: Path) -> None:
    """`mmkit start` (simulated venue) writes the same page beside its report; no data health there."""
    config = tmp_path / "layered.yml"
    text = (REPO / "strategies" / "layered_example.yml").read_text()
    config.write_text(text.replace("status_interval_s: 2", f"status_interval_s: 2\n  output_dir: {tmp_path}"))
    done = subprocess.run([sys.executable, "-m", "mmkit.app.cli", "start", "--run-for", "4", "--quiet", str(config)],
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    page = next((tmp_path / "reports").glob("layered-example-*/report.html"))
    charts, logs, texts = inspect(page, tmp_path, ("headline", "health-missing", "parameters"))
    assert [entry for entry in logs if entry["level"] == "SEVERE"] == []
    assert {c["id"] for c in charts} == {"chart-equity", "chart-inventory", "chart-quotes", "chart-markouts"}
    for chart in charts:
        assert chart["drawn"] and sum(chart["traces"]) > 0, chart
    assert "levels" in texts["parameters"] and "no data-health" in texts["health-missing"]


def test_a_run_that_fills_nothing_shows_why_and_its_page_still_draws(
    shared_data: Path, tmp_path: Path, page: Path
) -> None:
    """Quotes 40 bps from the mid on the shared tape (which never prints that far): no fill, and the page says
    why in a banner; charts without fills still draw, with no console error. The page with fills has no banner."""
    from strategies.simple import SimpleConfig, SimpleController

    events = load_events(shared_data / "binance_spot_btcusdt")
    controller = SimpleController(SimpleConfig(half_spread_bps=Decimal(40), order_size=Decimal("0.01")))
    result = run_backtest(controller, events, end_ns=events[0].ts_recv + 120 * NS_PER_S)
    assert not result.engine.fills and result.report["no_fill"]
    empty = write_outputs(result, tmp_path / "out")["report.html"]
    charts, logs, texts = inspect(empty, tmp_path, ("no-fill", "headline"))
    assert [entry for entry in logs if entry["level"] == "SEVERE"] == []
    assert texts["no-fill"] == result.report["no_fill"] and "synthetic takers" in texts["no-fill"]
    assert all(chart["drawn"] for chart in charts)
    assert 'id="no-fill"' not in page.read_text(encoding="utf-8")


def test_a_run_whose_controller_failed_shows_its_problems_in_red_on_the_page(
    shared_data: Path, tmp_path: Path, page: Path
) -> None:
    """A controller that raises on some ticks (`mmkit backtest` exits 4): the page opens with the red
    "Problems in this run" box naming the failure; the clean run's page has none."""
    from strategies.simple import SimpleConfig, SimpleController

    class FailsSometimes(SimpleController):
        asked = 0

        def on_tick(self, ctx: Any) -> Any:
            self.asked += 1
            if self.asked % 50 == 0:
                raise RuntimeError("strategy bug")
            return super().on_tick(ctx)

    events = load_events(shared_data / "binance_spot_btcusdt")
    controller = FailsSometimes(SimpleConfig(half_spread_bps=Decimal(5), order_size=Decimal("0.01")))
    result = run_backtest(controller, events, setup="replay", end_ns=events[0].ts_recv + 120 * NS_PER_S)
    assert result.engine.outcome.exit_code() == 4
    failed = write_outputs(result, tmp_path / "out")["report.html"]
    _, logs, texts = inspect(failed, tmp_path, ("problems", "headline"))
    assert [entry for entry in logs if entry["level"] == "SEVERE"] == []
    assert "Problems in this run" in texts["problems"], texts
    assert "engine_failure" in texts["problems"] and "FailsSometimes.on_tick failed: RuntimeError" in texts["problems"]
    assert 'id="problems"' not in page.read_text(encoding="utf-8")
