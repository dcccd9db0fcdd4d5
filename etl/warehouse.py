"""The ClickHouse warehouse: short locked work, idempotent DDL and its recorded versions.

chDB (``chdb:///dir``) lets one process at a time hold a data directory, so every
user opens a session, works, and closes it; an ``flock`` beside the directory makes
other processes wait up to ``warehouse_lock_timeout_s`` instead of failing.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from core.config import PluginSetting, Settings, WarehouseSettings
from core.host.registry import Registry, View

log = logging.getLogger(__name__)

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


#: Analyst-facing view per event table: one row per event_id, whatever was re-delivered.
DEDUP_VIEW = "CREATE OR REPLACE VIEW {database}.{view} AS SELECT * FROM {database}.{table} FINAL"
DEDUP_SUFFIX = "_dedup"

#: The comment a view of a plugin carries: what it is, and which version of its query made it.
VIEW_VERSION = "{description} (clickstream view {sha})"


class WarehouseError(RuntimeError):
    """The warehouse cannot be reached or used; a pass fails and commits nothing."""


class WarehouseBusyError(WarehouseError):
    """Another process held the chDB directory for longer than the lock timeout."""


class EtlRunningError(WarehouseError):
    """Another ETL process already loads this chDB directory."""


class MigrationNeededError(WarehouseError):
    """A table's DDL changed since it was created; ``clickstream migrate`` applies the change."""


def _now() -> datetime:
    return datetime.now(UTC)


def ddl_sha256(ddl: str, table: str) -> str:
    """The version of ``ddl`` for ``table``: independent of the database it is applied to."""
    return hashlib.sha256(ddl.replace("{table}", table).strip().encode()).hexdigest()


def render(ddl: str, database: str, table: str) -> str:
    """``ddl`` with its ``{database}`` and ``{table}`` placeholders filled in."""
    return ddl.replace("{database}", database).replace("{table}", table)


# chDB runs one embedded server per process, so the open session is process state by nature.
_embedded_lock = threading.RLock()
_embedded: dict[str, object] = {"path": None, "client": None, "depth": 0, "readonly": False}


@dataclass(frozen=True)
class SchemaStatus:
    """What :meth:`Warehouse.ensure_schema` found: tables created, and tables needing migration."""

    created: list[str]
    migrations_needed: dict[str, str]


#: The warehouse's record of the DDL it applied to each table: what it compares a
#: plugin's DDL with, and what migrations append to.
SCHEMA_MIGRATIONS = "schema_migrations"
SCHEMA_MIGRATIONS_DDL = """
CREATE TABLE IF NOT EXISTS {database}.{table} (
    table_name String,
    ddl_sha256 String,
    ddl String,
    kind LowCardinality(String),
    applied_at DateTime64(3, 'UTC')
) ENGINE = MergeTree
ORDER BY (table_name, applied_at)
"""


