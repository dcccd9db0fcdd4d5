"""The API document of the plugins installed here: ``GET /openapi.json``, and ``GET /docs``,
the same document in Swagger UI. Swagger UI comes from the flask-swagger-ui package and
every asset of the page is served from here, so the page works without a network."""

from __future__ import annotations

from flask import Blueprint, current_app
from flask_swagger_ui import get_swaggerui_blueprint

from core.api.extension import pipeline_of
from core.api.openapi import build_spec

blueprint = Blueprint("docs", __name__)

#: Swagger UI at /docs/ (``/docs`` redirects there), reading /openapi.json. No validator:
#: Swagger UI would otherwise send the document to validator.swagger.io.
reference = get_swaggerui_blueprint(
    "/docs",
    "/openapi.json",
    config={"app_name": "clickstream API", "validatorUrl": None, "tryItOutEnabled": True},
    blueprint_name="reference",
)


@blueprint.get("/openapi.json")
def openapi():
    return build_spec(pipeline_of(current_app).registry)
