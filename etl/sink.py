"""Loading a pass's rows: one insert block per table and partition, each with the
deduplication token of its offset range, so a replayed range is dropped by ClickHouse
rather than stored twice; and an event the table already holds (or the pass holds twice),
published twice by the API, is not inserted again."""

from __future__ import annotations

import hashlib
import logging
import struct
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, DataError, ProgrammingError

from etl.consume import Record
from etl.transform import INSERT_FAILED, Loaded, Rejected
from etl.warehouse import Warehouse

log = logging.getLogger(__name__)

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
    loaded: Iterable[Loaded],
    spans: Mapping[int, tuple[int, int]],
) -> tuple[list[Loaded], list[Rejected]]:
    """Insert the rows of ``loaded``, a block per table and partition; what a table refuses
    is rejected.

    ``spans`` gives per partition the offset range ``[expected, next)`` the pass read. A
    block holds one table's rows from one partition's range, so a replay of that range
    makes the same block, with the same token, whatever arrived on other partitions since.
    Rows of a table whose columns differ (a plugin's mapper leaving one out) go in blocks
    of their own. An error that is not the data's (:func:`is_data_error`) raises: nothing
    is rejected for it, the pass fails and commits nothing.
    """
    blocks: dict[tuple[str, int, tuple[str, ...]], list[Loaded]] = defaultdict(list)
    # In offset order: a replay may get the records otherwise from Kafka, and a block's
    # token must depend on which records it holds, not on the order they came in.
    ordered = sorted(loaded, key=lambda o: (o.record.partition, o.record.offset))
    copies = _copies(client, warehouse, ordered)
    for outcome in ordered:
        if id(outcome) not in copies:
            blocks[(outcome.table, outcome.record.partition, tuple(outcome.row))].append(outcome)
    # A copy's event is stored: its delivery is recorded (the duplicate report counts it).
    inserted: list[Loaded] = [outcome for outcome in ordered if id(outcome) in copies]
    failed: list[Rejected] = []
    for (table, partition, columns), block in blocks.items():
        token = _Token(topic, table, columns, partition, spans[partition])
        ok, refused = _insert_block(client, warehouse, table, columns, block, token)
        inserted += ok
        failed += refused
    return inserted, failed


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
