"""Prometheus metrics and their text exposition (format 0.0.4), without ``prometheus_client``.

Why not ``prometheus_client``: importing it loads http.server, email, urllib,
wsgiref and its own 18 modules, ~2 MB resident in a live process (issue 16,
``mmkit demo`` under 100 MB) for what is here a few dozen counters, gauges
and three histograms with labels, and a text page.

What it keeps of the client's behaviour (``tests/unit/app/console/test_exposition.py``
parses the page with prometheus_client's own parser): a counter family named
``x`` is exposed as ``x_total``; a histogram as cumulative ``x_bucket{le=...}``
lines up to ``+Inf`` plus ``x_count`` and ``x_sum``; label values and help
text are escaped; a labelled family with no child yet shows only its HELP
and TYPE lines. The ``_created`` series are not exposed (nothing reads them).

Threads: the engine's loop updates the metrics; the metrics server's thread
renders them. Creating a child (``labels``), removing one and rendering take
the registry's lock; updating a child's value is a plain float store under
the GIL (one writer), and a histogram's bucket, count and sum are read
together under the child's own lock so a page never shows a count that
disagrees with its buckets.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Sequence
from typing import Any, ClassVar


def format_value(value: float) -> str:
    """A sample value as Prometheus writes it: ``+Inf``, ``-Inf``, ``NaN`` or Python's float repr."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


class Registry:
    """The families of one instance, rendered in the order they were created."""

    def __init__(self) -> None:
        self.families: list[Family] = []
        self.lock = threading.Lock()

    def register(self, family: Family) -> None:
        with self.lock:
            if any(f.name == family.name for f in self.families):
                raise ValueError(f"metric {family.name} is registered twice")
            self.families.append(family)

    def render(self) -> bytes:
        """The whole page, text format 0.0.4."""
        lines: list[str] = []
        with self.lock:
            for family in self.families:
                family.render_into(lines)
        return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""


class _Child:
    def __init__(self, family: Family) -> None:
        self.value = 0.0


class CounterChild(_Child):
    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError(f"a counter only goes up (inc by {amount})")
        self.value += amount


class GaugeChild(_Child):
    def set(self, value: float) -> None:
        self.value = float(value)

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        self.value -= amount


class HistogramChild(_Child):
    def __init__(self, family: Family) -> None:
        super().__init__(family)
        assert isinstance(family, Histogram)
        self.bounds = family.buckets
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.count = 0
        self.sum = 0.0
        self.lock = threading.Lock()

    def observe(self, value: float) -> None:
        index = bisect.bisect_left(self.bounds, value)  # the first bucket whose upper bound is >= value
        with self.lock:
            self.counts[index] += 1
            self.count += 1
            self.sum += value

    def snapshot(self) -> tuple[list[int], int, float]:
        with self.lock:
            return list(self.counts), self.count, self.sum


class Family:
    """One metric name with its label names; :meth:`labels` returns (and keeps) the child for some values."""

    kind: ClassVar[str] = ""
    child_class: ClassVar[type[_Child]] = _Child

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = (),
                 registry: Registry | None = None) -> None:  # fmt: skip
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.children: dict[tuple[str, ...], Any] = {}
        self._lock = registry.lock if registry is not None else threading.Lock()
        if registry is not None:
            registry.register(self)

    def labels(self, *values: str) -> Any:
        """The child for these label values (created on first use)."""
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name}: {len(self.labelnames)} label values expected "
                             f"({', '.join(self.labelnames)}), got {len(values)}")  # fmt: skip
        key = tuple(str(v) for v in values)
        child = self.children.get(key)
        if child is None:
            with self._lock:
                child = self.children.setdefault(key, self.child_class(self))
        return child

    def remove(self, *values: str) -> None:
        """Forget the child for these label values (KeyError if there is none)."""
        with self._lock:
            del self.children[tuple(str(v) for v in values)]

    def exposed_name(self) -> str:
        return self.name

    def render_into(self, lines: list[str]) -> None:
        """Append this family's lines (the registry's lock is held)."""
        name = self.exposed_name()
        lines.append(f"# HELP {name} {_escape_help(self.documentation)}")
        lines.append(f"# TYPE {name} {self.kind}")
        for key, child in list(self.children.items()):
            self.render_child(lines, self._label_text(key), child)

    def _label_text(self, key: tuple[str, ...], extra: str = "") -> str:
        pairs = [f'{n}="{_escape_label(v)}"' for n, v in zip(self.labelnames, key, strict=True)]
        if extra:
            pairs.append(extra)
        return "{" + ",".join(pairs) + "}" if pairs else ""

    def render_child(self, lines: list[str], labels: str, child: Any) -> None:
        lines.append(f"{self.exposed_name()}{labels} {format_value(child.value)}")


class Counter(Family):
    kind = "counter"
    child_class = CounterChild

    def exposed_name(self) -> str:
        return self.name if self.name.endswith("_total") else f"{self.name}_total"


class Gauge(Family):
    kind = "gauge"
    child_class = GaugeChild


class Histogram(Family):
    kind = "histogram"
    child_class = HistogramChild

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = (),
                 registry: Registry | None = None, buckets: Sequence[float] = ()) -> None:  # fmt: skip
        bounds = tuple(float(b) for b in buckets if not math.isinf(b))
        if not bounds or list(bounds) != sorted(set(bounds)):
            raise ValueError(f"{name}: buckets must be increasing and not empty, got {tuple(buckets)}")
        self.buckets = bounds
        super().__init__(name, documentation, labelnames, registry)

    def render_into(self, lines: list[str]) -> None:
        lines.append(f"# HELP {self.name} {_escape_help(self.documentation)}")
        lines.append(f"# TYPE {self.name} histogram")
        for key, child in list(self.children.items()):
            counts, count, total = child.snapshot()
            cumulative = 0
            for bound, n in zip((*self.buckets, math.inf), counts, strict=True):
                cumulative += n
                le = f'le="{format_value(bound)}"'
                lines.append(f"{self.name}_bucket{self._label_text(key, le)} {format_value(cumulative)}")
            lines.append(f"{self.name}_count{self._label_text(key)} {format_value(count)}")
            lines.append(f"{self.name}_sum{self._label_text(key)} {format_value(total)}")
