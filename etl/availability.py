"""Availability: the share of the API's requests answered without a server error (5xx) over
a window, against the objective (``CLICKSTREAM_AVAILABILITY_OBJECTIVE``), and the error
budget left.

The API counts its answers (``clickstream_http_requests_total``, every worker's added up in
one scrape). After each pass the ETL scrapes that ``/metrics`` and appends the two totals to
the warehouse's ``api_requests`` table (:func:`scrape`, :func:`record`); the dashboard and
the ETL's ``clickstream_availability_*`` metrics compute the window's figures from those
rows (:func:`compute`). The totals restart from 0 when the API server restarts: a total
lower than the one before counts as a restart, as Prometheus's ``increase()`` does. A scrape
that finds the API unreachable is recorded too (``reachable = 0``): requests nobody could
answer are not counted as errors, so the dashboard shows the unreachable scrapes beside.
"""

from __future__ import annotations

import logging
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from clickhouse_connect.driver.client import Client
from prometheus_client.parser import text_string_to_metric_families

from core.config import Settings
from core.host.registry import Registry
from etl.ledger import PassResult
from etl.warehouse import Warehouse

log = logging.getLogger(__name__)

#: The API's counter of answered requests, as its /metrics names the samples.
REQUESTS_SAMPLE = "clickstream_http_requests_total"
#: Routes that are no client's requests: probes, the scrape itself, operators' pages.
NOT_CLIENT_ROUTES = ("/health", "/metrics", "/ops")
#: The value of ``CLICKSTREAM_AVAILABILITY_METRICS_URL`` that turns scraping off.
OFF = "off"
#: Seconds between two scrapes (at most one per pass): 43,200 rows in a 30-day window,
#: which the figures are computed from at each scrape and each dashboard.
SCRAPE_INTERVAL_S = 60.0


@dataclass(frozen=True)
class Scrape:
    """The API's request totals at one moment (``reachable`` False: no answer, totals 0)."""

    at: datetime
    source: str
    reachable: bool
    requests: int = 0
    server_errors: int = 0


@dataclass(frozen=True)
class Availability:
    """The window's figures. ``ratio`` is None while no request was counted."""

    requests: int
    server_errors: int
    objective: float
    scrapes: int
    unreachable: int

    @property
    def ratio(self) -> float | None:
        return None if not self.requests else 1 - self.server_errors / self.requests

    @property
    def budget_remaining(self) -> float:
        """Share of the error budget (``(1 - objective) * requests`` errors) not spent;
        negative once it is overspent, 1 with no request."""
        if not self.requests:
            return 1.0
        return 1 - self.server_errors / ((1 - self.objective) * self.requests)


def metrics_url(settings: Settings) -> str | None:
    """The /metrics to scrape: the setting, else the listener the API serves it on."""
    configured = settings.availability.metrics_url
    if configured == OFF:
        return None
    if configured:
        return configured
    host, port = (
        (settings.ops.host, settings.ops.port)
        if settings.ops.port
        else (settings.api.host, settings.api.port)
    )
    host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return f"http://{host}:{port}/metrics"


def totals(text: str) -> tuple[int, int]:
    """(requests, server errors) of clients in an exposition of the API's metrics."""
    requests = errors = 0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name != REQUESTS_SAMPLE:
                continue
            if sample.labels.get("endpoint", "").startswith(NOT_CLIENT_ROUTES):
                continue
            requests += int(sample.value)
            if sample.labels.get("status", "").startswith("5"):
                errors += int(sample.value)
    return requests, errors


def scrape(url: str, token: str = "", timeout_s: float = 5.0) -> Scrape:
    """The API's totals now; an unreachable or failing API gives ``reachable=False``."""
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    now = datetime.now(UTC)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            requests, errors = totals(response.read().decode())
    except (OSError, ValueError) as error:
        log.warning("etl.api_scrape_failed url=%s error=%s", url, error)
        return Scrape(now, url, False)
    return Scrape(now, url, True, requests, errors)


