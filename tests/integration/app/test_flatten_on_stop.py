"""`hedge.flatten_on_stop`: on stop, after every quote is cancelled, what is left of the position is
hedged away on the hedge venue (here a simulated Kraken following the same reference)."""

from __future__ import annotations

import io
from decimal import Decimal as D
from pathlib import Path

from mmkit.app.build import build
from mmkit.app.config import load_engine_config
from mmkit.app.lifecycle import run_live
from mmkit.clock import Clock, ClockMode
from mmkit.model import NS_PER_MS

CONFIG = """
engine: {{instance: flatten-test, tick_ms: 50, output_dir: "{out}"}}
venue: {{connector: sim, rules: sim, symbol: BTC-PYUSD}}
reference:
  random_walk: {{start_price: 60000, volatility_bps: 5, seed: 3}}
strategy:
  controller: strategies.simple:SimpleController
  params: {{half_spread_bps: 2, order_size: 0.05}}
risk:
  inventory: {{max_position: 5, hedge_threshold: 4, emergency_position: 6}}
hedge:
  enabled: true
  flatten_on_stop: true
  venue: {{connector: sim, rules: kraken, symbol: BTC/USD}}
  params: {{limit_timeout_ms: 500, min_qty: 0.001, max_qty: 1}}
"""


async def test_position_is_hedged_away_on_stop(tmp_path: Path) -> None:
    path = tmp_path / "flatten.yml"
    path.write_text(CONFIG.format(out=tmp_path))
    loaded = load_engine_config(path)
    built = build(loaded, Clock(ClockMode.REALTIME, tick_ns=50 * NS_PER_MS))
    out = io.StringIO()
    code = await run_live(built, run_for_s=4, quiet=True, out=out)
    assert code == 0, out.getvalue()
    engine = built.engine
    quoting_fills = [f for f in engine.fills if not f.is_hedge]
    hedge_fills = [f for f in engine.fills if f.is_hedge]
    assert quoting_fills, "the synthetic takers should have filled some quotes in 4 s"
    quoted_position = sum((f.qty * f.side.sign for f in quoting_fills), D(0))
    if abs(quoted_position) >= D("0.001"):
        assert hedge_fills, "a position was left but nothing was hedged"
    assert abs(engine.inventory.position) < D("0.001")
    assert engine.inventory.position == engine.fill_position()
    assert engine.pnl.trade_count(hedge=True) == len(hedge_fills)
