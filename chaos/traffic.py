"""Steady open-loop traffic of every event type, with clients that retry like the tracker,
and a record of every answer.

Requests leave at fixed times (``rate`` a second) whatever the API does. Each is a single
event (JSON), a batch (2 to 8 events) or a beacon (``text/plain``, sent once, as
``navigator.sendBeacon`` does); half the events are anonymous, half carry a token the auth
service issued. Singles and batches retry 429, 503 and network failures like
``core/api/assets/clickstream.js``: three attempts in all, after ``Retry-After`` or
``0.5 s * 2^attempt``; a batch resends only its events answered 429 or 503.

Every event carries, as its ``session_id``, a key of this run's own (``c<run>-<n>``), so
the checker finds each one in the raw tables whatever ``event_id`` the API gave it.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

ATTEMPTS = 3
MAX_WAIT_S = 30.0
RETRIED = (429, 503)
TIMEOUT_S = 10.0
PAGE_TYPES = ("main", "movie", "category", "promotion", "search", "profile")
ELEMENT_TYPES = ("movie", "category", "trailer", "button", "banner")
QUALITIES = (360, 480, 720, 1080, 2160)
QUERIES = ("комедии 2020", "Брат 2", "интерстеллар", "", "сериалы HBO")
FILTERS = ("genre=драма", "genre=комедия&year=2020", "year=2010-2019", "")


@dataclass
class Sent:
    """One event as the client sent it, and what the API said to each attempt."""

    key: str
    event: str
    data: dict
    user_id: str | None
    sent_at: str
    channel: str  # single, batch or beacon
    #: One entry per attempt: the HTTP status, or 0 for no answer (a transport error).
    answers: list[int] = field(default_factory=list)
    event_id: str | None = None
    accepted_at: float | None = None
    #: An attempt was answered 503 ``unconfirmed``: sent to Kafka, neither acknowledged nor
    #: spooled, so it may be stored all the same (docs/clients.md).
    unconfirmed: bool = False

    @property
    def outcome(self) -> str:
        if self.event_id is not None:
            return "accepted"
        return "unanswered" if not self.answers or self.answers[-1] == 0 else "refused"

    @property
    def maybe_stored(self) -> bool:
        """Whether an attempt may have been stored without the client hearing of it."""
        return 0 in self.answers or self.unconfirmed


@dataclass(frozen=True)
class Sample:
    """One HTTP request: when it left (wall clock), its latency from its due time, status."""

    at: float
    latency_s: float
    status: int


def event_data(rng: random.Random, name: str, page_view_id: str) -> dict:
    """The specification's required fields of ``name``, drawn from ``rng``."""
    if name == "element_click":
        return {"element_type": rng.choice(ELEMENT_TYPES), "page_type": rng.choice(PAGE_TYPES)}
    if name in ("page_view_start", "page_view_end"):
        return {"page_view_id": page_view_id, "page_type": rng.choice(PAGE_TYPES)}
    if name == "quality_change":
        old, new = rng.sample(QUALITIES, 2)
        return {"video_id": f"tt{rng.randint(1, 999999):07d}", "old_quality": old,
                "new_quality": new}  # fmt: skip
    if name == "video_complete":
        return {"video_id": f"tt{rng.randint(1, 999999):07d}", "duration_total": rng.random() < 0.5}
    return {"search_query": rng.choice(QUERIES), "filters": rng.choice(FILTERS[:3])}


EVENTS = (
    "element_click",
    "page_view_start",
    "page_view_end",
    "quality_change",
    "video_complete",
    "search_filter",
)


