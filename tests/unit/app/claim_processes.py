"""Processes for the market-claim tests: another engine holding a config's claim, and an ``mmkit start`` refused.

Shared by tests/unit/app/test_market_claim_exchange.py and test_market_claim_hedge.py: the claim is taken
through the same steps ``mmkit start`` takes (build, ``market_lock_for``, ``claim_market``), in a real other
process, so the refusal is the one a second engine on the desk would meet.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

import pytest

from mmkit.app.outcome import EXIT_START_REFUSED

REPO = Path(__file__).resolve().parents[3]

_HOLDER = """
import sys
from mmkit.app.build import build
from mmkit.app.config import ConfigOverrides, load_engine_config
from mmkit.app.market_claim import claim_market, market_lock_for
from mmkit.clock import Clock, ClockMode
built = build(load_engine_config(sys.argv[1], ConfigOverrides(sim_hedge=sys.argv[3] == "1", output_dir=sys.argv[2])),
              Clock(ClockMode.REALTIME))
claim_market(market_lock_for(built))
print("holding", flush=True)
sys.stdin.read()  # until the test kills us
"""


def set_up_desk(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, secrets: Mapping[str, str]) -> None:
    """Every instance of a test on one machine-wide lock directory, with the desk's ``secrets`` set."""
    monkeypatch.setenv("MMKIT_LOCK_DIR", str(tmp_path / "locks"))
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)


def claim_holders(tmp_path: Path, *, sim_hedge: bool) -> Iterator[Callable[[Path], subprocess.Popen[str]]]:
    """For a fixture: ``hold(config)`` starts a process holding that config's claim until the test ends (SIGKILL).

    ``sim_hedge``: the holder builds the config with a simulated hedge venue (its hedge key is not claimed).
    """
    procs: list[subprocess.Popen[str]] = []

    def start(path: Path) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, str(path), str(tmp_path / path.stem), "1" if sim_hedge else "0"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        procs.append(proc)
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "holding":
            proc.kill()
            raise AssertionError(f"the holder did not take the claim: {proc.communicate(timeout=60)[1][-3000:]}")
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait(timeout=30)


def refused_start(path: Path, tmp_path: Path, secrets: Iterable[str], *options: str) -> str:
    """``mmkit start`` of ``path`` (with ``options``) must exit 3 at the market claim, before it connects, and
    print none of ``secrets``; returns its stderr on one line, however the log wrapped it."""
    done = subprocess.run(
        [sys.executable, "-m", "mmkit.app.cli", "start", str(path), *options, "--quiet",
         "--output-dir", str(tmp_path / path.stem)],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=180,
    )
    assert done.returncode == EXIT_START_REFUSED, done.stderr[-3000:]
    assert "engine started" not in done.stderr, done.stderr[-3000:]
    for secret in secrets:
        assert secret not in done.stderr
    return " ".join(done.stderr.split())
