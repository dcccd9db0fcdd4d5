"""``python -m bench.queries``: what the sort keys cost analysts' queries, before and after.

Each built-in table is made as version 2 made it (its old sort key, free text as
LowCardinality) in a temporary chDB directory, filled with ``--rows`` generated rows (28
days of one month, ``--users`` users), and queried through its ``*_dedup`` view: a user
(all time), a user over 7 days, one day (all users), and where version 2 sorted by video
first, a video over 7 days. Then the shipped
``migrations/0003_sort_key.sql`` rebuilds it (``Warehouse.migrate``, as ``clickstream
migrate`` does) and the same queries run again. Printed per table and query: the median
milliseconds of ``--runs`` runs (each for another user or day) before and after, their
ratio, and the granules of 8,192 rows the primary key let ClickHouse read
(``EXPLAIN indexes = 1``), which do not depend on the machine's load.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from clickhouse_connect.driver.client import Client

from core import hookimpl
from core.config import PROJECT_ROOT, WarehouseSettings
from core.host.plugin_manager import build_registry, make_plugin_manager
from core.host.registry import Registry
from etl.warehouse import Warehouse

#: Version 2's sort key of each table, and its free-text columns that were LowCardinality.
VERSION_2 = {
    "element_clicks": (
        "page_type, element_type, toDate(timestamp), event_id",
        ("element_type", "page_type"),
    ),
    "page_views": ("page_view_id, event, event_id", ("page_type",)),
    "quality_changes": ("video_id, timestamp, event_id", ()),
    "search_filters": ("toDate(timestamp), search_query, event_id", ()),
    "video_completes": ("video_id, timestamp, event_id", ()),
}
#: Tables version 2 sorted by video first.
BY_VIDEO = ("quality_changes", "video_completes")
PLUGINS = {
    "element_clicks": "element_click",
    "page_views": "page_view",
    "quality_changes": "quality_change",
    "search_filters": "search_filter",
    "video_completes": "video_complete",
}
START = datetime(2026, 11, 1, tzinfo=UTC)
DAYS = 28
GRANULES = re.compile(r"Granules: (\d+)/(\d+)")

#: Rows of each table from ``numbers(rows)``: ``{user}`` and ``{moment}`` are filled in per row.
COMMON = "generateUUIDv4(number), '{event}', {moment}, {user}, 'verified', 2"
ENVELOPE = "event_id, event, timestamp, user_id, identity, schema_version"
FILL = {
    "element_clicks": (
        "element_type, page_type, video_id, position",
        "arrayElement(['movie', 'category', 'trailer', 'poster', 'button'], h % 5 + 1), "
        "arrayElement(['main', 'movie', 'category', 'search', 'promotion'], h % 7 % 5 + 1), "
        "concat('tt', toString(h % 5000)), h % 20",
    ),
    "quality_changes": (
        "video_id, old_quality, new_quality, reason, position_s",
        "concat('tt', toString(h % 5000)), arrayElement([480, 720, 1080], h % 3 + 1), "
        "arrayElement([480, 720, 1080], h % 5 % 3 + 1), "
        "arrayElement(['auto', 'manual'], h % 2 + 1), h % 7200",
    ),
    "search_filters": (
        "search_query, filters, results_count",
        "concat('q', toString(h % 2000)), if(h % 3 = 0, 'genre=драма', ''), h % 100",
    ),
    "video_completes": (
        "video_id, duration_total, watched_s, duration_s",
        "concat('tt', toString(h % 5000)), h % 2 = 0, h % 7200, 7200",
    ),
}


@dataclass(frozen=True)
class Measure:
    """One query on one table: median milliseconds and primary-key granules read."""

    ms: float
    granules: int
    total: int


def main(argv: list[str] | None = None) -> None:
    options = argparse.ArgumentParser(description=__doc__)
    options.add_argument("--rows", type=int, default=1_000_000, help="rows of each table")
    options.add_argument("--users", type=int, default=10_000, help="distinct user_ids")
    options.add_argument("--runs", type=int, default=21, help="timed runs of each query")
    options.add_argument("--tables", nargs="*", default=list(VERSION_2), choices=list(VERSION_2))
    args = options.parse_args(argv)

    registry = build_registry(make_plugin_manager())
    directory = Path(tempfile.mkdtemp(prefix="clickstream-queries-"))
    warehouse = Warehouse(
        WarehouseSettings(dsn=f"chdb://{directory / 'warehouse'}", database="bench")
    )
    print(
        f"{args.rows:,} rows per table over {DAYS} days, {args.users:,} users; median of "
        f"{args.runs} runs; load average {os.getloadavg()[0]:.1f} before"
    )
    print(
        "\n| table | query | before ms | after ms | before / after "
        "| granules before | granules after |\n|---|---|---|---|---|---|---|"
    )
    try:
        with warehouse.session() as client:
            warehouse.ensure_schema(client, version_2(registry), {})
            version = client.query("SELECT version()").result_rows[0][0]
            rebuilds = {}
            for table in args.tables:
                fill(client, warehouse, table, args.rows, args.users)
                before = measure_all(client, warehouse, table, args.runs)
                started = time.perf_counter()
                warehouse.migrate(client, registry, table, migration(table))
                rebuilds[table] = time.perf_counter() - started
                merge(client, warehouse, table)
                after = measure_all(client, warehouse, table, args.runs)
                for name in before:
                    old, new = before[name], after[name]
                    print(
                        f"| `{table}` | {name} | {old.ms:.1f} | {new.ms:.1f} | "
                        f"{old.ms / new.ms:.1f} | {old.granules}/{old.total} | "
                        f"{new.granules}/{new.total} |"
                    )
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    print(
        f"\nClickHouse {version} (chDB); rebuild by 0003_sort_key.sql: "
        + ", ".join(f"{table} {seconds:.1f} s" for table, seconds in rebuilds.items())
        + f"; load average {os.getloadavg()[0]:.1f} after"
    )


def version_2(registry: Registry) -> Registry:
    """The built-in event types with the tables version 2 made."""
    changed = [
        dataclasses.replace(t, ddl=version_2_ddl(t.ddl, t.table), plugin="") for t in registry
    ]

    class Version2:
        @hookimpl
        def register_event_types(self):
            return changed

    return build_registry(make_plugin_manager([Version2()], load_entry_points=False))


#: Envelope columns added after version 2 (issue 14): its tables had none of them.
VISITOR_COLUMNS = (
    "anonymous_id",
    "session_id",
    "sent_at",
    "client_time",
    "device",
    "browser",
    "os",
    "is_bot",
)


def without_visitor_columns(ddl: str) -> str:
    """``ddl`` without the envelope columns added after version 2 (``VISITOR_COLUMNS``), as
    version 2 made it; the benchmark's tables keep them, as the envelope requires them."""
    for column in VISITOR_COLUMNS:
        ddl, removed = re.subn(rf"^    {column} .*\n", "", ddl, flags=re.M)
        if removed != 1:
            raise ValueError(f"no envelope column {column} in {ddl}")
    return ddl


