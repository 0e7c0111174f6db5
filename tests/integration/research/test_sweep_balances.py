"""A sweep for a small account says so once, in the sweep file's ``balances``; trials may vary them.

Each trial's report must show the account it started from (and its config.yml must hold it, so a
trial re-run with ``mmkit backtest`` is the same run). Synthetic spot recording, trials in process.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from mmkit.app.outcome import EXIT_OK
from mmkit.conf import read_yaml
from mmkit.testing.binance_recordings import synthetic_recording
from tests.integration.backtest.test_backtest_balances_file import CONFIG
from tests.integration.research.sweep_run import run_sweep

pytestmark = [pytest.mark.integration]


def _sweep(tmp_path: Path, extra: str, parameters: str = "  strategy.params.base_spread_bps: [1, 3]\n"
           ) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    config = tmp_path / "spot.yml"
    config.write_text(CONFIG)
    data = tmp_path / "data"
    synthetic_recording("spot", seconds=60).write(data)
    path = tmp_path / "sweep.yml"
    path.write_text(f"name: small\nconfig: {config}\ndata: [{data}]\nsetup: replay\nparameters:\n{parameters}"
                    f"search: grid\nobjective: pnl.total\n{extra}")
    out = tmp_path / "out"
    assert run_sweep(path, out) == EXIT_OK
    trials = sorted((out / "trials").glob("*/report.json"))
    return [(json.loads(p.read_text()), read_yaml(p.parent / "config.yml")) for p in trials]


def test_every_trial_starts_from_the_sweep_files_balances(tmp_path: Path) -> None:
    trials = _sweep(tmp_path, "balances: {BTC: 0.01, USDT: 100}\n")
    assert len(trials) == 2
    for report, config in trials:
        # (a trial's config.yml writes 100 as 100.0: the same Decimal, exactly)
        assert {k: Decimal(v) for k, v in report["balances"]["start"].items()} == {"BTC": Decimal("0.01"),
                                                                                   "USDT": Decimal(100)}
        assert report["balances"]["source"] == "simulation.balances (config.yml)"
        assert report["rejections"]["orders_by_reason"]["INSUFFICIENT_FUNDS"] > 0
        assert config["simulation"]["balances"] == {"BTC": Decimal("0.01"), "USDT": Decimal(100)}


def test_a_trial_parameter_may_vary_one_assets_balance(tmp_path: Path) -> None:
    trials = _sweep(tmp_path, "balances: {BTC: 0.01, USDT: 100}\n",
                    parameters="  simulation.balances.USDT: [100, 1000000]\n")
    starts = sorted(Decimal(r["balances"]["start"]["USDT"]) for r, _ in trials)
    assert starts == [100, 1000000]
    assert all(Decimal(r["balances"]["start"]["BTC"]) == Decimal("0.01") for r, _ in trials)
    refused = {Decimal(r["balances"]["start"]["USDT"]): r["rejections"]["orders_by_reason"].get("INSUFFICIENT_FUNDS", 0)
               for r, _ in trials}
    assert refused[Decimal(100)] > refused[Decimal(1000000)]  # the small account is the one held back


def test_without_balances_the_trials_keep_the_documented_default(tmp_path: Path) -> None:
    trials = _sweep(tmp_path, "")
    assert trials and all(r["balances"]["source"].startswith("default: ") for r, _ in trials)
    assert all("simulation" not in config for _, config in trials)
