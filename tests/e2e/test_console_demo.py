"""`make demo` serves the live dashboard: it prints the address, and the page's data is live while it runs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.e2e, pytest.mark.shared_data, pytest.mark.timeout(300)]


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        body = response.read()
        return json.loads(body) if "json" in response.headers.get("Content-Type", "") else body.decode()


def test_demo_prints_the_dashboard_address_and_serves_it_live(shared_data: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mmkit.app.cli", "demo", "--duration", "25",
         "--data", str(shared_data / "binance_spot_btcusdt")],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: list[str] = []
    found = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("console: "):
                found.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert found.wait(120), "".join(lines)[-3000:]
        line = next(x for x in lines if x.startswith("console: "))
        match = re.search(r"dashboard (http://127\.0\.0\.1:\d+/)", line)
        assert match, line
        url = match.group(1)
        assert "mmkit console" in _get(url)
        first = _get(url + "api/state")
        deadline = time.monotonic() + 60
        state = first
        while time.monotonic() < deadline and not (state["ticks"] > first["ticks"] + 10 and state["orders"]):
            time.sleep(0.5)
            state = _get(url + "api/state")
        assert state["ticks"] > first["ticks"] + 10 and state["orders"], state
        assert state["venue"] == "truex" and state["book"]["valid"]
        assert len(state["history"]) > len(first["history"])
        assert proc.wait(timeout=180) == 0, "".join(lines)[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
