"""Protection of operational endpoints (metrics, admin): a private listener, a bearer token.

Apply it once to the blueprint that holds such endpoints, where the blueprint is defined::

    blueprint = ops.protect(Blueprint("metrics", __name__))

Every route of that blueprint then answers

* 404, unless the request arrived on ``CLICKSTREAM_OPS_PORT``, when that is set: gunicorn
  binds that second listener on ``CLICKSTREAM_OPS_HOST`` (see ``gunicorn_config.py``), so a
  private address can serve them while the public port does not even reveal them;
* 401, unless it carries ``Authorization: Bearer <CLICKSTREAM_OPS_TOKEN>``, when that is set;
* 403 when neither is set, unless ``CLICKSTREAM_OPS_OPEN`` says the network is trusted:
  the default is safe for the internet (docs/security.md).

The listener is known from ``SERVER_PORT``, which gunicorn and werkzeug take from the
socket, never from the Host header. The token is compared in constant time and never
logged or echoed. :func:`allowed` tells other endpoints (the readiness probe's details)
whether the request would pass.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, current_app, request

from core.api.extension import settings_of
from core.config import env_name
from core.ingest.errors import ApiError


def protect(blueprint: Blueprint) -> Blueprint:
    """Guard every route of ``blueprint`` with :func:`check_request`; returns the blueprint."""
    blueprint.before_request(check_request)
    return blueprint


def check_request() -> None:
    """Raise 404 off the operational listener, 401 without the operational token, 403 when
    nothing protects operational endpoints and the network is not declared trusted."""
    refusal = _refusal()
    if refusal is not None:
        raise refusal


def allowed() -> bool:
    """Whether this request may see what operational endpoints show."""
    return _refusal() is None


def _refusal() -> ApiError | None:
    ops = settings_of(current_app).ops
    if ops.port and request.environ.get("SERVER_PORT") != str(ops.port):
        return ApiError(404, "not_found", "The requested URL was not found on the server.")
    if ops.token:
        if _bearer_matches(ops.token):
            return None
        return ApiError(
            401,
            "unauthorized",
            "Operational endpoints need the operational bearer token.",
            {"Authorization": ["Missing or wrong bearer token."]},
            headers={"WWW-Authenticate": 'Bearer realm="clickstream-ops"'},
        )
    if ops.port or ops.open:
        return None
    return ApiError(
        403,
        "forbidden",
        f"Operational endpoints are closed: set {env_name('ops_token')} or "
        f"{env_name('ops_port')} ({env_name('ops_open')}=true on a trusted network only).",
    )


def _bearer_matches(token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )
