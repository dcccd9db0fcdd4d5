"""``GET /openapi.json``: the API document for the plugins installed in this process."""

from __future__ import annotations

from flask import Blueprint, current_app

from core.api.extension import pipeline_of
from core.openapi import build_spec

blueprint = Blueprint("docs", __name__)


@blueprint.get("/openapi.json")
def openapi():
    return build_spec(pipeline_of(current_app).registry)
