"""Errors a client sees: a status, a code, a message and the fields at fault."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ApiError(Exception):
    """An answer to the client other than success; rendered as JSON in one place."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Mapping[str, list[str]] | None = None,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = dict(details or {})
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, "details": self.details, **self.extra}


def flatten_messages(messages: Any, path: str = "") -> dict[str, list[str]]:
    """marshmallow's nested error messages as ``{"data.field": ["message", ...]}``.

    Schema-level messages (marshmallow's ``_schema`` key) are filed under the
    object they concern, or under ``_schema`` at the top.
    """
    flat: dict[str, list[str]] = {}
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            child = path if key == "_schema" and path else ".".join(filter(None, [path, str(key)]))
            for field, texts in flatten_messages(value, child).items():
                flat.setdefault(field, []).extend(texts)
    elif isinstance(messages, list | tuple):
        for item in messages:
            for field, texts in flatten_messages(item, path).items():
                flat.setdefault(field, []).extend(texts)
    else:
        flat[path or "_schema"] = [str(messages)]
    return flat