def version_2_ddl(ddl: str, table: str) -> str:
    """``ddl`` with version 2's sort key and LowCardinality free text."""
    key, low_cardinality = VERSION_2[table]
    head, found, _ = ddl.rpartition("\nORDER BY (")
    if not found:
        raise ValueError(f"{table}: no ORDER BY in its DDL")
    for column in low_cardinality:
        head, replaced = re.subn(
            rf"^(    {column}) String\b", r"\1 LowCardinality(String)", head, flags=re.M
        )
        if replaced != 1:
            raise ValueError(f"{table}: no String column {column} in its DDL")
    return f"{head}\nORDER BY ({key})"


def migration(table: str) -> str:
    path = PROJECT_ROOT / "plugins" / PLUGINS[table] / "migrations" / "0003_sort_key.sql"
    return path.read_text(encoding="utf-8")


def fill(client: Client, warehouse: Warehouse, table: str, rows: int, users: int) -> None:
    span_ms = DAYS * 86_400_000
    start = f"toDateTime64('{START:%Y-%m-%d %H:%M:%S}', 3, 'UTC')"
    if table == "page_views":
        # Half the rows are starts and half ends: one view per pair, one user per view.
        view = "intDiv(number, 2)"
        moment = (
            f"addMilliseconds({start}, cityHash64({view}, 2) % {span_ms - 3_600_000} "
            f"+ if(number % 2 = 1, 5000 + cityHash64({view}, 4) % 600000, 0))"
        )
        sql = (
            f"INSERT INTO {warehouse.table(table)} ({ENVELOPE}, page_view_id, page_type, "
            "video_id, visible_ms) SELECT generateUUIDv4(number), "
            "if(number % 2 = 0, 'page_view_start', 'page_view_end'), "
            f"{moment}, concat('user-', toString(cityHash64({view}, 1) % {users})), "
            f"'verified', 2, reinterpretAsUUID(MD5(toString({view}))), "
            f"arrayElement(['main', 'movie', 'category', 'search', 'promotion'], "
            f"cityHash64({view}, 3) % 5 + 1), NULL, "
            f"if(number % 2 = 1, toUInt32(cityHash64({view}, 5) % 600000), NULL) "
            f"FROM numbers({rows})"
        )
    else:
        columns, values = FILL[table]
        common = COMMON.format(
            event=table.removesuffix("s"),
            moment=f"addMilliseconds({start}, cityHash64(number, 2) % {span_ms})",
            user=f"concat('user-', toString(cityHash64(number, 1) % {users}))",
        )
        sql = (
            f"INSERT INTO {warehouse.table(table)} ({ENVELOPE}, {columns}) "
            f"SELECT {common}, {values} FROM (SELECT number, cityHash64(number, 3) AS h "
            f"FROM numbers({rows}))"
        )
    client.command(sql)
    merge(client, warehouse, table)


