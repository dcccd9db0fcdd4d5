"""``POST /api/v1/events``: one event in, 202 once Kafka has it."""

from __future__ import annotations

import json
import zlib
from typing import Any

import orjson
from flask import Blueprint, Response, current_app, request

from core.api.extension import pipeline_of, settings_of
from core.ingest.errors import ApiError

blueprint = Blueprint("events", __name__)

#: Content types an event may arrive with; text/plain is what navigator.sendBeacon sends.
ACCEPTED_CONTENT_TYPES = ("application/json", "text/plain")
#: Content-Encoding values a body may arrive with; gzip is decompressed under the size limit.
ACCEPTED_ENCODINGS = ("identity", "gzip", "x-gzip")
# RFC 8259 lets a parser ignore a UTF-8 byte order mark; some clients (PowerShell) send one.
_BOM = b"\xef\xbb\xbf"
_GZIP_WBITS = 16 + zlib.MAX_WBITS


def read_json_body() -> Any:
    """The request body parsed as JSON, or an :class:`ApiError` saying what is wrong with it.

    Refused: other content types or charsets (415), an unknown Content-Encoding (415), a body
    over the endpoint's limit, compressed or not (413), an empty body, invalid UTF-8, invalid
    JSON (including NaN, Infinity and numbers beyond a double), nesting deeper than the parsers
    allow, and a key repeated in one object (400). A leading UTF-8 BOM is ignored.
    """
    _check_content_type()
    body = request.get_data(cache=False)
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding in ("gzip", "x-gzip"):
        body = _gunzip(body, request.max_content_length or len(body))
    elif encoding != "identity":
        raise ApiError(
            415,
            "unsupported_content_encoding",
            f"Send the body uncompressed or gzip-compressed, not {encoding}.",
            {"Content-Encoding": [f"Must be one of: {', '.join(ACCEPTED_ENCODINGS)}."]},
        )
    if body.startswith(_BOM):
        body = body[len(_BOM) :]
    if not body:
        raise ApiError(400, "invalid_json", "The request body is empty.", {"body": ["Empty."]})
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        # orjson's messages name a position, never a piece of the body (it may hold a token).
        raise ApiError(
            400, "invalid_json", "The request body is not valid JSON.", {"body": [str(error)]}
        ) from None
    _refuse_duplicate_keys(body, payload)
    return payload


def _check_content_type() -> None:
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


def _gunzip(body: bytes, limit: int) -> bytes:
    """``body`` decompressed (every gzip member), refused once it grows past ``limit`` bytes.

    The limit is on the output, so a small body that inflates enormously (a zip bomb) costs
    at most ``limit`` bytes of memory and the time to produce them.
    """
    parts: list[bytes] = []
    size = 0
    remaining = body
    try:
        while remaining:
            inflater = zlib.decompressobj(_GZIP_WBITS)
            part = inflater.decompress(remaining, limit + 1 - size)
            size += len(part)
            if size > limit:
                raise ApiError(
                    413,
                    "request_entity_too_large",
                    "The request body is too large.",
                    {"body": [f"More than {limit} bytes once decompressed."]},
                )
            if not inflater.eof:
                raise zlib.error("truncated")
            parts.append(part)
            remaining = inflater.unused_data
    except zlib.error:
        raise ApiError(
            400,
            "invalid_gzip",
            "The body is not valid gzip data, as its Content-Encoding says.",
            {"body": ["Not valid gzip data (or truncated)."]},
        ) from None
    return b"".join(parts)


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ApiError(
                    400,
                    "duplicate_key",
                    f"The key {key!r} appears more than once in one object.",
                    {"body": [f"Duplicate key {key!r}."]},
                )
            seen.add(key)
    return value


_DUPLICATE_FINDER = json.JSONDecoder(object_pairs_hook=_refuse_duplicates)


def _refuse_duplicate_keys(body: bytes, payload: Any) -> None:
    """Raise 400 naming a key that appears twice in one object (orjson keeps the last silently).

    A body that is exactly what orjson writes of ``payload`` has no key twice (what the
    tracker, JSON.stringify and orjson send): one serialisation in C settles it. Any other
    body (spaces, escapes, another spelling of a number, or a repeated key) gets a second
    parse by the standard library, whose hook sees every object's pairs and names the key.
    """
    try:
        if orjson.dumps(payload) == body:
            return
    except orjson.JSONEncodeError:
        pass  # nested deeper than orjson writes; the exact pass decides
    try:
        _DUPLICATE_FINDER.decode(body.decode())
    except RecursionError:
        raise ApiError(
            400, "invalid_json", "The request body is nested too deeply.", {"body": ["Too deep."]}
        ) from None


def _user_agent() -> str:
    return request.headers.get("User-Agent", "")


#: orjson's options for an answer: keys sorted and compact, as Flask's own JSON provider
#: writes (it ends the body with a newline too).
_ANSWER_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def _answer(body: dict[str, Any], status: int) -> Response:
    """``body`` as the JSON answer, written by orjson: the same bytes as Flask's provider,
    for a fraction of the standard library's cost on a batch's results."""
    return current_app.response_class(
        orjson.dumps(body, option=_ANSWER_OPTIONS) + b"\n",
        status=status,
        mimetype="application/json",
    )


@blueprint.post("/api/v1/events")
def post_event():
    request.max_content_length = settings_of(current_app).api.max_body_bytes
    event_id = pipeline_of(current_app).ingest(read_json_body(), _user_agent())
    return _answer({"event_id": event_id}, 202)


@blueprint.post("/api/v1/events/batch")
def post_batch():
    """A JSON array of events; 200 with one result per event (see the OpenAPI document)."""
    settings = settings_of(current_app)
    request.max_content_length = settings.api.max_batch_bytes
    payloads = read_json_body()
    if not isinstance(payloads, list):
        raise ApiError(
            400, "invalid_body", "A batch is a JSON array of events.", {"body": ["Not an array."]}
        )
    if not payloads:
        raise ApiError(422, "empty_batch", "The batch has no events.", {"body": ["Empty array."]})
    if len(payloads) > settings.api.max_batch_events:
        raise ApiError(
            413,
            "batch_too_large",
            f"A batch holds at most {settings.api.max_batch_events} events.",
            {"body": [f"{len(payloads)} events."]},
        )
    results = pipeline_of(current_app).ingest_batch(payloads, _user_agent())
    accepted = sum(result["status"] == 202 for result in results)
    return _answer(
        {"accepted": accepted, "rejected": len(results) - accepted, "results": results}, 200
    )
