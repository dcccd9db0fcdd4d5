"""CORS for the event endpoints, so browser pages on the configured origins can send events.

Off unless ``CLICKSTREAM_CORS_ORIGINS`` names origins. ``navigator.sendBeacon`` with a
text/plain body is a simple request (no preflight); ``fetch`` with application/json or a
Content-Encoding is preflighted, and the preflight (OPTIONS, answered by Flask) gets the
allowed method, headers and max age here. No credentials are allowed: the token travels in
the body, never in a cookie.
"""

from __future__ import annotations

from flask import Flask, Response, request

from core.config import CorsSettings

#: Blueprints whose answers carry CORS headers.
CORS_BLUEPRINTS = frozenset({"events"})
#: Request headers a browser may send beyond the CORS-safelisted ones; X-Request-ID lets a
#: page name its request in the API's logs (docs/operations.md).
ALLOWED_HEADERS = "Content-Type, Content-Encoding, X-Request-ID"
#: Response headers a page's script may read.
EXPOSED_HEADERS = "Retry-After, X-Request-ID"


def init_app(app: Flask, settings: CorsSettings) -> None:
    """Add CORS headers to the event endpoints' answers; nothing at all with no origin set."""
    if not settings.origins:
        return
    any_origin = "*" in settings.origins
    allowed = frozenset(settings.origins)
    max_age = str(settings.max_age_s)

    def add_headers(response: Response) -> Response:
        origin = request.headers.get("Origin")
        if origin is None or request.blueprint not in CORS_BLUEPRINTS:
            return response
        if not any_origin:
            # The answer depends on the origin: a cache must not serve it to another one.
            response.vary.add("Origin")
            if origin not in allowed:
                return response
        headers = response.headers
        headers["Access-Control-Allow-Origin"] = "*" if any_origin else origin
        headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            headers["Access-Control-Allow-Methods"] = "POST"
            headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
            headers["Access-Control-Max-Age"] = max_age
        return response

    app.after_request(add_headers)
