"""A small thread-safe Prometheus registry, rendered in text format 0.0.4.

    metrics = Metrics()
    hits = metrics.counter("kryten_playlist_hits_total", "Hits.", ("route",))
    hits.inc(route="/a")
    metrics.gauge("kryten_playlist_up", "1 while serving.", callback=lambda: 1)
    text = metrics.render()

Asking again for a metric that exists (same kind and labels) returns it, so
several apps can share one registry.
"""

from __future__ import annotations

import bisect
import math
import re
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

LabelValues = tuple[str, ...]
M = TypeVar("M", bound="_Metric")

DEFAULT_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


class _Metric:
    kind = ""

    def __init__(self, name: str, help_text: str, labels: Sequence[str]) -> None:
        if not _NAME_RE.match(name):
            raise ValueError(f"bad metric name {name!r}")
        for label in labels:
            if not _LABEL_RE.match(label) or label == "le" or label.startswith("__"):
                raise ValueError(f"bad label name {label!r} for {name}")
        self.name = name
        self.help_text = help_text
        self.labels = tuple(labels)
        self._lock = threading.Lock()

    def _key(self, labels: dict[str, str]) -> LabelValues:
        if set(labels) != set(self.labels):
            raise ValueError(f"{self.name} takes labels {self.labels}, got {tuple(labels)}")
        return tuple(str(labels[name]) for name in self.labels)

    def render(self) -> list[str]:
        return [f"# HELP {self.name} {_escape_help(self.help_text)}", f"# TYPE {self.name} {self.kind}",
                *self._samples()]

    def _samples(self) -> list[str]:
        raise NotImplementedError

    def _series(self, suffix: str, key: LabelValues, value: float, extra: str = "") -> str:
        pairs = [f'{name}="{_escape_label(v)}"' for name, v in zip(self.labels, key, strict=True)]
        if extra:
            pairs.append(extra)
        label_text = "{" + ",".join(pairs) + "}" if pairs else ""
        return f"{self.name}{suffix}{label_text} {_format_value(value)}"


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help_text: str, labels: Sequence[str]) -> None:
        super().__init__(name, help_text, labels)
        # An unlabelled series exists from the start, so it renders as 0.
        self._values: dict[LabelValues, float] = {} if self.labels else {(): 0.0}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def _samples(self) -> list[str]:
        with self._lock:
            values = sorted(self._values.items())
        return [self._series("", key, value) for key, value in values]


class Gauge(_Metric):
    kind = "gauge"

    def __init__(self, name: str, help_text: str, labels: Sequence[str],
                 callback: Callable[[], float] | None = None) -> None:
        super().__init__(name, help_text, labels)
        if callback is not None and self.labels:
            raise ValueError(f"{name}: a callback gauge has no labels")
        self._callback = callback
        self._values: dict[LabelValues, float] = {} if self.labels else {(): 0.0}

    def set(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = float(value)

    def _samples(self) -> list[str]:
        if self._callback is not None:
            return [self._series("", (), float(self._callback()))]
        with self._lock:
            values = sorted(self._values.items())
        return [self._series("", key, value) for key, value in values]


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name: str, help_text: str, labels: Sequence[str],
                 buckets: Sequence[float] = DEFAULT_BUCKETS) -> None:
        super().__init__(name, help_text, labels)
        if not buckets or list(buckets) != sorted(set(buckets)):
            raise ValueError(f"{name}: buckets must be distinct and increasing")
        self.buckets = tuple(float(b) for b in buckets if b != math.inf)
        # Per series, a count for each bucket and one for +Inf, kept non-cumulative
        # so an observation touches one slot; render() adds them up.
        self._counts: dict[LabelValues, list[int]] = {}
        self._sums: dict[LabelValues, float] = {}
        if not self.labels:
            self._counts[()] = [0] * (len(self.buckets) + 1)
            self._sums[()] = 0.0

    def observe(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        index = bisect.bisect_left(self.buckets, value)  # le is inclusive
        with self._lock:
            self._counts.setdefault(key, [0] * (len(self.buckets) + 1))[index] += 1
            self._sums[key] = self._sums.get(key, 0.0) + value

    def _samples(self) -> list[str]:
        with self._lock:
            data = sorted((key, list(counts), self._sums[key]) for key, counts in self._counts.items())
        lines = []
        for key, counts, total in data:
            running = 0
            for bound, count in zip((*self.buckets, math.inf), counts, strict=True):
                running += count
                lines.append(self._series("_bucket", key, running, f'le="{_format_value(bound)}"'))
            lines.append(self._series("_sum", key, total))
            lines.append(self._series("_count", key, running))
        return lines


class Metrics:
    """The registry: create metrics, then `render()` them all for /metrics."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._metrics: dict[str, _Metric] = {}

    def counter(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Counter:
        return self._register(Counter, name, lambda: Counter(name, help_text, labels), labels)

    def gauge(self, name: str, help_text: str, labels: Sequence[str] = (),
              callback: Callable[[], float] | None = None) -> Gauge:
        return self._register(Gauge, name, lambda: Gauge(name, help_text, labels, callback), labels)

    def histogram(self, name: str, help_text: str, labels: Sequence[str] = (),
                  buckets: Sequence[float] = DEFAULT_BUCKETS) -> Histogram:
        return self._register(Histogram, name, lambda: Histogram(name, help_text, labels, buckets), labels)

    def _register(self, kind: type[M], name: str, make: Callable[[], M],
                  labels: Sequence[str]) -> M:
        with self._lock:
            existing = self._metrics.get(name)
            if existing is None:
                metric = self._metrics[name] = make()
                return metric
        if type(existing) is not kind or existing.labels != tuple(labels):
            raise ValueError(f"metric {name} exists as a {existing.kind} with labels {existing.labels}")
        return existing

    def render(self) -> str:
        with self._lock:
            metrics = list(self._metrics.values())
        return "".join(line + "\n" for metric in metrics for line in metric.render())


def _format_value(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")
