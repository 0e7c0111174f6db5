"""The operator console for real (issue 14): metrics scraped over HTTP, alerts posted to a webhook.

``mmkit start strategies/truex_btc_pyusd.yml`` runs in a subprocess against the local TrueX FIX
exchange (its own process, simulated takers), offline (reference replayed from the shared
recording, simulated Kraken hedge), with a ``console`` section added to its config: metrics and the
dashboard on free loopback ports, alerts to an aiohttp server run by the test (real HTTP), whose
first answer is a 500 so the retry is exercised. The test:

* scrapes ``/metrics`` and parses it with ``prometheus_client``'s own text parser, twice while the
  instance trades, and checks values that must move (ticks, order actions, decision latency);
* trips the kill switch through the control socket and receives the ``kill_switch`` alert; the
  metric follows;
* stops the instance (SIGINT) cleanly.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from mmkit.app.control.client import send_command
from mmkit.app.control.paths import control_socket_path
from tests.child_signals import ctrl_c_reaches_children
from tests.faults.truex_run import free_port, ports_open, wait_for
from tests.integration.truex.harness import free_ports

REPO = Path(__file__).resolve().parents[2]
INSTANCE = "truex-btc"
SPEED = "4"
TOKEN = "e2e-console-token-123"

pytestmark = [pytest.mark.e2e, pytest.mark.shared_data, pytest.mark.timeout(300)]


class WebhookReceiver:
    """A real HTTP server on loopback (its own thread and loop) recording the alerts POSTed to it."""

    def __init__(self, fail_first: int = 0) -> None:
        self.received: list[dict[str, Any]] = []
        self.attempts = 0
        self.fail_first = fail_first
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook/secret-path"

    async def _handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        body = await request.json()
        if self.attempts <= self.fail_first:
            return web.Response(status=500, text="try again")
        self.received.append(body)
        return web.json_response({"ok": True})

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/hook/secret-path", self._handle)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()

    def start(self) -> WebhookReceiver:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def kinds(self) -> list[str]:
        return [a["kind"] for a in list(self.received)]

    def close(self) -> None:
        async def stop() -> None:
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


class Instance:
    """The temp dir of one test: the TrueX simulator and the engine with its console configured."""

    def __init__(self, root: Path, data: Path, console: str, webhook: str) -> None:
        self.root = root
        self.data = data
        self.oe_port, self.md_port = free_ports(2)  # picked together: two picks in a row can be one port
        self.config = root / "truex_btc_pyusd.yml"
        text = (REPO / "strategies" / "truex_btc_pyusd.yml").read_text()
        for old, new in (("port: 9876", f"port: {self.oe_port}"), ("port: 9877", f"port: {self.md_port}")):
            assert text.count(old) == 1, old
            text = text.replace(old, new)
        assert text.count("  instance: truex-btc\n") == 1
        text = text.replace("  instance: truex-btc\n", f"  instance: truex-btc\n  output_dir: {root}\n")
        self.config.write_text(text + "\n" + console)
        self.socket = control_socket_path(root, INSTANCE)
        self.env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "TRUEX_API_KEY": "demo-key",
            "TRUEX_SECRET_KEY": "demo-secret",
            "MMKIT_E2E_CONSOLE_TOKEN": TOKEN,
            "MMKIT_E2E_WEBHOOK": webhook,  # a webhook URL is a secret (its path often is): from the environment
        }
        self._logs: list[IO[bytes]] = []
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = (self.root / f"{name}.log").open("wb")
        self._logs.append(log)
        proc = subprocess.Popen([sys.executable, *args], cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def start(self, *venue_args: str) -> subprocess.Popen[bytes]:
        venue = self.spawn("venue", [
            "-m", "connectors.truex.sim", "--oe-port", str(self.oe_port), "--md-port", str(self.md_port),
            "--recording", str(self.data), "--speed", SPEED,
            "--taker-reach-bps", "40", "--taker-probability", "0.6", "--taker-qty", "0.002", *venue_args,
        ])  # fmt: skip
        wait_for("the TrueX simulator's ports", lambda: ports_open(self.oe_port, self.md_port), 30, venue)
        engine = self.spawn("engine", [
            "-m", "mmkit.app.cli", "start", str(self.config), "--quiet",
            "--reference-replay", str(self.data), "--replay-speed", SPEED, "--sim-hedge",
            "--output-dir", str(self.root),
        ])  # fmt: skip
        addresses = self.root / "console" / f"{INSTANCE}.json"
        wait_for("the console's addresses", addresses.exists, 60, engine, venue)
        self.addresses = json.loads(addresses.read_text())
        return engine

    def raw(self, action: str, **params: Any) -> dict[str, Any]:
        return send_command(self.socket, action, params=params, source="e2e test", timeout_s=60)

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        for log in self._logs:
            log.close()


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``/metrics`` over HTTP, parsed by prometheus_client's parser: {(sample name, labels): value}."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode("utf-8")
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "instance"))
            samples[(sample.name, labels)] = sample.value
    return samples


def total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    """Sum of the samples called ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


