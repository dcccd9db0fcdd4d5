"""Realistic events of every built-in type, for the demo and the benchmarks."""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Iterator

PAGE_TYPES = ("main", "movie", "search", "profile", "catalog")
ELEMENT_TYPES = ("button", "poster", "link", "banner")
QUERIES = (
    "комедии 2020",
    "фильмы про космос",
    "Брат 2",
    "мультфильмы для детей",
    "интерстеллар",
    "сериалы HBO",
    "",
)
MOVIES = [str(uuid.UUID(int=n * 7919 + 1)) for n in range(50)]


def events(count: int, tokens: list[str | None], seed: int | None = None) -> Iterator[dict]:
    """``count`` events (a page view's start and end count as two), tokens drawn from ``tokens``.

    Every type appears; one page view in ten is left open (no end), as when a tab crashes.
    A ``seed`` repeats a sequence; without one, page view ids are new on every call.
    """
    rng = random.Random(seed)
    makers = (_page_view, _click, _quality_change, _video_complete, _search)
    produced = 0
    for make in itertools.cycle(makers):
        for name, data in make(rng):
            if produced == count:
                return
            yield {"event": name, "token": rng.choice(tokens), "data": data}
            produced += 1


def _page_view(rng: random.Random) -> list[tuple[str, dict]]:
    view = {"page_view_id": str(uuid.UUID(int=rng.getrandbits(128), version=4))}
    view["page_type"] = rng.choice(PAGE_TYPES)
    start = ("page_view_start", {**view, "url": f"https://cinema.example/{view['page_type']}"})
    if rng.random() < 0.1:
        return [start]
    return [start, ("page_view_end", {**view, "visible_ms": rng.randint(500, 600_000)})]


def _click(rng: random.Random) -> list[tuple[str, dict]]:
    return [
        (
            "element_click",
            {
                "element_type": rng.choice(ELEMENT_TYPES),
                "element_id": f"el-{rng.randint(1, 40)}",
                "page_type": rng.choice(PAGE_TYPES),
                "movie_id": rng.choice(MOVIES),
                "position": rng.randint(0, 30),
            },
        )
    ]


def _quality_change(rng: random.Random) -> list[tuple[str, dict]]:
    old, new = rng.sample([360, 480, 720, 1080, 2160], 2)
    data = {"movie_id": rng.choice(MOVIES), "old_quality": old, "new_quality": new}
    return [("quality_change", {**data, "reason": rng.choice(["auto", "manual"])})]


def _video_complete(rng: random.Random) -> list[tuple[str, dict]]:
    duration = rng.randint(600, 9000)
    watched = rng.randint(60, duration)
    data = {"movie_id": rng.choice(MOVIES), "duration_total": watched == duration}
    return [("video_complete", {**data, "watched_s": watched, "duration_s": duration})]


def _search(rng: random.Random) -> list[tuple[str, dict]]:
    query = rng.choice(QUERIES)
    filters = (
        {"genre": rng.choice(["комедия", "драма", "фантастика"])}
        if not query or rng.random() < 0.5
        else {}
    )
    return [
        (
            "search_filter",
            {"query": query, "filters": filters, "results_count": rng.randint(0, 500)},
        )
    ]
