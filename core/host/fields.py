"""Strict marshmallow fields for JSON events: no silent coercion of types."""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

#: Upper bound on any free-text field unless a plugin chooses a smaller one.
MAX_TEXT = 1024


class StrictBoolean(fields.Boolean):
    """A JSON ``true`` or ``false``; ``1``, ``"yes"`` and friends are refused."""

    def _deserialize(self, value: Any, attr, data, **kwargs) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class StrictInteger(fields.Integer):
    """A JSON integer; floats, numeric strings and booleans are refused."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value: Any, attr, data, **kwargs) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


def Text(*, max_length: int = MAX_TEXT, allow_empty: bool = False, **kwargs: Any) -> fields.String:
    """A string of at most ``max_length`` characters, non-empty unless ``allow_empty``."""
    return fields.String(
        validate=validate.Length(min=0 if allow_empty else 1, max=max_length), **kwargs
    )


def PositiveInteger(**kwargs: Any) -> StrictInteger:
    """A JSON integer >= 1."""
    return StrictInteger(validate=validate.Range(min=1), **kwargs)
