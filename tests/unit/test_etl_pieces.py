"""ETL pieces that need no service: decoding, tokens, offset bookkeeping, DDL versions, CLI."""

from __future__ import annotations

import uuid

import orjson
import pytest

from core.host.plugin_manager import build_registry, make_plugin_manager
from etl.cli import parser
from etl.consume import PartitionRead, Record, _settle
from etl.sink import insert_token
from etl.transform import Loaded, Rejected, transform
from etl.warehouse import ddl_sha256, render
from tests.etl_helpers import envelope


@pytest.fixture(scope="module")
def registry():
    return build_registry(make_plugin_manager())


def record(value: bytes, offset: int = 0, partition: int = 0) -> Record:
    return Record("events", partition, offset, b"k", value, 0)


def test_a_valid_message_becomes_its_plugins_row(registry):
    example = dict(registry["search_filter"].example)
    message = envelope("search_filter", example, user_id="u-1", schema_version=2, request_id="r")

    outcome = transform(record(orjson.dumps(message)), registry)

    assert isinstance(outcome, Loaded)
    assert outcome.table == "search_filters"
    assert outcome.event_id == uuid.UUID(message["event_id"])
    assert outcome.row["search_query"] == "Брат 2"
    assert outcome.row["filters"] == "genre=драма"
    assert outcome.row["user_id"] == "u-1"
    assert outcome.row["schema_version"] == 2
    assert "request_id" not in outcome.row


def _without(key: str) -> dict:
    message = envelope("search_filter", {"search_query": "x", "filters": ""})
    del message[key]
    return message


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"", "not_json"),
        (b"\xff{", "not_json"),
        (b'"a string"', "not_an_object"),
        (orjson.dumps(_without("event_id")), "missing_envelope"),
        (orjson.dumps(_without("data")), "missing_envelope"),
        (orjson.dumps(envelope("nope", {})), "unknown_event"),
        (
            orjson.dumps(envelope("search_filter", {"search_query": 5, "filters": ""})),
            "schema_invalid",
        ),
        (orjson.dumps(envelope("search_filter", {}, event_id="x")), "bad_envelope"),
        (
            orjson.dumps({**envelope("search_filter", {}), "timestamp": "2026-01-01"}),
            "bad_envelope",
        ),
        (orjson.dumps({**envelope("search_filter", {}), "data": []}), "bad_envelope"),
    ],
)
def test_an_unloadable_message_is_rejected_with_its_reason(registry, value, reason):
    outcome = transform(record(value), registry)

    assert isinstance(outcome, Rejected)
    assert (outcome.reason, bool(outcome.detail)) == (reason, True)


def test_insert_tokens_depend_on_exactly_the_offsets_table_and_columns():
    records = [record(b"", 5), record(b"", 6)]
    token = insert_token("events", "t", ["a", "b"], records)

    assert token == insert_token("events", "t", ["a", "b"], list(records))
    assert token != insert_token("events", "u", ["a", "b"], records)
    assert token != insert_token("events", "t", ["a"], records)
    assert token != insert_token("events", "t", ["a", "b"], records[:1])
    assert token != insert_token("other", "t", ["a", "b"], records)


@pytest.mark.parametrize(
    ("expected", "offsets", "beginning", "gaps", "next_offset"),
    [
        (0, [0, 1, 2], 0, [], 3),
        (4, [7, 8], 0, [(4, 7)], 9),
        (0, [0, 2, 5], 0, [(1, 2), (3, 5)], 6),
        (3, [], 10, [(3, 10)], 10),  # retention deleted everything unread
        (3, [], 0, [], 3),
    ],
)
def test_settling_a_partition_finds_gaps_and_the_offset_to_commit(
    expected, offsets, beginning, gaps, next_offset
):
    read = PartitionRead(partition=0, expected=expected, end=10, offsets=offsets)

    _settle(read, beginning)

    assert (read.gaps, read.next_offset) == (gaps, next_offset)


def test_a_ddl_version_ignores_the_database_it_is_applied_to():
    ddl = "CREATE TABLE IF NOT EXISTS {database}.{table} (a UInt8) ENGINE = MergeTree ORDER BY a"

    assert ddl_sha256(ddl, "t") == ddl_sha256(ddl + "\n", "t")
    assert ddl_sha256(ddl, "t") != ddl_sha256(ddl.replace("UInt8", "UInt16"), "t")
    assert render(ddl, "db", "t").startswith("CREATE TABLE IF NOT EXISTS db.t (")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["etl"], {"command": "etl", "once": False}),
        (["etl", "--once"], {"command": "etl", "once": True}),
        (["deadletters"], {"action": "list", "all": False}),
        (["deadletters", "requeue", "--reason", "unknown_event"], {"reason": "unknown_event"}),
        (["deadletters", "requeue", "--id", "a", "--id", "b"], {"id": ["a", "b"]}),
        (["report", "quality"], {"which": "quality"}),
    ],
)
def test_the_cli_parses_its_subcommands(argv, expected):
    args = vars(parser().parse_args(argv))

    assert {key: args[key] for key in expected} == expected


def test_the_cli_refuses_an_unknown_report():
    with pytest.raises(SystemExit):
        parser().parse_args(["report", "everything"])
