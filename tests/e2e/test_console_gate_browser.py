"""The dashboard page in a real browser says quoting is HELD, in red, while a runner gate keeps quotes off.

A real engine (mmkit.testing.Harness) on a venue whose quoting guard says its dead man's switch is
not armed (the path connectors/ccxt/deadman.py takes) is served by the real Dashboard on loopback
while a task ticks it; Debian's headless Chromium opens the page. While the guard holds, the quoting
pill must name the gate and its reason in red (before this it read a green "quoting" on an engine that
quoted nothing), and ``mmkit status``'s live section, read over HTTP from the same dashboard, must say
the same; once the guard clears, the pill turns green "quoting" and the quotes are back. Needs chromium
and chromium-driver (.ci/install-system), like the other browser tests.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from decimal import Decimal as D
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from mmkit.app.config import ConsoleDashboardSection, EngineSection
from mmkit.app.console.dashboard import Dashboard
from mmkit.app.console.status_view import format_live, live_snapshot
from mmkit.connector import load_venue_rules
from mmkit.testing.fake_connector import FakeConnector
from mmkit.testing.harness import DEFAULT_START_NS, Harness
from strategies.simple import SimpleConfig, SimpleController
from tests.e2e.test_tearsheet_browser import browser

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]
WHY = "sim: dead man's switch not armed yet: no refresh answered (3 failed, last: timeout)"
CLAIM = "market claim lost to instance other"


class GuardedVenue(FakeConnector):
    """A FakeConnector whose dead man's switch the test declares unarmed, then armed."""

    halt: str | None = None

    def quoting_halt_reason(self) -> str | None:
        return self.halt


def _in_page(profile: Path, url: str, output_dir: Path, release: Callable[[], None]) -> dict[str, Any]:
    """The quoting pill while the gate holds, ``mmkit status``'s live section, then the pill after it cleared."""
    from selenium.webdriver.support.ui import WebDriverWait

    read = """const e = document.getElementById("quoting");
              return {ticks: Number(document.body.dataset.ticks || 0), text: e.textContent, cls: e.className,
                      ladder: document.querySelectorAll("#ladder tr").length};"""
    driver = browser(profile)
    try:
        driver.get(url)
        wait = WebDriverWait(driver, 60, poll_frequency=0.1)
        wait.until(lambda d: d.execute_script(read)["ticks"])
        seen: dict[str, Any] = {"held": dict(driver.execute_script(read))}
        seen["live"] = live_snapshot(output_dir, "gated")
        driver.save_screenshot(str(profile.parent / "dashboard-gate-held.png"))
        release()
        wait.until(lambda d: d.execute_script(read)["cls"] == "pill ok")
        seen["clear"] = dict(driver.execute_script(read))
        seen["severe"] = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        return seen
    finally:
        driver.quit()


async def test_the_page_shows_the_gate_in_red_while_it_holds_and_green_after(tmp_path: Path) -> None:
    venue = GuardedVenue(load_venue_rules("sim"), start_ns=DEFAULT_START_NS)
    h = Harness(SimpleController(SimpleConfig(half_spread_bps=D(10), order_size=D("0.5"))), venue=venue)
    h.set_fair("60000")
    h.tick(3)
    assert len(venue.open_orders) == 2
    claim: list[str | None] = [None]
    h.engine.runner.add_gate(lambda _ts: claim[0], "market claim")
    venue.halt = WHY
    claim[0] = CLAIM  # a second gate holding at the same time: the pill names both
    h.tick(2)
    assert venue.open_orders == []
    config = SimpleNamespace(engine=EngineSection(instance="gated", output_dir=str(tmp_path)))
    board = Dashboard(SimpleNamespace(engine=h.engine, config=config, hedge=None),
                      ConsoleDashboardSection(port=0, push_interval_ms=100), None)

    async def drive() -> None:  # the live loop's cadence: a tick, then the dashboard's pushes (not a wait)
        while True:
            h.tick()
            await asyncio.sleep(0.01)

    def release() -> None:  # from the browser's thread: attributes read by the next tick
        claim[0] = None
        venue.halt = None

    task = asyncio.create_task(drive())
    url = await board.start()
    (tmp_path / "console").mkdir()
    (tmp_path / "console" / "gated.json").write_text(json.dumps({"dashboard": url}))  # as Console writes it
    try:
        seen = await asyncio.to_thread(_in_page, tmp_path / "profile", url, tmp_path, release)
    finally:
        task.cancel()
        await board.close()

    held = seen["held"]
    assert held["cls"] == "pill bad", held
    assert held["text"].startswith("quoting HELD by gate venue sim since ") and f"{WHY}; by gate market claim since " \
        in held["text"] and held["text"].endswith(CLAIM), held
    live = seen["live"]
    assert live is not None and [(g["gate"], g["reason"]) for g in live["gates"]] == [("venue sim", WHY),
                                                                                      ("market claim", CLAIM)]
    assert "HELD by gate venue sim" in format_live(live) and WHY in format_live(live)
    assert "HELD by gate market claim" in format_live(live) and CLAIM in format_live(live)
    clear = seen["clear"]
    assert clear["text"] == "quoting" and clear["ticks"] > held["ticks"], clear
    assert h.engine.runner.gate_hold is None and len(venue.open_orders) == 2
    assert not seen["severe"], seen["severe"]
