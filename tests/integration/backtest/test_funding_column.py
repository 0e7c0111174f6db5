"""The backtest sampler's funding column: present (and summing up the total) when funding is booked, else absent.

Before: a perpetual's funding was in ``pnl.total`` but no sampled row had it, so a reader had to take it as
``total - (realized - fees + unrealized)``. Synthetic USD-M and COIN-M recordings straddling the
2024-08-09T00:00Z settlement (mmkit.testing.binance_recordings, as in test_funding_in_run); the expected
figures are the report's booked payments, not read back from the sampler. A spot run (the shared Binance
spot recording) and a perpetual without a funding file have no funding column at all, so their reports and
tearsheets are what they were (``tests/integration/backtest`` determinism tests compare them byte for byte).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from mmkit.app.backtest_cmd import BacktestResult, run_backtest
from mmkit.backtest.funding import FundingInput
from mmkit.backtest.plots import equity_figure
from mmkit.backtest.sampler import BacktestSampler
from tests.integration.backtest.test_funding_in_run import MIDNIGHT, MS, _around, _csv, _events, _limited, _usdm
from tests.integration.backtest.test_futures_recordings import _controller, _risk

OLD_TRACES = ["total PnL", "realized − fees", "unrealized", "drawdown"]


def _rows_add_up(s: BacktestSampler, tolerance: float) -> None:
    funding = s.funding
    assert funding is not None and len(funding) == len(s.ts) == len(s.total)
    for i in range(len(s.ts)):
        parts = s.realized[i] - s.fees[i] + s.unrealized[i] + funding[i]
        assert abs(s.total[i] - parts) <= tolerance, (i, s.total[i], parts)


def _stepped_by_payments(result: BacktestResult, tolerance: float) -> None:
    """Each row's funding is the sum of the payments booked at or before its tick."""
    booked = [(r["booked_ns"], Decimal(r["payment"])) for r in result.report["funding"]["rows"]]
    s = result.sampler
    assert s.funding is not None
    for ts, value in zip(s.ts, s.funding, strict=True):
        expected = float(sum((paid for at, paid in booked if at <= ts), Decimal(0)))
        assert abs(value - expected) <= tolerance, (ts, value, expected)
    assert abs(s.funding[-1] - float(Decimal(result.report["pnl"]["funding"]))) <= tolerance


def test_a_usdm_run_with_funding_has_a_funding_column_and_each_row_adds_up(tmp_path: Path) -> None:
    events = _events(tmp_path, "usdm")
    path = _csv(tmp_path / "f.csv", _around(MIDNIGHT // MS, "0.01", (MIDNIGHT // MS + 20_000, "-0.004")))
    result = _usdm(tmp_path, events, FundingInput.load(path, "BTCUSDT"), _limited("100000"))
    rows = result.report["funding"]["rows"]
    assert len(rows) == 2 and all(abs(Decimal(r["payment"])) > 0 for r in rows), rows
    s = result.sampler
    assert s.has_funding and s.funding is not None
    assert s.funding[0] == 0.0 and s.funding[-1] != 0.0
    _rows_add_up(s, 1e-6)
    _stepped_by_payments(result, 1e-6)
    figure = equity_figure(s, "USDT")
    names = [trace["name"] for trace in figure["data"]]
    assert names == ["total PnL", "realized − fees", "unrealized", "funding", "drawdown"]
    funding_trace = figure["data"][3]["y"]
    assert funding_trace[0] == 0.0 and funding_trace[-1] == s.funding[-1]


def test_a_coinm_run_with_funding_has_the_column_in_the_coin(tmp_path: Path) -> None:
    events = _events(tmp_path, "coinm")
    plain = run_backtest(_controller("5"), events, setup="replay", risk=_risk("50"))
    settle_ms = min(f.ts_event for f in plain.engine.fills) // MS + 1
    path = _csv(tmp_path / "BTCUSD_PERP.csv", _around(settle_ms, "-0.00025"))
    result = run_backtest(_controller("5"), events, setup="replay", risk=_risk("50"),
                          funding=FundingInput.load(path, "BTCUSD_PERP"))
    assert result.report["pnl"]["unit"] == "BTC"
    _rows_add_up(result.sampler, 1e-12)
    _stepped_by_payments(result, 1e-8)  # the report's payments are rounded to the satoshi, the ledger's are not
    assert plain.sampler.funding is None


def test_a_perpetual_without_a_funding_file_has_no_funding_column(tmp_path: Path) -> None:
    """Its PnL holds no funding (the report says it is missing): a column of zeros would say it was nothing."""
    result = _usdm(tmp_path, _events(tmp_path, "usdm"), None, _limited("100000"))
    assert "funding" in result.report  # the perpetual's section saying funding is not in the PnL
    assert not result.sampler.has_funding and result.sampler.funding is None
    assert [trace["name"] for trace in equity_figure(result.sampler)["data"]] == OLD_TRACES


def test_a_spot_run_has_no_funding_column_and_its_equity_figure_is_unchanged(recording: list) -> None:  # type: ignore[type-arg]
    window = recording[:20_000]
    result = run_backtest(_controller("0.001"), window, setup="replay", risk=_risk("1"))
    assert result.sampler.funding is None and "funding" not in result.report
    assert [trace["name"] for trace in equity_figure(result.sampler)["data"]] == OLD_TRACES
