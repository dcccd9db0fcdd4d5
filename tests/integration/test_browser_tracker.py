"""The browser tracker in real headless Chromium: page views and clicks reach the warehouse.

A page served from one origin loads ``/static/clickstream.js`` from the API on another
origin (CORS), and the test clicks, navigates, closes a tab, then runs ETL passes.
Needs Debian's ``chromium`` and ``chromium-driver`` (installed by ``.ci/run``).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from core import TrackerScript, hookimpl
from core.config import Settings
from core.host.plugin_manager import build_registry, make_plugin_manager
from etl.runner import run_pass
from tests.conftest import DESKTOP_CHROME
from tests.etl_helpers import query
from tests.servers import serve

# Catalogue ids of videos: opaque strings, not UUIDs.
VIDEO = "tt0111161"
TRAILER_VIDEO = "tt0068646"
DEADLINE_S = 20.0

MOVIE_PAGE = """<!doctype html>
<meta charset="utf-8"><title>movie</title>
<!-- Sized by CSS, so they can be clicked even on a machine without fonts. -->
<style>button, a {{display: inline-block; width: 120px; height: 40px}}</style>
<script>window.clickstreamConfig = {{getToken: () => Promise.resolve("{token}")}};</script>
<script src="{api}/static/clickstream.js" data-page-type="movie" data-video-id="{video}"></script>
<button id="play" data-clickstream-element="button" data-clickstream-id="play">Play</button>
<!-- No id at all: sent without element_id; its own video id overrides the page's. -->
<button class="trailer" data-clickstream-element="trailer"
        data-clickstream-video-id="{trailer_video}">Trailer</button>
<a id="poster" href="/main.html" data-clickstream-element="poster"
   data-clickstream-id="top10-card-3" data-clickstream-position="2"
   data-clickstream-page-type="movie">Next</a>
"""
MAIN_PAGE = """<!doctype html>
<meta charset="utf-8"><title>main</title>
<script>
  // As on a plain-http page, where crypto.randomUUID does not exist: the tracker's fallback.
  delete Crypto.prototype.randomUUID;
  window.clickstreamConfig = {{getToken: () => "{token}"}};
</script>
<script src="{api}/static/clickstream.js" data-page-type="main"></script>
<p>Main page</p>
"""


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:
        pass


def _serve(server) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The web site's origin and its document root (pages are written by the test)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(tmp_path)))
    _serve(server)
    yield f"http://127.0.0.1:{server.server_port}", tmp_path
    server.shutdown()
    server.server_close()


@pytest.fixture
def api(make_live_app, site) -> Iterator[str]:
    """The API on another origin, allowing the site's."""
    with serve(make_live_app(cors_origins=(site[0],))) as url:
        yield url


