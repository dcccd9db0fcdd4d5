"""The benchmark's own logic: the open-loop schedule, latency from due times, percentiles."""

from __future__ import annotations

import asyncio

import pytest

from bench.openloop import open_loop, schedule, summarize
from bench.stats import Spread, percentile


def test_schedule_is_evenly_spaced_at_the_rate():
    due = schedule(rate=200, duration_s=0.5)
    assert len(due) == 100
    assert due[0] == 0
    assert all(b - a == pytest.approx(0.005) for a, b in zip(due, due[1:], strict=False))


def test_schedule_refuses_a_rate_of_zero():
    with pytest.raises(ValueError):
        schedule(rate=0, duration_s=1)


def test_percentile_is_nearest_rank():
    values = list(range(1, 1001))  # 1..1000
    assert percentile(values, 50) == 500
    assert percentile(values, 99) == 990
    assert percentile(values, 99.9) == 999
    assert percentile(values, 100) == 1000
    assert percentile([7.0], 99.9) == 7.0
    assert percentile([3, 1, 2], 50) == 2  # unsorted input


def test_percentile_refuses_nothing_and_bad_ranks():
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1], 0)


def test_spread_is_median_min_max():
    spread = Spread.of([3.0, 1.0, 10.0])
    assert (spread.median, spread.low, spread.high, spread.runs) == (3.0, 1.0, 10.0, 3)
    assert spread.format() == "3 (1 – 10)"
    assert Spread.of([2.5]).format(1) == "2.5"


def test_open_loop_counts_queueing_behind_a_slow_server():
    """One connection answering in 20 ms, requests due every 10 ms: each waits for the ones
    before it. Latency from the due time grows by at least 10 ms per request; a closed-loop
    generator (timing from the actual send) would report about 20 ms for every one."""
    connection = asyncio.Lock()

    async def send(index: int) -> tuple[int, str | None]:
        async with connection:
            await asyncio.sleep(0.02)
        return 202, f"id-{index}"

    due = schedule(rate=100, duration_s=0.3)
    samples = asyncio.run(open_loop(send, due))
    assert [s.due for s in samples] == due
    tolerance = 0.002  # the event loop may wake a timer up to its clock resolution early
    for index, sample in enumerate(samples):
        assert sample.latency >= 0.02 + 0.01 * index - tolerance
    summary = summarize(samples, 0.3)
    assert summary["ok"] == 30 and summary["errors"] == 0
    assert summary["p99_ms"] >= (0.02 + 0.01 * 29 - tolerance) * 1000
