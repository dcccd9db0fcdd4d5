"""The HTTP API: an application factory and one blueprint per feature."""

from __future__ import annotations

import logging
from datetime import timedelta

import pluggy
from flask import Flask

from core.api import (
    cors,
    dashboard,
    docs,
    errors,
    events,
    health,
    limits,
    observability,
    tracker,
)
from core.api.extension import IDENTITY, METRICS, PIPELINE, RATE_LIMITER, SETTINGS, TRACKER
from core.api.metrics import ApiMetrics
from core.config import Settings
from core.host.plugin_manager import build_registry, make_plugin_manager
from core.ingest.identity import IdentityResolver
from core.ingest.pipeline import Pipeline
from core.ingest.publisher import Publisher


def create_app(
    settings: Settings | None = None,
    plugin_manager: pluggy.PluginManager | None = None,
    *,
    identity: IdentityResolver | None = None,
    publisher: Publisher | None = None,
) -> Flask:
    """Build the API. Everything it uses comes from ``settings`` and the installed plugins."""
    settings = settings or Settings.from_env()
    registry = build_registry(plugin_manager or make_plugin_manager())
    registry.check_settings(settings)
    identity = identity or IdentityResolver.from_settings(settings)
    limiter = limits.limiter_for(settings.limits, settings.redis)
    metrics = ApiMetrics()
    pipeline = Pipeline(
        registry,
        limits.limit_users(identity, limiter, settings.limits),
        publisher or Publisher.from_settings(settings),
        observer=metrics,
        max_clock_skew=timedelta(seconds=settings.api.max_clock_skew_s),
    )
    metrics.watch(identity, pipeline.publisher)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = max(
        settings.api.max_body_bytes, settings.api.max_batch_bytes
    )
    app.json.ensure_ascii = False
    app.extensions.update(
        {
            PIPELINE: pipeline,
            SETTINGS: settings,
            IDENTITY: identity,
            METRICS: metrics,
            RATE_LIMITER: limiter,
            TRACKER: tracker.bundle(registry).encode(),
        }
    )
    logging.getLogger("core").setLevel(settings.log.level)
    observability.init_app(app)
    errors.init_app(app)
    for blueprint in (
        events.blueprint,
        health.blueprint,
        docs.blueprint,
        docs.reference,
        tracker.blueprint,
        dashboard.blueprint,
    ):
        app.register_blueprint(blueprint)
    cors.init_app(app, settings.cors)
    limits.init_app(app, settings.limits)
    return app
