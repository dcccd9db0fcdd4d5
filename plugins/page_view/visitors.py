"""Visitors across every event type: each event's person (identity stitching), visits
(``sessions``) and the ``audience`` report (DAU, WAU, MAU). Built from the envelope's
columns, which every event table has, over the tables the ``register_views`` hook names."""

from __future__ import annotations

from collections.abc import Sequence

from core import Report, View

PERSON_EVENTS = "person_events"
PEOPLE = "people"
SESSIONS = "sessions"
#: The event that counts as a page in a session.
PAGE = "page_view_start"
#: The ETL's table of (anonymous_id, user_id) seen together (docs/warehouse.md).
LINKS = "{database}.identity_links"
#: Each anonymous_id's person: the user it was first seen signed in as.
FIRST_LINK = (
    f"SELECT anonymous_id, argMin(user_id, first_seen) AS user_id FROM {LINKS} "
    "GROUP BY anonymous_id"
)
ENVELOPE = (
    "event_id, event, timestamp, client_time, user_id, identity, anonymous_id, session_id, "
    "device, browser, os, is_bot"
)
#: The audience figures (docs/warehouse.md): people are distinct person_ids, bots left out.
FIGURES = ("dau", "wau", "mau", "sessions_per_day", "median_session_s", "dau_wow_change")


def _every_event(tables: Sequence[str]) -> str:
    return "\n    UNION ALL\n    ".join(
        f"SELECT {ENVELOPE} FROM {{database}}.{table} FINAL" for table in tables
    )


def views(tables: Sequence[str]) -> list[View]:
    """``person_events``, ``people`` and ``sessions`` over ``tables`` (every event table)."""
    tables = tuple(tables)
    person_events = f"""SELECT
    e.*,
    multiIf(
        e.user_id != 'anonymous', e.user_id,
        l.user_id != '', l.user_id,
        e.anonymous_id
    ) AS person_id
FROM (
    {_every_event(tables)}
) AS e
LEFT JOIN ({FIRST_LINK}) AS l ON e.anonymous_id = l.anonymous_id"""
    people = f"""SELECT
    a.anonymous_id AS anonymous_id,
    if(l.user_id != '', l.user_id, a.anonymous_id) AS person_id,
    nullIf(l.user_id, '') AS user_id
FROM (
    SELECT DISTINCT assumeNotNull(seen) AS anonymous_id
    FROM (
        SELECT anonymous_id AS seen FROM {{database}}.{PERSON_EVENTS}
        WHERE anonymous_id IS NOT NULL
    )
) AS a
LEFT JOIN ({FIRST_LINK}) AS l ON a.anonymous_id = l.anonymous_id"""
    sessions = f"""SELECT
    session_id,
    if(signed_in != '', signed_in, anonymous_person) AS person_id,
    if(signed_in != '', signed_in, 'anonymous') AS user_id,
    anonymous_id,
    started_at,
    ended_at,
    dateDiff('millisecond', started_at, ended_at) / 1000 AS duration_s,
    events,
    pages,
    is_bot
FROM (
    SELECT
        assumeNotNull(visit) AS session_id,
        anyIf(user_id, user_id != 'anonymous') AS signed_in,
        any(person_id) AS anonymous_person,
        any(anonymous_id) AS anonymous_id,
        min(timestamp) AS started_at,
        max(timestamp) AS ended_at,
        count() AS events,
        countIf(event = '{PAGE}') AS pages,
        max(is_bot) AS is_bot
    FROM (
        SELECT *, session_id AS visit FROM {{database}}.{PERSON_EVENTS}
        WHERE session_id IS NOT NULL
    )
    GROUP BY visit
)"""
    return [
        View(
            name=PERSON_EVENTS,
            query=person_events,
            tables=tables,
            description="Every event of every table, with the person it belongs to once "
            "stitched: its user, else the user its anonymous_id was linked to, else that id.",
        ),
        View(
            name=PEOPLE,
            query=people,
            tables=tables,
            description="Each anonymous_id seen and its person: the user it was first "
            "linked to, else itself.",
        ),
        View(
            name=SESSIONS,
            query=sessions,
            tables=tables,
            description="One row per session_id over every event table: its person, "
            "user, start, end, duration, events, pages and bot tag.",
        ),
    ]


def _since(days: int, column: str = "timestamp") -> str:
    return f"{column} > now64(3) - INTERVAL {days} DAY"


def audience() -> Report:
    """DAU, WAU and MAU by person, sessions and their median length, bots left out."""
    events = "{database}." + PERSON_EVENTS
    sessions = "{database}." + SESSIONS
    humans = "NOT is_bot AND person_id IS NOT NULL"
    last_day = f"SELECT * FROM {sessions} WHERE NOT is_bot AND {_since(1, 'started_at')}"
    week_ago = "timestamp BETWEEN now64(3) - INTERVAL 8 DAY AND now64(3) - INTERVAL 7 DAY"
    return Report(
        name="audience",
        description="People (by stitched identity) and sessions per day over 30 days, "
        "bots left out and counted apart; DAU, WAU, MAU and the week-over-week change.",
        query=(
            "SELECT day, people, sessions, `median session s`, `bot events` FROM ("
            f"SELECT toDate(timestamp) AS day, uniqExactIf(person_id, {humans}) AS people, "
            "countIf(is_bot) AS `bot events` "
            f"FROM {events} WHERE {_since(30)} GROUP BY day"
            ") AS e LEFT JOIN ("
            "SELECT toDate(started_at) AS day, count() AS sessions, "
            "round(median(duration_s), 1) AS `median session s` "
            f"FROM {sessions} WHERE NOT is_bot AND {_since(30, 'started_at')} GROUP BY day"
            ") AS s USING day ORDER BY day"
        ),
        figures=(
            "SELECT dau, wau, mau, "
            f"(SELECT count() FROM ({last_day})) AS sessions_per_day, "
            "(SELECT ifNotFinite(toFloat64(median(duration_s)), 0) "
            f"FROM ({last_day})) AS median_session_s, "
            "if(dau_week_ago = 0, 0, (dau - dau_week_ago) / dau_week_ago) AS dau_wow_change "
            "FROM (SELECT "
            f"uniqExactIf(person_id, {_since(1)}) AS dau, "
            f"uniqExactIf(person_id, {_since(7)}) AS wau, "
            f"uniqExactIf(person_id, {_since(30)}) AS mau, "
            f"uniqExactIf(person_id, {week_ago}) AS dau_week_ago "
            f"FROM {events} WHERE {humans} AND {_since(30)})"
        ),
        needs=(PERSON_EVENTS, SESSIONS),
    )
