"""mmkit.app.console.exposition against prometheus_client, the reference, on the same random operations.

The page is parsed by prometheus_client's own parser and every sample (name,
labels, value) must equal what prometheus_client exposes for the same
updates (its ``_created`` series aside, which we do not expose). Also: bad
label counts and negative counter increments are refused; the metrics
server answers ``/metrics`` over real HTTP and nothing else.
"""

from __future__ import annotations

import random
import urllib.error
import urllib.request
from typing import Any

import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mmkit.app.console import exposition
from mmkit.app.console.metrics import Metrics, MetricsServer

BUCKETS = (1e-4, 5e-4, 1e-3, 0.01, 0.1, 1.0)
LABEL_VALUES = ("plain", 'quo"te', "back\\slash", "new\nline", "", "é")


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if not s.name.endswith("_created"):
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _families(text: str) -> dict[str, tuple[str, str]]:
    return {f.name: (f.type, f.documentation) for f in text_string_to_metric_families(text)
            if not f.name.endswith("_created")}  # fmt: skip


@pytest.mark.parametrize("seed", range(5))
def test_the_page_equals_prometheus_clients_for_the_same_updates(seed: int) -> None:
    rng = random.Random(seed)
    ours, ref = exposition.Registry(), prometheus_client.CollectorRegistry()
    pairs: list[tuple[Any, Any]] = []
    doc = 'help with \\ backslash and\nnewline "quoted"'
    for kind in ("counter", "gauge", "histogram"):
        for labels in ((), ("instance",), ("instance", "reason")):
            name = f"mmkit_t_{kind}_{len(labels)}"
            if kind == "histogram":
                name += "_seconds"
                mine = exposition.Histogram(name, doc, labels, registry=ours, buckets=BUCKETS)
                pairs.append((mine, prometheus_client.Histogram(name, doc, labels, registry=ref, buckets=BUCKETS)))
            else:
                ours_cls = exposition.Counter if kind == "counter" else exposition.Gauge
                ref_cls = prometheus_client.Counter if kind == "counter" else prometheus_client.Gauge
                pairs.append((ours_cls(name, doc, labels, registry=ours), ref_cls(name, doc, labels, registry=ref)))
    for _ in range(400):
        mine, theirs = rng.choice(pairs)
        values = [rng.choice(LABEL_VALUES) for _ in mine.labelnames]
        a = mine.labels(*values) if values else mine.labels()
        b = theirs.labels(*values) if values else theirs
        if isinstance(mine, exposition.Histogram):
            v = rng.choice([0.0, *BUCKETS, rng.random() * 2, 1e-5, 5.0])  # on a bound, between, beyond the last
            a.observe(v)
            b.observe(v)
        elif isinstance(mine, exposition.Counter):
            v = rng.choice([1.0, 0.5, 1e-8, 12345.0])
            a.inc(v)
            b.inc(v)
        else:
            v = rng.choice([0.0, -1.5, 1e-7, 6.02e23, 60000.12, float("inf")])
            a.set(v)
            b.set(v)
    text, reference = ours.render().decode(), prometheus_client.generate_latest(ref).decode()
    assert _samples(text) == _samples(reference)
    assert _families(text) == _families(reference)


def test_a_labelled_family_without_children_and_a_removed_child() -> None:
    registry = exposition.Registry()
    gauge = exposition.Gauge("mmkit_g", "g", ("instance", "reason"), registry=registry)
    assert registry.render().decode() == "# HELP mmkit_g g\n# TYPE mmkit_g gauge\n"
    gauge.labels("i", "a").set(1)
    gauge.labels("i", "b").set(2)
    gauge.remove("i", "a")
    assert _samples(registry.render().decode()) == {("mmkit_g", (("instance", "i"), ("reason", "b"))): 2.0}
    with pytest.raises(KeyError):
        gauge.remove("i", "a")


def test_bad_use_is_refused() -> None:
    registry = exposition.Registry()
    counter = exposition.Counter("mmkit_c", "c", ("instance",), registry=registry)
    with pytest.raises(ValueError, match="1 label values expected"):
        counter.labels("a", "b")
    with pytest.raises(ValueError, match="only goes up"):
        counter.labels("a").inc(-1)
    with pytest.raises(ValueError, match="registered twice"):
        exposition.Gauge("mmkit_c", "again", registry=registry)
    with pytest.raises(ValueError, match="increasing"):
        exposition.Histogram("mmkit_h", "h", registry=registry, buckets=(1.0, 0.5))


def test_the_server_answers_metrics_and_nothing_else() -> None:
    metrics = Metrics("unit")
    metrics.ticks.labels("unit").inc(3)
    server = MetricsServer(metrics, "127.0.0.1", 0)
    url = server.start()
    try:
        with urllib.request.urlopen(url + "?x=1", timeout=10) as response:
            assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            page = response.read().decode()
        assert _samples(page)[("mmkit_clock_ticks_total", (("instance", "unit"),))] == 3
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url.replace("/metrics", "/other"), timeout=10)
        assert refused.value.code == 404
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(url, data=b"x", method="POST"), timeout=10)
        assert refused.value.code == 405
    finally:
        server.close()
    with pytest.raises(OSError):
        urllib.request.urlopen(url, timeout=2)  # closed: nothing listens any more
