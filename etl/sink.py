"""Loading a pass's rows: one insert block per table, each with the deduplication token of
its records, so a replayed pass is dropped by ClickHouse rather than stored twice."""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterable

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import OperationalError

from etl.consume import Record
from etl.transform import INSERT_FAILED, Loaded, Rejected
from etl.warehouse import Warehouse

log = logging.getLogger(__name__)


def insert_token(topic: str, table: str, columns: Iterable[str], records: Iterable[Record]) -> str:
    """The insert deduplication token of a block: which offsets of which topic, into which table."""
    digest = hashlib.sha256(f"{topic}\n{table}\n{','.join(columns)}\n".encode())
    for record in records:
        digest.update(f"{record.partition}:{record.offset},".encode())
    return digest.hexdigest()


def load_rows(
    client: Client, warehouse: Warehouse, topic: str, loaded: Iterable[Loaded]
) -> tuple[list[Loaded], list[Rejected]]:
    """Insert the rows of ``loaded``, a block per table; what a table refuses is rejected.

    Rows of a table whose columns differ (a plugin's mapper leaving one out) go in blocks
    of their own. A server-side failure (``OperationalError``) raises: nothing is rejected
    for it, the pass fails and commits nothing.
    """
    blocks: dict[tuple[str, tuple[str, ...]], list[Loaded]] = defaultdict(list)
    # In offset order: a replay may get the partitions interleaved otherwise by Kafka, and a
    # block's token must depend on which records it holds, not on the order they came in.
    for outcome in sorted(loaded, key=lambda o: (o.record.partition, o.record.offset)):
        blocks[(outcome.table, tuple(outcome.row))].append(outcome)
    inserted: list[Loaded] = []
    failed: list[Rejected] = []
    for (table, columns), block in blocks.items():
        ok, refused = _insert_block(client, warehouse, topic, table, columns, block)
        inserted += ok
        failed += refused
    return inserted, failed


def _insert_block(
    client: Client,
    warehouse: Warehouse,
    topic: str,
    table: str,
    columns: tuple[str, ...],
    group: list[Loaded],
) -> tuple[list[Loaded], list[Rejected]]:
    """Insert ``group`` as one block; if the data is refused, row by row, refusals rejected."""
    try:
        _insert(client, warehouse, topic, table, columns, group)
        return group, []
    except OperationalError:
        raise
    except Exception as error:
        log.warning("etl.insert_failed table=%s rows=%d error=%s", table, len(group), error)
    ok: list[Loaded] = []
    failed: list[Rejected] = []
    for outcome in group:
        try:
            _insert(client, warehouse, topic, table, columns, [outcome])
            ok.append(outcome)
        except OperationalError:
            raise
        except Exception as error:
            failed.append(Rejected(outcome.record, INSERT_FAILED, f"{table}: {error}"[:2000]))
    return ok, failed


def _insert(client, warehouse, topic, table, columns, group: list[Loaded]) -> None:
    client.insert(
        warehouse.table(table),
        [[o.row[c] for c in columns] for o in group],
        column_names=list(columns),
        settings={
            "insert_deduplication_token": insert_token(
                topic, table, columns, [o.record for o in group]
            )
        },
    )
