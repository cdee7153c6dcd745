"""Portail's Prometheus metrics: every series in one place, and how a scrape is answered.

Each series is named ``portail_…`` and is incremented by one line at the point where the thing
it counts is decided (a login, a token answer, a delivery, a pull, a probe). ``docs/deploy.md``
says what each one means.

Multiprocess: ``portail serve --workers N`` runs N processes. ``prepare_multiprocess`` (called by
``serve`` before the workers start) points ``PROMETHEUS_MULTIPROC_DIR`` at an emptied
``<var_dir>/metrics/`` folder; every worker then writes its samples to memory-mapped files there and
a scrape answered by any worker adds them up (``MultiProcessCollector``). A process started without
it (tests, one in-process worker) keeps its samples in memory and answers with its own registry.

Values computed at scrape time (active sessions, queue depths) are not kept here: the ``/metrics``
endpoint (``portail/monitoring.py``) reads them from the database and hands them to ``render``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import REGISTRY, Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Latencies of pages and API answers: 5 ms … 10 s.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Pulls from instances run under outbound_timeout_seconds (default 5 s).
PULL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "portail_http_requests_total",
    "HTTP requests answered, by method, route template and status",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "portail_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template",
    ["method", "route"],
    buckets=HTTP_BUCKETS,
)
LOGINS = Counter("portail_logins_total", "Login attempts, by method and result", ["method", "result"])
TOKEN_REQUESTS = Counter(
    "portail_token_requests_total", "Token endpoint answers, by grant type and result", ["grant_type", "result"]
)
BACKCHANNEL_DELIVERIES = Counter(
    "portail_backchannel_deliveries_total", "Back-channel logout delivery attempts, by result", ["result"]
)
ACCOUNT_EVENT_DELIVERIES = Counter(
    "portail_account_event_deliveries_total", "Account event (SET) delivery attempts, by result", ["result"]
)
NOTIFICATION_PULLS = Counter(
    "portail_notification_pulls_total", "Notification pulls from instances, by source and result", ["source", "result"]
)
NOTIFICATION_PULL_DURATION = Histogram(
    "portail_notification_pull_duration_seconds",
    "Time of one notification pull, by source",
    ["source"],
    buckets=PULL_BUCKETS,
)
PROBES = Counter("portail_probes_total", "Health probes of instances, by result", ["result"])
BACKGROUND_RUNS = Counter(
    "portail_background_runs_total", "Passes of background tasks, by task and result (ok, error)", ["task", "result"]
)
LEADER = Gauge(
    "portail_background_leader",
    "1 while this node leads the background task (one leader per task across nodes)",
    ["task"],
    multiprocess_mode="livemax",
)

CLOCK_OFFSET = Gauge(
    "portail_clock_offset_seconds",
    "This node's clock minus the database server's, in seconds (PostgreSQL; measured every minute)",
    multiprocess_mode="livemostrecent",
)


def prepare_multiprocess(var_dir: Path) -> Path:
    """Empty ``<var_dir>/metrics`` and point ``PROMETHEUS_MULTIPROC_DIR`` at it (before workers start)."""
    folder = var_dir / "metrics"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(folder)
    return folder


def multiprocess() -> bool:
    """Whether this process writes its samples to ``PROMETHEUS_MULTIPROC_DIR`` (decided at import)."""
    return values.ValueClass is not values.MutexValue and bool(os.environ.get(MULTIPROC_ENV))


def process_stopped() -> None:
    """At a worker's shutdown: drop its live gauges (a stopped leader must not look like one)."""
    if multiprocess():
        mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def gauge(name: str, documentation: str, samples: Iterable[tuple[dict[str, str], float]]) -> GaugeMetricFamily:
    """A gauge computed at scrape time (not stored between scrapes)."""
    labels = sorted({key for sample_labels, _value in samples for key in sample_labels})
    family = GaugeMetricFamily(name, documentation, labels=labels or None)
    for sample_labels, value in samples:
        if labels:
            family.add_metric([sample_labels.get(key, "") for key in labels], value)
        else:
            family.add_metric([], value)
    return family


class _Snapshot(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        yield from self.families


def render(scraped: list[Metric] | None = None) -> bytes:
    """The Prometheus text exposition of every series, plus the families computed at scrape time."""
    registry = CollectorRegistry()
    if multiprocess():
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(_Forward(REGISTRY))
    registry.register(_Snapshot(scraped or []))
    return generate_latest(registry)


class _Forward(Collector):
    """The in-process default registry, seen from a per-scrape registry."""

    def __init__(self, source: CollectorRegistry) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        yield from self.source.collect()
