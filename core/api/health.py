"""Liveness and readiness probes."""

from __future__ import annotations

from flask import Blueprint, current_app

from core.api import ops
from core.api.extension import identity_of, pipeline_of

blueprint = Blueprint("health", __name__)


@blueprint.get("/health/live")
def live():
    return {"status": "ok"}


@blueprint.get("/health/ready")
def ready():
    """Ready while events can be accepted: by Kafka, or by the disk spool while Kafka is away.

    ``degraded`` (still 200) while the spool holds events or Kafka is unreachable;
    503 when neither Kafka nor the spool can take an event. Redis and the auth service
    have fallbacks and never make the API unready.

    Anyone gets the status; only a request that may see operational endpoints
    (``core/api/ops.py``) gets the checks behind it, which say, for instance, when the auth
    service's breaker is open, hence when the local JWT fallback is on. The dependency
    checks are cached by their owners (``CLICKSTREAM_OPS_READY_TTL_S``), so probes are cheap.
    """
    pipeline, identity = pipeline_of(current_app), identity_of(current_app)
    checks = {
        "kafka": pipeline.publisher.check(),
        "redis": identity.check_cache(),
        "auth_service": identity.check_auth_service(),
    }
    spool = pipeline.publisher.check_spool()
    if checks["kafka"]["ok"] and not spool["depth_events"]:
        status = "ready"
    elif spool["ok"]:
        status = "degraded"
    else:
        status = "unavailable"
    body: dict[str, object] = {"status": status}
    if ops.allowed():
        body |= {"checks": checks, "spool": spool}
    return body, 503 if status == "unavailable" else 200