def record(client: Client, warehouse: Warehouse, scraped: Scrape) -> None:
    """Append one scrape to ``api_requests``."""
    client.insert(
        warehouse.table("api_requests"),
        [
            [
                scraped.at,
                scraped.source,
                int(scraped.reachable),
                scraped.requests,
                scraped.server_errors,
            ]
        ],
        column_names=["scraped_at", "source", "reachable", "requests", "server_errors"],
    )


def increases(scrapes: Iterable[Scrape]) -> list[tuple[datetime, int, int]]:
    """(moment, requests, server errors) counted between consecutive reachable scrapes of
    each source, in time order; a total lower than the one before is a restart from 0."""
    last: dict[str, Scrape] = {}
    found = []
    for scraped in sorted(scrapes, key=lambda s: s.at):
        if not scraped.reachable:
            continue
        before = last.get(scraped.source)
        last[scraped.source] = scraped
        if before is None:
            continue
        restarted = (
            scraped.requests < before.requests or scraped.server_errors < before.server_errors
        )
        base = Scrape(before.at, before.source, True) if restarted else before
        found.append(
            (
                scraped.at,
                scraped.requests - base.requests,
                scraped.server_errors - base.server_errors,
            )
        )
    return found


def compute(scrapes: list[Scrape], objective: float) -> Availability:
    """The figures of ``scrapes`` (those of one window)."""
    counted = increases(scrapes)
    return Availability(
        requests=sum(requests for _, requests, _ in counted),
        server_errors=sum(errors for _, _, errors in counted),
        objective=objective,
        scrapes=len(scrapes),
        unreachable=sum(not s.reachable for s in scrapes),
    )


def load(
    client: Client, warehouse: Warehouse, window_s: float, now: datetime | None = None
) -> list[Scrape]:
    """The scrapes of the last ``window_s`` seconds (none before the table exists)."""
    if not warehouse.has_table(client, "api_requests"):
        return []
    since = (now or datetime.now(UTC)) - timedelta(seconds=window_s)
    rows = client.query(
        "SELECT scraped_at, source, reachable, requests, server_errors "
        f"FROM {warehouse.table('api_requests')} WHERE scraped_at >= {{since:DateTime64(3)}} "
        "ORDER BY scraped_at",
        parameters={"since": since.replace(tzinfo=None)},
    ).result_rows
    return [
        Scrape(at.replace(tzinfo=UTC) if at.tzinfo is None else at, source, bool(up), n, e)
        for at, source, up, n, e in rows
    ]


def after_passes(
    settings: Settings,
    pass_function: Callable[[Settings, Registry], PassResult],
    report: Callable[[Availability], None],
    clock: Callable[[], float] = time.monotonic,
) -> Callable[[Settings, Registry], PassResult]:
    """``pass_function``, then (every :data:`SCRAPE_INTERVAL_S` at most) a scrape of the API
    recorded and the window's figures given to ``report`` (the ETL's metrics); a failure
    here is logged and never fails the pass."""
    url = metrics_url(settings)
    if url is None:
        return pass_function
    scraped: list[float] = []

    def run(pass_settings: Settings, registry: Registry) -> PassResult:
        try:
            return pass_function(pass_settings, registry)
        finally:
            if not scraped or clock() - scraped[-1] >= SCRAPE_INTERVAL_S:
                scraped[:] = [clock()]
                _scrape_and_report(settings, url, report)

    return run


def _scrape_and_report(
    settings: Settings, url: str, report: Callable[[Availability], None]
) -> None:
    try:
        warehouse = Warehouse.from_settings(settings)
        with warehouse.session() as client:
            record(client, warehouse, scrape(url, settings.ops.token))
            window = load(client, warehouse, settings.availability.window_s)
        report(compute(window, settings.availability.objective))
    except Exception as error:
        log.warning("etl.availability_failed error=%s", error)
