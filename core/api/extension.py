"""Where the application keeps its resources: ``app.extensions``, never module globals.

Every key is here, and :func:`core.api.create_app` attaches every resource, once.
"""

from __future__ import annotations

from flask import Flask

from core.api.metrics import ApiMetrics
from core.config import Settings
from core.ingest.identity import IdentityResolver
from core.ingest.pipeline import Pipeline

PIPELINE = "clickstream.pipeline"
SETTINGS = "clickstream.settings"
IDENTITY = "clickstream.identity"
METRICS = "clickstream.metrics"
RATE_LIMITER = "clickstream.rate_limiter"
TRACKER = "clickstream.tracker"


def pipeline_of(app: Flask) -> Pipeline:
    """The pipeline an application was built with."""
    return app.extensions[PIPELINE]


def settings_of(app: Flask) -> Settings:
    """The settings an application was built with."""
    return app.extensions[SETTINGS]


def identity_of(app: Flask) -> IdentityResolver:
    """The identity resolver (its checks and statistics), without any rate limit around it."""
    return app.extensions[IDENTITY]


def tracker_of(app: Flask) -> bytes:
    """The browser tracker, built once from the installed plugins' scripts."""
    return app.extensions[TRACKER]


def metrics_of(app: Flask) -> ApiMetrics:
    """The metrics an application records into."""
    return app.extensions[METRICS]
