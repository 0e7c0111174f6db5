"""MetricsCollector on the real engine (mmkit.testing.Harness): what the tick copies into the registry.

The e2e test scrapes a TrueX run; this one drives paths that run does not reach: rejects by reason,
a fill on each side, the kill switch's reason appearing and going, a pause.
"""

from __future__ import annotations

from decimal import Decimal as D
from types import SimpleNamespace

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from mmkit.app.console.metrics import Metrics, MetricsCollector
from mmkit.model import RejectReason
from mmkit.testing.harness import Harness
from strategies.simple import SimpleConfig, SimpleController


def _samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(metrics.registry).decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k != "instance")))] = s.value
    return out


def test_the_tick_fills_the_registry() -> None:
    h = Harness(SimpleController(SimpleConfig(half_spread_bps=D(10), order_size=D("0.5"))))
    metrics = Metrics("unit")
    collector = MetricsCollector(metrics, SimpleNamespace(engine=h.engine, hedge=None), None, interval_ms=1)
    collector.attach()
    h.set_fair("60000")
    h.tick(3)
    s = _samples(metrics)
    assert s[("mmkit_order_actions_total", (("action", "place"),))] == 2  # one bid, one ask
    assert s[("mmkit_decision_latency_seconds_count", ())] >= 2
    assert s[("mmkit_orders", (("state", "open"),))] + s[("mmkit_orders", (("state", "pending_create"),))] == 2
    assert s[("mmkit_reference_price_quote", ())] == 60000
    assert s[("mmkit_kill_switch_halted", ())] == 0 and s[("mmkit_quoting_enabled", ())] == 1

    bid = next(o for o in h.venue.open_orders if o.side.name == "BUY")
    h.venue.fill(bid.client_id)
    h.set_fair("60100")  # a move: the ladder is replaced or re-placed
    h.venue.reject_next(RejectReason.RATE_LIMIT, "too fast")
    h.tick(3)
    s = _samples(metrics)
    assert s[("mmkit_fills_total", (("book", "quote"), ("side", "buy")))] == 1
    assert s[("mmkit_fill_volume_base_total", (("book", "quote"), ("side", "buy")))] == 0.5
    assert s[("mmkit_position_base", ())] == 0.5
    rejects = {k[1]: v for k, v in s.items() if k[0] == "mmkit_order_rejects_total"}
    assert list(rejects.values()) == [1] and dict(next(iter(rejects)))["reason"] == "rate_limit", rejects
    assert s[("mmkit_order_ack_latency_seconds_count", (("action", "place"), ("venue", "sim")))] >= 1

    kill = h.engine.runner.kill_switch
    assert kill is not None
    kill.trip(h.clock.now_ns, "unit reason")
    h.tick(2)
    s = _samples(metrics)
    assert s[("mmkit_kill_switch_halted", ())] == 1
    assert s[("mmkit_kill_switch_info", (("reason", "unit reason"),))] == 1
    assert ("mmkit_kill_switch_info", (("reason", ""),)) not in s  # one reason at a time
    kill.reset_by_hand(h.clock.now_ns)
    h.engine.runner.quoting_enabled = False
    h.tick(2)
    s = _samples(metrics)
    assert s[("mmkit_kill_switch_halted", ())] == 0 and s[("mmkit_quoting_enabled", ())] == 0
    assert ("mmkit_kill_switch_info", (("reason", "unit reason"),)) not in s
    # read during a tick: the clock counts that tick when it ends
    assert s[("mmkit_clock_ticks_total", ())] == h.clock.tick_count - 1
