"""A schema's load compiled once into plain checks: what an accepted event costs to validate.

:func:`compile_load` turns a marshmallow schema into a function that returns what
``schema.load(data)`` returns, or ``None`` when it cannot vouch for ``data``; the caller then
asks marshmallow, which decides and names the fields at fault. The compiled load never
accepts what marshmallow refuses: each field kind of ``core.host.fields`` (and marshmallow's
``String`` and ``Dict``) is checked by its own type rule followed by the field's own
validators, any other field by marshmallow's ``Field.deserialize``, and a schema with hooks
other than ``@validates_schema``, or not refusing unknown fields, is not compiled at all.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields
from marshmallow.decorators import POST_LOAD, PRE_LOAD, VALIDATES, VALIDATES_SCHEMA
from marshmallow.utils import missing
from marshmallow.validate import Length, OneOf, Range, Validator

from core.host import fields as kinds

Loaded = dict[str, Any]
#: A compiled load: the loaded data, or None when marshmallow must decide.
Load = Callable[[Any], Loaded | None]
#: One field's value converted as its field would, or :data:`_REFUSED`.
Convert = Callable[[Any], Any]

_REFUSED = object()


def compile_load(schema: Schema) -> Load:
    """The fast load of ``schema``; one that always defers to marshmallow if it has hooks
    this module does not run, or its unknown fields are not refused."""
    hooks = schema._hooks
    if (
        schema.unknown != RAISE
        or schema.many
        or schema.partial
        or hooks[PRE_LOAD]
        or hooks[POST_LOAD]
        or hooks[VALIDATES]
    ):
        return _defer
    plan = []
    for attribute, field in schema.load_fields.items():
        if "." in (field.attribute or attribute):
            return _defer  # marshmallow nests dotted attributes
        key = field.data_key if field.data_key is not None else attribute
        plan.append((key, field.attribute or attribute, field, _converter(field)))
    known = frozenset(key for key, *_ in plan)
    # Schema validators, in marshmallow's order: those passed the collection first.
    validators = [
        (getattr(schema, name), options.get("pass_original", False))
        for pass_collection in (True, False)
        for name, hook_many, options in hooks[VALIDATES_SCHEMA]
        if hook_many == pass_collection
    ]
    dict_class = schema.dict_class

    def load(data: Any) -> Loaded | None:
        if type(data) is not dict or not known.issuperset(data):
            return None
        loaded = dict_class()
        for key, attribute, field, convert in plan:
            raw = data.get(key, missing)
            if convert is None:
                # Missing, null and present values alike, as the schema would have it.
                try:
                    value = field.deserialize(raw, key, data)
                except ValidationError:
                    return None
                if value is not missing:
                    loaded[attribute] = value
                continue
            if raw is missing:
                if field.required:
                    return None
                default = field.load_default
                if default is not missing:
                    loaded[attribute] = default() if callable(default) else default
                continue
            if raw is None:
                if not field.allow_none:
                    return None
                loaded[attribute] = None
                continue
            value = convert(raw)
            if value is _REFUSED:
                return None
            loaded[attribute] = value
        for validate, pass_original in validators:
            try:
                if pass_original:
                    validate(loaded, data, partial=None, many=False, unknown=RAISE)
                else:
                    validate(loaded, partial=None, many=False, unknown=RAISE)
            except ValidationError:
                return None
        return loaded

    return load


def _defer(data: Any) -> None:
    return None


def _converter(field: fields.Field) -> Convert | None:
    """How ``field`` turns a present, non-null value into its loaded value (or refuses it);
    None: by marshmallow's own ``Field.deserialize``, as the schema would call it."""
    if field.pre_load or field.post_load:
        return None
    kind = type(field)
    rule = _RULES.get(kind)
    if kind is fields.Dict and (field.value_field is not None or not _plain_string(field)):
        rule = None
    if rule is None:
        return None
    checks = list(field.validators)
    inlined = _inlined(kind, field, checks)
    if inlined is not None:
        return inlined

    def convert(raw: Any) -> Any:
        value = rule(field, raw)
        if value is _REFUSED:
            return _REFUSED
        try:
            for check in checks:
                # marshmallow's And(): a plain callable may refuse by returning False.
                if check(value) is False and not isinstance(check, Validator):
                    return _REFUSED
        except ValidationError:
            return _REFUSED
        return value

    return convert