CONSOLE = """console:
  metrics: {port: 0, interval_ms: 200}
  dashboard: {port: 0, control_token: "${MMKIT_E2E_CONSOLE_TOKEN}", push_interval_ms: 500}
  alerts:
    webhooks: [{url: "${MMKIT_E2E_WEBHOOK}"}]
    retries: 3
    backoff_s: 0.2
    min_interval_s: 60
"""


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    hook = WebhookReceiver(fail_first=1).start()
    try:
        yield hook
    finally:
        hook.close()


@pytest.fixture
def instance(tmp_path: Path, shared_data: Path, receiver: WebhookReceiver) -> Iterator[Instance]:
    inst = Instance(tmp_path, shared_data / "binance_spot_btcusdt", CONSOLE, receiver.url)
    try:
        yield inst
    finally:
        inst.close()


def test_metrics_are_scraped_and_a_kill_switch_trip_alerts(instance: Instance, receiver: WebhookReceiver) -> None:
    inst = instance
    engine = inst.start()
    url = inst.addresses["metrics"]
    assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics")

    wait_for("orders placed (metrics)", lambda: total(scrape(url), "mmkit_order_actions_total", action="place") > 0,
          60, engine)  # fmt: skip
    first = scrape(url)
    wait_for("a fill (metrics)", lambda: total(scrape(url), "mmkit_fills_total") > 0, 120, engine)
    wait_for("more ticks and order actions", lambda: (
        total(scrape(url), "mmkit_clock_ticks_total") > total(first, "mmkit_clock_ticks_total") + 10
        and total(scrape(url), "mmkit_order_actions_total") > total(first, "mmkit_order_actions_total")
    ), 60, engine)  # fmt: skip
    later = scrape(url)
    # the decision path is observed on every tick: its histogram count moves while it trades
    assert total(later, "mmkit_decision_latency_seconds_count") > total(first, "mmkit_decision_latency_seconds_count")
    assert total(later, "mmkit_order_ack_latency_seconds_count", action="place") > 0  # FIX round trips at TrueX
    assert total(later, "mmkit_price_to_order_latency_seconds_count") > 0  # reference moves that re-quoted
    assert total(later, "mmkit_orders", state="open") + total(later, "mmkit_orders", state="pending_create") > 0
    assert total(later, "mmkit_fill_volume_base_total") > 0
    assert total(later, "mmkit_position_limit_base") == 5.0  # risk.inventory.max_position of the shipped config
    assert total(later, "mmkit_venue_connected", venue="truex", role="quote") == 1
    assert total(later, "mmkit_book_valid", venue="truex") == 1
    assert 0 < total(later, "mmkit_reference_confidence_ratio") <= 1
    assert total(later, "mmkit_reference_price_quote") > 1000
    assert total(later, "mmkit_kill_switch_halted") == 0
    assert ("mmkit_pnl_quote", (("component", "realized"),)) in later
    assert ("mmkit_recorder_queue_depth", ()) in later

    # `mmkit status` shows the live section: orders by side and level with distance from mid and age
    status = subprocess.run([sys.executable, "-m", "mmkit.app.cli", "status", str(inst.config)], cwd=REPO,
                            env=inst.env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert status.returncode == 0, status.stderr
    out = status.stdout
    assert "(by side and level)" in out and "from mid bps" in out and "age s" in out, out
    assert "balances" in out and "hedge        kraken: position" in out and "last errors" in out, out
    rows = [line.split() for line in out.splitlines() if line.strip().startswith(("sell ", "buy "))]
    assert rows and [r[0] for r in rows] == sorted((r[0] for r in rows), key=lambda side: side != "sell"), out
    sells = [int(r[1]) for r in rows if r[0] == "sell" and r[1] != "-"]
    assert sells == sorted(sells), out
    with ctrl_c_reaches_children():  # the SIGINT below must stop it even if this runner ignores SIGINT
        watch = subprocess.Popen([sys.executable, "-m", "mmkit.app.cli", "status", str(inst.config), "--watch",
                                  "--interval", "0.5"], cwd=REPO, env=inst.env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)  # fmt: skip
    chunks: list[str] = []
    reader = threading.Thread(target=lambda: chunks.extend(iter(watch.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    deadline = time.monotonic() + 30  # two redraws (rich without a terminal may draw only at the end: then time out)
    while time.monotonic() < deadline and "".join(chunks).count("(by side and level)") < 2:
        time.sleep(0.2)
    watch.send_signal(signal.SIGINT)
    watch.wait(timeout=60)
    reader.join(10)
    watched, errors = "".join(chunks), watch.stderr.read()  # type: ignore[union-attr]
    assert watch.returncode == 0 and "Traceback" not in errors, errors
    assert "(by side and level)" in watched

    # a kill-switch trip in the running instance posts an alert (the receiver fails the first POST: retried)
    assert inst.raw("trip", reason="e2e console trip")["ok"]
    wait_for("the kill_switch alert", lambda: "kill_switch" in receiver.kinds(), 60, engine)
    alert = next(a for a in receiver.received if a["kind"] == "kill_switch")
    assert alert["version"] == 1 and alert["instance"] == INSTANCE and alert["severity"] == "critical"
    assert "e2e console trip" in alert["message"] and alert["ts_ns"] > 0
    assert receiver.attempts >= 2  # the 500 was retried
    wait_for("the trip in the metrics", lambda: total(scrape(url), "mmkit_kill_switch_halted") == 1, 30, engine)
    halted = scrape(url)
    assert any(
        n == "mmkit_kill_switch_info" and "e2e console trip" in dict(ls).get("reason", "") and v == 1
        for (n, ls), v in halted.items()
    )

    engine.send_signal(signal.SIGINT)
    engine.wait(timeout=120)
    assert "Traceback" not in inst.log("engine")
    with pytest.raises(OSError):  # the endpoint went with the instance
        urllib.request.urlopen(url, timeout=5)


def _browser(tmp: Path) -> Any:
    """Debian's chromium, headless, driven by its chromedriver through selenium (no download, no network)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp / 'chromium-profile'}",
        "--window-size=1600,1200",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def _post(url: str, action: str, token: str | None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        url + "api/control", data=json.dumps({"action": action}).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_dashboard_in_a_headless_browser(instance: Instance, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    inst = instance
    engine = inst.start()
    url = inst.addresses["dashboard"]
    assert url.startswith("http://127.0.0.1:")
    wait_for("quotes resting at TrueX", lambda: inst.raw("status")["data"]["open_orders"] > 0, 60, engine)

    # without the token, a control action is refused (and nothing changes)
    status, body = _post(url, "pause", None)
    assert status == 403 and not body["ok"] and "token" in body["message"], body
    status, body = _post(url, "pause", "not-the-token")
    assert status == 403 and not body["ok"], body
    assert inst.raw("status")["data"]["quoting"] == "active", inst.raw("status")

    driver = _browser(tmp_path)
    try:
        driver.get(url)
        wait = WebDriverWait(driver, 60, poll_frequency=0.2)

        def number(element_id: str) -> float:
            return float(driver.find_element(By.ID, element_id).text)

        # live values: the tick counter, our orders in the ladder, the charts growing
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ticks"))
        ticks0 = int(driver.find_element(By.TAG_NAME, "body").get_attribute("data-ticks"))
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#ladder tr.ours"))
        wait.until(lambda d: int(d.find_element(By.ID, "orders").get_attribute("data-count") or 0) > 0)
        points0 = int(driver.find_element(By.ID, "pnl-chart").get_attribute("data-points"))
        wait.until(lambda d: int(d.find_element(By.TAG_NAME, "body").get_attribute("data-ticks")) > ticks0 + 10)
        wait.until(lambda d: int(d.find_element(By.ID, "pnl-chart").get_attribute("data-points")) >= points0 + 3)
        assert driver.find_elements(By.CSS_SELECTOR, "#pnl-chart .main-svg")  # plotly drew (served locally)
        assert driver.find_elements(By.CSS_SELECTOR, "#pos-chart .scatterlayer .trace")
        wait_for("a fill on the page", lambda: len(driver.find_elements(By.CSS_SELECTOR, "#fills tr")) > 1, 120, engine)
        assert abs(number("position")) >= 0  # drawn as a number
        assert "kill switch ok" in driver.find_element(By.ID, "kill").text
        assert "confidence" in driver.find_element(By.ID, "ref").text
        order_rows = driver.find_elements(By.CSS_SELECTOR, "#orders tr")
        orders_text = driver.find_element(By.ID, "orders").text
        assert len(order_rows) > 1 and any(state in orders_text for state in ("open", "pending_", "partially")), (
            orders_text
        )
        driver.save_screenshot(str(tmp_path / "dashboard-live.png"))
        severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not severe, severe  # no console error while it ran live

        # in the page: pause without the token is refused, with it takes effect (confirmed first)
        driver.find_element(By.ID, "btn-pause").click()
        wait.until(lambda d: d.switch_to.alert).accept()
        wait.until(lambda d: "refused" in d.find_element(By.ID, "msg").text)
        assert inst.raw("status")["data"]["quoting"] == "active"
        driver.find_element(By.ID, "token").send_keys(TOKEN)
        driver.find_element(By.ID, "btn-pause").click()
        wait.until(lambda d: d.switch_to.alert).accept()
        wait.until(lambda d: "pause: done" in d.find_element(By.ID, "msg").text)
        status_now = inst.raw("status")["data"]
        assert status_now["quoting"].startswith("paused") and status_now["open_orders"] == 0, status_now
        wait.until(lambda d: "PAUSED" in d.find_element(By.ID, "quoting").text)
        wait.until(lambda d: "pause done" in d.find_element(By.ID, "events").text)
        driver.find_element(By.ID, "btn-resume").click()
        wait.until(lambda d: d.switch_to.alert).accept()
        wait.until(lambda d: "resume: done" in d.find_element(By.ID, "msg").text)
        wait_for("quoting again after the page's resume", lambda: inst.raw("status")["data"]["open_orders"] > 0, 60,
              engine)  # fmt: skip
        driver.save_screenshot(str(tmp_path / "dashboard-after-controls.png"))
        severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        # the one refused request (no token) is logged by the browser as a failed resource: nothing else
        assert len(severe) <= 1 and all("/api/control" in e["message"] and "403" in e["message"] for e in severe), (
            severe
        )
    finally:
        driver.quit()

    engine.send_signal(signal.SIGINT)
    engine.wait(timeout=120)
    lines = [json.loads(x) for x in (inst.root / "audit" / f"{INSTANCE}.jsonl").read_text().splitlines()]
    web_results = [
        x["data"]
        for x in lines
        if x["kind"] == "control" and x["data"]["phase"] == "result" and x["data"]["source"].startswith("web ")
    ]
    assert [c["action"] for c in web_results] == ["pause", "resume"], web_results


def test_a_refused_start_alerts(tmp_path: Path, shared_data: Path, receiver: WebhookReceiver) -> None:
    """The audit trail cannot be opened: the instance refuses to start (exit 3) and says so to the webhook."""
    store = "store:\n  audit_path: /proc/mmkit-no-such-dir/audit.jsonl\n"
    inst = Instance(tmp_path, shared_data / "binance_spot_btcusdt", CONSOLE + store, receiver.url)
    try:
        engine = inst.spawn("engine", [
            "-m", "mmkit.app.cli", "start", str(inst.config), "--quiet",
            "--reference-replay", str(inst.data), "--replay-speed", SPEED, "--sim-hedge",
            "--output-dir", str(inst.root),
        ])  # fmt: skip
        assert engine.wait(timeout=180) == 3, inst.log("engine")[-3000:]
        alerts = [a for a in receiver.received if a["kind"] == "start_refused"]
        assert len(alerts) == 1, (receiver.received, inst.log("engine")[-3000:])
        assert alerts[0]["instance"] == INSTANCE and "refused to start" in alerts[0]["message"]
    finally:
        inst.close()


def test_a_quarantined_fill_alerts(instance: Instance, receiver: WebhookReceiver) -> None:
    """A hostile TrueX (``--hostile overfill``: a 5 BTC trade on our first filled order): the engine quarantines
    it and halts (exit 5); the webhook receives the ``ledger`` alert and the kill switch's."""
    inst = instance
    engine = inst.start("--hostile", "overfill")
    wait_for("the ledger alert", lambda: "ledger" in receiver.kinds(), 180, engine)
    ledger = next(a for a in receiver.received if a["kind"] == "ledger")
    assert "overfill" in ledger["message"] and ledger["details"]["exit_code"] == 5, ledger
    wait_for("the kill switch alert", lambda: "kill_switch" in receiver.kinds(), 60, engine)
    engine.send_signal(signal.SIGINT)
    assert engine.wait(timeout=120) == 5, inst.log("engine")[-3000:]
