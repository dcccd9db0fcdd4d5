"""Deletion on request (``etl.forget``) on the real engine (chDB): exactly that person's rows
leave every table (each event table of the installed plugins, the delivery ledger, the dead
letters, the identity links), everyone else's stay, the request is audited with hashed ids
only, a second request deletes nothing, and a replay of Kafka brings nothing back."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from marshmallow import Schema, fields

from core import EventType, hookimpl
from core.host.plugin_manager import build_registry, make_plugin_manager
from core.message import ENVELOPE_COLUMNS_DDL
from etl.cli import main
from etl.forget import ForgetError, forget
from etl.runner import run_pass
from etl.warehouse import Warehouse
from tests.etl_helpers import batch_of, envelope, query, scalar

INSTALLED = build_registry(make_plugin_manager())


class VisitSchema(Schema):
    path = fields.String(required=True)


class VisitsPlugin:
    """A table of its own, with the envelope's ``anonymous_id`` like every event table."""

    @hookimpl
    def register_event_types(self) -> list[EventType]:
        ddl = (
            f"CREATE TABLE IF NOT EXISTS {{database}}.{{table}} ({ENVELOPE_COLUMNS_DDL}, "
            "path String) "
            "ENGINE = ReplacingMergeTree ORDER BY event_id"
        )
        return [EventType("test_visit", VisitSchema, "test_visits", ddl, {"path": "/"})]


VISITS = build_registry(make_plugin_manager(extra_plugins=[VisitsPlugin()]))


def every_event(user_id: str) -> list[dict]:
    """One valid message of every installed event type, of ``user_id``."""
    return [
        envelope(event_type.name, dict(event_type.example), user_id=user_id)
        for event_type in INSTALLED
    ]


def per_user(settings, table: str) -> dict[str, int]:
    return dict(query(settings, f"SELECT user_id, count() FROM {{db}}.{table} GROUP BY user_id"))


def invalid(user_id: str) -> dict:
    """A message whose data no schema accepts: a dead letter carrying ``user_id``."""
    return envelope(INSTALLED.names[0], {"no such field": 1}, user_id=user_id)


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def load(settings, etl_kafka, registry, messages, start: int = 0):
    etl_kafka.batches = [batch_of(settings.kafka.topic, messages, start=start)]
    return run_pass(settings, registry)


@pytest.fixture
def loaded(settings, etl_kafka):
    """Every event type of alice, bob and anonymous; dead letters of alice, bob and not JSON."""
    messages = [
        *every_event("alice"),
        *every_event("bob"),
        *every_event("anonymous"),
        invalid("alice"),
        invalid("bob"),
        b"not json",
    ]
    load(settings, etl_kafka, INSTALLED, messages)
    return messages


@pytest.mark.parametrize("table", sorted(INSTALLED.tables()))
def test_forget_removes_exactly_that_persons_rows_of_every_event_table(
    settings, loaded, table
) -> None:
    before = per_user(settings, table)
    assert before["alice"] and before["bob"] and before["anonymous"]

    result = forget(settings, INSTALLED, user_ids=["alice"], requested_by="dpo@example.com")

    after = per_user(settings, table)
    assert "alice" not in after
    assert after == {user: rows for user, rows in before.items() if user != "alice"}
    assert result.deleted[table] == before["alice"]


def test_forget_removes_the_deliveries_and_dead_letters_of_that_person(settings, loaded) -> None:
    alice = [m["event_id"] for m in loaded if isinstance(m, dict) and m["user_id"] == "alice"]
    delivered = "SELECT count() FROM {db}.event_deliveries WHERE toString(event_id) IN %(ids)s"
    assert scalar(settings, delivered, ids=alice) == len(INSTALLED.names)
    deliveries = scalar(settings, "SELECT count() FROM {db}.event_deliveries")

    result = forget(settings, INSTALLED, user_ids=["alice"])

    assert scalar(settings, delivered, ids=alice) == 0
    assert scalar(settings, "SELECT count() FROM {db}.event_deliveries") == deliveries - len(
        INSTALLED.names
    )
    assert result.deleted["event_deliveries"] == len(INSTALLED.names)
    letters = query(
        settings,
        "SELECT JSONExtractString(payload, 'user_id'), isValidJSON(payload) "
        "FROM {db}.dead_letters ORDER BY 1",
    )
    assert letters == [("", 0), ("bob", 1)]
    assert result.deleted["dead_letters"] == 1
    assert result.unreadable_dead_letters == 1
    assert any("not JSON" in note for note in result.notes)


