"""Every error answer is JSON (``core.api.errors``), werkzeug's own included."""

from __future__ import annotations

URL = "/api/v1/events"


def test_unknown_routes_and_methods_answer_json(client) -> None:
    assert client.get("/nope").json["error"] == "not_found"
    assert client.get(URL).status_code == 405
