"""``clickstream sql`` on the real ClickHouse engine (chDB, or a server): answers in the
configured database, read-only unless ``--write``, one-line errors, a bounded wait for
chDB's lock, and answers while a real ``clickstream etl`` loads the same warehouse."""

from __future__ import annotations

import csv
import io
import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from core.config import Settings
from core.host.plugin_manager import build_registry, make_plugin_manager
from etl import ledger
from etl.sql import Printer, Shell, SqlError, run_script, statements_of
from etl.warehouse import Warehouse, WarehouseError
from tests.etl_helpers import create_topic, envelope, produce, scalar
from tests.servers import subprocess_env

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
QUERIES = ("драма", "комедия", "драма")


@pytest.fixture
def sql_settings(warehouse_settings: Settings) -> Settings:
    """Per-test settings whose database has the event tables and three searches."""
    warehouse = Warehouse.from_settings(warehouse_settings)
    with warehouse.session() as client:
        warehouse.ensure_schema(client, build_registry(make_plugin_manager()), ledger.TABLES)
        client.insert(
            warehouse.table("search_filters"),
            [[uuid.uuid4(), text, f"genre={text}", 'say "да", then, no'] for text in QUERIES],
            column_names=["event_id", "search_query", "filters", "user_id"],
        )
    return warehouse_settings


