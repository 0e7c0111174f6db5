"""The live final report's money is the whole session's: the quoted book and the hedge venue's.

A real live run (REALTIME clock, simulated venues, SQLite store) whose hedge
threshold is one lot, so every quote fill is hedged on a simulated Kraken
and the hedge leg's fills and taker fees land in the store. The report's
totals must be the sum of the session's books as `mmkit history` computes
them, and its realized PnL and fees must equal the engine's own ledger
(before: only the quoted book's row, so the hedge's PnL and fees were left out).
"""

from __future__ import annotations

import io
import json
from decimal import Decimal as D
from pathlib import Path

from mmkit.app.build import build
from mmkit.app.config import load_engine_config
from mmkit.app.lifecycle import run_live
from mmkit.clock import Clock, ClockMode
from mmkit.model import NS_PER_MS

CONFIG = """
engine: {{instance: books-test, tick_ms: 50, output_dir: "{out}"}}
venue: {{connector: sim, rules: sim, symbol: BTC-PYUSD}}
reference:
  random_walk: {{start_price: 60000, volatility_bps: 5, seed: 3}}
strategy:
  controller: strategies.simple:SimpleController
  params: {{half_spread_bps: 2, order_size: 0.05}}
risk:
  inventory: {{max_position: 5, hedge_threshold: 0.001, emergency_position: 6}}
hedge:
  enabled: true
  flatten_on_stop: true
  venue: {{connector: sim, rules: kraken, symbol: BTC/USD}}
  params: {{limit_timeout_ms: 500, min_qty: 0.001, max_qty: 1}}
"""


async def test_report_money_sums_the_quoted_and_the_hedge_books(tmp_path: Path) -> None:
    path = tmp_path / "books.yml"
    path.write_text(CONFIG.format(out=tmp_path))
    built = build(load_engine_config(path), Clock(ClockMode.REALTIME, tick_ns=50 * NS_PER_MS))
    out = io.StringIO()
    code = await run_live(built, run_for_s=4, quiet=True, out=out)
    assert code == 0, out.getvalue()
    engine = built.engine
    assert [f for f in engine.fills if not f.is_hedge], "the synthetic takers should have filled some quotes in 4 s"
    hedge_fills = [f for f in engine.fills if f.is_hedge]
    assert hedge_fills, "a one-lot hedge threshold hedges every quote fill"

    report = json.loads(next((tmp_path / "reports").glob("books-test-*.json")).read_text())
    books = report["books"]
    assert [(b["venue"], b["symbol"]) for b in books] == [("sim", "BTC-PYUSD"), ("kraken", "BTC/USD")]
    assert report["figures_source"].startswith("store: this session's rows")
    assert sum(b["trades"] for b in books) == report["fills"] == len(engine.fills)
    for key, book_key in (("realized_pnl", "realized_quote"), ("unrealized_pnl", "unrealized_quote"),
                          ("fees", "fees_quote"), ("total_pnl", "total_quote")):
        assert D(report[key]) == sum((D(b[book_key]) for b in books), D(0)), key
    # The engine's own ledger books both legs too: realized PnL and fees agree to the unit.
    assert D(report["realized_pnl"]) == engine.pnl.realized()
    assert D(report["fees"]) == engine.pnl.fees()
    hedge_fees = sum((f.fee for f in hedge_fills), D(0))
    assert hedge_fees > 0, "the hedge leg pays a taker fee on Kraken's rules"
    assert D(report["fees_by_currency"][hedge_fills[0].fee_currency]) >= hedge_fees
