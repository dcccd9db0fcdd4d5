"""A record becomes its plugin's row or a dead letter with its reason (``etl.transform``)."""

from __future__ import annotations

import uuid

import orjson
import pytest
from marshmallow import Schema, fields

from core import EventType, hookimpl
from core.host.plugin_manager import build_registry, make_plugin_manager
from core.message import ENVELOPE_COLUMNS_DDL, MAX_VERSION
from etl.transform import BAD_ENVELOPE, Checked, Loaded, Rejected, Skipped, transform
from tests.etl_helpers import BASE_TIME, envelope, kafka_record


def test_a_message_as_the_api_publishes_it_is_only_checked_and_left_to_the_engine(registry):
    example = dict(registry["search_filter"].example)
    message = envelope(
        "search_filter", example, user_id="u-1", anonymous_id="a-1", schema_version=2
    )
    rec = kafka_record(orjson.dumps(message))

    outcome = transform(rec, registry)

    assert outcome == Checked(rec, "search_filter", "search_filters", orjson.loads(rec.value))
    assert (outcome.event_id, outcome.timestamp) == (uuid.UUID(message["event_id"]), BASE_TIME)
    assert (outcome.user_id, outcome.anonymous_id, outcome.link) == ("u-1", "a-1", None)


@pytest.mark.parametrize(
    "changes",
    [
        {"schema_version": 1},  # validated by an older schema: validated again here
        {"event_id": str(uuid.uuid4()).upper().join("{}")},  # a spelling the engine reads not
        {"timestamp": "2026-11-28T12:00:00.123+02:00"},  # another spelling of the moment
        {"sent_at": "2026-11-28T10:00:00Z"},
    ],
)
def test_a_message_not_spelled_as_the_api_writes_it_is_validated_and_mapped_here(registry, changes):
    message = {**envelope("search_filter", {"search_query": "x", "filters": ""}), **changes}
    message.setdefault("schema_version", 2)

    outcome = transform(kafka_record(orjson.dumps(message)), registry)

    assert isinstance(outcome, Loaded)
    assert outcome.timestamp == BASE_TIME


def test_a_valid_message_becomes_its_plugins_row(registry):
    example = dict(registry["search_filter"].example)
    message = envelope("search_filter", example, user_id="u-1", schema_version=2, request_id="r")
    rec = kafka_record(orjson.dumps(message))

    outcome = transform(rec, registry, engine=False)

    assert isinstance(outcome, Loaded)
    assert (outcome.record, outcome.event, outcome.timestamp) == (rec, "search_filter", BASE_TIME)
    assert outcome.table == "search_filters"
    assert outcome.event_id == uuid.UUID(message["event_id"])
    assert outcome.row["search_query"] == "Брат 2"
    assert outcome.row["filters"] == "genre=драма"
    assert outcome.row["user_id"] == "u-1"
    assert outcome.row["schema_version"] == 2
    assert "request_id" not in outcome.row


def test_the_row_is_made_from_the_data_as_the_schema_loaded_it(registry):
    message = envelope("element_click", {"element_type": "trailer", "page_type": "movie"})

    outcome = transform(kafka_record(orjson.dumps(message)), registry)

    assert isinstance(outcome, Loaded)
    # the optional fields the client left out, filled in by the schema's load_default
    assert {key: outcome.row[key] for key in ("element_id", "video_id", "position")} == {
        "element_id": None, "video_id": None, "position": None,
    }  # fmt: skip


@pytest.mark.parametrize("version", [1, MAX_VERSION])
def test_every_schema_version_from_1_to_the_maximum_loads(registry, version):
    message = envelope(
        "search_filter", {"search_query": "x", "filters": ""}, schema_version=version
    )

    outcome = transform(kafka_record(orjson.dumps(message)), registry, engine=False)

    assert isinstance(outcome, Loaded)
    assert outcome.row["schema_version"] == version


def _without(*keys: str) -> dict:
    message = envelope("search_filter", {"search_query": "x", "filters": ""})
    for key in keys:
        del message[key]
    return message


def _with(**changes) -> bytes:
    return orjson.dumps(
        {**envelope("search_filter", {"search_query": "x", "filters": ""}), **changes}
    )