def run(settings: Settings, script: str, fmt: str = "table", **options) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``script`` run in this process, as the command does."""
    printer = Printer(fmt, io.StringIO(), io.StringIO())
    shell = Shell(Warehouse.from_settings(settings), notice=printer.error, **options)
    code = run_script(shell, script, printer)
    return code, printer.out.getvalue(), printer.err.getvalue()


def cli(settings: Settings, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """``clickstream sql ARGS`` in a subprocess with exactly ``settings``."""
    return subprocess.run(
        [sys.executable, "-m", "etl.cli", "sql", *args],
        cwd=ROOT,
        env=subprocess_env(settings),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
    )


def searches(settings: Settings) -> int:
    return scalar(settings, "SELECT count() FROM {db}.search_filters")


def test_a_query_answers_in_the_configured_database(sql_settings: Settings) -> None:
    code, out, err = run(
        sql_settings,
        "SELECT search_query, count() AS searches FROM search_filters "
        "GROUP BY search_query ORDER BY search_query",
    )
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "search_query  searches",
        "------------  --------",
        "драма                2",
        "комедия              1",
        "(2 rows)",
    ]


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO search_filters (search_query) VALUES ('x')",
        "INSERT INTO search_filters (search_query) SELECT search_query FROM search_filters",
        "DROP TABLE search_filters",
        "TRUNCATE TABLE search_filters",
        "ALTER TABLE search_filters DELETE WHERE 1",
        "CREATE TABLE notes (a UInt8) ENGINE = Memory",
        "CREATE DATABASE elsewhere",
        "OPTIMIZE TABLE search_filters FINAL",
        "RENAME TABLE search_filters TO gone",
        "SET readonly = 0",
        "SELECT count() FROM search_filters SETTINGS readonly = 0",
        "INSERT INTO FUNCTION file('{tmp}/out.csv', 'CSV') SELECT 1",
        "SELECT 1 INTO OUTFILE '{tmp}/out.csv'",
    ],
)
def test_a_read_only_session_refuses_every_change(
    sql_settings: Settings, statement: str, tmp_path: Path
) -> None:
    [parsed] = statements_of(statement.replace("{tmp}", str(tmp_path)))
    shell = Shell(Warehouse.from_settings(sql_settings))
    with pytest.raises(SqlError, match=r"refused.*--write allows it") as refused:
        shell.run(parsed)
    assert "\n" not in str(refused.value)
    assert searches(sql_settings) == len(QUERIES)
    assert not (tmp_path / "out.csv").exists()


def test_write_allows_changes_and_confirms_them(sql_settings: Settings) -> None:
    code, out, err = run(
        sql_settings,
        "INSERT INTO search_filters (event_id, search_query) "
        "VALUES (generateUUIDv4(), 'ужасы'), (generateUUIDv4(), 'мультфильм');\n"
        "CREATE TABLE notes (a UInt8) ENGINE = Memory;\n"
        "DROP TABLE notes",
        write=True,
    )
    assert (code, err) == (0, "")
    assert out.splitlines()[0].startswith("INSERT: ok")
    assert out.splitlines()[1:] == ["CREATE: ok", "DROP: ok"]
    assert searches(sql_settings) == len(QUERIES) + 2


def test_use_changes_the_database_of_the_statements_after_it(sql_settings: Settings) -> None:
    code, out, err = run(
        sql_settings,
        "USE system; SELECT count() > 0 AS found FROM tables WHERE name = 'search_filters'",
        fmt="json",
    )
    assert (code, err) == (0, "USE: now in database system\n")
    assert json.loads(out) == [{"found": True}]


def test_a_database_not_made_yet_is_said_once_and_default_is_used(settings: Settings) -> None:
    code, out, err = run(settings, "SELECT 1 AS one; SELECT currentDatabase() AS db", fmt="csv")
    assert code == 0
    assert out.split() == ["one", "1", "db", "default"]
    assert err == (
        f"clickstream sql: database {settings.warehouse.database} does not exist (yet): "
        "using `default`\n"
    )


def test_the_command_prints_a_table_json_and_csv(sql_settings: Settings) -> None:
    query = "SELECT search_query, filters, user_id, results_count FROM search_filters_dedup"
    table = cli(sql_settings, f"{query} ORDER BY search_query LIMIT 1")
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[2].split()[:2] == ["драма", "genre=драма"]

    answer = cli(sql_settings, "--format", "json", query)
    assert answer.returncode == 0, answer.stderr
    rows = json.loads(answer.stdout)
    assert sorted(row["search_query"] for row in rows) == sorted(QUERIES)
    assert rows[0]["user_id"] == 'say "да", then, no' and rows[0]["results_count"] is None

    script = f"{query} ORDER BY search_query;\nSELECT count() AS n FROM search_filters WHERE 0"
    answer = subprocess.run(
        [sys.executable, "-m", "etl.cli", "sql", "--format", "csv", "-"],
        cwd=ROOT,
        env=subprocess_env(sql_settings),
        input=script,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
    )
    assert answer.returncode == 0, answer.stderr
    first, second = answer.stdout.split("\n\n")
    parsed = list(csv.DictReader(io.StringIO(first)))
    assert [row["search_query"] for row in parsed] == sorted(QUERIES)
    assert parsed[0]["user_id"] == 'say "да", then, no' and parsed[0]["results_count"] == ""
    assert second.split() == ["n", "0"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["SELEC 1"], "(SYNTAX_ERROR)"),
        (["SELECT * FROM no_such_table"], "(UNKNOWN_TABLE)"),
        (["DROP TABLE search_filters"], "DROP refused: the session is read-only"),
        (["--database", "no-such-db", "SELECT 1"], "invalid database name"),
    ],
)
def test_an_error_is_one_line_and_exit_code_1(
    sql_settings: Settings, args: list[str], expected: str
) -> None:
    answer = cli(sql_settings, *args)
    assert answer.returncode == 1
    assert answer.stdout == ""
    assert answer.stderr.startswith("clickstream sql: ") and answer.stderr.count("\n") == 1
    assert expected in answer.stderr
    assert searches(sql_settings) == len(QUERIES)


def test_a_read_only_session_does_not_nest_in_a_writable_one(sql_settings: Settings) -> None:
    warehouse = Warehouse.from_settings(sql_settings)
    if not warehouse.embedded:
        pytest.skip("sessions nest for chDB only")
    refused = pytest.raises(WarehouseError, match="read-only session cannot share")
    with warehouse.session(), refused, warehouse.session(readonly=True):
        pass
    with warehouse.session(readonly=True) as client, warehouse.session(readonly=True) as inner:
        assert inner is client
    with warehouse.session() as client:  # the client of a read-only session is gone with it
        client.command(f"CREATE TABLE {warehouse.table('notes')} (a UInt8) ENGINE = Memory")


def test_a_busy_warehouse_is_reported_once_the_lock_timeout_passes(
    sql_settings: Settings,
) -> None:
    warehouse = Warehouse.from_settings(sql_settings)
    if not warehouse.embedded:
        pytest.skip("the lock exists for chDB only")
    with warehouse.session():
        started = time.monotonic()
        busy = cli(sql_settings, "--lock-timeout", "0.5", "SELECT 1")
        assert time.monotonic() - started < 30
    assert busy.returncode == 1
    assert busy.stderr.startswith("clickstream sql: the warehouse is busy: ")
    assert "--lock-timeout" in busy.stderr and busy.stderr.count("\n") == 1
    assert cli(sql_settings, "--lock-timeout", "0.5", "SELECT 1").returncode == 0


def test_it_answers_while_the_etl_runs(settings: Settings, kafka_bootstrap: str) -> None:
    """The acceptance test of the command: the ETL loops every 0.3 s on the same chDB
    directory while queries count what it loads, and neither waits for the other to stop."""
    settings = settings.replace(etl_poll_timeout_s=0.2)
    create_topic(settings)
    search = build_registry(make_plugin_manager())["search_filter"]
    etl = subprocess.Popen(
        [sys.executable, "-m", "etl.cli", "etl"],
        cwd=ROOT,
        env=subprocess_env(settings, etl_interval_s=0.3, etl_metrics_port=0),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    answers: list[int] = []

    def loaded() -> int:
        answer = cli(settings, "--format", "json", "SELECT count() AS n FROM search_filters")
        assert etl.poll() is None, "the ETL stopped"
        if answer.returncode:  # before the first pass made the table
            assert "UNKNOWN_TABLE" in answer.stderr or "does not exist" in answer.stderr, (
                answer.stderr
            )
            return -1
        [row] = json.loads(answer.stdout)
        answers.append(row["n"])
        return row["n"]

    try:
        for batch, expected in ((5, 5), (7, 12)):
            produce(settings, [envelope("search_filter", search.example) for _ in range(batch)])
            deadline = time.monotonic() + 60
            while loaded() != expected:
                assert time.monotonic() < deadline, f"the ETL did not load {expected}: {answers}"
    finally:
        etl.send_signal(signal.SIGTERM)
        _, stderr = etl.communicate(timeout=60)

    assert etl.returncode == 0, stderr[-2000:]
    # No pass waited past its lock timeout for a query (a pass may still fail for another
    # reason on a crowded machine, a group rebalance say; the next one catches up).
    assert "was held by another process" not in stderr, stderr[-3000:]
    assert answers[-1] == 12 and answers == sorted(answers)
