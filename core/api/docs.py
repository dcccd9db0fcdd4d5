"""The API document of the plugins installed here: ``GET /openapi.json`` and ``GET /docs``.

``/docs`` is the same document as a self-contained HTML page (``core/api_docs.py``).
"""

from __future__ import annotations

from flask import Blueprint, current_app

from core.api.extension import pipeline_of
from core.api_docs import render_html
from core.openapi import build_spec

blueprint = Blueprint("docs", __name__)


@blueprint.get("/openapi.json")
def openapi():
    return build_spec(pipeline_of(current_app).registry)


@blueprint.get("/docs")
def reference():
    spec = build_spec(pipeline_of(current_app).registry)
    return render_html(spec), 200, {"Content-Type": "text/html; charset=utf-8"}
