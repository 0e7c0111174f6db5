"""`mmkit status` names the inventory's unit: an inverse contract's position is contracts, a linear one coins.

The snapshot is the real dashboard's (/api/state, what ``mmkit status`` reads) built from a real engine
(mmkit.testing.Harness) on the venue rules named.
"""

from __future__ import annotations

import json
from decimal import Decimal as D
from types import SimpleNamespace

from mmkit.app.config import ConsoleDashboardSection, EngineSection
from mmkit.app.console.dashboard import Dashboard
from mmkit.app.console.status_view import format_live
from mmkit.model import Side
from mmkit.testing.harness import Harness
from strategies.simple import SimpleConfig, SimpleController


def _inventory_line(rules: str, order_size: str, fair: str) -> str:
    h = Harness(SimpleController(SimpleConfig(half_spread_bps=D(10), order_size=D(order_size))), rules=rules)
    config = SimpleNamespace(engine=EngineSection(instance="t", output_dir="unused"))
    dashboard = Dashboard(SimpleNamespace(engine=h.engine, config=config, hedge=None),
                          ConsoleDashboardSection(port=0), None)
    h.set_fair(fair)
    h.tick(3)
    h.venue.fill(next(o for o in h.venue.open_orders if o.side is Side.BUY).client_id)
    h.tick(3)
    dashboard.refresh()
    snap = json.loads(json.dumps(dashboard.snapshot, allow_nan=False))
    return next(line for line in format_live(snap).splitlines() if line.startswith("inventory"))


def test_an_inverse_position_reads_in_contracts() -> None:
    line = _inventory_line("binance_coinm", "3", "60000")
    assert line.split()[1:3] == ["3.0000", "contracts"], line
    assert "contracts (" in line  # the limit too


def test_a_linear_position_reads_in_the_base_coin() -> None:
    line = _inventory_line("sim", "0.5", "60000")
    assert line.split()[1:3] == ["0.5000", "BTC"], line
