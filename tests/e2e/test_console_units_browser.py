"""The dashboard page in a real browser names the unit of the PnL: BTC for a COIN-M contract, with USD at the mark.

Two real engines (mmkit.testing.Harness), one on an inverse contract (conf/venues/binance_coinm.yml:
contracts of 100 USD, PnL in BTC) and one linear (sim, BTC-PYUSD), each with a fill, are served by the
real Dashboard on loopback while a task ticks them; Debian's headless Chromium opens both pages. The
inverse page must say "BTC" on every PnL figure with its USD value at the mark (checked against the
contract formula computed here), sizes in contracts and the fee's currency; the linear page must look
as it always did (plain figures, no unit mixed in). Needs chromium and chromium-driver
(.ci/install-system), like tests/e2e/test_console.py.
"""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal as D
from fractions import Fraction as F
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from mmkit.app.config import ConsoleDashboardSection, EngineSection
from mmkit.app.console.dashboard import Dashboard
from mmkit.model import Fill, Side
from mmkit.testing.harness import Harness
from strategies.simple import SimpleConfig, SimpleController
from tests.e2e.test_tearsheet_browser import browser

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]
NUMBER = r"(-?\d+\.\d+)"


def _engine(rules: str, order_size: str, fair_after: str) -> tuple[Harness, Fill]:
    h = Harness(SimpleController(SimpleConfig(half_spread_bps=D(10), order_size=D(order_size))), rules=rules)
    h.set_fair("60000")
    h.tick(3)
    bid = next(o for o in h.venue.open_orders if o.side is Side.BUY)
    fill = h.venue.fill(bid.client_id)
    h.set_fair(fair_after)
    h.tick(3)
    return h, fill


def _dashboard(h: Harness, instance: str) -> Dashboard:
    config = SimpleNamespace(engine=EngineSection(instance=instance, output_dir="unused"))
    built = SimpleNamespace(engine=h.engine, config=config, hedge=None)
    return Dashboard(built, ConsoleDashboardSection(port=0, push_interval_ms=100), None)


def _drawn(state: dict[str, Any]) -> bool:
    """The page has drawn a snapshot (its tick counter) with our fill in the fills table."""
    return bool(state["ticks"]) and int(state["rows"]) > 1


def _in_page(profile: Path, inverse_url: str, linear_url: str) -> dict[str, Any]:
    """What an operator reads on both pages (runs in a thread: the engines' loop keeps serving)."""
    from selenium.webdriver.support.ui import WebDriverWait

    # One script reads everything at once: the page redraws its tables on every push (every 100 ms here),
    # so elements found one call earlier may already be gone.
    read = """
        const t = (css) => { const e = document.querySelector(css); return e ? e.innerText : null; };
        return {ticks: document.body.dataset.ticks || null, rows: document.querySelectorAll("#fills tr").length,
                title: document.getElementById("pnl-title").textContent, pnl: t("#pnl"), total: t("#pnl-total"),
                inventory: t("#inventory"), fills_head: t("#fills tr:first-child"), fill: t("#fills tr:nth-child(2)")};
    """
    driver = browser(profile)
    try:
        seen: dict[str, Any] = {}
        for name, url in (("inverse", inverse_url), ("linear", linear_url)):
            driver.get(url)
            wait = WebDriverWait(driver, 60, poll_frequency=0.2)
            wait.until(lambda d: _drawn(d.execute_script(read)))
            seen[name] = dict(driver.execute_script(read))
            seen[name]["severe"] = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
            driver.save_screenshot(str(profile.parent / f"dashboard-{name}.png"))
        return seen
    finally:
        driver.quit()


async def test_the_page_names_btc_and_shows_usd_at_the_mark(tmp_path: Path) -> None:
    inverse, buy = _engine("binance_coinm", "3", "61000")
    linear, linear_buy = _engine("sim", "0.5", "60100")
    boards = [_dashboard(inverse, "coinm"), _dashboard(linear, "linear")]

    async def drive() -> None:  # the live loop's cadence: a tick, then the dashboards' pushes (not a wait)
        while True:
            inverse.tick()
            linear.tick()
            await asyncio.sleep(0.01)

    task = asyncio.create_task(drive())
    urls = [await board.start() for board in boards]
    try:
        seen = await asyncio.to_thread(_in_page, tmp_path / "profile", *urls)
    finally:
        task.cancel()
        for board in boards:
            await board.close()

    page = seen["inverse"]
    assert page["title"] == "PnL (BTC; USD at the mark)", page
    assert buy.fee_currency == "BTC"  # the fake venue charges an inverse contract in the coin
    fee = F(buy.fee)
    total_btc = 3 * F(100) * (1 / F(buy.price) - 1 / F(61000)) - fee
    match = re.fullmatch(rf"total {NUMBER} BTC \({NUMBER} USD\)", page["total"])
    assert match, page["total"]
    assert abs(float(match[1]) - float(total_btc)) <= 1e-8, (match[1], float(total_btc))
    assert abs(float(match[2]) - float(total_btc * 61000)) <= 0.01, (match[2], float(total_btc * 61000))
    for part in ("realized", "unrealized", "fees"):
        assert re.search(rf"{part} {NUMBER} BTC \({NUMBER} USD\)", page["pnl"]), page["pnl"]
    assert "mark 61000.00" in page["pnl"], page["pnl"]
    assert re.match(r"position 3\.0000 contracts of ±\d+\.\d\d contracts", page["inventory"]), page["inventory"]
    assert "qty (contracts)" in page["fills_head"] and page["fill"].endswith(f" {buy.fee_currency}"), page
    assert not page["severe"], page["severe"]

    page = seen["linear"]
    assert page["title"] == "PnL (PYUSD)", page
    total = F(linear_buy.qty) * (60100 - F(linear_buy.price)) - F(linear_buy.fee)
    match = re.fullmatch(rf"total {NUMBER}", page["total"])  # the figure alone, as it always was
    assert match and abs(float(match[1]) - float(total)) <= 0.01, (page["total"], float(total))
    assert "BTC" not in page["pnl"] and "mark" not in page["pnl"], page["pnl"]
    assert "contracts" not in page["inventory"] and "qty (" not in page["fills_head"], page
    assert not page["severe"], page["severe"]