def _view_id(driver: webdriver.Chrome) -> str:
    """The page's current page_view_id, once the tracker has started the view."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        view = driver.execute_script("return window.clickstream && window.clickstream.pageViewId()")
        if view:
            return view
        time.sleep(0.05)
    raise AssertionError("the tracker started no page view")


def test_page_views_and_clicks_from_a_browser_reach_the_warehouse(
    live_settings: Settings, site, api: str, browser: webdriver.Chrome, login
) -> None:
    origin, root = site
    user = f"viewer-{uuid.uuid4().hex[:8]}"
    token = login(user)
    (root / "movie.html").write_text(
        MOVIE_PAGE.format(api=api, token=token, video=VIDEO, trailer_video=TRAILER_VIDEO)
    )
    (root / "main.html").write_text(MAIN_PAGE.format(api=api, token=token))

    browser.get(f"{origin}/movie.html")
    movie_view = _view_id(browser)
    browser.find_element(By.ID, "play").click()
    browser.find_element(By.CLASS_NAME, "trailer").click()
    tracked = browser.execute_async_script(
        "window.clickstream.track('quality_change', "
        "{video_id: arguments[0], old_quality: 1080, new_quality: 720, reason: 'auto'})"
        ".then(arguments[1]);",
        VIDEO,
    )
    assert tracked["status"] == 202, tracked
    uuid.UUID(tracked["body"]["event_id"])
    # An application's own JSON fetch, naming its request, is preflighted; the API answers
    # the preflight and lets the page read the request id back.
    preflighted = browser.execute_async_script(
        "fetch(arguments[0] + '/api/v1/events', {method: 'POST', headers: "
        "{'Content-Type': 'application/json', 'X-Request-ID': 'browser-search-1'}, "
        "body: JSON.stringify({event: 'search_filter', token: null, "
        "data: {search_query: 'комедии', filters: 'genre=комедия&year=2020'}})})"
        ".then(r => arguments[1]([r.status, r.headers.get('X-Request-ID')]), "
        "e => arguments[1](String(e)));",
        api,
    )
    assert preflighted == [202, "browser-search-1"]

    # A click on a link that leaves the page: the click and the view's end still arrive.
    browser.find_element(By.ID, "poster").click()
    main_view = _view_id(browser)
    assert main_view != movie_view
    assert browser.execute_script("return crypto.randomUUID") is None
    assert uuid.UUID(main_view).version == 4

    # A second tab, closed while its page is open.
    first_tab = browser.current_window_handle
    browser.switch_to.new_window("tab")
    browser.get(f"{origin}/main.html")
    closed_view = _view_id(browser)
    browser.close()
    browser.switch_to.window(first_tab)
    browser.get("about:blank")

    registry = build_registry(make_plugin_manager())
    # Switching tabs may hide and show the first one, which ends its view and starts another:
    # every view must be matched, and these three among them.
    views = {movie_view: "movie", main_view: "main", closed_view: "main"}
    deadline = time.monotonic() + DEADLINE_S
    while True:
        run_pass(live_settings, registry)
        matched = query(
            live_settings,
            "SELECT toString(page_view_id), status, page_type, user_id, duration_s "
            "FROM {db}.page_view_durations",
        )
        clicks = query(
            live_settings,
            "SELECT element_type, element_id, page_type, video_id, position, user_id "
            "FROM {db}.element_clicks ORDER BY element_id NULLS LAST",
        )
        closed = {row[0] for row in matched if row[1] == "closed"}
        done = closed >= set(views) and len(closed) == len(matched) and len(clicks) >= 3
        if done or time.monotonic() > deadline:
            break
        time.sleep(0.2)

    assert {row[1] for row in matched} == {"closed"}, matched
    by_view = {row[0]: row[2:] for row in matched}
    assert set(by_view) >= set(views), f"views matched: {by_view}, expected: {views}"
    for view, (page_type, view_user, duration) in by_view.items():
        assert page_type == views.get(view, "main")
        assert view_user == user
        assert duration >= 0
    # Unknown data fields are refused (422), so a click stored here carried no other field.
    assert clicks == [
        ("button", "play", "movie", VIDEO, None, user),
        ("poster", "top10-card-3", "movie", VIDEO, 2, user),
        ("trailer", None, "movie", TRAILER_VIDEO, None, user),
    ]
    starts = query(
        live_settings,
        "SELECT toString(page_view_id), url, video_id FROM {db}.page_views "
        "WHERE event = 'page_view_start'",
    )
    assert {(movie_view, f"{origin}/movie.html", VIDEO)} <= set(starts)
    # A page without data-video-id sends no video_id.
    main_starts = {view for view, url, video in starts if url == f"{origin}/main.html"}
    assert main_starts >= {main_view, closed_view}
    assert all(video is None for _, url, video in starts if url == f"{origin}/main.html")
    ends = query(
        live_settings,
        "SELECT toString(page_view_id), video_id, visible_ms FROM {db}.page_views "
        "WHERE event = 'page_view_end'",
    )
    assert len(ends) == len(starts) and all(visible_ms >= 0 for _, _, visible_ms in ends)
    assert {(view, video) for view, video, _ in ends} >= {
        (movie_view, VIDEO),
        (main_view, None),
        (closed_view, None),
    }
    assert query(
        live_settings,
        "SELECT video_id, old_quality, new_quality, reason, user_id FROM {db}.quality_changes",
    ) == [(VIDEO, 1080, 720, "auto", user)]
    assert query(live_settings, "SELECT search_query, filters FROM {db}.search_filters") == [
        ("комедии", "genre=комедия&year=2020")
    ]


class _SharePlugin:
    """A third-party plugin whose tracker script sends an event by itself, as the guide shows."""

    @hookimpl
    def register_tracker_scripts(self) -> list[TrackerScript]:
        return [
            TrackerScript(
                name="quality_on_load",
                source="tracker.track('quality_change', "
                "{video_id: tracker.page().videoId, old_quality: 480, new_quality: 720});",
            ),
            # Named to run first: a script that throws stops neither the others nor the page.
            TrackerScript(name="a_broken_one", source="throw new Error('broken on purpose');"),
        ]


def test_a_plugins_tracker_script_runs_beside_the_built_in_ones(
    make_app, publisher, site, browser: webdriver.Chrome
) -> None:
    origin, root = site
    app = make_app(plugin_manager=make_plugin_manager([_SharePlugin()]), cors_origins=(origin,))
    with serve(app) as url:
        (root / "plain.html").write_text(
            f'<!doctype html><script src="{url}/static/clickstream.js" data-page-type="movie" '
            f'data-video-id="{VIDEO}"></script>'
        )
        browser.get(f"{origin}/plain.html")
        view = _view_id(browser)
        deadline = time.monotonic() + 5
        while len(publisher.sent) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    sent = {key: orjson.loads(value) for key, value in publisher.sent}
    assert set(sent) == {"page_view_start", "quality_change"}
    assert sent["page_view_start"]["data"]["page_view_id"] == view
    assert sent["quality_change"]["data"] == {
        "video_id": VIDEO,
        "old_quality": 480,
        "new_quality": 720,
    }
    errors = [entry["message"] for entry in browser.get_log("browser")]
    assert any("tracker script a_broken_one failed" in message for message in errors), errors


# Issue 14: visitors, from a browser that says it is a desktop Chrome (desktop_browser).
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
VISIT_PAGE = """<!doctype html>
<meta charset="utf-8"><title>{page}</title>
<style>button, a {{display: inline-block; width: 120px; height: 40px}}</style>
<script>window.clickstreamConfig = {{getToken: () => localStorage.getItem("token")}};</script>
<script src="{api}/static/clickstream.js" data-page-type="{page}"></script>
<button id="play" data-clickstream-element="button" data-clickstream-id="play">Play</button>
"""


def test_a_visit_is_one_session_and_one_person_and_bots_are_left_out(
    live_settings: Settings, site, api: str, desktop_browser: webdriver.Chrome, login
) -> None:
    import requests

    from etl.reports import plugin_report

    origin, root = site
    user = f"visitor-{uuid.uuid4().hex[:8]}"
    for page in ("movie", "main"):
        (root / f"{page}.html").write_text(VISIT_PAGE.format(api=api, page=page))
    browser = desktop_browser

    # Two page loads, a click, a sign-in midway, then a search.
    browser.get(f"{origin}/movie.html")
    _view_id(browser)
    first = browser.execute_script("return window.clickstream.visitor()")
    browser.find_element(By.ID, "play").click()
    browser.get(f"{origin}/main.html")
    _view_id(browser)
    second = browser.execute_script("return window.clickstream.visitor()")
    assert first == second, "one visit, one visitor: the ids survive a page load"
    browser.execute_script("localStorage.setItem('token', arguments[0])", login(user))
    searched = browser.execute_async_script(
        "window.clickstream.track('search_filter', {search_query: 'солярис', filters: ''})"
        ".then(arguments[0]);"
    )
    assert searched["status"] == 202, searched
    browser.get("about:blank")

    # A client whose clock is two hours slow, and one set three days back.
    events = f"{api}/api/v1/events"
    human = {"User-Agent": DESKTOP_CHROME}
    now = datetime.now(UTC)
    skewed = {}
    for name, behind in (("slow", timedelta(hours=2)), ("wrong", timedelta(days=3))):
        sent_at = (now - behind).isoformat(timespec="milliseconds")
        answer = requests.post(
            events,
            json={
                "event": "element_click",
                "token": None,
                "data": {"element_type": name, "page_type": "other"},
                "sent_at": sent_at,
            },
            headers=human,
            timeout=5,
        )
        assert answer.status_code == 202, answer.text
        skewed[name] = sent_at
    # A crawler, which sends the visitor fields too.
    bot = {
        "event": "page_view_start",
        "token": None,
        "data": {"page_view_id": str(uuid.uuid4()), "page_type": "main"},
        "anonymous_id": "crawler",
        "session_id": "crawler-visit",
    }
    answer = requests.post(events, json=bot, headers={"User-Agent": GOOGLEBOT}, timeout=5)
    assert answer.status_code == 202, answer.text

    registry = build_registry(make_plugin_manager())
    deadline = time.monotonic() + DEADLINE_S
    while True:
        run_pass(live_settings, registry)
        sessions = query(
            live_settings,
            "SELECT session_id, person_id, user_id, anonymous_id, events, pages, is_bot "
            "FROM {db}.sessions ORDER BY session_id",
        )
        # start, click, end, start, search, end; and the crawler's start.
        visit = [row for row in sessions if row[0] == first["sessionId"]]
        if (visit and visit[0][4] >= 6 and len(sessions) >= 2) or time.monotonic() > deadline:
            break
        time.sleep(0.2)

    assert sorted(sessions) == sorted(
        [
            (first["sessionId"], user, user, first["anonymousId"], 6, 2, False),
            ("crawler-visit", "crawler", "anonymous", "crawler", 1, 1, True),
        ]
    )
    assert sorted(
        query(live_settings, "SELECT anonymous_id, person_id FROM {db}.people")
    ) == sorted([(first["anonymousId"], user), ("crawler", "crawler")])
    # Every event of the visit, before the sign-in too, is the one person's.
    assert query(
        live_settings,
        "SELECT DISTINCT person_id, device, browser, os, is_bot FROM {db}.person_events "
        "WHERE session_id = {s:String}",
        s=first["sessionId"],
    ) == [(user, "Other", "Chrome", "Linux", False)]
    assert query(
        live_settings,
        "SELECT anonymous_id, user_id FROM {db}.identity_links FINAL",
    ) == [(first["anonymousId"], user)]
    assert query(
        live_settings,
        "SELECT browser, is_bot FROM {db}.page_views WHERE anonymous_id = 'crawler'",
    ) == [("Googlebot", True)]

    clocks = dict(
        query(
            live_settings,
            "SELECT element_type, (timestamp, sent_at, client_time) FROM {db}.element_clicks "
            "WHERE element_type IN ('slow', 'wrong')",
        )
    )
    stamp, sent_at, corrected = clocks["slow"]
    assert corrected == sent_at == datetime.fromisoformat(skewed["slow"]).replace(tzinfo=None)
    assert timedelta(hours=2) <= stamp - corrected < timedelta(hours=2, seconds=30)
    stamp, sent_at, corrected = clocks["wrong"]
    assert corrected is None and stamp - sent_at > timedelta(days=3)

    figures = plugin_report(live_settings, registry, "audience").figures
    # The visitor is one person; the crawler is left out, and so are the clicks of no visitor.
    assert (figures["dau"], figures["wau"], figures["mau"]) == (1, 1, 1)
    assert figures["sessions_per_day"] == 1
