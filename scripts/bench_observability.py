"""What observability costs per request: the hooks, the metrics and the access log line.

``PYTHONPATH=. python3 scripts/bench_observability.py``. Prints microseconds per request
through the Flask test client (no network, fake identity and publisher, so only our code is timed),
with and without observability, and per call of the recording methods from 1 and 8 threads.
"""

from __future__ import annotations

import io
import logging
import threading
import time

from core.api import create_app, observability
from core.api.metrics import ApiMetrics
from core.config import Settings
from core.log import JsonFormatter
from tests.fakes import FakeIdentity, FakePublisher

REQUESTS = 2000
CALLS = 200_000


def per_request_us(app, body) -> float:
    client = app.test_client()
    for _ in range(200):
        client.post("/api/v1/events", json=body)
    # CPU time of this process: on a shared machine, wall time mostly measures the neighbours.
    started = time.process_time()
    for _ in range(REQUESTS):
        client.post("/api/v1/events", json=body)
    return (time.process_time() - started) / REQUESTS * 1e6


def without_observability(app):
    """The same app with the hooks and the pipeline observer taken out."""
    for funcs in (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs):
        funcs[None] = [
            f for f in funcs.get(None, []) if getattr(f, "__module__", "") != observability.__name__
        ]
    app.extensions["clickstream.pipeline"].observer = type(
        "Null", (), {"event_done": lambda *a: None, "publish_done": lambda *a: None}
    )()
    return app


def record_us(threads: int) -> float:
    metrics = ApiMetrics()

    def work() -> None:
        for _ in range(CALLS // threads):
            metrics.request_done("POST", "/api/v1/events", 202, 0.001)
            metrics.event_done("element_click", 202)
            metrics.publish_done(0.001)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return (time.perf_counter() - started) / CALLS * 1e6


def access_line_us() -> float:
    log = logging.getLogger("core.api.access")
    extra = {"method": "POST", "path": "/api/v1/events", "endpoint": "/api/v1/events"}
    started = time.process_time()
    for _ in range(CALLS // 10):
        log.info("http.request", extra={**extra, "status": 202, "duration_ms": 0.5})
    return (time.process_time() - started) / (CALLS // 10) * 1e6


def main() -> None:
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(JsonFormatter())
    logging.getLogger().addHandler(handler)
    logging.getLogger("core").setLevel(logging.INFO)

    def app(**changes):
        return create_app(
            Settings.of(**changes), identity=FakeIdentity(), publisher=FakePublisher()
        )

    example = app().extensions["clickstream.pipeline"].registry["element_click"].example
    body = {"event": "element_click", "data": dict(example)}
    # Interleaved, best of three: the machine is shared, the minimum is the cost.
    apps = [without_observability(app(access_log=False)), app(access_log=False), app()]
    bare, quiet, full = (
        min(runs)
        for runs in zip(*[[per_request_us(a, body) for a in apps] for _ in range(3)], strict=True)
    )
    print(f"POST /api/v1/events, {REQUESTS} requests through the test client, best of 3, CPU time:")
    print(f"  without observability        {bare:8.1f} us/request")
    print(f"  metrics + request id         {quiet:8.1f} us/request  (+{quiet - bare:.1f})")
    print(f"  ... + JSON access log line   {full:8.1f} us/request  (+{full - bare:.1f})")
    print(f"one JSON access log line alone: {access_line_us():.2f} us")
    for threads in (1, 8):
        print(
            f"recording one request's metrics, {threads} thread(s): "
            f"{record_us(threads):.2f} us/request"
        )


if __name__ == "__main__":
    main()
