"""Deletion on request (``clickstream forget``): a person's events, identity links, dead
letters and delivery rows deleted from the warehouse, the request audited without the ids,
and the ids kept hashed so that the ETL never loads that person's older events again.

docs/privacy.md says what this covers and what it cannot (Kafka keeps its copy until retention).
"""

from __future__ import annotations

import getpass
import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
from clickhouse_connect.driver.client import Client

from core.config import Settings
from core.host.registry import Registry
from core.message import ANONYMOUS, parse_timestamp
from etl import ledger
from etl.transform import Checked, Loaded, Outcome, Rejected
from etl.warehouse import Warehouse

#: The kinds of id the ``forgotten`` table holds. A ``linked_anonymous_id`` is a browser's id
#: found linked to a forgotten user: its logged-out events are that person's, but another
#: user who logged in on the same browser keeps the events that carry their own user id.
USER_ID = "user_id"
ANONYMOUS_ID = "anonymous_id"
LINKED_ANONYMOUS_ID = "linked_anonymous_id"
#: The ETL's table of (anonymous_id, user_id) links, once identity stitching fills it.
IDENTITY_LINKS = "identity_links"
DEAD_LETTERS = "dead_letters"
DELIVERIES = "event_deliveries"
#: Longest id accepted: the envelope's own ids are far shorter.
MAX_ID_LENGTH = 256


class ForgetError(ValueError):
    """A request that cannot be carried out as given (no id, or the anonymous placeholder)."""


def id_hash(value: str) -> str:
    """How an id is kept once forgotten: its SHA-256, in hex."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ForgetResult:
    """What one request did: rows deleted per table (``dead_letters``, ``event_deliveries``,
    ``identity_links`` and each event table), and dead letters that are not JSON, which no
    id can be read from and which were therefore left (``clickstream deadletters`` lists them)."""

    request_id: str
    requested_at: datetime
    requested_by: str
    user_id_hashes: list[str]
    anonymous_id_hashes: list[str]
    linked_anonymous_ids: int
    deleted: dict[str, int] = field(default_factory=dict)
    unreadable_dead_letters: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.deleted.values())


def _checked(ids: Iterable[str], kind: str) -> list[str]:
    unique = sorted({value for value in ids})
    for value in unique:
        if not value or len(value) > MAX_ID_LENGTH:
            raise ForgetError(f"a {kind} is 1 to {MAX_ID_LENGTH} characters")
    return unique


def forget(
    settings: Settings,
    registry: Registry,
    *,
    user_ids: Sequence[str] = (),
    anonymous_ids: Sequence[str] = (),
    requested_by: str | None = None,
) -> ForgetResult:
    """Delete every row of these persons; record the request and their hashed ids. Idempotent:
    a second request for the same ids deletes nothing and is recorded too."""
    users = _checked(user_ids, "user id")
    anonymous = _checked(anonymous_ids, "anonymous id")
    if not users and not anonymous:
        raise ForgetError("forget needs at least one --user-id or --anonymous-id")
    if ANONYMOUS.user_id in users:
        raise ForgetError(
            f"{ANONYMOUS.user_id!r} is the user id of every logged-out event, not a person's: "
            "forget a browser by its --anonymous-id"
        )
    warehouse = Warehouse.from_settings(settings)
    requested_at = datetime.now(UTC)
    with warehouse.session() as client:
        warehouse.ensure_schema(client, registry, ledger.TABLES)
        linked = _linked_anonymous_ids(client, warehouse, users, anonymous)
        ids = {"users": users, "anonymous": anonymous, "linked": linked}
        columns = _columns(client, warehouse, [*registry.tables(), IDENTITY_LINKS])
        deleted: dict[str, int] = {}
        notes: list[str] = []
        # Deliveries first: they are found through the event rows about to go.
        deliveries = 0
        event_conditions = {}
        for table in registry.tables():
            condition = _event_condition(columns.get(table, set()))
            if condition is None:
                continue
            event_conditions[table] = condition
            deliveries += _delete(
                client,
                warehouse,
                DELIVERIES,
                f"target_table = {{table:String}} AND event_id IN "
                f"(SELECT event_id FROM {warehouse.table(table)} WHERE {condition})",
                {**ids, "table": table},
            )
        deleted[DELIVERIES] = deliveries
        for table, condition in event_conditions.items():
            deleted[table] = _delete(client, warehouse, table, condition, ids)
        deleted[IDENTITY_LINKS] = _delete(
            client,
            warehouse,
            IDENTITY_LINKS,
            "user_id IN {users:Array(String)} OR anonymous_id IN {anonymous:Array(String)}",
            ids,
        )
        deleted[DEAD_LETTERS] = _delete(client, warehouse, DEAD_LETTERS, DEAD_LETTER_MATCH, ids)
        unreadable = client.query(
            f"SELECT count() FROM {warehouse.table(DEAD_LETTERS)} WHERE NOT isValidJSON(payload)"
        ).result_rows[0][0]
        if unreadable:
            notes.append(
                f"{unreadable} dead letter(s) are not JSON, so no id can be read from them: "
                "they were left (clickstream deadletters lists them)"
            )
        result = ForgetResult(
            request_id=str(uuid.uuid4()),
            requested_at=requested_at,
            requested_by=requested_by or _os_user(),
            user_id_hashes=[id_hash(value) for value in users],
            anonymous_id_hashes=[id_hash(value) for value in anonymous],
            linked_anonymous_ids=len(linked),
            deleted=deleted,
            unreadable_dead_letters=unreadable,
            notes=notes,
        )
        _record(client, warehouse, result, linked)
    return result


#: A dead letter's payload is the Kafka message as it came, so its ids are read from its JSON.
DEAD_LETTER_MATCH = (
    "JSONExtractString(payload, 'user_id') IN {users:Array(String)} "
    "OR JSONExtractString(payload, 'anonymous_id') IN {anonymous:Array(String)} "
    "OR (JSONExtractString(payload, 'anonymous_id') IN {linked:Array(String)} "
    f"AND JSONExtractString(payload, 'user_id') IN ('{ANONYMOUS.user_id}', ''))"
)


def _event_condition(columns: set[str]) -> str | None:
    """Which rows of an event table with these columns are the person's; None if it has no id."""
    if "user_id" not in columns:
        return None
    condition = "user_id IN {users:Array(String)}"
    if ANONYMOUS_ID in columns:
        condition += (
            " OR anonymous_id IN {anonymous:Array(String)}"
            " OR (anonymous_id IN {linked:Array(String)}"
            f" AND user_id = '{ANONYMOUS.user_id}')"
        )
    return condition