class Warehouse:
    """The warehouse: its session, schema, qualified names."""

    def __init__(
        self,
        settings: WarehouseSettings,
        plugin_value: Callable[[PluginSetting], Any] = lambda setting: setting.default,
    ) -> None:
        """``plugin_value`` gives the value of a plugin's setting, which its views may use."""
        if not IDENTIFIER.match(settings.database):
            raise WarehouseError(f"invalid database name {settings.database!r}")
        self.dsn = settings.dsn
        self.database = settings.database
        self.lock_timeout_s = settings.lock_timeout_s
        self.dedup_window = settings.dedup_window
        self._plugin_value = plugin_value

    @classmethod
    def from_settings(cls, settings: Settings) -> Warehouse:
        """The warehouse of ``settings``, its views filled with their plugins' settings."""
        return cls(settings.warehouse, settings.plugin_value)

    @property
    def embedded(self) -> bool:
        """True for a chDB DSN (in-process engine, one process at a time)."""
        return self.dsn.startswith("chdb://")

    @property
    def data_dir(self) -> Path | None:
        return Path(self.dsn.removeprefix("chdb://")) if self.embedded else None

    @property
    def lock_path(self) -> Path | None:
        """The lock file beside the chDB directory (none for a server DSN)."""
        data_dir = self.data_dir
        return data_dir.with_name(data_dir.name + ".lock") if data_dir else None

    @property
    def etl_lock_path(self) -> Path | None:
        """The file an ETL holds for as long as it runs on a chDB directory (none for a server)."""
        data_dir = self.data_dir
        return data_dir.with_name(data_dir.name + ".etl.lock") if data_dir else None

    @contextmanager
    def claim_for_etl(self) -> Iterator[None]:
        """Hold the chDB directory for one ETL process while the block runs; a second ETL on
        the same directory is refused at once with :class:`EtlRunningError`.

        chDB is an engine inside one process: two ETLs on one directory would only take
        turns on it, each loading the partitions the group gave it. Scaling out needs a
        ClickHouse server (docs/etl.md). A server DSN claims nothing.
        """
        lock_path = self.etl_lock_path
        if lock_path is None:
            yield
            return
        try:
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            lock_file = open(lock_path, "a+")  # noqa: SIM115 - held while the ETL runs
        except OSError as error:
            raise WarehouseError(f"cannot open the ETL lock {lock_path}: {error}") from error
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.seek(0)
            holder = lock_file.read().strip() or "another process"
            lock_file.close()
            raise EtlRunningError(
                f"an ETL ({holder}) already loads {self.data_dir}: chDB takes one ETL process "
                "per data directory. Stop that one, or run several ETLs against a ClickHouse "
                f"server (CLICKSTREAM_WAREHOUSE_DSN=http://...; docs/etl.md). Lock: {lock_path}"
            ) from None
        try:
            lock_file.truncate(0)
            lock_file.write(f"pid {os.getpid()}\n")
            lock_file.flush()
            yield
        finally:
            _release(lock_file)

    def table(self, name: str) -> str:
        """``database.name``, both checked as plain identifiers."""
        if not IDENTIFIER.match(name):
            raise WarehouseError(f"invalid table name {name!r}")
        return f"{self.database}.{name}"

    @contextmanager
    def session(self, *, readonly: bool = False) -> Iterator[Client]:
        """A client for a short piece of work; closed (and the chDB lock released) on exit.

        ``readonly`` opens it with ClickHouse's ``readonly = 1`` for the whole session: the
        engine itself refuses whatever would change data, tables, settings or files, and
        the session cannot lift it. A session nested in an open one must be of its kind.
        """
        settings = {"readonly": 1} if readonly else None
        if not self.embedded:
            client = self._connect(settings)
            try:
                yield client
            finally:
                client.close()
            return
        with _embedded_lock:
            state = _embedded
            path = str(self.data_dir)
            if state["depth"]:
                if state["path"] != path:
                    raise WarehouseError(
                        f"chDB already has {state['path']} open in this process; "
                        f"it cannot open {path} at the same time"
                    )
                if state["readonly"] != readonly:
                    raise WarehouseError(
                        "a read-only session cannot share the client of a writable one, "
                        "nor the reverse"
                    )
                state["depth"] += 1
                try:
                    yield state["client"]
                finally:
                    state["depth"] -= 1
                return
            lock_file = self._acquire_lock()
            try:
                client = self._connect(settings)
            except BaseException:
                _release(lock_file)
                raise
            state.update(path=path, client=client, depth=1, readonly=readonly)
            try:
                yield client
            finally:
                state.update(path=None, client=None, depth=0, readonly=False)
                try:
                    client.close()
                finally:
                    _release(lock_file)

    def _acquire_lock(self):
        lock_path = self.lock_path
        try:
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            lock_file = open(lock_path, "a+")  # noqa: SIM115 - held until the session ends
        except OSError as error:
            raise WarehouseError(f"cannot open the warehouse lock {lock_path}: {error}") from error
        deadline = time.monotonic() + self.lock_timeout_s
        while True:
            try:
                fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return lock_file
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    lock_file.close()
                    raise WarehouseBusyError(
                        f"{self.data_dir} was held by another process for more than "
                        f"{self.lock_timeout_s:g} s (lock file {lock_path})"
                    ) from None
                time.sleep(0.05)

    def _connect(self, settings: dict[str, int] | None = None) -> Client:
        try:
            return clickhouse_connect.get_client(dsn=self.dsn, settings=settings)
        except Exception as error:
            raise WarehouseError(
                f"cannot open the warehouse {self._safe_dsn()}: {error}"
            ) from error

    def _safe_dsn(self) -> str:
        return re.sub(r"//[^@/]*@", "//***@", self.dsn)

    def ensure_schema(
        self, client: Client, registry: Registry, own_tables: Mapping[str, str]
    ) -> SchemaStatus:
        """Create missing tables and views, record DDL versions, report changed DDL.

        The tables are the registry's event tables and ``own_tables`` (the ETL's
        bookkeeping, ``etl.ledger.TABLES``: DDL by table name). Idempotent: run at the start
        of every pass. A table whose plugin's DDL now
        only adds columns gets them; one whose DDL changed otherwise is listed in
        ``migrations_needed`` and left untouched.
        """
        client.command(f"CREATE DATABASE IF NOT EXISTS {self.database}")
        definitions = [(SCHEMA_MIGRATIONS, SCHEMA_MIGRATIONS_DDL), *own_tables.items()]
        definitions += [(table, et.ddl) for table, et in registry.tables().items()]
        # One look at what exists, so that an unchanged warehouse costs no DDL: settings
        # and views are written only where they are missing or stale.
        existing = {
            name: (engine_full, comment)
            for name, engine_full, comment in client.query(
                "SELECT name, engine_full, comment FROM system.tables WHERE database = {db:String}",
                parameters={"db": self.database},
            ).result_rows
        }
        recorded = self.recorded_versions(client) if SCHEMA_MIGRATIONS in existing else {}
        created: list[str] = []
        needed: dict[str, str] = {}
        records = []
        for table, ddl in definitions:
            sha = ddl_sha256(ddl, table)
            if table not in existing:
                client.command(render(ddl, self.database, table))
                created.append(table)
                records.append((table, sha, ddl, "create"))
            elif table not in recorded:
                records.append((table, sha, ddl, "adopt"))
            elif recorded[table] != sha:
                if self._add_columns(client, table, ddl):
                    records.append((table, sha, ddl, "add columns"))
                else:
                    needed[table] = recorded[table]
        if records:
            self.record_versions(client, records)
        changed = {table for table, *_ in records}
        window = f"non_replicated_deduplication_window = {int(self.dedup_window)}"
        for table, _ in definitions:
            if table in changed or window not in existing[table][0]:
                self._set_dedup_window(client, table)
        for table in registry.tables():
            if table + DEDUP_SUFFIX not in existing or table in changed:
                self._dedup_view(client, table)
        for view in registry.views.values():
            if needed.keys() & set(view.tables):
                continue  # over a table of the old shape; made once it is migrated
            current = existing.get(view.name, ("", ""))[1]
            if current != self.view_version(view, registry) or changed & set(view.tables):
                self._make_view(client, view, registry)
        if created:
            log.info("warehouse tables created: %s", ", ".join(created))
        return SchemaStatus(created=created, migrations_needed=needed)

    def _add_columns(self, client: Client, table: str, ddl: str) -> bool:
        """Bring ``table`` to ``ddl`` if that only adds columns; False if it changes more.

        Adding an optional field to an event type must not stop the ETL, so a new DDL
        that keeps every column (name and type), the engine and the keys is applied as
        ``ADD COLUMN``. It is compared on a throwaway table created from the new DDL.
        """
        probe = f"{table}__probe_{ddl_sha256(ddl, table)[:8]}"
        client.command(render(ddl, self.database, probe))
        try:
            old, new = (self._shape(client, name) for name in (table, probe))
        finally:
            client.command(f"DROP TABLE IF EXISTS {self.table(probe)}")
        old_columns, new_columns = old.pop("columns"), new.pop("columns")
        kept = all(new_columns.get(name, ("",))[0] == spec[0] for name, spec in old_columns.items())
        if old != new or not kept:
            return False
        previous = None
        for name, (kind, default) in new_columns.items():
            if name not in old_columns:
                position = f" AFTER {previous}" if previous else " FIRST"
                client.command(
                    f"ALTER TABLE {self.table(table)} ADD COLUMN IF NOT EXISTS "
                    f"{name} {kind}{f' DEFAULT {default}' if default else ''}{position}"
                )
                log.info("warehouse column added: %s.%s %s", table, name, kind)
            previous = name
        return True

    def _shape(self, client: Client, table: str) -> dict:
        """Engine, keys and columns (name -> (type, default)) of ``table``."""
        parameters = {"db": self.database, "table": table}
        engine, sorting, partition, primary = client.query(
            "SELECT engine, sorting_key, partition_key, primary_key FROM system.tables "
            "WHERE database = {db:String} AND name = {table:String}",
            parameters=parameters,
        ).result_rows[0]
        columns = client.query(
            "SELECT name, type, default_expression FROM system.columns "
            "WHERE database = {db:String} AND table = {table:String} ORDER BY position",
            parameters=parameters,
        ).result_rows
        return {
            "engine": engine,
            "keys": (sorting, partition, primary),
            "columns": {name: (kind, default) for name, kind, default in columns},
        }

    def recorded_versions(self, client: Client) -> dict[str, str]:
        """The DDL sha256 last recorded for each table."""
        rows = client.query(
            f"SELECT table_name, argMax(ddl_sha256, applied_at) "
            f"FROM {self.table(SCHEMA_MIGRATIONS)} GROUP BY table_name"
        ).result_rows
        return dict(rows)

    def record_versions(self, client: Client, records: Iterable[tuple[str, str, str, str]]) -> None:
        """Append (table, sha256, ddl, kind) rows to ``schema_migrations``."""
        now = _now()
        client.insert(
            self.table(SCHEMA_MIGRATIONS),
            [[table, sha, ddl, kind, now] for table, sha, ddl, kind in records],
            column_names=["table_name", "ddl_sha256", "ddl", "kind", "applied_at"],
        )

    def migrate(self, client: Client, registry: Registry, table: str, statements: str) -> str:
        """Bring ``table`` to its plugin's current DDL by running ``statements``; say what was done.

        ``statements`` are ``;``-separated, with ``{database}`` and ``{table}`` filled in;
        lines starting with ``--`` are comments.
        A migration that mentions ``{next}`` rebuilds the table: ``{next}`` is a new table
        made from the current DDL, which the statements fill from ``{table}``; the two are
        then swapped in one ``RENAME``, and the old table is kept as ``TABLE__before_<sha>``.
        A table that already has the current definition is left as it is, so running a
        migration twice is harmless. Either way the current DDL is recorded as applied.
        """
        tables = registry.tables()
        if table not in tables:
            raise WarehouseError(f"no plugin owns a table named {table!r}")
        ddl = tables[table].ddl
        next_table = f"{table}__next"
        client.command(f"DROP TABLE IF EXISTS {self.table(next_table)}")
        client.command(render(ddl, self.database, next_table))
        rebuild = "{next}" in statements
        try:
            if self._shape(client, table) == self._shape(client, next_table):
                outcome = f"{table} already has its current definition"
            else:
                code = "\n".join(
                    line for line in statements.splitlines() if not line.lstrip().startswith("--")
                )
                for statement in (s.strip() for s in code.split(";")):
                    if statement:
                        client.command(
                            render(statement, self.database, table).replace("{next}", next_table)
                        )
                outcome = f"migrated {table}"
                if rebuild:
                    previous = self.recorded_versions(client).get(table, "unrecorded")
                    kept = f"{table}__before_{previous[:8]}"
                    client.command(
                        f"RENAME TABLE {self.table(table)} TO {self.table(kept)}, "
                        f"{self.table(next_table)} TO {self.table(table)}"
                    )
                    outcome += f"; its previous rows are kept in {kept}"
        finally:
            client.command(f"DROP TABLE IF EXISTS {self.table(next_table)}")
        self.record_versions(client, [(table, ddl_sha256(ddl, table), ddl, "migration")])
        self._refresh_views(client, registry, table)
        return outcome

    def _refresh_views(self, client: Client, registry: Registry, table: str) -> None:
        """Remake the views over ``table``: its ``SELECT *`` dedup view fixed its columns."""
        self._dedup_view(client, table)
        for view in registry.views.values():
            if table in view.tables:
                self._make_view(client, view, registry)

    def _dedup_view(self, client: Client, table: str) -> None:
        client.command(
            DEDUP_VIEW.format(database=self.database, view=table + DEDUP_SUFFIX, table=table)
        )

    def view_query(self, view: View, registry: Registry) -> str:
        """``view``'s query with ``{database}`` and its plugin's ``{setting}`` values filled in."""
        query = view.query.replace("{database}", self.database)
        for setting in registry.settings.values():
            value = self._plugin_value(setting)
            query = query.replace("{" + setting.name + "}", str(value))
        return query

    def view_version(self, view: View, registry: Registry) -> str:
        """The comment ``view`` carries once made from its current query."""
        sha = hashlib.sha256(self.view_query(view, registry).encode()).hexdigest()[:16]
        return VIEW_VERSION.format(description=view.description.replace("'", ""), sha=sha)

    def _make_view(self, client: Client, view: View, registry: Registry) -> None:
        statement = (
            f"CREATE OR REPLACE VIEW {self.table(view.name)} AS "
            f"{self.view_query(view, registry)} COMMENT '{self.view_version(view, registry)}'"
        )
        try:
            client.command(statement)
        except Exception as error:  # a plugin's SQL: logged and retried, loading goes on
            log.warning(
                "warehouse.view_failed view=%s plugin=%s error=%s", view.name, view.plugin, error
            )

    def _set_dedup_window(self, client: Client, table: str) -> None:
        # Insert deduplication tokens only work on non-replicated MergeTree tables
        # that remember recent blocks; replicated tables remember them by default.
        engine = _first_column(
            client.query(
                "SELECT engine FROM system.tables "
                "WHERE database = {db:String} AND name = {t:String}",
                parameters={"db": self.database, "t": table},
            )
        )
        if engine and engine[0].endswith("MergeTree") and not engine[0].startswith("Replicated"):
            client.command(
                f"ALTER TABLE {self.table(table)} MODIFY SETTING "
                f"non_replicated_deduplication_window = {int(self.dedup_window)}"
            )

    def has_table(self, client: Client, name: str) -> bool:
        return bool(
            client.query(
                "SELECT 1 FROM system.tables WHERE database = {db:String} AND name = {t:String}",
                parameters={"db": self.database, "t": name},
            ).result_rows
        )


def _first_column(result) -> list:
    return [row[0] for row in result.result_rows]


def _release(lock_file) -> None:
    try:
        fcntl.flock(lock_file, fcntl.LOCK_UN)
    finally:
        lock_file.close()
