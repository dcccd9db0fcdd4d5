"""A warehouse answering with an error while a pass inserts, on the real Kafka and chDB.

Errors of the server (too many parts, memory, a timeout, read-only, a proxy's 503, the
network) fail the pass: nothing is dead-lettered, nothing committed, the next pass loads
everything. Errors of the data (a value its column cannot hold) set aside the rows at
fault as ``insert_failed`` and load the rest. The errors are raised by a wrapper of the
client's ``insert``, as clickhouse-connect raises them.
"""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

import etl.runner
from core.config import Settings
from core.host.plugin_manager import build_registry, make_plugin_manager
from etl.reports import consumer_lag
from etl.runner import run_pass
from tests.etl_helpers import create_topic, envelope, produce, query

pytestmark = pytest.mark.integration

REGISTRY = build_registry(make_plugin_manager())


def server_error(code: int, name: str) -> DatabaseError:
    # What clickhouse-connect raises for a ClickHouse exception in an HTTP answer.
    return DatabaseError(
        f"Received ClickHouse exception, code: {code}, server response: Code: {code}. "
        f"DB::Exception: ... ({name})",
        code=code,
        name=name,
    )


SERVER_ERRORS = {
    "TOO_MANY_PARTS": server_error(252, "TOO_MANY_PARTS"),
    "MEMORY_LIMIT_EXCEEDED": server_error(241, "MEMORY_LIMIT_EXCEEDED"),
    "TIMEOUT_EXCEEDED": server_error(159, "TIMEOUT_EXCEEDED"),
    "READONLY": server_error(164, "READONLY"),
    "TABLE_IS_READ_ONLY": server_error(242, "TABLE_IS_READ_ONLY"),
    # a proxy in front of the server: no ClickHouse code in its answer
    "HTTP 503": DatabaseError("HTTP driver received HTTP status 503, server response: busy"),
    "network": OperationalError("Error executing HTTP request attempt 1"),
}


@pytest.fixture
def etl_settings(settings: Settings, kafka_bootstrap: str) -> Settings:
    settings = settings.replace(etl_poll_timeout_s=0.2)
    create_topic(settings)
    return settings


@pytest.fixture
def refuse(monkeypatch):
    """``refuse(table, error, when=lambda rows: True)``: inserts into ``table`` raise ``error``."""
    refusals: dict[str, tuple] = {}
    real_session = etl.runner.Warehouse.session

    @contextmanager
    def session(self, **kwargs):
        with real_session(self, **kwargs) as client:
            real_insert = client.insert

            def insert(table, data, *args, **kw):
                name = table.split(".")[-1]
                if name in refusals:
                    error, when = refusals[name]
                    if when(list(data)):
                        raise error
                return real_insert(table, data, *args, **kw)

            client.insert = insert
            try:
                yield client
            finally:
                client.insert = real_insert

    monkeypatch.setattr(etl.runner.Warehouse, "session", session)

    def add(table: str, error: Exception, when=lambda rows: True) -> None:
        refusals[table] = (error, when)

    return add


def searches(n: int) -> list[dict]:
    return [envelope("search_filter", {"search_query": f"q{i}", "filters": ""}) for i in range(n)]


@pytest.mark.parametrize("error", list(SERVER_ERRORS.values()), ids=list(SERVER_ERRORS))
def test_a_server_side_error_fails_the_pass_and_commits_nothing(etl_settings, refuse, error):
    produce(etl_settings, searches(3))
    refuse("search_filters", error)

    with pytest.raises(type(error)):
        run_pass(etl_settings, REGISTRY)

    assert consumer_lag(etl_settings) == {0: 3}
    assert query(etl_settings, "SELECT count() FROM {db}.dead_letters") == [(0,)]
    refuse("search_filters", error, when=lambda rows: False)  # the server is well again
    assert run_pass(etl_settings, REGISTRY).rows == {"search_filters": 3}
    assert query(etl_settings, "SELECT count(), uniqExact(event_id) FROM {db}.search_filters") == [
        (3, 3)
    ]
    assert consumer_lag(etl_settings) == {0: 0}


@pytest.mark.parametrize(
    "error",
    [server_error(53, "TYPE_MISMATCH"), server_error(6, "CANNOT_PARSE_TEXT")],
    ids=["TYPE_MISMATCH", "CANNOT_PARSE_TEXT"],
)
def test_a_data_error_sets_aside_only_the_rows_at_fault(etl_settings, refuse, error):
    messages = searches(3)
    messages[1]["data"]["search_query"] = "poison"
    produce(etl_settings, messages)
    refuse("search_filters", error, when=lambda rows: any("poison" in map(str, r) for r in rows))

    result = run_pass(etl_settings, REGISTRY)

    assert (result.rows, result.dead_letters) == ({"search_filters": 2}, {"insert_failed": 1})
    assert query(etl_settings, "SELECT offset, reason FROM {db}.dead_letters") == [
        (1, "insert_failed")
    ]
    assert consumer_lag(etl_settings) == {0: 0}
