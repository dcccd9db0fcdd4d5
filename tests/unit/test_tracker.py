"""``GET /static/clickstream.js`` serves the browser tracker (its behaviour: the browser test)."""

from __future__ import annotations

import re

from core.api import create_app
from core.config import Settings
from tests.fakes import FakeIdentity, FakePublisher


def served_tracker():
    app = create_app(Settings(), identity=FakeIdentity(), publisher=FakePublisher())
    return app.test_client().get("/static/clickstream.js")


def test_the_tracker_is_served_as_cacheable_javascript() -> None:
    answer = served_tracker()
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert answer.headers["Cache-Control"] == "public, max-age=600"
    assert answer.headers["ETag"]
    script = answer.get_data(as_text=True)
    assert "navigator.sendBeacon" in script and "window.clickstream =" in script


def test_the_tracker_sends_the_specifications_video_id() -> None:
    """The specification's names, read from data-video-id and data-clickstream-video-id
    (that they reach the warehouse is the browser test's)."""
    script = served_tracker().get_data(as_text=True)
    assert "attributes.videoId" in script  # <script data-video-id>
    assert "marks.clickstreamVideoId" in script  # data-clickstream-video-id on an element
    assert "data.video_id = " in script
    assert re.search(r"movie_?id", script, re.IGNORECASE) is None
    # element_id is optional: no stand-in value when the element has no id.
    assert "element_id: " not in script and "data.element_id = " in script
