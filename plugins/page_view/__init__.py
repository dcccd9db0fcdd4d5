"""Built-in plugin: page views, as a start and an end event paired by ``page_view_id``.

Besides its two event types it ships, through the hooks any plugin can implement, the
``page_view_durations`` view that pairs them, the ``pageviews`` report and its setting,
the browser tracker's script that sends page views by itself, and the visitors over every
event type (``visitors.py``): ``person_events``, ``people``, ``sessions`` (whose pages are
page views) and the ``audience`` report.
"""

from __future__ import annotations

from importlib.resources import files

from core import EventType, PluginSetting, Report, TrackerScript, View, hookimpl
from plugins.page_view import visitors
from plugins.page_view.schema import PageViewEndSchema, PageViewStartSchema

#: Both events fill one table, generated from both schemas: a column one of them lacks is
#: null in its rows.
TABLE = "page_views"
DURATIONS = "page_view_durations"

START_EXAMPLE = {"page_view_id": "7f1d2c3b-4a5e-4f60-8172-93a4b5c6d7e8", "page_type": "movie"}
END_EXAMPLE = {"page_view_id": "7f1d2c3b-4a5e-4f60-8172-93a4b5c6d7e8", "page_type": "movie"}

#: What a row of page_view_durations can be: closed (paired soundly, the only status with a
#: duration), open or timed_out (a start alone), or an anomaly the report counts apart.
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

#: Analysts ask for a time range, a user, or both; a user's start and end of one view are then
#: neighbours (on one day), which the pairing reads. event_id ends it: one key per event.
SORT_KEY = ("toDate(timestamp)", "user_id", "page_view_id", "event")

TIMEOUT = PluginSetting(
    "page_view_timeout_s",
    1800,
    "A page view with a start and no end after this many seconds counts as timed out.",
)


@hookimpl
def register_event_types() -> list[EventType]:
    return [
        EventType(
            name="page_view_start",
            schema=PageViewStartSchema,
            table=TABLE,
            example=START_EXAMPLE,
            order_by=SORT_KEY,
            description="A page was opened; its page_view_end shares the page_view_id.",
            version=2,
        ),
        EventType(
            name="page_view_end",
            schema=PageViewEndSchema,
            table=TABLE,
            example=END_EXAMPLE,
            order_by=SORT_KEY,
            description="A page was left or closed; pairs with page_view_start by page_view_id.",
            version=2,
        ),
    ]


@hookimpl
def register_settings() -> list[PluginSetting]:
    return [TIMEOUT]


@hookimpl
def register_views(tables: tuple[str, ...]) -> list[View]:
    return [
        *visitors.views(tables),
        View(
            name=DURATIONS,
            query=files(__name__).joinpath("durations.sql").read_text(encoding="utf-8"),
            tables=(TABLE,),
            description=(
                "One row per page view and user: its start and end paired, duration, status."
            ),
        ),
    ]


@hookimpl
def register_reports() -> list[Report]:
    durations = "{database}." + DURATIONS
    return [
        Report(
            name="pageviews",
            description="Closed page views' durations by page type, and how many have each status.",
            query=(
                "SELECT page_type AS `page type`, count() AS count, "
                "round(quantile(0.5)(duration_s), 1) AS `median s`, "
                "round(quantile(0.9)(duration_s), 1) AS `p90 s` "
                f"FROM {durations} WHERE status = 'closed' GROUP BY page_type ORDER BY page_type"
            ),
            figures=(
                "SELECT "
                + ", ".join(f"countIf(status = '{status}') AS {status}" for status in STATUSES)
                + f" FROM {durations}"
            ),
            needs=(DURATIONS,),
        ),
        visitors.audience(),
    ]


@hookimpl
def register_tracker_scripts() -> list[TrackerScript]:
    return [
        TrackerScript(
            name="page_views",
            source=files(__name__).joinpath("tracker.js").read_text(encoding="utf-8"),
            description="page_view_start when the page is shown, page_view_end when it is left",
        )
    ]
