"""Request ids, request metrics and one log line per request; ``GET /metrics``.

Each request gets an id: the client's ``X-Request-ID`` when it is well-formed, else
a new one. It is echoed in the response's ``X-Request-ID``, appears in every log line
written while serving the request, and travels in the Kafka message to the ETL.
"""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Flask, Response, current_app, g, request

from core.api import ops
from core.api.extension import metrics_of, settings_of
from core.log import bind_request_id, unbind_request_id

REQUEST_ID_HEADER = "X-Request-ID"

log = logging.getLogger("core.api.access")

blueprint = ops.protect(Blueprint("metrics", __name__))


@blueprint.get("/metrics")
def metrics():
    """Prometheus scrape endpoint: every metric of every worker (docs/operations.md)."""
    body, content_type = metrics_of(current_app).render()
    return Response(body, content_type=content_type)


def _start() -> None:
    g.started = time.perf_counter()
    g.request_id = bind_request_id(request.headers.get(REQUEST_ID_HEADER))


def _finish(response: Response) -> Response:
    # Another before_request hook may have answered before ours ran.
    started = g.get("started")
    seconds = time.perf_counter() - started if started is not None else 0.0
    rule = request.url_rule
    endpoint = rule.rule if rule is not None else "unmatched"
    metrics_of(current_app).request_done(request.method, endpoint, response.status_code, seconds)
    request_id = g.get("request_id")
    if request_id is not None:
        response.headers[REQUEST_ID_HEADER] = request_id
    if settings_of(current_app).api.access_log:
        log.info(
            "http.request",
            extra={
                "method": request.method,
                "path": request.path,
                "endpoint": endpoint,
                "status": response.status_code,
                "duration_ms": round(seconds * 1000, 3),
            },
        )
    return response


def _teardown(_error: BaseException | None) -> None:
    unbind_request_id()


def init_app(app: Flask) -> None:
    """Install the hooks first, so that they time and count every other hook's work."""
    app.before_request_funcs.setdefault(None, []).insert(0, _start)
    app.after_request(_finish)
    app.teardown_request(_teardown)
    app.register_blueprint(blueprint)
