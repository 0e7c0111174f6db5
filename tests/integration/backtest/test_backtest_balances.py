"""A spot backtest holds the strategy to its starting balances, in both setups, and its report says so.

A careless strategy that only sells (or only buys) on the shared Binance
recording: before, the simulated venue let the balance go negative and the
report booked sells of coins never held, with nothing but a negative
inventory minimum to show for it. Now each order beyond the balance is
rejected INSUFFICIENT_FUNDS, counted in ``report["rejections"]``, and no
fill takes a balance below zero.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from mmkit.app.assembly import RiskSettings
from mmkit.app.backtest_cmd import run_backtest
from mmkit.app.outcome import EXIT_USAGE
from mmkit.backtest.replay import ReplayEvent
from mmkit.model import NS_PER_S, Side, TargetQuote
from mmkit.risk.inventory import InventoryConfig
from mmkit.strategy import Controller, StrategyContext

pytestmark = pytest.mark.shared_data

ROOT = Path(__file__).resolve().parents[3]
CLI = "import sys; from mmkit.app.cli import main; sys.exit(main())"

#: Limits wide enough that the executor never trims these orders: only the balances hold the strategy back.
WIDE = RiskSettings(inventory=InventoryConfig(max_position=D(50), hedge_threshold=D(40), emergency_position=D(60)),
                    kill_switch=None)


class OneSide(Controller):
    """Quotes 0.02 on one side only, a tick from the mid: it fills again and again, and never comes back."""

    def __init__(self, side: Side) -> None:
        super().__init__()
        self.side = side

    def on_tick(self, ctx: StrategyContext) -> Sequence[TargetQuote]:
        fair = ctx.fair.price
        if fair is None:
            return []
        tick = ctx.instrument.tick_for(fair)
        price = ctx.instrument.round_price(fair - tick if self.side is Side.BUY else fair + tick, self.side)
        return [TargetQuote(self.side, 0, price, D("0.02"))]


def backtest(events: list[ReplayEvent], side: Side, setup: str, balances: dict[str, D] | None) -> dict[str, Any]:
    start = events[0].ts_recv
    return run_backtest(OneSide(side), events, setup=setup, risk=WIDE, end_ns=start + 600 * NS_PER_S,
                        balances=balances).report


@pytest.fixture(scope="module")
def recording(shared_data: Path) -> list[ReplayEvent]:
    from mmkit.app.backtest_cmd import load_events

    return load_events(shared_data / "binance_spot_btcusdt")


def sold(report: dict[str, Any]) -> D:
    return -D(report["inventory"]["final"])


@pytest.mark.parametrize(("setup", "quote"), [("replay", "USDT"), ("sim", "PYUSD")])
def test_a_strategy_selling_more_base_than_it_holds_is_refused_not_filled(
    recording: list[ReplayEvent], setup: str, quote: str
) -> None:
    report = backtest(recording, Side.SELL, setup, {"BTC": D("0.1"), quote: D(0)})
    assert report["fills"]["sells"] > 0 and report["fills"]["buys"] == 0
    assert sold(report) <= D("0.1")  # never sold a coin it did not hold
    assert report["inventory"]["min"] >= -0.1
    assert report["rejections"]["orders_by_reason"]["INSUFFICIENT_FUNDS"] > 0
    balances = report["balances"]
    assert balances["enforced"] and balances["source"] == "given" and balances["overdrafts"] == 0
    assert balances["start"] == {"BTC": "0.1", quote: "0"}
    assert all(D(v) >= 0 for v in balances["end"].values())
    assert D(balances["end"]["BTC"]) == D("0.1") - sold(report)
    assert report["counters"]["problems"] == []


@pytest.mark.parametrize(("setup", "quote"), [("replay", "USDT"), ("sim", "PYUSD")])
def test_a_strategy_buying_beyond_its_quote_is_refused_not_filled(
    recording: list[ReplayEvent], setup: str, quote: str
) -> None:
    """3,000 of quote at ~60,000 pays for about 0.05: the orders beyond it are refused, and it never spends more."""
    report = backtest(recording, Side.BUY, setup, {"BTC": D(0), quote: D(3000)})
    assert report["fills"]["buys"] > 0 and report["fills"]["sells"] == 0
    bought = D(report["inventory"]["final"])
    spent = D(report["fills"]["volume_quote"]) + D(report["pnl"]["fees"])
    assert 0 < spent <= 3000
    assert report["rejections"]["orders_by_reason"]["INSUFFICIENT_FUNDS"] > 0
    end = report["balances"]["end"]
    assert D(end[quote]) == 3000 - spent >= 0 and D(end["BTC"]) == bought
    assert report["balances"]["overdrafts"] == 0


def test_without_balances_the_documented_default_is_used_and_stated(recording: list[ReplayEvent]) -> None:
    """max_position of the base, twice its value at the first recorded price of the quote: never unlimited."""
    report = backtest(recording, Side.SELL, "replay", None)
    balances = report["balances"]
    assert balances["source"].startswith("default: ")
    assert balances["start"]["BTC"] == "50"
    first_mid = D(balances["start"]["USDT"]) / 100  # 2 x 50 x price
    assert 10_000 < first_mid < 200_000
    # 50 BTC is more than this run sells: nothing refused for funds.
    assert "INSUFFICIENT_FUNDS" not in report["rejections"]["orders_by_reason"]


def test_an_account_given_nothing_fills_nothing_and_says_why(recording: list[ReplayEvent]) -> None:
    report = backtest(recording, Side.SELL, "replay", {})
    assert report["fills"]["count"] == 0
    assert report["balances"]["start"] == {"BTC": "0", "USDT": "0"}
    assert report["rejections"]["orders"] == report["rejections"]["orders_by_reason"]["INSUFFICIENT_FUNDS"] > 0


def test_the_cli_takes_balances_states_them_and_flags_refusals_for_funds(shared_data: Path, tmp_path: Path) -> None:
    """An account with nothing in it: every order is refused, the terminal says why with `!!`, report.json too."""
    out = tmp_path / "out"
    data = shared_data / "binance_spot_btcusdt"
    done = subprocess.run(
        [sys.executable, "-c", CLI, "backtest", "strategies/layered_example.yml", "--data", str(data),
         "--setup", "replay", "--to", "2024-08-09T00:05:00Z", "--balance", "BTC=0", "--balance", "USDT=0",
         "--no-progress", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "balances                         start BTC 0, USDT 0 (--balance)" in done.stdout
    assert any(line.startswith("!!rejected by the venue") and "INSUFFICIENT_FUNDS" in line
               for line in done.stdout.splitlines())
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["fills"]["count"] == 0 and report["balances"]["start"] == {"BTC": "0", "USDT": "0"}
    assert "INSUFFICIENT_FUNDS" in report["no_fill"]


def test_the_cli_refuses_a_balance_of_another_asset_in_one_line(shared_data: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CLI, "backtest", "strategies/layered_example.yml", "--data",
         str(shared_data / "binance_spot_btcusdt"), "--setup", "replay", "--balance", "XBT=1", "--no-progress",
         "--out", str(tmp_path / "out")],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=300,
    )
    assert done.returncode == EXIT_USAGE
    assert done.stderr.strip().splitlines()[-1] == (
        "mmkit backtest: --balance XBT=1: XBT is not an asset of BTCUSDT (BTC or USDT)")
    assert not (tmp_path / "out").exists()


def test_the_tearsheet_says_orders_were_refused_for_funds(recording: list[ReplayEvent], tmp_path: Path) -> None:
    from mmkit.backtest.report import write_backtest_outputs

    start = recording[0].ts_recv
    result = run_backtest(OneSide(Side.SELL), recording, setup="replay", risk=WIDE, end_ns=start + 120 * NS_PER_S,
                          balances={"BTC": D("0.02")})
    write_backtest_outputs(result.report, result.sampler, result.engine, tmp_path)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    refused = result.report["rejections"]["orders_by_reason"]["INSUFFICIENT_FUNDS"]
    assert f'id="insufficient-funds">The venue refused {refused} orders' in page
    assert "starting balances: BTC 0.02, USDT 0, given" in page
    assert "orders rejected" in page
