"""``GET /static/clickstream.js`` serves the browser tracker (its behaviour: the browser test)."""

from __future__ import annotations

from core.api import create_app
from core.config import Settings
from tests.fakes import FakeIdentity, FakePublisher


def test_the_tracker_is_served_as_cacheable_javascript() -> None:
    app = create_app(Settings(), identity=FakeIdentity(), publisher=FakePublisher())
    answer = app.test_client().get("/static/clickstream.js")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert answer.headers["Cache-Control"] == "public, max-age=600"
    assert answer.headers["ETag"]
    script = answer.get_data(as_text=True)
    assert "navigator.sendBeacon" in script and "window.clickstream =" in script