def _columns(client: Client, warehouse: Warehouse, tables: list[str]) -> dict[str, set[str]]:
    """The columns of those of ``tables`` that exist, by table."""
    found: dict[str, set[str]] = {}
    for table, column in client.query(
        "SELECT table, name FROM system.columns WHERE database = {db:String} "
        "AND table IN {tables:Array(String)}",
        parameters={"db": warehouse.database, "tables": tables},
    ).result_rows:
        found.setdefault(table, set()).add(column)
    return found


def _linked_anonymous_ids(
    client: Client, warehouse: Warehouse, users: list[str], anonymous: list[str]
) -> list[str]:
    if not users or not warehouse.has_table(client, IDENTITY_LINKS):
        return []
    rows = client.query(
        f"SELECT DISTINCT anonymous_id FROM {warehouse.table(IDENTITY_LINKS)} "
        "WHERE user_id IN {users:Array(String)}",
        parameters={"users": users},
    ).result_rows
    return sorted({row[0] for row in rows} - set(anonymous))


def _delete(client: Client, warehouse: Warehouse, table: str, condition: str, ids: dict) -> int:
    """Count, then delete, the rows of ``table`` matching ``condition``; the count is returned.

    A lightweight ``DELETE``: the rows disappear from every query at once (chDB and servers
    run it synchronously by default, ``lightweight_deletes_sync = 2``); the parts are
    rewritten without them by later merges (docs/privacy.md).
    """
    name = warehouse.table(table)
    count = client.query(f"SELECT count() FROM {name} WHERE {condition}", parameters=ids)
    found = count.result_rows[0][0]
    if found:
        client.command(
            f"DELETE FROM {name} WHERE {condition} SETTINGS lightweight_deletes_sync = 2",
            parameters=ids,
        )
    return found