@pytest.mark.parametrize(
    ("value", "reason", "named"),
    [
        (b'"a string"', "not_an_object", "str"),
        (b"[1, 2]", "not_an_object", "list"),
        (orjson.dumps(_without("event_id")), "missing_envelope", "event_id"),
        (orjson.dumps(_without("event_id", "data")), "missing_envelope", "event_id, data"),
        (orjson.dumps(envelope("nope", {})), "unknown_event", "'nope'"),
        (orjson.dumps(envelope(5, {})), "bad_envelope", "event 5 is not a string"),
        (orjson.dumps(envelope("nope", {}, event_id="x")), "bad_envelope", "'x'"),
        (orjson.dumps(envelope("search_filter", {}, event_id="x")), "bad_envelope", "'x'"),
        (_with(timestamp="2026-01-01"), "bad_envelope", "2026-01-01"),
        (_with(timestamp="2026-01-01T10:00:00z"), "bad_envelope", "timestamp"),
        (_with(data=[]), "bad_envelope", "data"),
        (_with(user_id=5), "bad_envelope", "user_id"),
        (_with(identity=None), "bad_envelope", "identity"),
        (_with(schema_version=0), "bad_envelope", "schema_version"),
        (_with(schema_version=MAX_VERSION + 1), "bad_envelope", "schema_version"),
        (_with(schema_version=True), "bad_envelope", "schema_version"),
        (_with(schema_version="2"), "bad_envelope", "schema_version"),
    ],
)
def test_an_unloadable_message_is_rejected_with_its_reason(registry, value, reason, named):
    rec = kafka_record(value)

    outcome = transform(rec, registry)

    assert isinstance(outcome, Rejected)
    assert (outcome.record, outcome.reason) == (rec, reason)
    assert named in outcome.detail


def test_skip_unknown_skips_only_a_well_formed_message_of_an_unknown_event(registry):
    unknown = kafka_record(orjson.dumps(envelope("rating_submitted", {"score": 9})))
    assert transform(unknown, registry, skip_unknown=True) == Skipped(unknown, "rating_submitted")
    assert transform(unknown, registry).reason == "unknown_event"
    broken = kafka_record(orjson.dumps(envelope("rating_submitted", {}, event_id="x")))
    assert transform(broken, registry, skip_unknown=True).reason == "bad_envelope"
    known = kafka_record(_with())
    assert isinstance(transform(known, registry, skip_unknown=True), Loaded)


@pytest.mark.parametrize("value", [b"", None, b"\xff{", b"{"])
def test_a_value_that_is_not_json_is_rejected_with_the_decoders_message(registry, value):
    rec = kafka_record(value)
    with pytest.raises(orjson.JSONDecodeError) as decoding:
        orjson.loads(value or b"")

    outcome = transform(rec, registry)

    assert outcome == Rejected(rec, "not_json", str(decoding.value))


def test_data_the_plugins_schema_refuses_is_rejected_with_marshmallows_messages(registry):
    rec = kafka_record(orjson.dumps(envelope("search_filter", {"search_query": 5, "filters": ""})))

    outcome = transform(rec, registry)

    assert (outcome.record, outcome.reason) == (rec, "schema_invalid")
    assert list(orjson.loads(outcome.detail)) == ["search_query"]


class _FailingMapperSchema(Schema):
    n = fields.Integer(required=True)


class _FailingMapperPlugin:
    @hookimpl
    def register_event_types(self):
        def to_row(message):
            raise KeyError("the mapper wants a field that is not there")

        return [
            EventType(
                name="test_mapped",
                schema=_FailingMapperSchema,
                table="test_mapped",
                ddl="CREATE TABLE IF NOT EXISTS {database}.{table} ("
                + ENVELOPE_COLUMNS_DDL
                + ", n Int64) ENGINE = MergeTree ORDER BY event_id",
                example={"n": 1},
                to_row=to_row,
            )
        ]


def test_a_mapper_that_raises_is_rejected_with_its_error():
    registry = build_registry(
        make_plugin_manager(extra_plugins=[_FailingMapperPlugin()], load_entry_points=False)
    )
    rec = kafka_record(orjson.dumps(envelope("test_mapped", {"n": 1})))

    outcome = transform(rec, registry)

    assert outcome == Rejected(
        rec, "mapper_error", "to_row raised KeyError: 'the mapper wants a field that is not there'"
    )


def test_the_etl_stores_the_version_and_assumes_1_for_older_messages() -> None:
    registry = build_registry(make_plugin_manager())
    data = dict(registry["search_filter"].example)
    older = envelope("search_filter", data, event_id=str(uuid.uuid4()))
    newer = envelope("search_filter", data, schema_version=2)
    outcomes = [
        transform(kafka_record(orjson.dumps(message)), registry, engine=False)
        for message in (older, newer)
    ]
    assert all(isinstance(outcome, Loaded) for outcome in outcomes)
    assert [outcome.row["schema_version"] for outcome in outcomes] == [1, 2]


@pytest.mark.parametrize("version", [0, "1", None, 70000])
def test_the_etl_refuses_a_message_with_a_bad_version(version: object) -> None:
    registry = build_registry(make_plugin_manager())
    message = envelope(
        "search_filter", {"search_query": "x", "filters": ""}, schema_version=version
    )
    outcome = transform(kafka_record(orjson.dumps(message)), registry)
    assert isinstance(outcome, Rejected)
    assert outcome.reason == BAD_ENVELOPE
    assert "schema_version" in outcome.detail
