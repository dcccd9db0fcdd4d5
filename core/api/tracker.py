"""``GET /static/clickstream.js``: the browser tracker, served by the API.

One script: clickstream's own part (``core/api/assets/clickstream.js``), which sends
events, then every installed plugin's tracker script (``register_tracker_scripts``), which
decides what is sent by itself. Serving it from the API keeps the tracker and the endpoint
it posts to one deployment: the script finds the endpoint from its own URL.
"""

from __future__ import annotations

import json
from importlib.resources import files

from flask import Blueprint, Response, current_app, request

from core.api.extension import tracker_of
from core.host.registry import Registry

blueprint = Blueprint("tracker", __name__)

PLACEHOLDER = "  /* {tracker scripts} */\n"
# The URL carries no version, so browsers revalidate (ETag) after this long.
MAX_AGE_S = 600


def bundle(registry: Registry) -> str:
    """The tracker: its own part with each plugin's script in it, in the order of their names."""
    own = files("core.api").joinpath("assets/clickstream.js").read_text(encoding="utf-8")
    scripts = [
        f"  // {script.name} ({script.plugin}): {script.description}\n"
        f"  run({json.dumps(script.name)}, (tracker) => {{\n"
        + "".join(f"    {line}".rstrip() + "\n" for line in script.source.splitlines())
        + "  });\n"
        for script in sorted(registry.tracker_scripts.values(), key=lambda script: script.name)
    ]
    return own.replace(PLACEHOLDER, "\n".join(scripts))


@blueprint.get("/static/clickstream.js")
def tracker() -> Response:
    response = Response(tracker_of(current_app), mimetype="text/javascript")
    response.charset = "utf-8"
    response.cache_control.public = True
    response.cache_control.max_age = MAX_AGE_S
    response.add_etag()
    return response.make_conditional(request)
