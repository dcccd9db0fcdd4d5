"""Where the application keeps its resources: ``app.extensions``, never module globals."""

from __future__ import annotations

from flask import Flask

from core.config import Settings
from core.pipeline import Pipeline

PIPELINE = "clickstream.pipeline"
SETTINGS = "clickstream.settings"


def pipeline_of(app: Flask) -> Pipeline:
    """The pipeline an application was built with."""
    return app.extensions[PIPELINE]


def settings_of(app: Flask) -> Settings:
    """The settings an application was built with."""
    return app.extensions[SETTINGS]
