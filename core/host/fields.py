"""The field kinds of an event's schema: strict about JSON types, and each knowing its column.

Every kind is a marshmallow field that refuses silent coercion (``"7"`` is not an integer,
``1`` is not ``true``), composes a ``validate=`` of its author's with its own rules, and
names the ClickHouse type of its column (:meth:`column_type`), from which core.host.ddl
writes the table.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from marshmallow import ValidationError, fields
from marshmallow.validate import Length, OneOf, Range

#: Upper bound on any free-text field unless a plugin chooses a smaller one.
MAX_TEXT = 1024

Validator = Callable[[Any], Any]
Validators = Validator | Iterable[Validator] | None

#: ClickHouse's widest integer types, with the values each holds.
UINT64 = ("UInt64", 0, 2**64 - 1)
INT64 = ("Int64", -(2**63), 2**63 - 1)
#: All of its integer types, unsigned before signed, narrowest first.
INTEGER_TYPES = (
    ("UInt8", 0, 2**8 - 1),
    ("UInt16", 0, 2**16 - 1),
    ("UInt32", 0, 2**32 - 1),
    UINT64,
    ("Int8", -(2**7), 2**7 - 1),
    ("Int16", -(2**15), 2**15 - 1),
    ("Int32", -(2**31), 2**31 - 1),
    INT64,
)
#: What a ``DateTime64(3)`` column holds.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2299, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)


def compose(own: Sequence[Validator], extra: Validators) -> list[Validator]:
    """A kind's own validators followed by its author's (one callable, several, or none)."""
    if extra is None:
        return list(own)
    if callable(extra):
        return [*own, extra]
    return [*own, *extra]


class Text(fields.String):
    """A string of at most ``max_length`` characters, non-empty unless ``allow_empty``.

    The length counts characters, not bytes. ``low_cardinality=True`` stores it as
    ``LowCardinality(String)``: for a text with few distinct values (a page type), not
    a fixed set (that is :class:`Choice`).
    """

    def __init__(
        self,
        *,
        max_length: int = MAX_TEXT,
        allow_empty: bool = False,
        low_cardinality: bool = False,
        validate: Validators = None,
        **kwargs: Any,
    ) -> None:
        length = Length(min=0 if allow_empty else 1, max=max_length)
        super().__init__(validate=compose([length], validate), **kwargs)
        self.low_cardinality = low_cardinality

    def column_type(self) -> str:
        return "LowCardinality(String)" if self.low_cardinality else "String"


class Choice(fields.String):
    """A string that is one of ``values`` (``Choice(("auto", "manual"))``)."""

    def __init__(self, values: Iterable[str], *, validate: Validators = None, **kwargs: Any):
        values = tuple(values)
        if not values or not all(isinstance(value, str) and value for value in values):
            raise ValueError(f"Choice needs one or more non-empty strings, not {values!r}")
        self.values = values
        super().__init__(validate=compose([OneOf(values)], validate), **kwargs)

    def column_type(self) -> str:
        return "LowCardinality(String)"


class Integer(fields.Integer):
    """A JSON integer from ``min`` to ``max`` (inclusive; either may be left out).

    Floats, numeric strings and booleans are refused. The column is the narrowest
    ClickHouse integer holding every value the bounds allow (``UInt8`` for 1 to 10,
    ``Int64`` when unbounded), and a value outside that type is refused too. Bounds
    given as ``validate=validate.Range(...)`` count the same as ``min`` and ``max``.
    """

    def __init__(
        self,
        *,
        min: int | None = None,
        max: int | None = None,
        validate: Validators = None,
        **kwargs: Any,
    ) -> None:
        own = [] if min is None and max is None else [Range(min=min, max=max)]
        super().__init__(strict=True, validate=compose(own, validate), **kwargs)
        self._column = _integer_column(*_bounds(self.validators))

    def _deserialize(self, value: Any, attr, data, **kwargs) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        number = super()._deserialize(value, attr, data, **kwargs)
        if self._column is not None and not self._column[1] <= number <= self._column[2]:
            raise ValidationError(f"Must be from {self._column[1]} to {self._column[2]}.")
        return number

    def column_type(self) -> str:
        if self._column is None:
            lowest, highest = _bounds(self.validators)
            raise ValueError(f"no ClickHouse integer holds every value from {lowest} to {highest}")
        return self._column[0]


#: The name of :class:`Integer` before it took bounds; the two are one kind.
StrictInteger = Integer


def PositiveInteger(**kwargs: Any) -> Integer:
    """A JSON integer >= 1."""
    return Integer(min=1, **kwargs)


class Number(fields.Float):
    """A JSON number (integer or not) from ``min`` to ``max``, stored as ``Float64``.

    Strings and booleans are refused, and so are NaN and the infinities.
    """

    def __init__(
        self,
        *,
        min: float | None = None,
        max: float | None = None,
        validate: Validators = None,
        **kwargs: Any,
    ) -> None:
        own = [] if min is None and max is None else [Range(min=min, max=max)]
        super().__init__(allow_nan=False, validate=compose(own, validate), **kwargs)

    def _deserialize(self, value: Any, attr, data, **kwargs) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)

    def column_type(self) -> str:
        return "Float64"


class Boolean(fields.Boolean):
    """A JSON ``true`` or ``false``; ``1``, ``"yes"`` and friends are refused."""

    def _deserialize(self, value: Any, attr, data, **kwargs) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value

    def column_type(self) -> str:
        return "Bool"


#: The name of :class:`Boolean` from before the field kinds had plain names.
StrictBoolean = Boolean


class UUID(fields.UUID):
    """A UUID written as a JSON string (``"7f1d2c3b-4a5e-4f60-8172-93a4b5c6d7e8"``);
    loaded as a :class:`uuid.UUID`."""

    def _deserialize(self, value: Any, attr, data, **kwargs) -> uuid.UUID:
        if not isinstance(value, str):
            raise self.make_error("invalid_uuid")
        return super()._deserialize(value, attr, data, **kwargs)

    def column_type(self) -> str:
        return "UUID"


class Timestamp(fields.DateTime):
    """A moment as an ISO 8601 string with its time zone (``"2026-11-28T10:00:00.123Z"``).

    Loaded as an aware :class:`datetime.datetime` in UTC, stored to the millisecond as
    ``DateTime64(3, 'UTC')``. A time without a zone is refused: it names no moment.
    """

    default_error_messages = {
        "invalid": "Not an ISO 8601 date and time with a time zone.",
        "out_of_range": "Must be from 1900-01-01 to 2299-12-31.",
    }

    def _deserialize(self, value: Any, attr, data, **kwargs) -> datetime:
        if not isinstance(value, str):
            raise self.make_error("invalid")
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise self.make_error("invalid") from None
        if moment.tzinfo is None:
            raise self.make_error("invalid")
        moment = moment.astimezone(UTC)
        if not EARLIEST <= moment <= LATEST:
            raise self.make_error("out_of_range")
        return moment

    def column_type(self) -> str:
        return "DateTime64(3, 'UTC')"


def _bounds(validators: Iterable[Validator]) -> tuple[int | None, int | None]:
    """The smallest and largest integers every ``Range`` among ``validators`` lets through."""
    lowest = highest = None
    for rule in validators:
        if not isinstance(rule, Range):
            continue
        if rule.min is not None:
            low = math.ceil(rule.min) if rule.min_inclusive else math.floor(rule.min) + 1
            lowest = low if lowest is None else max(lowest, low)
        if rule.max is not None:
            high = math.floor(rule.max) if rule.max_inclusive else math.ceil(rule.max) - 1
            highest = high if highest is None else min(highest, high)
    return lowest, highest


def _integer_column(lowest: int | None, highest: int | None) -> tuple[str, int, int] | None:
    """The narrowest integer type holding ``lowest`` to ``highest`` (None: unbounded), if any.

    Unsigned when no negative value is allowed; a missing bound takes the widest type.
    """
    if lowest is None:
        candidates = [INT64]
    elif highest is None:
        candidates = [UINT64 if lowest >= 0 else INT64]
    else:
        candidates = list(INTEGER_TYPES)
    for name, smallest, largest in candidates:
        if (lowest is None or lowest >= smallest) and (highest is None or highest <= largest):
            return name, smallest, largest
    return None
