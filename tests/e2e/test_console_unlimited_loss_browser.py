"""The dashboard page in a real browser says NO LOSS LIMIT, in amber, for a run with ``unlimited_loss: true``
or with no kill switch at all (``enabled: false``).

Three real engines (mmkit.testing.Harness): one whose kill switch has no loss limit on purpose, one
without a kill switch, and one with a loss limit, served by the real Dashboard on loopback while a task
ticks them; Debian's headless Chromium opens the pages. The first two pages' kill-switch pill must never
read "kill switch ok" in green; the third's reads as it always did. Needs chromium and chromium-driver
(.ci/install-system), like the other browser tests.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal as D
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from mmkit.app.assembly import RiskSettings
from mmkit.app.config import ConsoleDashboardSection, EngineSection
from mmkit.app.console.dashboard import Dashboard
from mmkit.risk.kill_switch import KillSwitchConfig
from mmkit.testing.harness import Harness
from strategies.simple import SimpleConfig, SimpleController
from tests.e2e.test_tearsheet_browser import browser

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def _engine(kill_switch: KillSwitchConfig | None) -> Harness:
    h = Harness(SimpleController(SimpleConfig(half_spread_bps=D(10), order_size=D("0.5"))),
                risk=RiskSettings(kill_switch=kill_switch))
    h.set_fair("60000")
    h.tick(3)
    return h


def _dashboard(h: Harness, instance: str) -> Dashboard:
    config = SimpleNamespace(engine=EngineSection(instance=instance, output_dir="unused"))
    built = SimpleNamespace(engine=h.engine, config=config, hedge=None)
    return Dashboard(built, ConsoleDashboardSection(port=0, push_interval_ms=100), None)


def _in_page(profile: Path, urls: dict[str, str]) -> dict[str, Any]:
    """The kill-switch pill's text and class on each page (runs in a thread: the engines' loop keeps serving)."""
    from selenium.webdriver.support.ui import WebDriverWait

    read = """const e = document.getElementById("kill");
              return {ticks: document.body.dataset.ticks || null, text: e.textContent, cls: e.className};"""
    driver = browser(profile)
    try:
        seen: dict[str, Any] = {}
        for name, url in urls.items():
            driver.get(url)
            WebDriverWait(driver, 60, poll_frequency=0.2).until(lambda d: d.execute_script(read)["ticks"])
            seen[name] = dict(driver.execute_script(read))
            seen[name]["severe"] = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        return seen
    finally:
        driver.quit()


async def test_the_kill_switch_pill_says_no_loss_limit_in_amber(tmp_path: Path) -> None:
    unlimited = _engine(KillSwitchConfig(max_loss=None, max_drawdown=None, unlimited_loss=True))
    limited = _engine(KillSwitchConfig(max_drawdown=None))
    disabled = _engine(None)  # enabled: false; the pill used to read "kill switch ok" in green
    engines = {"unlimited": unlimited, "limited": limited, "disabled": disabled}
    boards = {name: _dashboard(h, name) for name, h in engines.items()}

    async def drive() -> None:  # the live loop's cadence: a tick, then the dashboards' pushes (not a wait)
        while True:
            for h in engines.values():
                h.tick()
            await asyncio.sleep(0.01)

    task = asyncio.create_task(drive())
    urls = {name: await board.start() for name, board in boards.items()}
    try:
        seen = await asyncio.to_thread(_in_page, tmp_path / "profile", urls)
    finally:
        task.cancel()
        for board in boards.values():
            await board.close()
    page = seen["unlimited"]
    assert page["text"].startswith("kill switch: NO LOSS LIMIT (risk.kill_switch.unlimited_loss: true"), page
    assert page["cls"] == "pill warn", page
    assert not page["severe"], page["severe"]
    page = seen["disabled"]
    assert page["text"] == "kill switch: NO LOSS LIMIT (risk.kill_switch.enabled: false: no kill switch at all)", page
    assert page["cls"] == "pill warn", page
    page = seen["limited"]
    assert (page["text"], page["cls"]) == ("kill switch ok", "pill ok"), page
    assert not page["severe"], page["severe"]