def _inlined(kind: type, field: fields.Field, checks: list) -> Convert | None:
    """The commonest fields (text of bounded length, one of a few strings, an integer in a
    range) as one expression each, or None: their validators are what marshmallow would run,
    read off once (``Length``, ``OneOf``, ``Range`` with both bounds inclusive)."""
    if kind in (kinds.Text, fields.String) and len(checks) == 1 and type(checks[0]) is Length:
        length = checks[0]
        if length.equal is not None:
            return None
        shortest = 0 if length.min is None else length.min
        longest = math.inf if length.max is None else length.max

        def text(raw: Any) -> Any:
            return raw if type(raw) is str and shortest <= len(raw) <= longest else _REFUSED

        return text
    if kind is kinds.Choice and len(checks) == 1 and type(checks[0]) is OneOf:
        choices = frozenset(checks[0].choices)

        def choice(raw: Any) -> Any:
            return raw if type(raw) is str and raw in choices else _REFUSED

        return choice
    if kind is kinds.Integer and all(
        type(rule) is Range and rule.min_inclusive and rule.max_inclusive for rule in checks
    ):
        lowest, highest = field._column[1:] if field._column else (-math.inf, math.inf)
        for rule in checks:
            lowest = lowest if rule.min is None else max(lowest, rule.min)
            highest = highest if rule.max is None else min(highest, rule.max)

        def integer(raw: Any) -> Any:
            return raw if type(raw) is int and lowest <= raw <= highest else _REFUSED

        return integer
    return None


def _plain_string(field: fields.Dict) -> bool:
    keys = field.key_field
    return keys is None or (
        type(keys) is fields.String
        and not keys.validators
        and not keys.pre_load
        and not keys.post_load
    )


def _string(field: Any, raw: Any) -> Any:
    return raw if type(raw) is str else _REFUSED


def _integer(field: kinds.Integer, raw: Any) -> Any:
    if type(raw) is not int:
        return _REFUSED
    column = field._column
    if column is not None and not column[1] <= raw <= column[2]:
        return _REFUSED
    return raw


def _number(field: kinds.Number, raw: Any) -> Any:
    if type(raw) is not int and type(raw) is not float:
        return _REFUSED
    try:
        value = float(raw)
    except OverflowError:
        return _REFUSED
    return value if math.isfinite(value) else _REFUSED


def _boolean(field: Any, raw: Any) -> Any:
    return raw if type(raw) is bool else _REFUSED


def _uuid(field: Any, raw: Any) -> Any:
    if type(raw) is not str:
        return _REFUSED
    try:
        return uuid.UUID(raw)
    except ValueError:
        return _REFUSED


def _timestamp(field: kinds.Timestamp, raw: Any) -> Any:
    try:
        return field._deserialize(raw, None, None)
    except ValidationError:
        return _REFUSED


def _mapping(field: fields.Dict, raw: Any) -> Any:
    if type(raw) is not dict or not all(type(key) is str for key in raw):
        return _REFUSED
    return dict(raw)


#: Field class (exactly, not a subclass) -> its type rule, as marshmallow applies it.
_RULES: dict[type, Callable[[Any, Any], Any]] = {
    fields.String: _string,
    kinds.Text: _string,
    kinds.Choice: _string,
    kinds.Integer: _integer,
    kinds.Number: _number,
    kinds.Boolean: _boolean,
    kinds.UUID: _uuid,
    kinds.Timestamp: _timestamp,
    fields.Dict: _mapping,
}
