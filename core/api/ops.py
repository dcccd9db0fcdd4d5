"""Protection of operational endpoints (metrics, admin): a private listener, a bearer token.

Apply it once to the blueprint that holds such endpoints, where the blueprint is defined::

    blueprint = ops.protect(Blueprint("metrics", __name__))

Every route of that blueprint then answers

* 404, unless the request arrived on ``CLICKSTREAM_OPS_PORT``, when that is set: gunicorn
  binds that second listener on ``CLICKSTREAM_OPS_HOST`` (see ``gunicorn_config.py``), so a
  private address can serve them while the public port does not even reveal them;
* 401, unless it carries ``Authorization: Bearer <CLICKSTREAM_OPS_TOKEN>``, when that is set.

With neither set they are open, which suits a trusted network only (docs/security.md).
The listener is known from ``SERVER_PORT``, which gunicorn and werkzeug take from the
socket, never from the Host header. The token is compared in constant time and never
logged or echoed.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, current_app, request

from core.api.extension import settings_of
from core.ingest.errors import ApiError


def protect(blueprint: Blueprint) -> Blueprint:
    """Guard every route of ``blueprint`` with :func:`check_request`; returns the blueprint."""
    blueprint.before_request(check_request)
    return blueprint


def check_request() -> None:
    """Raise 404 off the operational listener, 401 without the operational token."""
    settings = settings_of(current_app)
    if settings.ops.port and request.environ.get("SERVER_PORT") != str(settings.ops.port):
        raise ApiError(404, "not_found", "The requested URL was not found on the server.")
    if settings.ops.token and not _bearer_matches(settings.ops.token):
        raise ApiError(
            401,
            "unauthorized",
            "Operational endpoints need the operational bearer token.",
            {"Authorization": ["Missing or wrong bearer token."]},
            headers={"WWW-Authenticate": 'Bearer realm="clickstream-ops"'},
        )


def _bearer_matches(token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )
