"""A readiness check of a dependency, run at most once per TTL, so that a flood of probes
costs the dependency (Kafka, the auth service, Redis) one call, not one each."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

Answer = dict[str, Any]


class CachedCheck:
    """Runs ``check`` at most once every ``ttl_s`` seconds; one refresh at a time.

    While a refresh runs, other callers get the previous answer at once rather than
    starting checks of their own; only the very first callers wait for it. ``ttl_s=0``
    runs the check at every call.
    """

    def __init__(
        self,
        check: Callable[[], Answer],
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._check = check
        self._ttl_s = ttl_s
        self._clock = clock
        self._refreshing = threading.Lock()
        self._last: tuple[float, Answer] | None = None

    def __call__(self) -> Answer:
        if self._ttl_s <= 0:
            return self._check()
        last = self._last
        if last is not None and self._clock() - last[0] < self._ttl_s:
            return last[1]
        if not self._refreshing.acquire(blocking=last is None):
            return last[1]  # another caller refreshes; the previous answer will do
        try:
            last = self._last
            if last is not None and self._clock() - last[0] < self._ttl_s:
                return last[1]  # refreshed while this caller waited
            answer = self._check()
            self._last = (self._clock(), answer)
            return answer
        finally:
            self._refreshing.release()

    def put(self, answer: Answer) -> None:
        """Record what the owner learnt by itself (a send that failed) as the latest answer."""
        self._last = (self._clock(), answer)
