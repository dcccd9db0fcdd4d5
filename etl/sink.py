"""Loading a pass's rows: one insert block per table and partition, each with the
deduplication token of its offset range, so a replayed range is dropped by ClickHouse
rather than stored twice; and an event the table already holds (or the pass holds twice),
published twice by the API, is not inserted again.

Records the engine maps itself (:class:`~etl.transform.Checked`) go in as their JSON, a
block per table, partition and event type; a block the engine refuses for its data goes
through the Python path instead (validated and mapped row by row), so that the refused
rows are dead-lettered with the reason and the rest is stored once.
"""

from __future__ import annotations

import hashlib
import logging
import struct
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, DataError, ProgrammingError

from core.host.json_load import INSERT_SETTINGS, OFFSET, READ_SETTINGS
from core.host.registry import Registry
from etl.consume import Record
from etl.transform import INSERT_FAILED, Checked, Loaded, Rejected, transform
from etl.warehouse import Warehouse

log = logging.getLogger(__name__)

#: The temporary tables (of the warehouse session) a JSON block passes through, by event.
STAGING_PREFIX = "_clickstream_json_"

#: What runs once a JSON block is in its table, with the staging table still holding it:
#: ``(client, staging, event, table, partition)`` (the ledger's deliveries, read from it).
BlockLoaded = Callable[[Client, str, str, str, int], None]

#: ClickHouse error codes saying that the rows of a block do not fit their table: the only
#: server answers after which a block is retried row by row and the refused rows set aside.
DATA_ERROR_CODES = frozenset(
    {
        6,  # CANNOT_PARSE_TEXT
        16,  # NO_SUCH_COLUMN_IN_TABLE
        25,  # CANNOT_PARSE_ESCAPE_SEQUENCE
        26,  # CANNOT_PARSE_QUOTED_STRING
        27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
        38,  # CANNOT_PARSE_DATE
        41,  # CANNOT_PARSE_DATETIME
        53,  # TYPE_MISMATCH
        69,  # ARGUMENT_OUT_OF_BOUND
        70,  # CANNOT_CONVERT_TYPE
        72,  # CANNOT_PARSE_NUMBER
        117,  # INCORRECT_DATA
        131,  # TOO_LARGE_STRING_SIZE
        321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
        349,  # CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
        376,  # CANNOT_PARSE_UUID
    }
)


def is_data_error(error: BaseException) -> bool:
    """True if ``error`` says the rows are at fault, False if the warehouse is.

    clickhouse-connect raises ``DatabaseError`` for every answer of the server: too many
    parts, memory, a timeout, read-only, a proxy's 503 (no ClickHouse code at all). Only
    a code of :data:`DATA_ERROR_CODES` blames the rows. Without a code, the rows are at
    fault only when the client refused to encode them (``DataError``, ``ProgrammingError``
    for an unknown column, or a plain ``ValueError``/``TypeError``/``OverflowError`` from
    its converters) before anything was sent; anything else is the server's or the network's.
    """
    if isinstance(error, DatabaseError):
        if error.code is not None:
            return error.code in DATA_ERROR_CODES
        return type(error) in (DataError, ProgrammingError)
    return isinstance(error, (ValueError, TypeError, OverflowError, struct.error))


def insert_token(
    topic: str,
    table: str,
    columns: Iterable[str],
    partition: int,
    span: tuple[int, int],
    records: Iterable[Record],
) -> str:
    """The insert deduplication token of a block: which records of which offset range
    ``span`` of which partition of which topic, into which table and columns."""
    head = f"{topic}\n{table}\n{','.join(columns)}\n{partition}:{span[0]}-{span[1]}\n"
    digest = hashlib.sha256(head.encode())
    for record in records:
        digest.update(f"{record.offset}@{record.timestamp_ms},".encode())
    return digest.hexdigest()


def load_rows(
    client: Client,
    warehouse: Warehouse,
    topic: str,
    loaded: Iterable[Loaded | Checked],
    spans: Mapping[int, tuple[int, int]],
    registry: Registry,
    block_loaded: BlockLoaded | None = None,
) -> tuple[list[Loaded | Checked], list[Rejected]]:
    """Insert the rows of ``loaded``, a block per table and partition; what a table refuses
    is rejected. ``block_loaded`` runs after each JSON block is stored.

    ``spans`` gives per partition the offset range ``[expected, next)`` the pass read. A
    block holds one table's rows from one partition's range, so a replay of that range
    makes the same block, with the same token, whatever arrived on other partitions since.
    Rows of a table whose columns differ (a plugin's mapper leaving one out) go in blocks
    of their own, and so do the :class:`Checked` records of each event type. An error that
    is not the data's (:func:`is_data_error`) raises: nothing is rejected for it, the pass
    fails and commits nothing.
    """
    blocks: dict[tuple[str, int, tuple[str, ...]], list[Loaded]] = defaultdict(list)
    json_blocks: dict[tuple[str, int, str], list[Checked]] = defaultdict(list)
    # In offset order: a replay may get the records otherwise from Kafka, and a block's
    # token must depend on which records it holds, not on the order they came in.
    rows: list[Loaded] = []
    for outcome in sorted(loaded, key=lambda o: (o.record.partition, o.record.offset)):
        if isinstance(outcome, Checked):
            json_blocks[(outcome.table, outcome.record.partition, outcome.event)].append(outcome)
        else:
            rows.append(outcome)
    inserted: list[Loaded | Checked] = []
    failed: list[Rejected] = []
    for (table, partition, event), block in json_blocks.items():
        if _insert_json(
            client,
            warehouse,
            topic,
            (table, partition, event),
            spans,
            registry,
            block,
            block_loaded,
        ):
            inserted += block
            continue
        for outcome in (transform(o.record, registry, engine=False) for o in block):
            if isinstance(outcome, Loaded):
                rows.append(outcome)
            else:
                failed.append(outcome)
    rows.sort(key=lambda o: (o.record.partition, o.record.offset))
    copies = _copies(client, warehouse, rows)
    for outcome in rows:
        if id(outcome) in copies:
            # A copy's event is stored: its delivery is recorded (the duplicate report counts it).
            inserted.append(outcome)
        else:
            blocks[(outcome.table, outcome.record.partition, tuple(outcome.row))].append(outcome)
    for (table, partition, columns), block in blocks.items():
        token = _Token(topic, table, columns, partition, spans[partition])
        ok, refused = _insert_block(client, warehouse, table, columns, block, token)
        inserted += ok
        failed += refused
    return inserted, failed


