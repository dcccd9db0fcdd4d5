"""``POST /api/v1/events``: one event in, 202 once Kafka has it."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Blueprint, current_app, request

from core.api.extension import pipeline_of, settings_of
from core.errors import ApiError

blueprint = Blueprint("events", __name__)

#: Content types an event may arrive with; text/plain is what navigator.sendBeacon sends.
ACCEPTED_CONTENT_TYPES = ("application/json", "text/plain")


def read_json_body() -> Any:
    """The request body parsed as JSON, or an :class:`ApiError` saying what is wrong with it."""
    if request.mimetype not in ACCEPTED_CONTENT_TYPES:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"Send the event as application/json, not {request.mimetype or 'no content type'}.",
            {"Content-Type": [f"Must be one of: {', '.join(ACCEPTED_CONTENT_TYPES)}."]},
        )
    charset = request.mimetype_params.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise ApiError(
            415,
            "unsupported_charset",
            "Events are UTF-8 JSON.",
            {"Content-Type": [f"Charset {charset} is not supported; use utf-8."]},
        )
    body = request.get_data(cache=False)
    if not body:
        raise ApiError(400, "invalid_json", "The request body is empty.", {"body": ["Empty."]})
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise ApiError(
            400, "invalid_json", "The request body is not valid JSON.", {"body": [str(error)]}
        ) from None


@blueprint.post("/api/v1/events")
def post_event():
    request.max_content_length = settings_of(current_app).max_body_bytes
    event_id = pipeline_of(current_app).ingest(read_json_body())
    return {"event_id": event_id}, 202


@blueprint.post("/api/v1/events/batch")
def post_batch():
    """A JSON array of events; 200 with one result per event (see the OpenAPI document)."""
    settings = settings_of(current_app)
    request.max_content_length = settings.max_batch_bytes
    payloads = read_json_body()
    if not isinstance(payloads, list):
        raise ApiError(
            400, "invalid_body", "A batch is a JSON array of events.", {"body": ["Not an array."]}
        )
    if not payloads:
        raise ApiError(422, "empty_batch", "The batch has no events.", {"body": ["Empty array."]})
    if len(payloads) > settings.max_batch_events:
        raise ApiError(
            413,
            "batch_too_large",
            f"A batch holds at most {settings.max_batch_events} events.",
            {"body": [f"{len(payloads)} events."]},
        )
    results = pipeline_of(current_app).ingest_batch(payloads)
    accepted = sum(result["status"] == 202 for result in results)
    return {"accepted": accepted, "rejected": len(results) - accepted, "results": results}
