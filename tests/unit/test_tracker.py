"""``GET /static/clickstream.js`` serves the browser tracker (its behaviour: the browser test)."""

from __future__ import annotations

import re
from pathlib import Path

from core import TrackerScript, hookimpl
from core.api.tracker import bundle
from core.host.plugin_manager import build_registry, make_plugin_manager

ROOT = Path(__file__).resolve().parents[2]


def test_the_tracker_is_served_as_cacheable_javascript(client) -> None:
    answer = client.get("/static/clickstream.js")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert answer.headers["Cache-Control"] == "public, max-age=600"
    assert answer.headers["ETag"]
    script = answer.get_data(as_text=True)
    assert "navigator.sendBeacon" in script and "window.clickstream =" in script


def test_the_tracker_sends_the_specifications_video_id(client) -> None:
    """The specification's names, read from data-video-id and data-clickstream-video-id
    (that they reach the warehouse is the browser test's)."""
    script = client.get("/static/clickstream.js").get_data(as_text=True)
    assert "attributes.videoId" in script  # <script data-video-id>
    assert "marks.clickstreamVideoId" in script  # data-clickstream-video-id on an element
    assert "data.video_id = " in script
    assert re.search(r"movie_?id", script, re.IGNORECASE) is None
    # element_id is optional: no stand-in value when the element has no id.
    assert "element_id: " not in script and "data.element_id = " in script


def test_each_plugins_script_runs_inside_the_tracker_in_the_order_of_their_names() -> None:
    class Shares:
        @hookimpl
        def register_tracker_scripts(self) -> list[TrackerScript]:
            return [TrackerScript("aa_shares", "tracker.track('x', {});\nconst y = 1;", "shares")]

    script = bundle(build_registry(make_plugin_manager([Shares()])))
    runs = re.findall(r'^  run\("(\w+)", \(tracker\) => \{$', script, re.MULTILINE)
    assert runs == ["aa_shares", "element_clicks", "page_views"]
    # Inside the tracker's function, after the tracker they are given is made.
    assert script.index("const tracker = {") < script.index('run("aa_shares"')
    assert script.rstrip().endswith("})();")
    assert "    tracker.track('x', {});\n    const y = 1;\n  });" in script
    assert "/* {tracker scripts} */" not in script


def test_the_tracker_is_revalidated_by_its_etag(client) -> None:
    etag = client.get("/static/clickstream.js").headers["ETag"]
    again = client.get("/static/clickstream.js", headers={"If-None-Match": etag})
    assert again.status_code == 304 and not again.get_data()


def test_the_trackers_own_part_names_no_event_type() -> None:
    """What is sent by itself comes from the plugins' scripts (the page views' included)."""
    own = (ROOT / "core" / "api" / "assets" / "clickstream.js").read_text(encoding="utf-8")
    for name in build_registry(make_plugin_manager()).names:
        assert name not in own
