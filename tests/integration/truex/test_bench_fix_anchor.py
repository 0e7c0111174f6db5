"""bench_fix.anchor_figures, as bench/compare_anchors.py calls it: the four figures, nothing lost.

A real (quick) run of both paths on loopback; it asserts the contract and
that every order came back, never a speed (speed is printed by the bench).
"""

from __future__ import annotations

import math

import pytest

from bench import bench_fix

pytestmark = pytest.mark.integration


def test_anchor_figures_returns_the_four_medians_of_a_run_with_no_order_lost() -> None:
    figures = bench_fix.anchor_figures(quick=True)  # raises if an order was lost on either path
    assert set(figures) == {"raw_median_us", "raw_orders_per_s", "mmkit_median_us", "mmkit_orders_per_s"}
    assert all(isinstance(value, float) and math.isfinite(value) and value > 0 for value in figures.values())


def test_a_lost_order_is_counted_not_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    """The simulator silently drops one NewOrderSingle: the run must report it lost, and anchor_figures refuse."""
    from connectors.truex.sim.exchange import TrueXExchange

    original = TrueXExchange._on_new_order
    dropped: list[str] = []

    def drop_one(self: TrueXExchange, msg, comp_id, sid) -> None:
        if not dropped and (msg.get(11) or "").startswith("ML1-"):
            dropped.append(msg.get(11) or "")
            return
        original(self, msg, comp_id, sid)

    monkeypatch.setattr(TrueXExchange, "_on_new_order", drop_one)
    monkeypatch.setattr(bench_fix, "WAIT_S", 2.0)
    figures = bench_fix.measure(rounds=2, latency_orders=20, throughput_orders=100)
    assert dropped and figures.lost == {"raw": 0, "mmkit": 1}
    monkeypatch.setattr(bench_fix, "measure", lambda **_: figures)
    with pytest.raises(RuntimeError, match="orders lost"):
        bench_fix.anchor_figures(quick=True)
