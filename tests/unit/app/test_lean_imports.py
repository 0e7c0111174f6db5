"""A live process and the backtest command import only what they use (issue 16: resident memory, start-up time).

Each case imports in a fresh interpreter and lists ``sys.modules``: an eager
import of ccxt (~90 MB with ccxt.pro), plotly, pyarrow, ray, optuna or
matplotlib anywhere under these entry points fails here, naming the module.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: Never imported by a live run or the CLI entry: what each costs is paid only where it is used.
HEAVY = ("ccxt", "plotly", "pyarrow", "ray", "optuna", "matplotlib", "pandas")
#: Imported only when the config asks for them: aiohttp when an alert webhook posts (the dashboard has its own
#: small server), prometheus_client when console.metrics is configured (~10 MB and ~2 MB resident).
ON_DEMAND = ("aiohttp", "prometheus_client")


def _modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def _heavy(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if m.split(".", 1)[0] in names)


@pytest.mark.parametrize(
    "code",
    [
        "import mmkit.app.lifecycle",
        "import mmkit.app.demo",
        "from mmkit.app.cli import build_parser; build_parser()",
        "import mmkit.app.history_cmd, mmkit.app.report",  # what a live run imports for its final report
    ],
)
def test_live_entry_points_import_nothing_heavy(code: str) -> None:
    modules = _modules_after(code)
    assert _heavy(modules, HEAVY) == []
    assert _heavy(modules, ("redis",)) == []  # the Redis client only when a config names Redis
    assert _heavy(modules, ON_DEMAND) == []


def test_the_dashboard_serves_without_aiohttp() -> None:
    """The page's server is mmkit.app.console.http_server; the console's metrics need prometheus_client only."""
    modules = _modules_after("import mmkit.app.console.dashboard, mmkit.app.console.runtime, mmkit.app.console.alerts")
    assert _heavy(modules, (*HEAVY, "aiohttp", "yarl", "multidict", "prometheus_client")) == []
    assert "prometheus_client" in _modules_after("import mmkit.app.console.metrics")  # the probe sees it


def test_backtest_command_and_tearsheet_writer_do_not_import_plotly() -> None:
    """The tearsheet embeds plotly.min.js read from its file: plotly itself (0.1 s to import) is not needed."""
    modules = _modules_after("import mmkit.app.backtest_cmd, mmkit.backtest.html, mmkit.backtest.report\n"
                             "from mmkit.backtest.html import plotly_js\nplotly_js()")
    assert _heavy(modules, HEAVY) == []


def test_a_setup_sim_backtest_does_not_import_the_replay_venue_or_difflib() -> None:
    """What the default CLI backtest loads (issue 16: whole process <= 1.2 s): the replay setup, its venue and
    queue models load only for setup replay; difflib only to suggest a config key."""
    modules = _modules_after("import mmkit.app.cli, mmkit.app.backtest_cmd, mmkit.app.simulated, mmkit.sim\n"
                             "from mmkit.sim import ExchangeVenue")
    assert "mmkit.app.simulated" in modules and "mmkit.sim.exchange_venue" in modules  # the probe ran
    unused = ("mmkit.sim.replay_venue", "mmkit.sim.queue", "mmkit.app.backtest_setups", "difflib")
    assert sorted(m for m in unused if m in modules) == []


def test_the_probe_sees_a_heavy_import() -> None:
    """The check itself can fail: a module that does import one of them is reported."""
    assert _heavy(_modules_after("import plotly.offline"), HEAVY)[:1] == ["plotly"]
