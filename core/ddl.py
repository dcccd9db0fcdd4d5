"""Reading a plugin's ClickHouse DDL, shipped as ``table.sql`` beside its code."""

from __future__ import annotations

from importlib.resources import files


def load_ddl(package: str) -> str:
    """The text of ``table.sql`` in ``package`` (pass the plugin's ``__name__``)."""
    return files(package).joinpath("table.sql").read_text(encoding="utf-8")