def test_a_second_request_deletes_nothing_and_is_recorded_too(settings, loaded) -> None:
    first = forget(settings, INSTALLED, user_ids=["alice"], requested_by="dpo@example.com")
    second = forget(settings, INSTALLED, user_ids=["alice"], requested_by="dpo@example.com")

    assert first.total > 0
    assert second.total == 0 and set(second.deleted.values()) == {0}
    audit = query(
        settings,
        "SELECT toString(request_id), requested_by, user_id_sha256, anonymous_id_sha256, "
        "deleted_total, deleted FROM {db}.forget_requests ORDER BY requested_at",
    )
    assert [row[0] for row in audit] == [first.request_id, second.request_id]
    assert [row[1:5] for row in audit] == [
        ("dpo@example.com", [sha("alice")], [], first.total),
        ("dpo@example.com", [sha("alice")], [], 0),
    ]
    assert audit[0][5] == first.deleted


def test_the_audit_and_the_forgotten_list_hold_no_raw_id(settings, loaded) -> None:
    forget(settings, INSTALLED, user_ids=["alice"])

    for table in ("forget_requests", "forgotten"):
        dump = query(settings, f"SELECT * FROM {{db}}.{table}")
        assert dump and "alice" not in repr(dump)
    assert query(settings, "SELECT kind, id_sha256 FROM {db}.forgotten") == [
        ("user_id", sha("alice"))
    ]


def test_the_anonymous_placeholder_and_an_empty_request_are_refused(settings) -> None:
    with pytest.raises(ForgetError, match="logged-out"):
        forget(settings, INSTALLED, user_ids=["anonymous"])
    with pytest.raises(ForgetError, match="at least one"):
        forget(settings, INSTALLED)


def test_a_replay_of_kafka_after_forget_brings_nothing_back(settings, etl_kafka, loaded) -> None:
    forget(settings, INSTALLED, user_ids=["alice"])
    tables = sorted(INSTALLED.tables())
    before = {table: per_user(settings, table) for table in tables}

    # The same messages read again at other offsets (a group reset, a re-published backup):
    # no deduplication token recognises them; the forgotten list keeps alice's out.
    replay = load(settings, etl_kafka, INSTALLED, loaded, start=1000)

    assert replay.forgotten == len(INSTALLED.names) + 1
    recorded = "SELECT messages, forgotten FROM {db}.etl_passes FINAL WHERE pass_id = %(p)s"
    assert query(settings, recorded, p=replay.pass_id) == [(len(loaded), replay.forgotten)]
    for table in tables:
        assert "alice" not in per_user(settings, table)
        # The others' events are in their tables already: the replay leaves them out.
        assert per_user(settings, table) == before[table]
    dead = (
        "SELECT count() FROM {db}.dead_letters WHERE JSONExtractString(payload, 'user_id') = %(u)s"
    )
    assert scalar(settings, dead, u="alice") == 0
    assert scalar(settings, dead, u="bob") == 2


def test_events_received_after_the_request_are_loaded(settings, etl_kafka, loaded) -> None:
    forget(settings, INSTALLED, user_ids=["alice"])
    later = datetime.now(UTC) + timedelta(seconds=5)
    back = [
        envelope(event_type.name, dict(event_type.example), user_id="alice", at=later)
        for event_type in INSTALLED
    ]

    result = load(settings, etl_kafka, INSTALLED, back, start=1000)

    assert result.forgotten == 0
    assert sum(per_user(settings, table).get("alice", 0) for table in INSTALLED.tables()) == len(
        back
    )


