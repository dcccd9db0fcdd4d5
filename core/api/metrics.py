"""The API's Prometheus metrics: requests, events, Kafka publishing, the spool, identity.

One :class:`ApiMetrics` per application (kept in ``app.extensions``). Under gunicorn,
each worker counts in its own memory-mapped files (prometheus_client's multiprocess
mode, switched on by ``core/serve/multiprocess.py``) and a scrape of any worker adds
them up. The identity resolver and the publisher keep their own counters; they are
copied into metrics by :meth:`ApiMetrics.sync`, at scrape time in the worker that
answers the scrape, and every few seconds in every worker, since a scrape reaches
only one of them. ``docs/operations.md`` says what each metric means.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

#: Request and publish latency buckets, in seconds, around the API's latency budget.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

#: HTTP methods counted by name; any other method a client invents counts as "other".
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))

#: How often each worker copies the resolver's and publisher's counters into its metrics.
SYNC_INTERVAL_S = 5.0

#: identity.stats() key -> (metric, label value); see IdentityResolver.stats.
IDENTITY_COUNTERS: Mapping[str, tuple[str, str | None]] = {
    "anonymous": ("identity_resolutions", "anonymous"),
    "verified": ("identity_resolutions", "verified"),
    "degraded": ("identity_resolutions", "degraded"),
    "rejected": ("identity_resolutions", "rejected"),
    "cache_hits_local": ("identity_cache_lookups", "hit_local"),
    "cache_hits_redis": ("identity_cache_lookups", "hit_redis"),
    "cache_misses": ("identity_cache_lookups", "miss"),
    "cache_errors": ("identity_cache_errors", None),
    "auth_calls": ("auth_service_calls", None),
    "auth_unavailable": ("auth_service_failures", None),
    "breaker_short_circuits": ("auth_breaker_short_circuits", None),
    "fallbacks": ("auth_fallbacks", None),
}

#: publisher.stats() counter key -> metric.
PUBLISHER_COUNTERS: Mapping[str, str] = {
    "published": "kafka_published",
    "publish_failures": "kafka_publish_failures",
    "spooled": "spool_spooled",
    "replayed": "spool_replayed",
    "spool_full_rejections": "spool_full_rejections",
}

#: publisher.stats() gauge key -> metric.
PUBLISHER_GAUGES: Mapping[str, str] = {
    "spool_depth_events": "spool_depth_events",
    "spool_bytes": "spool_bytes",
}


def multiprocess_enabled() -> bool:
    """Whether this process counts in prometheus_client's shared multiprocess files."""
    return "PROMETHEUS_MULTIPROC_DIR" in os.environ


