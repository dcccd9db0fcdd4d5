"""Reading a plugin's ClickHouse DDL, shipped as ``table.sql`` beside its code."""

from __future__ import annotations

from importlib.resources import files

from core.message import ENVELOPE_COLUMNS_DDL


def load_ddl(package: str) -> str:
    """``table.sql`` of ``package`` (pass the plugin's ``__name__``), envelope columns filled in.

    Write ``{envelope_columns},`` as the first column of the table; ``{database}`` and
    ``{table}`` are left for the ETL to fill.
    """
    ddl = files(package).joinpath("table.sql").read_text(encoding="utf-8")
    return ddl.replace("{envelope_columns}", ENVELOPE_COLUMNS_DDL)
