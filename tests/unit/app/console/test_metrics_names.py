"""The metrics follow Prometheus conventions, and the shipped Grafana dashboard only uses metrics that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from mmkit.app.console.metrics import Metrics

REPO = Path(__file__).resolve().parents[4]


def _families() -> dict[str, str]:
    metrics = Metrics("unit")
    # every labelled metric needs one child to be exposed; touch them all through the registry's collectors
    collectors: list[Any] = list(metrics.registry._collector_to_names)
    for collector in collectors:
        labels = getattr(collector, "_labelnames", ())
        if labels:
            collector.labels(*(["unit"] + ["x"] * (len(labels) - 1)))
    text = generate_latest(metrics.registry).decode()
    return {f.name: f.type for f in text_string_to_metric_families(text)}


def test_names_follow_the_conventions() -> None:
    families = _families()
    assert len(families) > 40
    for name, kind in families.items():
        assert name.startswith("mmkit_"), name
        assert not name.endswith("_total"), name  # the parser strips it from counter families
        if kind == "histogram":
            assert name.endswith("_seconds"), name
        assert not re.search(r"_(ms|millis|us|ns|minutes)(_|$)", name), f"{name}: use base units"


def test_grafana_dashboard_uses_existing_metrics() -> None:
    families = _families()
    samples = set(families)
    for name, kind in families.items():
        if kind == "counter":
            samples.add(f"{name}_total")
        if kind == "histogram":
            samples.update({f"{name}_bucket", f"{name}_count", f"{name}_sum"})
    dashboard = json.loads((REPO / "docs" / "grafana-mmkit.json").read_text())
    used = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            used.update(re.findall(r"mmkit_[a-z_]+", target["expr"]))
    assert used, "no expressions in the dashboard"
    assert used <= samples, sorted(used - samples)
    assert {"mmkit_decision_latency_seconds_bucket", "mmkit_kill_switch_halted", "mmkit_pnl_quote"} <= used
    assert {"mmkit_pnl_settlement", "mmkit_position_contracts", "mmkit_fill_volume_contracts_total"} <= used
