"""ETL passes (``etl.runner``) on the real Kafka broker and the real ClickHouse engine
(chDB, or a server): every event type lands, nothing twice, nothing lost across a crash or a
warehouse outage, poison messages dead-lettered."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import uuid
from datetime import datetime

import pytest

from etl.deadletters import list_dead_letters
from etl.reports import consumer_lag, counts_report, quality_report
from etl.runner import run_pass
from etl.warehouse import WarehouseError
from tests.etl_helpers import at, count, envelope, etl_env, produce, query, rating, scalar
from tests.reliability import record

pytestmark = pytest.mark.integration


def test_every_event_type_lands_in_its_table_with_its_values(etl_settings, etl_registry):
    messages = [
        envelope(t.name, dict(t.example), user_id="user-42", identity="verified", at=at(i))
        for i, t in enumerate(etl_registry)
    ]
    messages[0]["request_id"] = "unknown envelope keys are ignored"
    produce(etl_settings, messages)

    result = run_pass(etl_settings, etl_registry)

    assert result.messages == len(messages)
    assert result.dead_letters == {}
    tables = {t.table: 0 for t in etl_registry}
    for t in etl_registry:
        tables[t.table] += 1
    assert result.rows == tables
    assert {c.table: c.events for c in counts_report(etl_settings, etl_registry)} == tables
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


def test_a_rerun_loads_nothing_twice(etl_settings, etl_registry):
    produce(etl_settings, [rating() for _ in range(3)])
    first = run_pass(etl_settings, etl_registry)
    produce(etl_settings, [rating()])
    second = run_pass(etl_settings, etl_registry)
    third = run_pass(etl_settings, etl_registry)

    assert (first.messages, second.messages, third.messages) == (3, 1, 0)
    assert count(etl_settings, "test_ratings") == (4, 4)
    assert consumer_lag(etl_settings) == {0: 0}


def test_a_crash_between_insert_and_commit_loses_and_doubles_nothing(etl_settings, etl_registry):
    produce(etl_settings, [rating() for _ in range(5)])
    script = textwrap.dedent(
        """
        import os, signal
        from core.config import Settings
        from core.host.plugin_manager import build_registry, make_plugin_manager
        from etl.runner import run_pass
        from tests.etl_helpers import RatingPlugin
        registry = build_registry(make_plugin_manager(extra_plugins=[RatingPlugin()]))
        run_pass(Settings.from_env(), registry,
                 after_insert=lambda: os.kill(os.getpid(), signal.SIGKILL))
        """
    )
    crashed = subprocess.run(
        [sys.executable, "-c", script], env=etl_env(etl_settings), timeout=60, capture_output=True
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr.decode()[-2000:]
    assert count(etl_settings, "test_ratings") == (5, 5)  # inserted ...
    assert consumer_lag(etl_settings) == {0: 5}  # ... but not committed

    produce(etl_settings, [rating(), rating()])  # arrive before the retry
    replay = run_pass(etl_settings, etl_registry)
    after = run_pass(etl_settings, etl_registry)

    assert (replay.replayed, replay.messages, after.messages) == (True, 5, 2)
    assert count(etl_settings, "test_ratings") == (7, 7)  # the replayed insert was dropped
    [duplicates] = quality_report(etl_settings, etl_registry).duplicates
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
    etl_settings, etl_registry, bad_dsn
):
    produce(etl_settings, [rating() for _ in range(4)])

    with pytest.raises(WarehouseError):
        run_pass(etl_settings.replace(warehouse_dsn=bad_dsn), etl_registry)

    assert consumer_lag(etl_settings) == {0: 4}
    assert run_pass(etl_settings, etl_registry).messages == 4
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


def test_poison_messages_become_dead_letters_and_the_rest_loads(etl_settings, etl_registry):
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

    result = run_pass(etl_settings, etl_registry)

    assert result.rows == {"test_ratings": 1}
    letters = list_dead_letters(etl_settings)
    assert [d.reason for d in letters] == [reason for _, reason in poison]
    assert letters[0].payload == b"\xff\xfe not json at all"
    assert [d.offset for d in letters] == list(range(len(poison)))
    assert all(d.detail for d in letters)
    assert scalar(etl_settings, "SELECT event_id FROM {db}.test_ratings") == uuid.UUID(
        good["event_id"]
    )
    assert quality_report(etl_settings, etl_registry).dead_letters == len(poison)
