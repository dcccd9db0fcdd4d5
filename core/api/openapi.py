"""The OpenAPI document, generated with apispec from the installed plugins' schemas, and
the fragment of it that one plugin's event types make.

``python -m core.api.openapi > docs/openapi.json`` refreshes the project's published copy,
which describes the built-in event types (``plugins/``); a plugin kept elsewhere publishes
its own fragment (``clickstream openapi --plugin NAME``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema, fields

from core.host.registry import Registry
from core.message import MAX_CLIENT_ID, MAX_TOKEN_LENGTH, TOKEN_PATTERN, EnvelopeSchema

TITLE = "clickstream"
VERSION = "1.0.0"
#: Where each event variant states its type's ``version`` (``clickstream schema-check`` reads it).
VERSION_KEY = "x-schema-version"
ACCEPTED = "Accepted: the broker acknowledged the event."


class AcceptedSchema(Schema):
    event_id = fields.UUID(
        required=True, metadata={"description": "Unique id of the stored event, for deduplication."}
    )


class ErrorSchema(Schema):
    error = fields.String(required=True, metadata={"description": "Machine-readable error code."})
    message = fields.String(
        required=True, metadata={"description": "What went wrong, for a reader."}
    )
    details = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        required=True,
        metadata={"description": "Messages per field at fault, e.g. `data.video_id`."},
    )
    known_events = fields.List(
        fields.String(), metadata={"description": "With `unknown_event`: the accepted names."}
    )
    retry_after = fields.Integer(
        metadata={"description": "With `rate_limited`: seconds to wait, as in `Retry-After`."}
    )


class EventResultSchema(Schema):
    status = fields.Integer(
        required=True, metadata={"description": "202 when stored, else the status of the error."}
    )
    event_id = fields.UUID(metadata={"description": "With 202: the id of the stored event."})
    error = fields.String(metadata={"description": "Otherwise: the error code."})
    message = fields.String(metadata={"description": "Otherwise: what went wrong."})
    details = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "Otherwise: messages per field at fault."},
    )
    known_events = fields.List(
        fields.String(), metadata={"description": "With `unknown_event`: the accepted names."}
    )
    retry_after = fields.Integer(
        metadata={"description": "With `rate_limited`: seconds to wait before resending it."}
    )


class BatchResultSchema(Schema):
    accepted = fields.Integer(required=True, metadata={"description": "Events stored."})
    rejected = fields.Integer(required=True, metadata={"description": "Events refused."})
    results = fields.List(
        fields.Nested(EventResultSchema),
        required=True,
        metadata={"description": "One result per element of the request, in order."},
    )


ERRORS = {
    400: "The body is not JSON (invalid UTF-8, a repeated key, NaN, nesting too deep, "
    "bad gzip), or not a JSON object.",
    401: "A token was sent and the auth service (or local verification) rejected it.",
    413: "The body is larger than the configured limit.",
    415: "Unsupported content type or charset.",
    422: "The event failed validation: unknown event, missing, unexpected or mistyped fields.",
    429: "Over a rate limit (when configured); retry after `Retry-After` seconds.",
    503: "Kafka did not acknowledge the event; retry after `Retry-After` seconds.",
}


def _component(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def build_spec(registry: Registry) -> dict[str, Any]:
    """The OpenAPI 3 document of the API for the event types in ``registry``."""
    spec = APISpec(
        title=TITLE,
        version=VERSION,
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={
            "description": "Collects product analytics events and stores them in ClickHouse. "
            "Each event type is one variant of the request body, chosen by `event`."
        },
    )
    spec.components.schema("Accepted", schema=AcceptedSchema)
    spec.components.schema("Error", schema=ErrorSchema)
    spec.components.schema("BatchResult", schema=BatchResultSchema)
    variants = {}
    examples = {}
    for event_type in registry:
        name = _component(event_type.name)
        spec.components.schema(f"{name}Data", schema=event_type.schema)
        spec.components.schema(
            f"{name}Event",
            {
                "type": "object",
                "description": event_type.description,
                VERSION_KEY: event_type.version,
                "required": ["event", "data"],
                "additionalProperties": False,
                "properties": {
                    "event": {"type": "string", "enum": [event_type.name]},
                    "token": _token_property(),
                    "data": {"$ref": f"#/components/schemas/{name}Data"},
                    **_visitor_properties(),
                },
            },
        )
        variants[event_type.name] = f"#/components/schemas/{name}Event"
        examples[event_type.name] = {
            "summary": event_type.description or event_type.name,
            "value": {"event": event_type.name, "token": None, "data": dict(event_type.example)},
        }
    event_schema = {
        "oneOf": [{"$ref": ref} for ref in variants.values()],
        "discriminator": {"propertyName": "event", "mapping": variants},
    }
    responses = {
        str(status): {
            "description": text,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for status, text in ERRORS.items()
    }
    spec.path(
        path="/api/v1/events",
        operations={
            "post": {
                "summary": "Send one event",
                "description": "Validated against its type's schema, enriched with `user_id`, "
                "`timestamp` and `event_id`, and stored in Kafka before the 202 answer. "
                "The body may also be sent as `text/plain` (what `navigator.sendBeacon` sends) "
                "and gzip-compressed with `Content-Encoding: gzip` (the limit applies to the "
                "decompressed size); both hold for the batch endpoint too.",
                "operationId": "postEvent",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": event_schema,
                            "examples": examples,
                        }
                    },
                },
                "responses": {
                    "202": {
                        "description": ACCEPTED,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/Accepted"}
                            }
                        },
                    },
                    **responses,
                },
            }
        },
    )
    spec.path(
        path="/api/v1/events/batch",
        operations={
            "post": {
                "summary": "Send up to `CLICKSTREAM_MAX_BATCH_EVENTS` events at once",
                "description": "Each element is validated, resolved and stored on its own, "
                "exactly as by `POST /api/v1/events`; the answer has one result per element, "
                "in order. Resend only the elements whose status is not 202.",
                "operationId": "postEventBatch",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "array",
                                "minItems": 1,
                                "items": {
                                    "description": "An event, as the body of "
                                    "`POST /api/v1/events`; an element that is not one gets "
                                    "an error result of its own, the others are stored."
                                },
                            },
                            "example": [example["value"] for example in examples.values()],
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "The batch was read; see each element's result.",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/BatchResult"}
                            }
                        },
                    },
                    **{code: responses[code] for code in ("400", "413", "415", "422", "429")},
                },
            }
        },
    )
    for path, summary in (("/health/live", "Liveness"), ("/health/ready", "Readiness")):
        spec.path(
            path=path,
            operations={
                "get": {
                    "summary": summary,
                    "responses": {
                        "200": {"description": "OK"},
                        "503": {"description": "Not ready"},
                    },
                }
            },
        )
    return spec.to_dict()


def _token_property() -> dict[str, Any]:
    return {
        "type": "string",
        "nullable": True,
        "minLength": 1,
        "maxLength": MAX_TOKEN_LENGTH,
        "pattern": TOKEN_PATTERN,
        "description": "The user's JWT, or null (or absent) for an anonymous user.",
    }


def _visitor_properties() -> dict[str, Any]:
    """The optional fields of the envelope that say which visitor and visit sent the event."""
    envelope = EnvelopeSchema().fields
    text = {"type": "string", "nullable": True, "minLength": 1, "maxLength": MAX_CLIENT_ID}
    return {
        "anonymous_id": {**text, "description": envelope["anonymous_id"].metadata["description"]},
        "session_id": {**text, "description": envelope["session_id"].metadata["description"]},
        "sent_at": {
            "type": "string",
            "format": "date-time",
            "nullable": True,
            "description": envelope["sent_at"].metadata["description"],
        },
    }


def fragment(registry: Registry, events: Iterable[str]) -> dict[str, Any]:
    """The part of ``registry``'s document that ``events`` (one plugin's event types) make.

    Each event's variant of the request body, the schemas it refers to and its example,
    exactly as in the whole document, under the same paths, so that
    :func:`core.api.compat.compare` reads a fragment like a document. What clickstream
    itself contributes (other paths, error responses, its own schemas) is left out, so a
    fragment changes when its plugin does.
    """
    wanted = sorted(events)
    unknown = [event for event in wanted if event not in registry]
    if unknown or not wanted:
        raise KeyError(f"no such event types: {', '.join(unknown) or '(none given)'}")
    whole = build_spec(registry)
    body = whole["paths"]["/api/v1/events"]["post"]["requestBody"]["content"]["application/json"]
    mapping = {event: body["schema"]["discriminator"]["mapping"][event] for event in wanted}
    every = whole["components"]["schemas"]
    schemas: dict[str, Any] = {}
    pending = list(mapping.values())
    while pending:
        name = pending.pop().rsplit("/", 1)[1]
        if name not in schemas:
            schemas[name] = every[name]
            pending.extend(_refs(every[name]))
    plugins = ", ".join(sorted({registry[event].plugin.split(" ")[0] for event in wanted}))
    return {
        "openapi": whole["openapi"],
        "info": {
            "title": f"{TITLE}: the event types of {plugins}",
            "version": whole["info"]["version"],
            "description": "A fragment of the clickstream API's document: the variants of the "
            "request body of `POST /api/v1/events` (and of each element of a batch) that "
            "this plugin adds.",
        },
        "paths": {
            "/api/v1/events": {
                "post": {
                    "summary": "Send one event",
                    "operationId": "postEvent",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "oneOf": [{"$ref": ref} for ref in mapping.values()],
                                    "discriminator": {"propertyName": "event", "mapping": mapping},
                                },
                                "examples": {event: body["examples"][event] for event in wanted},
                            }
                        },
                    },
                    "responses": {"202": {"description": ACCEPTED}},
                }
            }
        },
        "components": {"schemas": schemas},
    }


def _refs(schema: Any) -> Iterator[str]:
    """Every ``$ref`` inside a JSON schema."""
    if isinstance(schema, Mapping):
        for key, value in schema.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _refs(item)


def dumps(document: Mapping[str, Any]) -> str:
    """A document (or fragment) as committed: sorted keys, indented, UTF-8 as it is."""
    return json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def render(registry: Registry) -> str:
    """The document of ``registry``'s event types, as committed to ``docs/openapi.json``."""
    return dumps(build_spec(registry))


if __name__ == "__main__":
    from core.host.plugin_manager import build_registry, is_built_in, make_plugin_manager

    # The project's document: its own event types, whatever else is installed here.
    print(render(build_registry(make_plugin_manager(), keep=is_built_in)), end="")
