"""What the identity resolver caches: the auth service's answers, and the in-process LRU
of them that spares hot tokens the Redis round trip. Keys are digests, never tokens."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class CachedAnswer:
    """A cached answer of the auth service: a user id or a rejection, valid until ``until``."""

    until: float
    user_id: str | None = None
    rejected: str | None = None

    def to_json(self) -> str:
        if self.user_id is not None:
            return json.dumps({"user_id": self.user_id, "until": self.until})
        return json.dumps({"rejected": self.rejected, "until": self.until})

    @classmethod
    def from_json(cls, raw: bytes | str) -> CachedAnswer | None:
        try:
            value = json.loads(raw)
            until = float(value["until"])
        except (ValueError, TypeError, KeyError):
            return None
        if isinstance(value.get("user_id"), str):
            return cls(until, user_id=value["user_id"])
        if isinstance(value.get("rejected"), str):
            return cls(until, rejected=value["rejected"])
        return None


class LocalCache:
    """A bounded in-process LRU of cache entries, so hot tokens skip the Redis round trip."""

    def __init__(self, size: int, max_ttl_s: float, clock: Callable[[], float]) -> None:
        self._size = size
        self._max_ttl_s = max_ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, CachedAnswer] = OrderedDict()

    def get(self, digest: str) -> CachedAnswer | None:
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                return None
            if entry.until <= self._clock():
                del self._entries[digest]
                return None
            self._entries.move_to_end(digest)
            return entry

    def put(self, digest: str, entry: CachedAnswer) -> None:
        if self._size <= 0:
            return
        # Bounding the local lifetime keeps processes from serving an answer long after an
        # operator removed it from Redis.
        until = min(entry.until, self._clock() + self._max_ttl_s)
        with self._lock:
            self._entries[digest] = CachedAnswer(until, entry.user_id, entry.rejected)
            self._entries.move_to_end(digest)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