def merge(client: Client, warehouse: Warehouse, table: str) -> None:
    """One part per month, before and after alike: what the table settles to between loads."""
    client.command(f"OPTIMIZE TABLE {warehouse.table(table)} FINAL")


def queries(table: str, runs: int) -> dict[str, list[str]]:
    """Per query, ``runs`` + 1 variants (another user or day each); the first warms up."""
    view = f"bench.{table}_dedup"
    users = [f"user-{i * 37}" for i in range(runs + 1)]
    days = [START + timedelta(days=i % (DAYS - 7)) for i in range(runs + 1)]

    def day(moment: datetime, length: int = 1) -> str:
        until = moment + timedelta(days=length)
        return (
            f"timestamp >= '{moment:%Y-%m-%d} 00:00:00' AND timestamp < '{until:%Y-%m-%d} 00:00:00'"
        )

    found = {
        "a user, all time": [
            f"SELECT count(), min(timestamp), max(timestamp) FROM {view} WHERE user_id = '{user}'"
            for user in users
        ],
        "a user, 7 days": [
            f"SELECT count(), min(timestamp) FROM {view} "
            f"WHERE user_id = '{user}' AND {day(when, 7)}"
            for user, when in zip(users, days, strict=True)
        ],
        "a day, all users": [
            f"SELECT count(), uniq(user_id) FROM {view} WHERE {day(when)}" for when in days
        ],
    }
    if table in BY_VIDEO:
        # What version 2's key was for, and what the new one gives up.
        found["a video, 7 days"] = [
            f"SELECT count(), uniq(user_id) FROM {view} "
            f"WHERE video_id = 'tt{i * 101}' AND {day(when, 7)}"
            for i, when in enumerate(days)
        ]
    return found


def measure_all(client: Client, warehouse: Warehouse, table: str, runs: int) -> dict[str, Measure]:
    measured = {}
    for name, variants in queries(table, runs).items():
        client.query(variants[0])
        times = []
        for sql in variants[1:]:
            started = time.perf_counter()
            client.query(sql)
            times.append((time.perf_counter() - started) * 1000)
        plan = "\n".join(
            row[0] for row in client.query(f"EXPLAIN indexes = 1 {variants[1]}").result_rows
        )
        *_, (read, total) = GRANULES.findall(plan)
        measured[name] = Measure(statistics.median(times), int(read), int(total))
    return measured


if __name__ == "__main__":
    main()
