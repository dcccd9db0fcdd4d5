"""A circuit breaker: stop calling a failing dependency for a while, then try it again."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Literal

log = logging.getLogger(__name__)

BreakerState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Stops calling a failing dependency for a while, then lets one trial call through.

    closed: every call goes through. After ``failures`` consecutive failures it opens:
    no call goes through for ``reset_s``. Then it is half-open: the first caller gets
    the trial call, the others are refused until the trial succeeds (closed) or
    fails (open again).
    """

    def __init__(
        self,
        failures: int,
        reset_s: float,
        clock: Callable[[], float] = time.monotonic,
        name: str = "auth service",
    ) -> None:
        self.name = name
        self._failures_to_open = max(1, failures)
        self._reset_s = reset_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._state()

    def _state(self) -> BreakerState:
        if self._opened_at is None:
            return "closed"
        if self._trial_running or self._clock() - self._opened_at >= self._reset_s:
            return "half_open"
        return "open"

    def allow(self) -> bool:
        """Whether the caller may call the dependency now; a True must be followed by a
        record (or a :meth:`release`)."""
        with self._lock:
            state = self._state()
            if state == "closed":
                return True
            if state == "half_open" and not self._trial_running:
                self._trial_running = True
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            if self._opened_at is not None:
                log.info("%s answers again: circuit breaker closed", self.name)
            self._failures = 0
            self._opened_at = None
            self._trial_running = False

    def release(self) -> None:
        """The call got an answer that says nothing of the dependency's health: no success,
        no failure; a half-open breaker gives the next caller the trial."""
        with self._lock:
            self._trial_running = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            reopening = self._trial_running
            self._trial_running = False
            if reopening:
                self._opened_at = self._clock()
                # A long outage would otherwise log one line per failed trial.
                log.debug("%s still failing: circuit breaker open again", self.name)
            elif self._opened_at is None and self._failures >= self._failures_to_open:
                self._opened_at = self._clock()
                log.warning(
                    "%s circuit breaker open for %.1f s after %d consecutive failures",
                    self.name,
                    self._reset_s,
                    self._failures,
                )
