"""Realistic events of every built-in type, for the demo and the benchmarks.

The data follows the specification: its required fields always, the optional ones only
sometimes, as real clients send them. Videos are named by the catalogue's string ids
("tt0111161"), search filters by the client's own string ("genre=драма&year=2020").
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Iterator

PAGE_TYPES = ("main", "movie", "category", "promotion", "search", "profile")
#: Page types about one video: their views and clicks name it.
VIDEO_PAGES = ("movie",)
ELEMENT_TYPES = ("movie", "category", "trailer", "button", "banner")
#: Element types that stand for one video.
VIDEO_ELEMENTS = ("movie", "trailer")
CATEGORIES = ("comedy", "drama", "sci-fi", "kids", "series", "new")
QUERIES = (
    "комедии 2020",
    "фильмы про космос",
    "Брат 2",
    "мультфильмы для детей",
    "интерстеллар",
    "сериалы HBO",
    "",
)
#: Filters as clients send them; "" when only text was typed.
FILTERS = (
    "genre=драма",
    "genre=комедия&year=2020",
    "genre=фантастика&country=США",
    "year=2010-2019&rating=7+",
    "country=Россия&genre=драма&year=2020",
    "",
)
QUALITIES = (360, 480, 720, 1080, 2160)
#: Catalogue ids of videos: opaque strings in the catalogue's own form, not UUIDs.
VIDEOS = [f"tt{111161 + n * 7919:07d}" for n in range(50)]


#: Browsers the traffic comes from; each visit of one is a session of its own.
VISITORS = 40


def events(count: int, tokens: list[str | None], seed: int | None = None) -> Iterator[dict]:
    """``count`` events (a page view's start and end count as two), tokens drawn from ``tokens``.

    Every type appears; one page view in ten is left open (no end), as when a tab crashes.
    Each event comes from one of ``VISITORS`` browsers (its ``anonymous_id``, and its token:
    the same user, or no one), in a session of it (``session_id``); both ends of a page view
    come from the same one. A ``seed`` repeats a sequence; without one, page view ids are
    new on every call.
    """
    rng = random.Random(seed)
    run = uuid.UUID(int=rng.getrandbits(128), version=4).hex[:8]
    makers = (_page_view, _click, _quality_change, _video_complete, _search)
    produced = 0
    for make in itertools.cycle(makers):
        visitor = rng.randrange(VISITORS)
        token = tokens[visitor % len(tokens)]
        envelope = {
            "anonymous_id": f"browser-{run}-{visitor}",
            "session_id": f"session-{run}-{visitor}-{produced // (VISITORS * 10)}",
        }
        for name, data in make(rng):
            if produced == count:
                return
            yield {"event": name, "token": token, "data": data, **envelope}
            produced += 1


def _sometimes(rng: random.Random, probability: float = 0.5) -> bool:
    return rng.random() < probability


def _page_view(rng: random.Random) -> list[tuple[str, dict]]:
    view = {"page_view_id": str(uuid.UUID(int=rng.getrandbits(128), version=4))}
    view["page_type"] = page_type = rng.choice(PAGE_TYPES)
    if page_type in VIDEO_PAGES:
        view["video_id"] = rng.choice(VIDEOS)
    path = f"{page_type}/{view['video_id']}" if "video_id" in view else page_type
    start = {**view, "url": f"https://cinema.example/{path}"}
    if _sometimes(rng, 0.6):
        start["referrer"] = f"https://cinema.example/{rng.choice(PAGE_TYPES)}"
    if _sometimes(rng, 0.1):
        return [("page_view_start", start)]
    end = dict(view)
    if _sometimes(rng, 0.9):
        end["visible_ms"] = rng.randint(500, 600_000)
    return [("page_view_start", start), ("page_view_end", end)]


def _click(rng: random.Random) -> list[tuple[str, dict]]:
    element_type = rng.choice(ELEMENT_TYPES)
    data = {"element_type": element_type, "page_type": rng.choice(PAGE_TYPES)}
    if element_type in VIDEO_ELEMENTS:
        data["video_id"] = rng.choice(VIDEOS)
    elif element_type == "category":
        data["element_id"] = f"category-{rng.choice(CATEGORIES)}"
    elif _sometimes(rng, 0.7):
        data["element_id"] = f"{element_type}-{rng.randint(1, 40)}"
    if element_type != "button" and _sometimes(rng, 0.6):
        data["position"] = rng.randint(0, 30)
    return [("element_click", data)]


def _quality_change(rng: random.Random) -> list[tuple[str, dict]]:
    # One change in twenty reports the quality it already had (a re-selection): valid data.
    old = rng.choice(QUALITIES)
    new = old if _sometimes(rng, 0.05) else rng.choice([q for q in QUALITIES if q != old])
    data = {"video_id": rng.choice(VIDEOS), "old_quality": old, "new_quality": new}
    if _sometimes(rng, 0.7):
        data["reason"] = rng.choice(["auto", "manual"])
    if _sometimes(rng):
        data["position_s"] = rng.randint(0, 9000)
    return [("quality_change", data)]


def _video_complete(rng: random.Random) -> list[tuple[str, dict]]:
    duration = rng.randint(600, 9000)
    watched = duration if _sometimes(rng, 0.4) else rng.randint(60, duration - 1)
    data = {"video_id": rng.choice(VIDEOS), "duration_total": watched == duration}
    if _sometimes(rng, 0.6):
        data["watched_s"] = watched
        data["duration_s"] = duration
    return [("video_complete", data)]


def _search(rng: random.Random) -> list[tuple[str, dict]]:
    search_query = rng.choice(QUERIES)
    # A search needs text, filters or both: no filters only when text was typed.
    filters = rng.choice(FILTERS if search_query else FILTERS[:-1])
    data = {"search_query": search_query, "filters": filters}
    if _sometimes(rng, 0.7):
        data["results_count"] = rng.randint(0, 500)
    return [("search_filter", data)]
