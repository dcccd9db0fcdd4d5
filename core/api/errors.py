"""Every error answer of the API, rendered as ``{"error", "message", "details"}`` JSON."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from core.ingest.errors import ApiError

log = logging.getLogger(__name__)


def render(error: ApiError):
    response = jsonify(error.to_dict())
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


def _http_error(error: HTTPException):
    code = (error.name or "error").lower().replace(" ", "_")
    message = {413: "The request body is too large."}.get(error.code or 0, error.description)
    # Keep what werkzeug says beyond the body, such as the Allow header of a 405.
    headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
    return render(ApiError(error.code or 500, code, message, headers=headers))


def _unexpected(error: Exception):
    log.exception("unexpected error")
    return render(ApiError(500, "internal_error", "Something went wrong on our side."))


def init_app(app: Flask) -> None:
    app.register_error_handler(ApiError, render)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
