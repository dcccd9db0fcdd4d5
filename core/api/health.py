"""Liveness and readiness probes."""

from __future__ import annotations

from flask import Blueprint, current_app

from core.api.extension import pipeline_of

blueprint = Blueprint("health", __name__)


@blueprint.get("/health/live")
def live():
    return {"status": "ok"}


@blueprint.get("/health/ready")
def ready():
    """Kafka is required to accept events; Redis and the auth service have fallbacks."""
    pipeline = pipeline_of(current_app)
    checks = {
        "kafka": pipeline.publisher.check(),
        "redis": pipeline.identity.check_cache(),
        "auth_service": pipeline.identity.check_auth_service(),
    }
    ready = checks["kafka"]["ok"]
    return {"status": "ready" if ready else "unavailable", "checks": checks}, 200 if ready else 503
