"""Every metric a service process exposes, in one registry per process (``StageMetrics``).

Names follow Prometheus's conventions: a ``coc_`` prefix, base units in the name
(``_seconds``), counters ending in ``_total``. Every label has a bounded set of
values: a stage, a topic, a partition, a destination from the settings, a route
template, a seal's short fingerprint. No VIN, record id or free text is ever a
label value: a label value per vehicle would make one series per vehicle.

The hot path pays for a counter's increment and a histogram's observation on
children bound once per topic (``TopicMeter``): about a microsecond each. What can
be read when Prometheus asks (a consumer's lag, a seal's expiry) is read then, by
a ``Sampled`` collector, and costs the pipeline nothing between two scrapes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE_LATEST", "Sampled", "StageMetrics", "TopicMeter", "seal_readings"]

# Handling a message: a record's handler takes about a millisecond; a batch's up to seconds.
MESSAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
HTTP_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SEAL_ID_CHARS = 16  # a seal's label: the first hex digits of its certificate's SHA-256 fingerprint

# One reading of a sampled metric: its label values, in the order of the metric's labels, and the value.
Reading = tuple[tuple[str, ...], float]
Source = Callable[[], Iterable[Reading]]


class Sampled(Collector):
    """A gauge whose readings are taken from its sources when Prometheus asks, not kept between scrapes.

    A source that fails gives no reading this time (a scrape never fails for it).
    """

    def __init__(self, name: str, documentation: str, labels: Sequence[str]) -> None:
        self.name, self.documentation, self.labels = name, documentation, tuple(labels)
        self.sources: list[Source] = []

    def add(self, source: Source) -> None:
        self.sources.append(source)

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(self.name, self.documentation, labels=self.labels)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(self.name, self.documentation, labels=self.labels)
        for source in self.sources:
            try:
                readings = list(source())
            except Exception:  # a reading that cannot be taken now is left out, the rest are served
                continue
            for values, value in readings:
                family.add_metric(list(values), value)
        yield family


@dataclass(frozen=True)
class TopicMeter:
    """The metrics of one subscription, bound to its stage and topic once (a child per metric)."""

    handled: Any
    failed: Any
    dead_lettered: Any
    handling: Any  # seconds per message (per batch for a mode that hands batches)
    batches: Any  # seconds per polled batch, in every mode

    @classmethod
    def unregistered(cls) -> TopicMeter:
        """A meter no registry serves: for a runtime part made without a stage (a unit test)."""
        return StageMetrics("-", process=False).topic("-")


class StageMetrics:
    """The registry of one service process and every metric family it may expose.

    Every family is declared here, whichever service fills it, so the names a
    dashboard may use are those ``names()`` returns for any service; a family a
    service never fills is served with no samples.
    """

    def __init__(self, stage: str, *, process: bool = True) -> None:
        disable_created_metrics()  # no ``_created`` series beside each counter: half the series, no use here
        self.stage = stage
        registry = self.registry = CollectorRegistry()
        if process:  # process_* (CPU, memory, file descriptors), python_info, python_gc_*
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)
            GCCollector(registry=registry)
        per_topic = ("stage", "topic")
        self.handled = Counter(
            "coc_messages_handled", "Messages the stage's handler finished with", per_topic, registry=registry
        )
        self.failed = Counter(
            "coc_messages_failed",
            "Messages whose handling met a transient fault (read again, uncommitted)",
            per_topic,
            registry=registry,
        )
        self.dead_lettered = Counter(
            "coc_messages_dead_lettered",
            "Messages kept in the topic's dead-letter topic (unusable, never redelivered)",
            per_topic,
            registry=registry,
        )
        self.handling = Histogram(
            "coc_message_handling_seconds",
            "Time from a message's handler called to its end",
            per_topic,
            buckets=MESSAGE_BUCKETS,
            registry=registry,
        )
        self.batches = Histogram(
            "coc_batch_handling_seconds",
            "Time to handle one polled batch of a subscription, commit excluded",
            per_topic,
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.lag = self._sampled(
            "coc_consumer_lag_messages",
            "Messages on the broker past what this process committed (or read), per partition it owns",
            ("stage", "topic", "partition"),
        )
        self.read_model_lag = self._sampled(
            "coc_read_model_lag_messages",
            "Status events of coc.status.v1 not yet written into the read model (waiting and held)",
            (),
        )
        self.http_requests = Counter(
            "coc_http_requests",
            "HTTP requests answered, by route template and status",
            ("method", "route", "status"),
            registry=registry,
        )
        self.http_seconds = Histogram(
            "coc_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template",
            ("method", "route"),
            buckets=HTTP_BUCKETS,
            registry=registry,
        )
        self.deliveries = Counter(
            "coc_deliveries",
            "Deliveries that reached a state (queued, submitted, delivered, rejected, retrying, unrouted)",
            ("destination", "state"),
            registry=registry,
        )
        self.delivery_retries = Counter(
            "coc_delivery_retries",
            "Delivery attempts that will be tried again (an authority away or busy)",
            ("destination",),
            registry=registry,
        )
        self.seal_expiry = self._sampled(
            "coc_seal_expiry_days",
            "Days until a loaded seal's certificate expires (negative: expired)",
            ("seal",),
        )
        self.under_replicated = Gauge(
            "coc_kafka_under_replicated_partitions",
            "Partitions whose in-sync replicas are fewer than their replicas, as this process last saw them",
            ("topic",),
            registry=registry,
        )
        self.replication_checked = Gauge(
            "coc_kafka_replication_checked_timestamp_seconds",
            "When the partitions' replication was last read from the cluster (Unix time)",
            registry=registry,
        )

    def _sampled(self, name: str, documentation: str, labels: Sequence[str]) -> Sampled:
        sampled = Sampled(name, documentation, labels)
        self.registry.register(sampled)
        return sampled

    def topic(self, topic: str) -> TopicMeter:
        """The children of one subscription's metrics."""
        return TopicMeter(
            handled=self.handled.labels(self.stage, topic),
            failed=self.failed.labels(self.stage, topic),
            dead_lettered=self.dead_lettered.labels(self.stage, topic),
            handling=self.handling.labels(self.stage, topic),
            batches=self.batches.labels(self.stage, topic),
        )

    def consumer_lag(self, topic: str, lags: Callable[[], Iterable[tuple[int, int]]]) -> None:
        """Serve a subscription's lag: ``lags`` gives (partition, messages behind) for each partition it owns."""
        self.lag.add(lambda: (((self.stage, topic, str(p)), float(n)) for p, n in lags()))

    def exposition(self) -> bytes:
        """The registry in Prometheus's text format."""
        return generate_latest(self.registry)

    def names(self) -> set[str]:
        """Every sample name the registry may serve (``_total``, ``_bucket``, ... included)."""
        found: set[str] = set()
        for family in self.registry.collect():
            found.update(_SUFFIXES.get(family.type, lambda name: {name})(family.name))
        return found


_SUFFIXES: dict[str, Callable[[str], set[str]]] = {
    "counter": lambda name: {f"{name}_total"},
    "histogram": lambda name: {f"{name}_bucket", f"{name}_sum", f"{name}_count"},
    "summary": lambda name: {f"{name}_sum", f"{name}_count"},
    "info": lambda name: {f"{name}_info"},
}


def seal_readings(
    seals: Callable[[], Iterable[tuple[str, dt.datetime]]], clock: Callable[[], dt.datetime] | None = None
) -> Source:
    """Each seal's days to expiry, from (fingerprint, not after) pairs; the label is the fingerprint's start."""

    def readings() -> Iterator[Reading]:
        now = clock() if clock else dt.datetime.now(dt.UTC)
        for fingerprint, not_after in seals():
            yield (
                (fingerprint.replace(":", "").lower()[:SEAL_ID_CHARS],),
                (not_after - now).total_seconds() / 86400,
            )

    return readings