def _record(client: Client, warehouse: Warehouse, result: ForgetResult, linked: list[str]) -> None:
    client.insert(
        warehouse.table("forget_requests"),
        [
            [
                uuid.UUID(result.request_id),
                result.requested_at,
                result.requested_by,
                result.user_id_hashes,
                result.anonymous_id_hashes,
                result.linked_anonymous_ids,
                result.deleted,
                result.total,
                result.unreadable_dead_letters,
            ]
        ],
        column_names=[
            "request_id",
            "requested_at",
            "requested_by",
            "user_id_sha256",
            "anonymous_id_sha256",
            "linked_anonymous_ids",
            "deleted",
            "deleted_total",
            "unreadable_dead_letters",
        ],
    )
    kinds = [
        *((USER_ID, value) for value in result.user_id_hashes),
        *((ANONYMOUS_ID, value) for value in result.anonymous_id_hashes),
        *((LINKED_ANONYMOUS_ID, id_hash(value)) for value in linked),
    ]
    client.insert(
        warehouse.table("forgotten"),
        [
            [kind, digest, uuid.UUID(result.request_id), result.requested_at]
            for kind, digest in kinds
        ],
        column_names=["kind", "id_sha256", "request_id", "forgotten_at"],
    )


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (some containers)
        return "unknown"


# What the ETL asks before loading: is this event of a forgotten person?


@dataclass(frozen=True)
class Forgotten:
    """Hashed ids forgotten, by kind, each with when: the ETL drops a message of such a
    person that was received before then (a replay of Kafka, or a late record), and loads
    the events received after it."""

    by_kind: dict[str, dict[str, datetime]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return any(self.by_kind.values())

    def covers(self, user_id: object, anonymous_id: object, timestamp: datetime | None) -> bool:
        """Whether a message with these ids and server ``timestamp`` (None: unreadable) is
        of a forgotten person, received before they were forgotten."""
        checks = [(USER_ID, user_id), (ANONYMOUS_ID, anonymous_id)]
        if user_id == ANONYMOUS.user_id or user_id in (None, ""):
            checks.append((LINKED_ANONYMOUS_ID, anonymous_id))
        for kind, value in checks:
            if isinstance(value, str) and value:
                when = self.by_kind.get(kind, {}).get(id_hash(value))
                if when is not None and (timestamp is None or timestamp <= when):
                    return True
        return False


def load_forgotten(client: Client, warehouse: Warehouse) -> Forgotten:
    """Every forgotten id (hashed), with the time of its latest request."""
    if not warehouse.has_table(client, "forgotten"):
        return Forgotten()
    by_kind: dict[str, dict[str, datetime]] = {}
    for kind, digest, when in client.query(
        f"SELECT kind, id_sha256, max(forgotten_at) FROM {warehouse.table('forgotten')} "
        "GROUP BY kind, id_sha256"
    ).result_rows:
        by_kind.setdefault(kind, {})[digest] = when if when.tzinfo else when.replace(tzinfo=UTC)
    return Forgotten(by_kind)


def drop_forgotten(outcomes: list[Outcome], forgotten: Forgotten) -> tuple[list[Outcome], int]:
    """``outcomes`` without the forgotten persons' rows and would-be dead letters, and how
    many were dropped. A dropped record is committed past like any other, and stored nowhere."""
    if not forgotten:
        return outcomes, 0
    kept = [outcome for outcome in outcomes if not _of_forgotten(outcome, forgotten)]
    return kept, len(outcomes) - len(kept)


def _of_forgotten(outcome: Outcome, forgotten: Forgotten) -> bool:
    if isinstance(outcome, Loaded):
        row = outcome.row
        return forgotten.covers(row.get("user_id"), row.get(ANONYMOUS_ID), outcome.timestamp)
    if isinstance(outcome, Checked):
        return forgotten.covers(outcome.user_id, outcome.anonymous_id, outcome.timestamp)
    if isinstance(outcome, Rejected):
        try:
            message = orjson.loads(outcome.record.value or b"")
        except orjson.JSONDecodeError:
            return False
        if not isinstance(message, dict):
            return False
        try:
            timestamp = parse_timestamp(message["timestamp"])
        except (KeyError, TypeError, ValueError, AttributeError):
            timestamp = None
        return forgotten.covers(message.get("user_id"), message.get(ANONYMOUS_ID), timestamp)
    return False
