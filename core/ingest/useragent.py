"""The sender of a request, from its User-Agent: device, browser and OS (ua-parser), and
whether it is a crawler or a script (crawlerdetect). Answers are cached, as parsing is slow."""

from __future__ import annotations

import threading
from functools import lru_cache

import ua_parser
from crawlerdetect import CrawlerDetect

from core.message import UNKNOWN_CLIENT, Client

#: The distinct User-Agents remembered: a site's visitors use a few hundred at most.
CACHE_SIZE = 4096
#: Longer User-Agents are cut before parsing: real ones are well under this, and the cut
#: bounds what one request can cost and what the cache holds.
MAX_USER_AGENT = 512
#: What ua-parser calls a family it does not know.
OTHER = "Other"


class UserAgentParser:
    """Classifies User-Agent strings; one per application, safe to share between threads."""

    def __init__(self, cache_size: int = CACHE_SIZE) -> None:
        self._crawlers = CrawlerDetect()
        # CrawlerDetect keeps the last match on the instance: one caller at a time.
        self._lock = threading.Lock()
        self.classify = lru_cache(maxsize=cache_size)(self._classify)

    def _classify(self, user_agent: str) -> Client:
        user_agent = user_agent.strip()[:MAX_USER_AGENT]
        if not user_agent:
            return UNKNOWN_CLIENT
        with self._lock:
            is_bot = self._crawlers.isCrawler(user_agent)
        parsed = ua_parser.parse(user_agent)
        return Client(
            device=parsed.device.family if parsed.device else OTHER,
            browser=parsed.user_agent.family if parsed.user_agent else OTHER,
            os=parsed.os.family if parsed.os else OTHER,
            is_bot=is_bot,
        )