class Traffic:
    """The generator: ``run(duration_s)`` sends; ``sent`` and ``samples`` are the record."""

    def __init__(
        self,
        api_url: str,
        tokens: dict[str, str],
        *,
        rate: float,
        seed: int,
        clock_offset: Callable[[], float] = lambda: 0.0,
    ) -> None:
        self.api_url = api_url
        self.tokens = list(tokens.items())  # (user id, token)
        self.rate = rate
        self.rng = random.Random(f"traffic/{seed}")
        self.run_id = uuid.uuid4().hex[:8]
        self.clock_offset = clock_offset
        self.sent: list[Sent] = []
        self.samples: list[Sample] = []
        self._page_views: list[str] = []

    def _event(self) -> tuple[Sent, dict]:
        rng = self.rng
        name = rng.choice(EVENTS)
        if name == "page_view_end" and self._page_views:
            page_view_id = self._page_views.pop(0)
        else:
            page_view_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            if name == "page_view_start":
                self._page_views.append(page_view_id)
        user_id, token = rng.choice(self.tokens) if rng.random() < 0.5 else (None, None)
        sent_at = datetime.fromtimestamp(time.time() + self.clock_offset(), UTC)
        sent = Sent(
            key=f"c{self.run_id}-{len(self.sent)}",
            event=name,
            data=event_data(rng, name, page_view_id),
            user_id=user_id,
            sent_at=sent_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            channel="",
        )
        self.sent.append(sent)
        body = {
            "event": name,
            "token": token,
            "data": sent.data,
            "anonymous_id": f"chaos-visitor-{rng.randrange(40)}",
            "session_id": sent.key,
            "sent_at": sent.sent_at,
        }
        return sent, body

    async def run(self, duration_s: float) -> None:
        import aiohttp

        connector = aiohttp.TCPConnector(limit=200)
        timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            loop = asyncio.get_running_loop()
            start = loop.time()
            tasks = []
            for index in range(round(self.rate * duration_s)):
                due = start + index / self.rate
                await asyncio.sleep(max(0.0, due - loop.time()))
                tasks.append(asyncio.create_task(self._request(session, due)))
            await asyncio.gather(*tasks)

    async def _request(self, session, due: float) -> None:
        draw = self.rng.random()
        if draw < 0.6:
            sent, body = self._event()
            sent.channel = "single"
            await self._single(session, sent, body, due)
        elif draw < 0.85:
            pairs = [self._event() for _ in range(self.rng.randint(2, 8))]
            for sent, _ in pairs:
                sent.channel = "batch"
            await self._batch(session, pairs, due)
        else:
            sent, body = self._event()
            sent.channel = "beacon"
            await self._single(session, sent, body, due, beacon=True)

    async def _post(self, session, path: str, payload, due: float | None, content_type: str):
        """(status, parsed body or None, Retry-After seconds or None); status 0: no answer."""
        import aiohttp

        loop = asyncio.get_running_loop()
        left = loop.time()
        try:
            async with session.post(
                f"{self.api_url}{path}",
                data=orjson.dumps(payload),
                headers={"Content-Type": content_type},
            ) as response:
                raw = await response.read()
                status = response.status
                retry_after = response.headers.get("Retry-After")
        except (TimeoutError, aiohttp.ClientError, OSError):
            status, raw, retry_after = 0, b"", None
        now = loop.time()
        self.samples.append(Sample(time.time(), now - (due if due is not None else left), status))
        try:
            answer = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            answer = None
        wait = float(retry_after) if retry_after and retry_after.isdigit() else None
        return status, answer, wait

    async def _single(self, session, sent: Sent, body: dict, due: float, beacon: bool = False):
        content_type = "text/plain;charset=UTF-8" if beacon else "application/json"
        for attempt in range(1, ATTEMPTS + 1):
            status, answer, wait = await self._post(
                session, "/api/v1/events", body, due if attempt == 1 else None, content_type
            )
            sent.answers.append(status)
            sent.unconfirmed |= isinstance(answer, dict) and answer.get("error") == "unconfirmed"
            if status == 202 and isinstance(answer, dict):
                sent.event_id, sent.accepted_at = answer["event_id"], time.time()
                return
            if beacon or (status and status not in RETRIED) or attempt == ATTEMPTS:
                return
            await asyncio.sleep(backoff(wait, attempt))

    async def _batch(self, session, pairs: list[tuple[Sent, dict]], due: float) -> None:
        pending = pairs
        for attempt in range(1, ATTEMPTS + 1):
            status, answer, wait = await self._post(
                session,
                "/api/v1/events/batch",
                [body for _, body in pending],
                due if attempt == 1 else None,
                "application/json",
            )
            if status == 200 and isinstance(answer, dict):
                again = []
                for (sent, body), result in zip(pending, answer["results"], strict=True):
                    sent.answers.append(result["status"])
                    sent.unconfirmed |= result.get("error") == "unconfirmed"
                    if result["status"] == 202:
                        sent.event_id, sent.accepted_at = result["event_id"], time.time()
                    elif result["status"] in RETRIED:
                        again.append((sent, body))
                        wait = wait or result.get("retry_after")
                pending = again
            else:
                for sent, _ in pending:
                    sent.answers.append(status)
                if status and status not in RETRIED:
                    return
            if not pending or attempt == ATTEMPTS:
                return
            await asyncio.sleep(backoff(wait, attempt))


def backoff(retry_after_s: float | None, attempt: int) -> float:
    """The tracker's wait before another attempt: Retry-After, else 0.5 s * 2^attempt."""
    wait = retry_after_s if retry_after_s is not None else 0.5 * 2**attempt
    return min(wait, MAX_WAIT_S)


def login(auth_base: str, users: int) -> dict[str, str]:
    """A token from the auth service for each of ``users`` users: user id -> token."""
    import requests

    tokens = {}
    for number in range(users):
        user_id = f"chaos-user-{number}"
        answer = requests.post(
            f"{auth_base}/api/v1/auth/login", json={"user_id": user_id, "ttl_s": 7200}, timeout=5
        )
        answer.raise_for_status()
        tokens[user_id] = answer.json()["token"]
    return tokens
