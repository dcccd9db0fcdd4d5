"""Page views paired on the real Kafka broker and the real ClickHouse engine (chDB).

Each test sends the starts and ends of some page views through Kafka, loads them with an
ETL pass, and reads ``page_view_durations`` and the ``pageviews`` report. A start and an
end pair by ``page_view_id`` and user whatever order they arrived in; the duration is the
client's ``visible_ms`` where it was sent; a view that does not pair soundly is reported
by its status and kept out of the median and p90.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from core import hookimpl
from core.host.plugin_manager import build_registry, make_plugin_manager
from etl import ledger
from etl.metrics import EtlMetrics
from etl.reports import plugin_report
from etl.runner import run_pass
from etl.warehouse import Warehouse
from tests.etl_helpers import create_topic, envelope, produce, query

pytestmark = pytest.mark.integration

TIMEOUT_S = 60
#: Every status a row of page_view_durations can have, each a figure of the report.
STATUSES = (
    "closed",
    "open",
    "timed_out",
    "orphan_end",
    "end_before_start",
    "several_starts",
    "several_ends",
    "other_user",
)


@pytest.fixture
def pairing_settings(settings, kafka_bootstrap):
    settings = settings.replace(
        etl_poll_timeout_s=0.2, plugin_values={"page_view_timeout_s": str(TIMEOUT_S)}
    )
    create_topic(settings)
    return settings


@pytest.fixture(scope="module")
def registry():
    return build_registry(make_plugin_manager())


class Views:
    """Page-view events at seconds relative to now, in the order they reach Kafka."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.events: list[dict] = []

    def new(self) -> str:
        return str(uuid.uuid4())

    def start(self, view: str, at_s: float, user: str = "u1", page_type: str = "movie") -> None:
        self._send("page_view_start", view, at_s, user, page_type, {})

    def end(
        self,
        view: str,
        at_s: float,
        user: str = "u1",
        page_type: str = "movie",
        visible_ms: int | None = None,
    ) -> None:
        extra = {} if visible_ms is None else {"visible_ms": visible_ms}
        self._send("page_view_end", view, at_s, user, page_type, extra)

    def view(self, start_s: float, end_s: float, **kwargs) -> str:
        """A sound view: its start, then its end."""
        view = self.new()
        self.start(view, start_s, **{k: v for k, v in kwargs.items() if k != "visible_ms"})
        self.end(view, end_s, **kwargs)
        return view

    def _send(self, event, view, at_s, user, page_type, extra) -> None:
        data = {"page_view_id": view, "page_type": page_type, **extra}
        moment = self.now + timedelta(seconds=at_s)
        self.events.append(envelope(event, data, user_id=user, identity="verified", at=moment))


def load(settings, registry, views: Views) -> None:
    produce(settings, views.events)
    run_pass(settings, registry)


def durations(settings) -> dict[tuple[str, str], tuple]:
    """(page_view_id, user_id) -> (status, duration_s) of every row of the view."""
    rows = query(
        settings,
        "SELECT toString(page_view_id), user_id, status, duration_s FROM {db}.page_view_durations",
    )
    return {(view, user): (status, duration) for view, user, status, duration in rows}


def report(settings, registry) -> tuple[dict, dict]:
    """The pageviews report: page type -> (count, median s, p90 s), and its figures."""
    result = plugin_report(settings, registry, "pageviews")
    return {page_type: tuple(rest) for page_type, *rest in result.rows}, result.figures


def test_an_end_that_arrives_before_its_start_is_reported_not_averaged(
    pairing_settings, registry
) -> None:
    views = Views()
    views.view(-30, -25)
    early = views.new()
    views.end(early, -60)  # reached the server 10 s before its start, and says nothing more
    views.start(early, -50)
    load(pairing_settings, registry, views)

    assert durations(pairing_settings)[early, "u1"] == ("end_before_start", None)
    rows, figures = report(pairing_settings, registry)
    assert rows == {"movie": (1, 5.0, 5.0)}
    assert figures["end_before_start"] == 1


def test_an_end_from_another_user_does_not_stretch_a_view(pairing_settings, registry) -> None:
    views = Views()
    shared = views.view(-7300, -7297, page_type="main")
    views.end(shared, -100, user="u2", page_type="main")  # two hours later, someone else
    load(pairing_settings, registry, views)

    assert durations(pairing_settings) == {
        (shared, "u1"): ("closed", 3.0),
        (shared, "u2"): ("other_user", None),
    }
    rows, figures = report(pairing_settings, registry)
    assert rows == {"main": (1, 3.0, 3.0)}
    assert figures["other_user"] == 1


