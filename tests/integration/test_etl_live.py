"""The ETL on the real Kafka broker and the real ClickHouse engine (chDB, or a server)."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from kafka import KafkaAdminClient
from kafka.structs import TopicPartition
from marshmallow import Schema, fields

from core import EventType, hookimpl
from core.config import Settings, env_name
from core.host.plugin_manager import build_registry, make_plugin_manager
from core.host.registry import Registry
from etl.deadletters import list_dead_letters, requeue
from etl.reports import consumer_lag, counts_report, plugin_report, quality_report
from etl.runner import run_pass
from etl.warehouse import MigrationNeededError, Warehouse, WarehouseBusyError, WarehouseError
from tests.etl_helpers import BASE_TIME, at, create_topic, envelope, produce, query, scalar
from tests.reliability import record

pytestmark = pytest.mark.integration

SERVER_DSN = os.environ.get("CLICKSTREAM_TEST_SERVER_DSN", "")


class RatingSchema(Schema):
    movie_id = fields.UUID(required=True)
    stars = fields.Integer(required=True)
    comment = fields.String(load_default="")


class RatingPlugin:
    """A third-party plugin known only to the tests: its own event, schema, table and mapper."""

    @hookimpl
    def register_event_types(self) -> list[EventType]:
        return [
            EventType(
                name="test_rating",
                schema=RatingSchema,
                table="test_ratings",
                ddl=(
                    "CREATE TABLE IF NOT EXISTS {database}.{table} (event_id UUID, "
                    "event LowCardinality(String), timestamp DateTime64(3, 'UTC'), "
                    "user_id String, identity LowCardinality(String), "
                    "schema_version UInt16 DEFAULT 1, movie_id UUID, "
                    "stars UInt8, comment String) ENGINE = ReplacingMergeTree "
                    "PARTITION BY toYYYYMM(timestamp) ORDER BY (movie_id, event_id)"
                ),
                example={"movie_id": str(uuid.UUID(int=1)), "stars": 5},
                to_row=rating_row,
            )
        ]


def rating_row(message):
    if message["data"]["comment"] == "boom":
        raise RuntimeError("the mapper refuses boom")
    from core.host.registry import default_row

    return default_row(message)


def rating(stars: int = 4, comment: str = "Отличный фильм", **kwargs):
    return envelope(
        "test_rating", {"movie_id": str(uuid.uuid4()), "stars": stars, "comment": comment}, **kwargs
    )


@pytest.fixture(scope="module")
def registry():
    return build_registry(make_plugin_manager(extra_plugins=[RatingPlugin()]))


@pytest.fixture(
    params=[
        "chdb",
        pytest.param(
            "server",
            marks=pytest.mark.skipif(
                not SERVER_DSN,
                reason="no ClickHouse server: set CLICKSTREAM_TEST_SERVER_DSN=http://user:pass@host:8123",
            ),
        ),
    ]
)
def etl_settings(request, settings: Settings, kafka_bootstrap: str) -> Settings:
    """Per-test settings with a fresh one-partition topic, on chDB or on a server."""
    settings = settings.replace(etl_poll_timeout_s=0.2, plugin_values={"page_view_timeout_s": "60"})
    if request.param == "server":
        settings = settings.replace(warehouse_dsn=SERVER_DSN)
    create_topic(settings)
    yield settings
    if request.param == "server":
        warehouse = Warehouse.from_settings(settings)
        with warehouse.session() as client:
            client.command(f"DROP DATABASE IF EXISTS {warehouse.database}")


def count(settings: Settings, table: str) -> tuple[int, int]:
    """(distinct events, stored rows) of ``table``."""
    return query(settings, f"SELECT uniqExact(event_id), count() FROM {{db}}.{table}")[0]


def test_every_event_type_lands_in_its_table_with_its_values(etl_settings, registry):
    messages = [
        envelope(t.name, dict(t.example), user_id="user-42", identity="verified", at=at(i))
        for i, t in enumerate(registry)
    ]
    messages[0]["request_id"] = "unknown envelope keys are ignored"
    produce(etl_settings, messages)

    result = run_pass(etl_settings, registry)

    assert result.messages == len(messages)
    assert result.dead_letters == {}
    tables = {t.table: 0 for t in registry}
    for t in registry:
        tables[t.table] += 1
    assert result.rows == tables
    assert {c.table: c.events for c in counts_report(etl_settings, registry)} == tables
    search = next(m for m in messages if m["event"] == "search_filter")
    assert query(
        etl_settings,
        "SELECT event_id, timestamp, user_id, identity, search_query, filters "
        "FROM {db}.search_filters",
    ) == [
        (
            uuid.UUID(search["event_id"]),
            datetime.fromisoformat(search["timestamp"].replace("Z", "")),
            "user-42",
            "verified",
            "Брат 2",
            "genre=драма",
        )
    ]
    assert scalar(etl_settings, "SELECT stars FROM {db}.test_ratings") == 5


def test_a_rerun_loads_nothing_twice(etl_settings, registry):
    produce(etl_settings, [rating() for _ in range(3)])
    first = run_pass(etl_settings, registry)
    produce(etl_settings, [rating()])
    second = run_pass(etl_settings, registry)
    third = run_pass(etl_settings, registry)

    assert (first.messages, second.messages, third.messages) == (3, 1, 0)
    assert count(etl_settings, "test_ratings") == (4, 4)
    assert consumer_lag(etl_settings) == {0: 0}


def test_a_crash_between_insert_and_commit_loses_and_doubles_nothing(etl_settings, registry):
    produce(etl_settings, [rating() for _ in range(5)])
    script = textwrap.dedent(
        """
        import os, signal
        from core.config import Settings
        from core.host.plugin_manager import build_registry, make_plugin_manager
        from etl.runner import run_pass
        from tests.integration.test_etl_live import RatingPlugin
        registry = build_registry(make_plugin_manager(extra_plugins=[RatingPlugin()]))
        run_pass(Settings.from_env(), registry,
                 after_insert=lambda: os.kill(os.getpid(), signal.SIGKILL))
        """
    )
    crashed = subprocess.run(
        [sys.executable, "-c", script], env=_env(etl_settings), timeout=60, capture_output=True
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr.decode()[-2000:]
    assert count(etl_settings, "test_ratings") == (5, 5)  # inserted ...
    assert consumer_lag(etl_settings) == {0: 5}  # ... but not committed

    produce(etl_settings, [rating(), rating()])  # arrive before the retry
    replay = run_pass(etl_settings, registry)
    after = run_pass(etl_settings, registry)

    assert (replay.replayed, replay.messages, after.messages) == (True, 5, 2)
    assert count(etl_settings, "test_ratings") == (7, 7)  # the replayed insert was dropped
    [duplicates] = quality_report(etl_settings, registry).duplicates
    assert (duplicates.duplicates, duplicates.redelivered, duplicates.absorbed) == (5, 5, 5)
    assert duplicates.pending == 0
    record(
        "ETL killed between insert and commit",
        sent=7,
        accepted=7,
        rows=count(etl_settings, "test_ratings")[1],
        duplicates=duplicates.duplicates,
        lost=7 - count(etl_settings, "test_ratings")[0],
        stored_twice=count(etl_settings, "test_ratings")[1]
        - count(etl_settings, "test_ratings")[0],
    )


@pytest.mark.parametrize(
    "bad_dsn", ["http://127.0.0.1:9/", "chdb:///dev/null/warehouse"], ids=["server", "chdb"]
)
def test_a_pass_without_warehouse_commits_nothing_and_the_next_catches_up(
    etl_settings, registry, bad_dsn
):
    produce(etl_settings, [rating() for _ in range(4)])

    with pytest.raises(WarehouseError):
        run_pass(etl_settings.replace(warehouse_dsn=bad_dsn), registry)

    assert consumer_lag(etl_settings) == {0: 4}
    assert run_pass(etl_settings, registry).messages == 4
    assert count(etl_settings, "test_ratings") == (4, 4)
    events, rows = count(etl_settings, "test_ratings")
    fault = "server down" if bad_dsn.startswith("http") else "chDB directory unusable"
    record(
        f"Warehouse unavailable for a pass ({fault})",
        sent=4,
        accepted=4,
        rows=rows,
        duplicates=rows - events,
        lost=4 - events,
        stored_twice=rows - events,
    )


def test_poison_messages_become_dead_letters_and_the_rest_loads(etl_settings, registry):
    good = rating()
    no_user = rating()
    del no_user["user_id"]
    poison = [
        (b"\xff\xfe not json at all", "not_json"),
        (b"[1, 2, 3]", "not_an_object"),
        (envelope("no_such_event", {}), "unknown_event"),
        (rating(stars="five"), "schema_invalid"),
        (no_user, "missing_envelope"),
        (rating(event_id="not-a-uuid"), "bad_envelope"),
        (rating(comment="boom"), "mapper_error"),
        (rating(stars=300), "insert_failed"),
    ]
    produce(etl_settings, [message for message, _ in poison] + [good])

    result = run_pass(etl_settings, registry)

    assert result.rows == {"test_ratings": 1}
    letters = list_dead_letters(etl_settings)
    assert [d.reason for d in letters] == [reason for _, reason in poison]
    assert letters[0].payload == b"\xff\xfe not json at all"
    assert [d.offset for d in letters] == list(range(len(poison)))
    assert all(d.detail for d in letters)
    assert scalar(etl_settings, "SELECT event_id FROM {db}.test_ratings") == uuid.UUID(
        good["event_id"]
    )
    assert quality_report(etl_settings, registry).dead_letters == len(poison)


def test_requeued_dead_letters_load_once_their_plugin_is_installed(etl_settings, registry):
    produce(etl_settings, [rating(comment="Спасибо"), rating()])
    without_plugin = build_registry(make_plugin_manager())
    assert run_pass(etl_settings, without_plugin).dead_letters == {"unknown_event": 2}

    requeued = requeue(etl_settings, reason="unknown_event")
    result = run_pass(etl_settings, registry)

    assert len(requeued) == 2
    assert result.rows == {"test_ratings": 2}
    assert sorted(query(etl_settings, "SELECT comment FROM {db}.test_ratings")) == [
        ("Отличный фильм",),
        ("Спасибо",),
    ]
    assert list_dead_letters(etl_settings) == []
    assert all(d.requeued for d in list_dead_letters(etl_settings, include_requeued=True))


def test_page_views_are_paired_with_durations_and_orphans_reported(etl_settings, registry):
    now = datetime.now(UTC).replace(microsecond=0)

    def view(page_type: str, start_s: float | None, end_s: float | None) -> list[dict]:
        page_view_id = str(uuid.uuid4())
        data = {"page_view_id": page_view_id, "page_type": page_type}
        events = []
        if start_s is not None:
            events.append(envelope("page_view_start", data, user_id="u", at=now + _s(start_s)))
        if end_s is not None:
            events.append(envelope("page_view_end", data, user_id="u", at=now + _s(end_s)))
        return events

    produce(
        etl_settings,
        [
            *view("movie", -100, -90),
            *view("movie", -100, -80),
            *view("movie", -100, -70),
            *view("main", -10, -5.5),
            *view("search", None, -1),  # an end without a start
            *view("search", -5, None),  # still open
            *view("profile", -3600, None),  # open for longer than the 60 s timeout
        ],
    )
    run_pass(etl_settings, registry)

    report = plugin_report(etl_settings, registry, "pageviews")

    assert report.columns == ["page type", "count", "median s", "p90 s"]
    durations = {page_type: tuple(rest) for page_type, *rest in report.rows}
    assert durations == {"movie": (3, 20.0, 28.0), "main": (1, 4.5, 4.5)}
    assert report.figures == {"open": 1, "timed_out": 1, "orphan_end": 1}
    assert quality_report(etl_settings, registry, with_lag=False).figures == {
        "pageviews": report.figures
    }
    orphan = query(
        etl_settings,
        "SELECT page_type, started_at, duration_s FROM {db}.page_view_durations "
        "WHERE status = 'orphan_end'",
    )
    assert orphan == [("search", None, None)]


def test_quality_report_counts_duplicates_gaps_lag_and_freshness(etl_settings, registry):
    twice = rating(at=BASE_TIME)
    produce(etl_settings, [rating(at=BASE_TIME)])
    run_pass(etl_settings, registry)  # the group commits: from now on it expects offset 1
    produce(etl_settings, [rating(at=BASE_TIME) for _ in range(3)])
    _delete_records_before(etl_settings, 4)  # retention removed offsets 1..3 unread
    produce(etl_settings, [twice, rating(at=at(7200))])
    run_pass(etl_settings, registry)
    produce(etl_settings, [twice])  # a client retry, loaded by a later pass
    run_pass(etl_settings, registry)
    produce(etl_settings, [rating(), rating()])  # waiting

    report = quality_report(etl_settings, registry)

    assert [(g.partition, g.start, g.stop) for g in report.gaps] == [(0, 1, 4)]
    assert report.missing_offsets == 3
    [dup] = report.duplicates
    assert (dup.event, dup.hour, dup.deliveries) == (
        "test_rating",
        BASE_TIME.replace(minute=0, second=0, microsecond=0),
        3,  # offset 0 and `twice` twice
    )
    assert (dup.duplicates, dup.redelivered, dup.pending, dup.absorbed) == (1, 0, 1, 0)
    assert report.lag == {0: 2}
    assert report.newest_event == at(7200)
    assert report.freshness_s == pytest.approx(
        (datetime.now(UTC) - at(7200)).total_seconds(), abs=30
    )
    assert count(etl_settings, "test_ratings") == (3, 4)
    assert scalar(etl_settings, "SELECT count() FROM {db}.test_ratings_dedup") == 3

    with Warehouse.from_settings(etl_settings).session() as client:
        client.command(f"OPTIMIZE TABLE {etl_settings.warehouse.database}.test_ratings FINAL")
    [merged] = quality_report(etl_settings, registry, with_lag=False).duplicates
    assert (merged.duplicates, merged.pending, merged.absorbed) == (1, 0, 1)


def test_reports_wait_for_a_process_holding_the_chdb_directory(etl_settings, registry):
    if not Warehouse.from_settings(etl_settings).embedded:
        pytest.skip("the lock exists for chDB only")
    produce(etl_settings, [rating()])
    run_pass(etl_settings, registry)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from core.config import Settings\n"
            "from etl.warehouse import Warehouse\n"
            "with Warehouse.from_settings(Settings.from_env()).session():\n"
            "    print('held', flush=True)\n"
            "    time.sleep(1.5)\n",
        ],
        env=_env(etl_settings),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(WarehouseBusyError):
            counts_report(etl_settings.replace(warehouse_lock_timeout_s=0.2), registry)
        started = time.monotonic()
        counts = counts_report(etl_settings, registry)
        assert time.monotonic() - started > 0.3  # it waited, then worked
        assert {c.table: c.events for c in counts}["test_ratings"] == 1
    finally:
        holder.wait(timeout=30)


def test_the_etl_command_runs_on_schedule_and_stops_on_sigterm(etl_settings, registry):
    search = registry["search_filter"]
    produce(etl_settings, [envelope("search_filter", dict(search.example)) for _ in range(3)])
    env = _env(etl_settings, etl_interval_s="0.5")
    etl = subprocess.Popen(
        [sys.executable, "-m", "etl.cli", "etl"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        _wait_for(lambda: consumer_lag(etl_settings) == {0: 0})
        produce(etl_settings, [envelope("search_filter", dict(search.example))])
        _wait_for(lambda: consumer_lag(etl_settings) == {0: 0})
    finally:
        etl.send_signal(signal.SIGTERM)
        _, stderr = etl.communicate(timeout=30)

    assert etl.returncode == 0, stderr[-2000:]
    assert "etl.stopped" in stderr
    assert count(etl_settings, "search_filters") == (4, 4)
    failing = subprocess.run(
        [sys.executable, "-m", "etl.cli", "etl", "--once"],
        env={**env, env_name("warehouse_dsn"): "http://127.0.0.1:9/"},
        capture_output=True,
    )
    assert failing.returncode == 1


def _s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def _env(settings: Settings, **overrides: str) -> dict[str, str]:
    values = {
        "kafka_bootstrap": settings.kafka.bootstrap,
        "kafka_topic": settings.kafka.topic,
        "warehouse_dsn": settings.warehouse.dsn,
        "warehouse_database": settings.warehouse.database,
        "etl_group": settings.etl.group,
        "etl_poll_timeout_s": str(settings.etl.poll_timeout_s),
        "etl_metrics_port": "0",  # a running stack's ETL may hold the default port
        **overrides,
    }
    return {**os.environ, **{env_name(k): v for k, v in values.items()}}


def _delete_records_before(settings: Settings, offset: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap.split(","))
    try:
        admin.delete_records({TopicPartition(settings.kafka.topic, 0): offset})
    finally:
        admin.close()


def _wait_for(condition, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)


def _with_ddl(event_type: EventType, ddl: str) -> Registry:
    """The registry of a plugin whose table definition changed to ``ddl``."""

    class ChangedPlugin:
        @hookimpl
        def register_event_types(self) -> list[EventType]:
            return [dataclasses.replace(event_type, ddl=ddl, plugin="")]

    return build_registry(make_plugin_manager(extra_plugins=[ChangedPlugin()]))


def test_a_ddl_that_only_adds_a_column_is_applied_without_stopping(etl_settings, registry):
    produce(etl_settings, [rating()])
    run_pass(etl_settings, registry)
    rating_type = registry["test_rating"]
    added = rating_type.ddl.replace("comment String)", "comment String, lang String DEFAULT 'ru')")
    produce(etl_settings, [rating()])

    assert run_pass(etl_settings, _with_ddl(rating_type, added)).rows == {"test_ratings": 1}
    assert query(etl_settings, "SELECT count(), groupUniqArray(lang) FROM {db}.test_ratings") == [
        (2, ["ru"])
    ]
    columns = query(
        etl_settings,
        "SELECT name FROM system.columns WHERE database = %(db)s AND table = 'test_ratings' "
        "ORDER BY position",
        db=etl_settings.warehouse.database,
    )
    assert [name for (name,) in columns][-2:] == ["comment", "lang"]
    assert run_pass(etl_settings, _with_ddl(rating_type, added)).messages == 0


def test_a_changed_ddl_stops_passes_until_its_migration_is_applied(etl_settings, registry):
    produce(etl_settings, [rating()])
    run_pass(etl_settings, registry)
    rating_type = registry["test_rating"]
    changed_registry = _with_ddl(
        rating_type, rating_type.ddl.replace("stars UInt8", "stars UInt16")
    )
    produce(etl_settings, [rating()])

    with pytest.raises(MigrationNeededError, match="test_ratings"):
        run_pass(etl_settings, changed_registry)
    warehouse = Warehouse.from_settings(etl_settings)
    with warehouse.session() as client:
        warehouse.migrate(
            client,
            changed_registry,
            "test_ratings",
            "ALTER TABLE {database}.{table} MODIFY COLUMN stars UInt16",
        )

    assert run_pass(etl_settings, changed_registry).rows == {"test_ratings": 1}
    assert query(etl_settings, "SELECT count(), toTypeName(any(stars)) FROM {db}.test_ratings") == [
        (2, "UInt16")
    ]
