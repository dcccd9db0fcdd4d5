"""The ETL's Prometheus metrics: what each pass did, consumer lag and the warehouse's quality.

``clickstream etl`` serves them over HTTP on ``CLICKSTREAM_ETL_METRICS_PORT`` and, when
``CLICKSTREAM_ETL_METRICS_TEXTFILE`` is set, rewrites that file after each pass (for
``--once`` from cron). The quality figures are those of ``clickstream report quality``,
computed by the same functions (``etl/reports.py``) after a pass, at most once every
``etl_quality_interval_s``: they scan the warehouse. ``docs/operations.md`` says what
each metric means.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, write_to_textfile
from prometheus_client.exposition import start_http_server

from core.config import Settings
from core.host.registry import Registry
from etl.availability import Availability
from etl.ledger import PassResult
from etl.reports import QualityReport, consumer_lag, quality_report

log = logging.getLogger(__name__)

#: Pass durations, in seconds: from an empty pass to a full one of etl_max_records.
PASS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

PassFunction = Callable[[Settings, Registry], PassResult]


class EtlMetrics:
    """Every metric of the ETL process, in a registry of its own."""

    def __init__(
        self, settings: Settings, registry: Registry, clock: Callable[[], float] = time.time
    ) -> None:
        self._settings = settings
        self._plugins = registry
        self._clock = clock
        self._quality_at: float | None = None
        self._newest_event: float | None = None
        self.registry = r = CollectorRegistry()
        self.passes = Counter(
            "clickstream_etl_passes",
            "ETL passes, by outcome: loaded (read messages), empty, failed (nothing committed).",
            ["outcome"],
            registry=r,
        )
        self.messages = Counter(
            "clickstream_etl_messages", "Kafka messages read and committed by passes.", registry=r
        )
        self.rows = Counter(
            "clickstream_etl_rows_loaded", "Rows loaded, by event table.", ["table"], registry=r
        )
        self.dead_letters = Counter(
            "clickstream_etl_dead_letters",
            "Messages sent to the dead-letter table, by reason.",
            ["reason"],
            registry=r,
        )
        self.skipped = Counter(
            "clickstream_etl_skipped_messages",
            "Messages of an event type no installed plugin handles, committed past without "
            "loading them (CLICKSTREAM_ETL_UNKNOWN_EVENTS=skip), by event.",
            ["event"],
            registry=r,
        )
        self.missing_offsets = Counter(
            "clickstream_etl_missing_offsets",
            "Offsets a pass expected and never received (offset gaps: lost messages).",
            registry=r,
        )
        self.replayed = Counter(
            "clickstream_etl_replayed_passes",
            "Passes that re-read the range of a pass which loaded but did not commit.",
            registry=r,
        )
        self.duration = Histogram(
            "clickstream_etl_pass_duration_seconds",
            "Duration of a pass, failed ones included.",
            buckets=PASS_BUCKETS,
            registry=r,
        )
        self.last_success = Gauge(
            "clickstream_etl_last_success_timestamp_seconds",
            "Unix time the last pass finished without error (0: none yet).",
            registry=r,
        )
        self.lag = Gauge(
            "clickstream_etl_consumer_lag_messages",
            "Messages waiting for the ETL, by partition (end offset - committed offset).",
            ["partition"],
            registry=r,
        )
        self.newest_event = Gauge(
            "clickstream_etl_newest_event_timestamp_seconds",
            "Unix time (API receipt) of the newest event in the warehouse.",
            registry=r,
        )
        self.freshness = Gauge(
            "clickstream_etl_freshness_seconds",
            "Age of the newest event in the warehouse, at scrape time (NaN: none yet).",
            registry=r,
        )
        self.freshness.set_function(self._freshness)
        self.duplicates = Gauge(
            "clickstream_warehouse_duplicate_events",
            "Events delivered more than once: absorbed (stored once) or pending (stored "
            "twice until ClickHouse merges; reports and *_dedup views hide them).",
            ["state"],
            registry=r,
        )
        self.redelivered = Gauge(
            "clickstream_warehouse_redelivered_events",
            "Duplicates that are the same Kafka record loaded again (a pass crashed "
            "before committing); the rest were sent twice by a client or producer.",
            registry=r,
        )
        self.gaps = Gauge(
            "clickstream_warehouse_missing_offsets",
            "Offsets ever found missing by any pass, from the warehouse's pass records.",
            registry=r,
        )
        self.waiting_dead_letters = Gauge(
            "clickstream_warehouse_dead_letters_waiting",
            "Dead letters not re-queued yet.",
            registry=r,
        )
        self.report_figures = Gauge(
            "clickstream_report_figure",
            "A figure of a plugin's report (`clickstream report NAME`), labelled by the "
            "report's and the figure's names.",
            ["report", "figure"],
            registry=r,
        )
        self.quality_at = Gauge(
            "clickstream_etl_quality_timestamp_seconds",
            "Unix time the clickstream_warehouse_* figures were computed (0: never).",
            registry=r,
        )
        self.availability = Gauge(
            "clickstream_availability_ratio",
            "Share of the API's client requests answered without a 5xx over the availability "
            "window (NaN before any request was counted).",
            registry=r,
        )
        self.availability_objective = Gauge(
            "clickstream_availability_objective_ratio",
            "The availability objective (CLICKSTREAM_AVAILABILITY_OBJECTIVE).",
            registry=r,
        )
        self.error_budget = Gauge(
            "clickstream_availability_error_budget_remaining_ratio",
            "Share of the window's error budget not spent (negative once overspent).",
            registry=r,
        )
        self.window_requests = Gauge(
            "clickstream_availability_window_requests",
            "Client requests the API answered in the availability window, by kind of answer "
            "(all, server_error).",
            ["answer"],
            registry=r,
        )
        self.availability_objective.set(settings.availability.objective)
        self.availability.set(math.nan)

    def set_availability(self, figures: Availability) -> None:
        """Export the availability window's figures (etl/availability.py)."""
        self.availability.set(math.nan if figures.ratio is None else figures.ratio)
        self.error_budget.set(figures.budget_remaining)
        self.window_requests.labels("all").set(figures.requests)
        self.window_requests.labels("server_error").set(figures.server_errors)

    def instrument(self, pass_function: PassFunction) -> PassFunction:
        """``pass_function`` recording each pass, then refreshing lag and quality figures."""

        def run(settings: Settings, registry: Registry) -> PassResult:
            started = time.monotonic()
            try:
                result = pass_function(settings, registry)
            except Exception:
                self.record_failure(time.monotonic() - started)
                self.after_pass()
                raise
            self.record_pass(result)
            self.after_pass()
            return result

        return run

    def record_pass(self, result: PassResult) -> None:
        """Count what one successful pass did."""
        self.passes.labels("loaded" if result.messages else "empty").inc()
        self.messages.inc(result.messages)
        for table, rows in result.rows.items():
            self.rows.labels(table).inc(rows)
        for reason, count in result.dead_letters.items():
            self.dead_letters.labels(reason).inc(count)
        for event, count in result.skipped.items():
            self.skipped.labels(event).inc(count)
        self.missing_offsets.inc(sum(stop - start for _, start, stop in result.gaps))
        if result.replayed:
            self.replayed.inc()
        self.duration.observe(result.duration_s)
        self.last_success.set(self._clock())

    def record_failure(self, seconds: float) -> None:
        """Count a pass that raised (it committed nothing)."""
        self.passes.labels("failed").inc()
        self.duration.observe(seconds)

    def after_pass(self) -> None:
        """Refresh the lag, the quality figures when due, and the textfile; never raises."""
        lag = consumer_lag(self._settings)
        for partition, waiting in (lag or {}).items():
            self.lag.labels(str(partition)).set(waiting)
        interval = self._settings.etl.quality_interval_s
        if self._quality_at is None or self._clock() - self._quality_at >= interval:
            self.refresh_quality()
        if self._settings.etl.metrics_textfile:
            self.write_textfile(Path(self._settings.etl.metrics_textfile))

    def refresh_quality(self) -> None:
        """Recompute the clickstream_warehouse_* figures; a failure is logged and retried."""
        try:
            report = quality_report(self._settings, self._plugins, with_lag=False)
        except Exception as error:
            log.warning("etl.quality_unknown error=%s", error)
            return
        self.set_quality(report)

    def set_quality(self, report: QualityReport) -> None:
        """Export the figures of a quality report."""
        self.duplicates.labels("absorbed").set(sum(d.absorbed for d in report.duplicates))
        self.duplicates.labels("pending").set(sum(d.pending for d in report.duplicates))
        self.redelivered.set(sum(d.redelivered for d in report.duplicates))
        self.gaps.set(report.missing_offsets)
        self.waiting_dead_letters.set(report.dead_letters)
        for name, figures in report.figures.items():
            for figure, value in figures.items():
                self.report_figures.labels(name, figure).set(value)
        if report.newest_event is not None:
            self._newest_event = report.newest_event.timestamp()
            self.newest_event.set(self._newest_event)
        self._quality_at = self._clock()
        self.quality_at.set(self._quality_at)

    def _freshness(self) -> float:
        if self._newest_event is None:
            return math.nan
        return max(self._clock() - self._newest_event, 0.0)

    def serve(self) -> int:
        """Serve ``/metrics`` on the configured address in a daemon thread; returns the port."""
        server, _thread = start_http_server(
            self._settings.etl.metrics_port,
            addr=self._settings.etl.metrics_host,
            registry=self.registry,
        )
        port = server.server_port
        log.info("etl.metrics_listening host=%s port=%s", self._settings.etl.metrics_host, port)
        return port

    def write_textfile(self, path: Path) -> None:
        """Atomically rewrite ``path`` with every metric (node_exporter's textfile format)."""
        try:
            write_to_textfile(str(path), self.registry)
        except OSError as error:
            log.warning("etl.metrics_textfile_failed path=%s error=%s", path, error)