def test_the_clients_visible_ms_is_the_duration_whatever_the_arrival_order(
    pairing_settings, registry
) -> None:
    views = Views()
    measured = views.view(-30, -20, visible_ms=4000)  # 10 s apart at the server
    reversed_ = views.new()
    views.end(reversed_, -60, visible_ms=2500)  # its start was retried and arrived later
    views.start(reversed_, -55)
    by_server = views.view(-40, -34)
    load(pairing_settings, registry, views)

    found = durations(pairing_settings)
    assert found[measured, "u1"] == ("closed", 4.0)
    assert found[reversed_, "u1"] == ("closed", 2.5)
    assert found[by_server, "u1"] == ("closed", 6.0)
    assert report(pairing_settings, registry)[0] == {"movie": (3, 4.0, 5.6)}


def test_a_view_with_several_starts_or_ends_is_reported_not_averaged(
    pairing_settings, registry
) -> None:
    views = Views()
    sound = views.view(-50, -48)
    ends = views.view(-30, -25)
    views.end(ends, -10)
    starts = views.view(-30, -20)
    views.start(starts, -29)
    load(pairing_settings, registry, views)

    found = durations(pairing_settings)
    assert found[sound, "u1"] == ("closed", 2.0)
    assert found[ends, "u1"] == ("several_ends", None)
    assert found[starts, "u1"] == ("several_starts", None)
    rows, figures = report(pairing_settings, registry)
    assert rows == {"movie": (1, 2.0, 2.0)}
    assert (figures["several_ends"], figures["several_starts"]) == (1, 1)


def test_every_status_is_a_figure_of_the_report_and_a_metric(pairing_settings, registry) -> None:
    views = Views()
    views.view(-20, -15)  # closed
    views.start(views.new(), -5)  # open
    views.start(views.new(), -3600)  # timed_out
    views.end(views.new(), -1)  # orphan_end
    early = views.new()
    views.end(early, -40)  # end_before_start
    views.start(early, -30)
    views.end(views.view(-30, -25), -24)  # several_ends
    views.start(views.view(-30, -25), -26)  # several_starts
    split = views.new()
    views.start(split, -30, user="anonymous")  # signed in between: two users, other_user twice
    views.end(split, -10, user="u1")
    load(pairing_settings, registry, views)

    _, figures = report(pairing_settings, registry)
    assert figures == {status: 2 if status == "other_user" else 1 for status in STATUSES}
    metrics = EtlMetrics(pairing_settings, registry)
    metrics.refresh_quality()
    exported = {
        sample.labels["figure"]: sample.value
        for family in text_string_to_metric_families(generate_latest(metrics.registry).decode())
        for sample in family.samples
        if sample.name == "clickstream_report_figure" and sample.labels["report"] == "pageviews"
    }
    assert exported == figures


def test_a_view_made_by_an_earlier_query_is_made_again_by_the_next_pass(
    pairing_settings, registry
) -> None:
    view = registry.views["page_view_durations"]
    earlier = dataclasses.replace(
        view, query="SELECT page_view_id FROM {database}.page_views FINAL GROUP BY page_view_id"
    )

    class EarlierPageViews:
        @hookimpl
        def register_event_types(self):
            return list(registry)

        @hookimpl
        def register_views(self):
            return [earlier]

    old = build_registry(make_plugin_manager([EarlierPageViews()], load_entry_points=False))
    warehouse = Warehouse.from_settings(pairing_settings)
    with warehouse.session() as client:
        warehouse.ensure_schema(client, old, ledger.TABLES)
    views = Views()
    shared = views.view(-20, -15)
    views.end(shared, -10, user="u2")
    load(pairing_settings, registry, views)

    [(comment,)] = query(
        pairing_settings,
        "SELECT comment FROM system.tables WHERE database = %(db)s AND name = %(name)s",
        db=pairing_settings.warehouse.database,
        name=view.name,
    )
    assert comment == warehouse.view_version(view, registry)
    assert comment != warehouse.view_version(earlier, old)
    assert durations(pairing_settings) == {
        (shared, "u1"): ("closed", 5.0),
        (shared, "u2"): ("other_user", None),
    }
