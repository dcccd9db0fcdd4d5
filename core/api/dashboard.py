"""``GET /ops/dashboard``: the page the ETL writes after its passes
(``CLICKSTREAM_DASHBOARD_FILE``), served as it is, behind the operational endpoints'
protection (:mod:`core.api.ops`).

The API never opens the warehouse for it: chDB lets one process hold its directory, and that
process is the ETL, which writes the page in a short session of its own.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from flask import Blueprint, Response, current_app

from core.api import ops
from core.api.extension import settings_of
from core.config import env_name
from core.ingest.errors import ApiError

blueprint = ops.protect(Blueprint("dashboard", __name__))

#: The page is self-contained: it may run its own inline scripts and styles, load nothing.
POLICY = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@blueprint.get("/ops/dashboard")
def dashboard() -> Response:
    """The dashboard as the ETL last wrote it; 404 when none is configured, 503 until the
    ETL has written it."""
    settings = settings_of(current_app).dashboard
    if not settings.file:
        raise ApiError(
            404,
            "dashboard_off",
            f"No dashboard here: set {env_name('dashboard_file')} for the API and the ETL "
            "(or write one with `clickstream dashboard --out FILE`).",
        )
    path = Path(settings.file)
    try:
        page = path.read_bytes()
        written = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except FileNotFoundError:
        raise ApiError(
            503,
            "dashboard_not_ready",
            "The ETL has not written the dashboard yet: it does after its next pass.",
            headers={"Retry-After": str(max(int(settings.interval_s), 1))},
        ) from None
    response = Response(page, mimetype="text/html")
    response.headers["Content-Security-Policy"] = POLICY
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.last_modified = written
    return response
