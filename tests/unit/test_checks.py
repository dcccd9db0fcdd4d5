"""Issue 13 item 7: readiness checks cached per TTL, one refresh at a time (no services)."""

from __future__ import annotations

import threading

from core.ingest.checks import CachedCheck


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Counting:
    """A check answering how many times it ran."""

    def __init__(self) -> None:
        self.runs = 0

    def __call__(self) -> dict:
        self.runs += 1
        return {"n": self.runs}


def test_a_check_runs_once_per_ttl() -> None:
    clock = Clock()
    check = CachedCheck(Counting(), 5.0, clock)
    assert [check()["n"] for _ in range(3)] == [1, 1, 1]
    clock.now += 5
    assert check()["n"] == 2


def test_no_ttl_checks_every_time() -> None:
    check = CachedCheck(Counting(), 0.0, Clock())
    assert [check()["n"] for _ in range(3)] == [1, 2, 3]


def test_during_a_refresh_others_get_the_previous_answer_at_once() -> None:
    clock, started, release = Clock(), threading.Event(), threading.Event()
    answers = iter([{"n": 1}, {"n": 2}])

    def slow() -> dict:
        answer = next(answers)
        if answer["n"] == 2:
            started.set()
            release.wait(5)
        return answer

    check = CachedCheck(slow, 5.0, clock)
    assert check() == {"n": 1}
    clock.now += 10
    refresher = threading.Thread(target=check)
    refresher.start()
    assert started.wait(5)
    assert check() == {"n": 1}  # not blocked, and no second refresh
    release.set()
    refresher.join()
    assert check() == {"n": 2}


def test_the_first_callers_wait_for_one_check() -> None:
    calls, gate = [], threading.Event()

    def slow() -> dict:
        calls.append(1)
        gate.wait(5)
        return {"ok": True}

    check = CachedCheck(slow, 5.0, Clock())
    results: list[dict] = []
    threads = [threading.Thread(target=lambda: results.append(check())) for _ in range(5)]
    for thread in threads:
        thread.start()
    gate.set()
    for thread in threads:
        thread.join()
    assert results == [{"ok": True}] * 5
    assert calls == [1]


def test_what_the_owner_learns_replaces_the_cached_answer() -> None:
    clock = Clock()
    check = CachedCheck(Counting(), 5.0, clock)
    assert check() == {"n": 1}
    check.put({"ok": False})
    assert check() == {"ok": False}
    clock.now += 5
    assert check() == {"n": 2}