def visits(settings, etl_kafka, links: list[tuple[str, str]]) -> None:
    """Visits of browsers 1 and 2, carol logging in on 1, dave too; ``links`` recorded."""
    messages = [
        envelope("test_visit", {"path": "/a"}, anonymous_id="browser-1"),
        envelope("test_visit", {"path": "/b"}, anonymous_id="browser-1", user_id="carol"),
        envelope("test_visit", {"path": "/c"}, anonymous_id="browser-1", user_id="dave"),
        envelope("test_visit", {"path": "/d"}, anonymous_id="browser-2"),
        envelope("test_visit", {"path": "/e"}, user_id="carol"),
        envelope(INSTALLED.names[0], {}, anonymous_id="browser-2"),  # a dead letter
    ]
    load(settings, etl_kafka, VISITS, messages)
    warehouse = Warehouse.from_settings(settings)
    with warehouse.session() as client:
        now = datetime.now(UTC)
        client.insert(
            warehouse.table("identity_links"),
            [[anonymous, user, now, now] for anonymous, user in links],
            column_names=["anonymous_id", "user_id", "first_seen", "last_seen"],
        )


def paths(settings) -> list[str]:
    return [row[0] for row in query(settings, "SELECT path FROM {db}.test_visits ORDER BY path")]


def test_a_user_id_takes_the_logged_out_events_of_the_browsers_linked_to_it(
    settings, etl_kafka
) -> None:
    visits(settings, etl_kafka, [("browser-1", "carol"), ("browser-1", "dave")])

    result = forget(settings, VISITS, user_ids=["carol"])

    # Dave logged in on carol's browser: what carries his user id is his.
    assert paths(settings) == ["/c", "/d"]
    assert result.linked_anonymous_ids == 1
    assert result.deleted["test_visits"] == 3
    assert query(settings, "SELECT anonymous_id, user_id FROM {db}.identity_links") == [
        ("browser-1", "dave")
    ]
    assert result.deleted["identity_links"] == 1


def test_an_anonymous_id_takes_every_event_and_dead_letter_of_that_browser(
    settings, etl_kafka
) -> None:
    visits(settings, etl_kafka, [("browser-2", "erin")])

    result = forget(settings, VISITS, anonymous_ids=["browser-2"])

    assert paths(settings) == ["/a", "/b", "/c", "/e"]
    assert result.deleted["dead_letters"] == 1
    assert result.deleted["identity_links"] == 1
    assert result.anonymous_id_hashes == [sha("browser-2")]


def test_a_replay_skips_the_logged_out_events_of_a_linked_browser(settings, etl_kafka) -> None:
    visits(settings, etl_kafka, [("browser-1", "carol")])
    forget(settings, VISITS, user_ids=["carol"])

    replay = load(
        settings,
        etl_kafka,
        VISITS,
        [
            envelope("test_visit", {"path": "/a"}, anonymous_id="browser-1"),
            envelope("test_visit", {"path": "/c"}, anonymous_id="browser-1", user_id="dave"),
        ],
        start=1000,
    )

    assert replay.forgotten == 1
    assert paths(settings) == ["/c", "/c", "/d"]


def test_clickstream_forget_prints_what_it_deleted(settings, loaded, monkeypatch, capsys) -> None:
    for variable, value in settings.to_env().items():
        monkeypatch.setenv(variable, value)

    assert main(["forget", "--user-id", "alice", "--user-id", "bob", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["user_id_hashes"] == sorted([sha("alice"), sha("bob")])
    assert printed["deleted"]["dead_letters"] == 2

    assert main(["forget", "--user-id", "anonymous"]) == 2
    assert "logged-out" in capsys.readouterr().err