class ApiMetrics:
    """Every metric of the API, registered in a registry of its own.

    Besides recording, it implements the pipeline's observer (``event_done``,
    ``publish_done``) and copies the resolver's and publisher's counters (``sync``).
    Recording takes no lock shared by all threads beyond prometheus_client's own
    per-value locks (one process-wide lock in multiprocess mode).
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._multiprocess = multiprocess_enabled()
        r = self.registry
        self.requests = Counter(
            "clickstream_http_requests",
            "HTTP requests answered, by method, route and status.",
            ["method", "endpoint", "status"],
            registry=r,
        )
        self.request_duration = Histogram(
            "clickstream_http_request_duration_seconds",
            "Time from routing a request to its response, by route.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.events = Counter(
            "clickstream_events",
            "Events answered, by event type ('unknown' if not a known type) and status.",
            ["event", "status"],
            registry=r,
        )
        self.publish_duration = Histogram(
            "clickstream_kafka_publish_duration_seconds",
            "Time a request waited for its events to be acknowledged (or spooled).",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._counters = {
            name: Counter(f"clickstream_{name}", doc, labels, registry=r)
            for name, doc, labels in (
                ("identity_resolutions", "Identities resolved, by mode or rejection.", ["mode"]),
                ("identity_cache_lookups", "Identity cache lookups, by result.", ["result"]),
                ("identity_cache_errors", "Redis errors of the identity cache.", []),
                ("auth_service_calls", "Calls made to the auth service.", []),
                ("auth_service_failures", "Auth service calls without a usable answer.", []),
                ("auth_breaker_short_circuits", "Auth calls skipped by the open breaker.", []),
                ("auth_fallbacks", "Tokens verified locally because the auth service failed.", []),
                ("kafka_published", "Messages the broker acknowledged.", []),
                ("kafka_publish_failures", "Messages the broker did not acknowledge.", []),
                ("spool_spooled", "Messages written to the disk spool.", []),
                ("spool_replayed", "Spooled messages replayed to the broker.", []),
                ("spool_full_rejections", "Events refused (503) because the spool was full.", []),
            )
        }
        self._gauges = {
            name: Gauge(f"clickstream_{name}", doc, registry=r, multiprocess_mode=mode)
            for name, doc, mode in (
                ("spool_depth_events", "Messages waiting in the disk spool.", "livesum"),
                ("spool_bytes", "Bytes of the disk spool.", "livesum"),
                ("auth_breaker_open", "1 while the auth service breaker is not closed.", "livemax"),
            )
        }
        self._children: dict[tuple[Any, ...], Any] = {}
        self._sources: list[Callable[[], None]] = []
        self._last: dict[str, float] = {}
        self._sync_lock = threading.Lock()
        self._sync_thread_pid = 0

    def _child(self, metric: Any, *labels: str) -> Any:
        # labels() takes the metric's lock on every call; a dict read does not.
        key = (metric, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def request_done(self, method: str, endpoint: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        method = method if method in METHODS else "other"
        self._child(self.requests, method, endpoint, str(status)).inc()
        self._child(self.request_duration, endpoint).observe(seconds)
        if self._multiprocess and self._sync_thread_pid != os.getpid():
            self._start_sync_thread()

    def event_done(self, event: str, status: int) -> None:
        """Count one event's answer (``event`` must be a known type or ``"unknown"``)."""
        self._child(self.events, event, str(status)).inc()

    def publish_done(self, seconds: float) -> None:
        """Record how long one publish call (one event or a batch) took."""
        self.publish_duration.observe(seconds)

    def watch(self, identity: Any, publisher: Any) -> None:
        """Mirror ``identity.stats()`` and ``publisher.stats()`` (stand-ins may lack them)."""
        if callable(getattr(identity, "stats", None)):
            self._sources.append(lambda: self._mirror_identity(identity))
        if callable(getattr(publisher, "stats", None)):
            self._sources.append(lambda: self._mirror_publisher(publisher))

    def sync(self) -> None:
        """Copy the watched counters into metrics (increments since the last sync)."""
        with self._sync_lock:
            for source in self._sources:
                source()

    def _mirror_identity(self, identity: Any) -> None:
        stats = identity.stats()
        for key, (name, label) in IDENTITY_COUNTERS.items():
            counter = self._counters[name]
            target = counter.labels(label) if label else counter
            self._add(f"identity.{key}", stats.get(key, 0), target)
        breaker = getattr(identity, "breaker", None)
        if breaker is not None:
            self._gauges["auth_breaker_open"].set(int(breaker.state != "closed"))

    def _mirror_publisher(self, publisher: Any) -> None:
        stats = publisher.stats()
        for key, name in PUBLISHER_COUNTERS.items():
            self._add(f"publisher.{key}", stats.get(key, 0), self._counters[name])
        for key, name in PUBLISHER_GAUGES.items():
            self._gauges[name].set(stats.get(key, 0))

    def _add(self, key: str, total: float, counter: Any) -> None:
        increase = total - self._last.get(key, 0)
        if increase > 0:
            counter.inc(increase)
        self._last[key] = total

    def _start_sync_thread(self) -> None:
        with self._sync_lock:
            if self._sync_thread_pid == os.getpid():
                return
            self._sync_thread_pid = os.getpid()
        threading.Thread(target=self._sync_forever, name="metrics-sync", daemon=True).start()

    def _sync_forever(self) -> None:
        while True:
            time.sleep(SYNC_INTERVAL_S)
            self.sync()

    def render(self) -> tuple[bytes, str]:
        """The scrape: the text exposition of every metric (of every worker) and its type."""
        self.sync()
        registry = self.registry
        if self._multiprocess:
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
