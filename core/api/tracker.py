"""``GET /static/clickstream.js``: the browser tracker (``core/api/assets/``), served by the API.

Serving it from the API keeps the tracker and the endpoint it posts to one deployment: the
script finds the endpoint from its own URL.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, send_from_directory

blueprint = Blueprint("tracker", __name__)

ASSETS = Path(__file__).resolve().parent / "assets"
# The URL carries no version, so browsers revalidate (ETag) after this long.
MAX_AGE_S = 600


@blueprint.get("/static/clickstream.js")
def tracker():
    response = send_from_directory(ASSETS, "clickstream.js", max_age=MAX_AGE_S)
    response.mimetype = "text/javascript"
    response.charset = "utf-8"
    return response
