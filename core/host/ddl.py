"""Reading a plugin's ClickHouse DDL, shipped as ``table.sql`` beside its code."""

from __future__ import annotations

from importlib.resources import files

#: The columns every event table starts with (filled by :func:`core.rows.envelope_columns`).
ENVELOPE_COLUMNS_DDL = """\
event_id UUID COMMENT 'unique per event: re-deliveries share it and collapse',
    event LowCardinality(String) COMMENT 'the event name',
    timestamp DateTime64(3, 'UTC') COMMENT 'server receive time',
    user_id String COMMENT 'anonymous when the client sent no token',
    identity LowCardinality(String) COMMENT 'anonymous, verified or degraded',
    schema_version UInt16 DEFAULT 1 COMMENT 'version of the event type the data was validated by'"""


def load_ddl(package: str) -> str:
    """``table.sql`` of ``package`` (pass the plugin's ``__name__``), envelope columns filled in.

    Write ``{envelope_columns},`` as the first column of the table; ``{database}`` and
    ``{table}`` are left for the ETL to fill.
    """
    ddl = files(package).joinpath("table.sql").read_text(encoding="utf-8")
    return ddl.replace("{envelope_columns}", ENVELOPE_COLUMNS_DDL)
