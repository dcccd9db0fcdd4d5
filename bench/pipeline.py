"""``python -m bench.pipeline``: events/s of the batch endpoint's own Python work.

The real app in-process (Flask test client) with the identity resolver and Kafka
replaced by fakes: what validation, enrichment and encoding cost per event, before
any broker. The batch endpoint cannot go faster than this on one core.
"""

from __future__ import annotations

import statistics
import time

import orjson

from bench.load import traffic
from core.api import create_app
from core.config import Settings
from tests.fakes import FakeIdentity, FakePublisher

BATCH = 500


def main(rounds: int = 5, requests: int = 20) -> None:
    app = create_app(Settings(), identity=FakeIdentity(), publisher=FakePublisher())
    client = app.test_client()
    body = orjson.dumps(list(traffic.events(BATCH, [None])))
    post = lambda: client.post("/api/v1/events/batch", data=body, content_type="application/json")  # noqa: E731
    post()  # warm-up
    rates = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(requests):
            post()
        rates.append(requests * BATCH / (time.perf_counter() - started))
    median = statistics.median(rates)
    print(
        f"batch endpoint without Kafka: {median:,.0f} events/s median of {rounds} "
        f"(min {min(rates):,.0f}, max {max(rates):,.0f}); {1e6 / median:.0f} µs per event"
    )


if __name__ == "__main__":
    main()
