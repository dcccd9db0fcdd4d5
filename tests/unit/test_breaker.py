"""The circuit breaker on its own: closed, open, half-open with exactly one trial."""

from __future__ import annotations

import threading

from core.ingest.breaker import CircuitBreaker
from tests.fakes import Clock


def test_failures_below_the_threshold_keep_it_closed() -> None:
    breaker = CircuitBreaker(3, 5.0, Clock())
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state == "closed" and breaker.allow()
    breaker.record_success()
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state == "closed", "a success starts the count again"
    breaker.record_failure()
    assert breaker.state == "open" and not breaker.allow()


def test_half_open_allows_a_single_trial():
    clock = Clock()
    breaker = CircuitBreaker(1, 5.0, clock)
    breaker.record_failure()
    assert breaker.state == "open"
    assert not breaker.allow()
    clock.advance(5)
    assert breaker.allow()
    assert not breaker.allow()
    assert breaker.state == "half_open"
    breaker.record_success()
    assert breaker.state == "closed"
    assert breaker.allow()


def test_breaker_is_thread_safe_in_half_open():
    clock = Clock()
    breaker = CircuitBreaker(1, 1.0, clock)
    breaker.record_failure()
    clock.advance(1)
    allowed = []
    threads = [threading.Thread(target=lambda: allowed.append(breaker.allow())) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert allowed.count(True) == 1