def _insert_json(
    client: Client,
    warehouse: Warehouse,
    topic: str,
    where: tuple[str, int, str],
    spans: Mapping[int, tuple[int, int]],
    registry: Registry,
    block: list[Checked],
    block_loaded: BlockLoaded | None,
) -> bool:
    """Insert ``block`` (into ``where``: table, partition, event) as its JSON, each message
    with its offset, mapped by the engine; False if the engine refuses it for its data
    (nothing of it is stored then)."""
    table, partition, event = where
    json = registry.json_insert(event)
    records = [o.record for o in block]
    token = insert_token(topic, table, json.columns, partition, spans[partition], records)
    staging = f"{STAGING_PREFIX}{event}"
    head = b'{"' + OFFSET.encode() + b'":'
    body = b"\n".join(head + b"%d," % r.offset + r.value[1:] for r in records)
    client.command(f"DROP TEMPORARY TABLE IF EXISTS {staging}")
    client.command(json.staging_ddl(staging))
    try:
        client.raw_insert(staging, None, body, settings=READ_SETTINGS, fmt="JSONEachRow")
        client.command(
            json.insert_from(warehouse.table(table), staging),
            settings={**INSERT_SETTINGS, "insert_deduplication_token": token},
        )
    except Exception as error:
        if not is_data_error(error):
            raise
        log.warning(
            "etl.json_block_refused table=%s event=%s rows=%d error=%s: loading it row by row",
            table, event, len(block), str(error)[:500],
        )  # fmt: skip
        return False
    else:
        if block_loaded is not None:
            block_loaded(client, staging, event, table, partition)
        return True
    finally:
        client.command(f"DROP TEMPORARY TABLE IF EXISTS {staging}")


def _copies(client: Client, warehouse: Warehouse, ordered: list[Loaded]) -> set[int]:
    """The ``id()`` of each outcome whose event is already in its table, or earlier in
    ``ordered``.

    The API can publish one event twice (a send that timed out yet reached Kafka, then
    spooled and replayed): two records, one ``event_id``. Both copies carry the same server
    ``timestamp`` and ``user_id``, which bound the look-up to the sort key's first columns.
    A replayed pass finds what its crashed run inserted here and leaves it out, too.
    """
    by_table: dict[str, list[Loaded]] = defaultdict(list)
    for outcome in ordered:
        by_table[outcome.table].append(outcome)
    copies: set[int] = set()
    for table, outcomes in by_table.items():
        found = client.query(
            f"SELECT DISTINCT event_id FROM {warehouse.table(table)} "
            "WHERE toDate(timestamp) IN {days:Array(Date)} AND user_id IN {users:Array(String)} "
            "AND event_id IN {ids:Array(UUID)}",
            parameters={
                "days": sorted({o.timestamp.date() for o in outcomes}),
                "users": sorted({str(o.row["user_id"]) for o in outcomes}),
                "ids": sorted({o.event_id for o in outcomes}),
            },
        ).result_rows
        seen = {row[0] for row in found}
        for outcome in outcomes:
            if outcome.event_id in seen:
                copies.add(id(outcome))
            seen.add(outcome.event_id)
    return copies


@dataclass(frozen=True)
class _Token:
    topic: str
    table: str
    columns: tuple[str, ...]
    partition: int
    span: tuple[int, int]

    def of(self, group: list[Loaded]) -> str:
        return insert_token(
            self.topic,
            self.table,
            self.columns,
            self.partition,
            self.span,
            [o.record for o in group],
        )


def _insert_block(
    client: Client,
    warehouse: Warehouse,
    table: str,
    columns: tuple[str, ...],
    group: list[Loaded],
    token: _Token,
) -> tuple[list[Loaded], list[Rejected]]:
    """Insert ``group`` as one block; if the data is refused, row by row, refusals rejected."""
    try:
        _insert(client, warehouse, table, columns, group, token)
        return group, []
    except Exception as error:
        if not is_data_error(error):
            raise
        log.warning("etl.insert_failed table=%s rows=%d error=%s", table, len(group), error)
    ok: list[Loaded] = []
    failed: list[Rejected] = []
    for outcome in group:
        try:
            _insert(client, warehouse, table, columns, [outcome], token)
            ok.append(outcome)
        except Exception as error:
            if not is_data_error(error):
                raise
            failed.append(Rejected(outcome.record, INSERT_FAILED, f"{table}: {error}"[:2000]))
    return ok, failed


def _insert(client, warehouse, table, columns, group: list[Loaded], token: _Token) -> None:
    client.insert(
        warehouse.table(table),
        [[o.row[c] for c in columns] for o in group],
        column_names=list(columns),
        settings={"insert_deduplication_token": token.of(group)},
    )
