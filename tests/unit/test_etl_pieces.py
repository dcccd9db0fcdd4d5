"""ETL pieces that need no service: decoding, tokens, offset bookkeeping, DDL versions, CLI."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid

import orjson
import pytest
from marshmallow import Schema, fields

from core import EventType, hookimpl
from core.host.plugin_manager import build_registry, make_plugin_manager
from core.message import MAX_VERSION
from etl.cli import parser
from etl.consume import PartitionRead, Record, _settle
from etl.runner import run_forever
from etl.sink import insert_token
from etl.transform import Loaded, Rejected, transform
from etl.warehouse import Warehouse, ddl_sha256, render
from tests.etl_helpers import BASE_TIME, envelope


@pytest.fixture(scope="module")
def registry():
    return build_registry(make_plugin_manager())


def record(value: bytes, offset: int = 0, partition: int = 0) -> Record:
    return Record("events", partition, offset, b"k", value, 0)


def test_a_valid_message_becomes_its_plugins_row(registry):
    example = dict(registry["search_filter"].example)
    message = envelope("search_filter", example, user_id="u-1", schema_version=2, request_id="r")
    rec = record(orjson.dumps(message))

    outcome = transform(rec, registry)

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

    outcome = transform(record(orjson.dumps(message)), registry)

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

    outcome = transform(record(orjson.dumps(message)), registry)

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
    rec = record(value)

    outcome = transform(rec, registry)

    assert isinstance(outcome, Rejected)
    assert (outcome.record, outcome.reason) == (rec, reason)
    assert named in outcome.detail


@pytest.mark.parametrize("value", [b"", None, b"\xff{", b"{"])
def test_a_value_that_is_not_json_is_rejected_with_the_decoders_message(registry, value):
    rec = record(value)
    with pytest.raises(orjson.JSONDecodeError) as decoding:
        orjson.loads(value or b"")

    outcome = transform(rec, registry)

    assert outcome == Rejected(rec, "not_json", str(decoding.value))


def test_data_the_plugins_schema_refuses_is_rejected_with_marshmallows_messages(registry):
    rec = record(orjson.dumps(envelope("search_filter", {"search_query": 5, "filters": ""})))

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
                ddl="CREATE TABLE IF NOT EXISTS {database}.{table} (event_id UUID, "
                "event String, timestamp DateTime64(3, 'UTC'), user_id String, "
                "identity String, schema_version UInt16, n Int64) ENGINE = MergeTree "
                "ORDER BY event_id",
                example={"n": 1},
                to_row=to_row,
            )
        ]


def test_a_mapper_that_raises_is_rejected_with_its_error():
    registry = build_registry(
        make_plugin_manager(extra_plugins=[_FailingMapperPlugin()], load_entry_points=False)
    )
    rec = record(orjson.dumps(envelope("test_mapped", {"n": 1})))

    outcome = transform(rec, registry)

    assert outcome == Rejected(
        rec, "mapper_error", "KeyError: 'the mapper wants a field that is not there'"
    )


def test_insert_tokens_depend_on_exactly_the_records_range_partition_table_and_columns():
    records = [record(b"", 5), record(b"", 6)]
    token = insert_token("events", "t", ["a", "b"], 0, (5, 7), records)

    assert token == insert_token("events", "t", ["a", "b"], 0, (5, 7), list(records))
    assert token != insert_token("events", "u", ["a", "b"], 0, (5, 7), records)
    assert token != insert_token("events", "t", ["a"], 0, (5, 7), records)
    assert token != insert_token("events", "t", ["a", "b"], 0, (5, 7), records[:1])
    assert token != insert_token("other", "t", ["a", "b"], 0, (5, 7), records)
    assert token != insert_token("events", "t", ["a", "b"], 1, (5, 7), records)
    assert token != insert_token("events", "t", ["a", "b"], 0, (4, 7), records)
    # the same offset holding another record (a recreated log): another block
    other = [records[0], Record("events", 0, 6, b"k", b"", 1)]
    assert token != insert_token("events", "t", ["a", "b"], 0, (5, 7), other)


def test_insert_tokens_do_not_change_from_one_version_to_the_next():
    # A pass that crashed before its commit is replayed by whatever version runs next:
    # its blocks are dropped only if that version derives the same tokens.
    records = [record(b"", 5), record(b"", 6)]

    assert (
        insert_token("events", "t", ["a", "b"], 0, (5, 7), records)
        == "9e1ee1bc2042e3d21a8b7dc60a996f58bed84cc6ff1d423f5a63a452b9358904"
    )


@pytest.mark.parametrize(
    ("expected", "offsets", "beginning", "gaps", "next_offset"),
    [
        (0, [0, 1, 2], 0, [], 3),
        (4, [7, 8], 0, [(4, 7)], 9),
        (0, [0, 2, 5], 0, [(1, 2), (3, 5)], 6),
        (3, [], 10, [(3, 10)], 10),  # retention deleted everything unread
        (3, [], 0, [], 3),
        (3, [], 3, [], 3),  # nothing deleted, nothing new: no gap, not even an empty one
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
        (["ddl"], {"command": "ddl", "events": []}),
        (["ddl", "page_view_end", "search_filter"], {"events": ["page_view_end", "search_filter"]}),
    ],
)
def test_the_cli_parses_its_subcommands(argv, expected):
    args = vars(parser().parse_args(argv))

    assert {key: args[key] for key in expected} == expected


def test_the_cli_refuses_an_unknown_report():
    with pytest.raises(SystemExit):
        parser().parse_args(["report", "everything"])


def test_clickstream_ddl_prints_each_tables_ddl_as_the_etl_runs_it(settings, registry, capsys):
    database = Warehouse.from_settings(settings).database
    assert main_ddl(settings, "page_view_end", "page_view_start", "video_complete") == 0
    printed = capsys.readouterr().out
    assert printed == "".join(
        f"-- {table}: {events}, from {registry[event].plugin}\n"
        f"{render(registry[event].ddl, database, table)};\n\n"
        for table, events, event in (
            ("page_views", "page_view_end, page_view_start", "page_view_end"),
            ("video_completes", "video_complete", "video_complete"),
        )
    )
    assert f"CREATE TABLE IF NOT EXISTS {database}.page_views\n" in printed
    assert main_ddl(settings) == 0
    assert capsys.readouterr().out.count("CREATE TABLE IF NOT EXISTS") == 5


def test_clickstream_ddl_refuses_an_unknown_event(settings, capsys):
    assert main_ddl(settings, "page_view") == 2
    assert capsys.readouterr().err.startswith("unknown event type(s) page_view; installed: ")


def main_ddl(settings, *events: str) -> int:
    args = parser().parse_args(["ddl", *events])
    return args.run(settings, args)


REGISTRY = object()  # what run_forever hands to each pass, untouched


def _run_forever_in_a_thread(settings, pass_function, stop):
    errors = []

    def run():
        try:
            run_forever(settings, REGISTRY, stop, pass_function)
        except BaseException as error:  # noqa: BLE001 - reported to the test
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


def test_the_schedule_runs_a_pass_at_once_then_every_interval(settings):
    stop = threading.Event()
    calls = []

    def pass_function(pass_settings, registry):
        assert registry is REGISTRY
        calls.append((pass_settings, time.monotonic()))
        if len(calls) == 3:
            stop.set()

    started = time.monotonic()
    thread, errors = _run_forever_in_a_thread(
        settings.replace(etl_interval_s=0.05), pass_function, stop
    )
    thread.join(timeout=10)
    stop.set()

    assert (thread.is_alive(), errors, len(calls)) == (False, [], 3)
    assert calls[0][1] - started < 0.5  # the first pass does not wait for the first tick
    assert calls[2][1] - calls[0][1] < 0.9  # two intervals of 0.05 s, not of a coarser tick
    assert calls[1][1] - calls[0][1] >= 0.04
    assert all(pass_settings.etl.interval_s == 0.05 for pass_settings, _ in calls)


def test_the_schedule_starts_with_a_pass_and_stops_when_told(settings):
    stop = threading.Event()
    calls = []
    thread, errors = _run_forever_in_a_thread(
        settings.replace(etl_interval_s=3600), lambda *args: calls.append(args), stop
    )
    deadline = time.monotonic() + 5
    while not calls and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    thread.join(timeout=5)

    assert (len(calls), thread.is_alive(), errors) == (1, False, [])


def test_a_failed_pass_is_retried_at_the_next_tick(settings):
    stop = threading.Event()
    calls = []

    def pass_function(*args):
        calls.append(args)
        if len(calls) == 1:
            raise ConnectionError("Kafka is down")
        stop.set()

    thread, errors = _run_forever_in_a_thread(
        settings.replace(etl_interval_s=0.05), pass_function, stop
    )
    thread.join(timeout=10)
    stop.set()

    assert (len(calls), thread.is_alive(), errors) == (2, False, [])


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_or_sigint_stops_the_schedule_after_the_pass_in_progress(settings, signum):
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    received = []
    for s in previous:  # in case run_forever did not install its own handlers
        signal.signal(s, lambda number, frame: received.append(number))
    stop = threading.Event()
    safety = threading.Timer(5, stop.set)
    calls = []

    def pass_function(*args):
        calls.append(args)
        os.kill(os.getpid(), signum)

    safety.start()
    try:
        started = time.monotonic()
        run_forever(settings.replace(etl_interval_s=3600), REGISTRY, stop, pass_function)
        elapsed = time.monotonic() - started
    finally:
        safety.cancel()
        for s, handler in previous.items():
            signal.signal(s, handler)

    assert (len(calls), received) == (1, [])
    assert elapsed < 4
