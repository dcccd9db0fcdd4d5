"""``python -m bench.api``: the API alone, as ``make bench`` measures it, in a minute or two.

The server of ``make up`` on a port of its own, then wrk: the most single events per second
(64 connections) and the most batched events per second (500 per batch, 8 connections),
each with the API's CPU per event, median of ``--runs``. Every 202 waits for the broker's
acknowledgement (acks=all), on the shared Kafka.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

from bench import load, stack
from bench.report import cpu_ms_per_event
from core.config import PROJECT_ROOT, Settings
from core.ingest.producers import CLIENTS


def main(argv: list[str] | None = None) -> int:
    options = argparse.ArgumentParser(description=__doc__)
    options.add_argument("--port", type=int, default=8150, help="port of the API under test")
    options.add_argument("--runs", type=int, default=3, help="runs of each figure")
    options.add_argument("--seconds", type=float, default=10, help="length of a run")
    options.add_argument("--server", choices=("granian", "gunicorn"), default="granian")
    options.add_argument("--single-connections", type=int, default=64)
    options.add_argument("--batch-connections", type=int, default=8)
    options.add_argument(
        "--kafka-client",
        choices=CLIENTS,
        help="the API's producer (default: CLICKSTREAM_KAFKA_CLIENT, else kafka-python)",
    )
    args = options.parse_args(argv)

    var_dir = PROJECT_ROOT / "var" / "bench"
    var_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="api-", dir=var_dir))
    base = Settings.from_env()
    if args.kafka_client:
        base = base.replace(kafka_client=args.kafka_client)
    settings = stack.bench_settings(base, args.port, var_dir)
    tokens = load.login_tokens(base, users=5)
    singles, batches = load.write_bodies(work, tokens, base.api.max_batch_events)
    per_batch = base.api.max_batch_events
    url = f"http://{base.api.host}:{args.port}/api/v1/events"
    print(f"Kafka client: {base.kafka.client}")
    print(f"load average before: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    with stack.api_server(args.server, settings, var_dir / "log") as api:
        load.wrk(url, singles, 3, args.single_connections)
        single = [
            load.wrk(url, singles, args.seconds, args.single_connections, api)
            for _ in range(args.runs)
        ]
        load.wrk(f"{url}/batch", batches, 3, args.batch_connections, status=200)
        batch = [
            load.wrk(
                f"{url}/batch",
                batches,
                args.seconds,
                args.batch_connections,
                api,
                status=200,
                body_must='"rejected":0',
            )
            for _ in range(args.runs)
        ]
    for name, runs, size in (("single", single, 1), ("batch", batch, per_batch)):
        rates = [r.rate * size for r in runs]
        cpu = [cpu_ms_per_event(r, size) for r in runs]
        print(
            f"{name}: {statistics.median(rates):,.0f} events/s "
            f"({', '.join(f'{r:,.0f}' for r in rates)}), "
            f"API CPU {statistics.median(cpu):.3f} ms/event "
            f"({', '.join(f'{c:.3f}' for c in cpu)}), "
            f"API cores {statistics.median(r.cpu_api for r in runs):.2f}, "
            f"machine cores {statistics.median(r.cpu_machine for r in runs):.2f}, "
            f"bad {sum(r.bad for r in runs)}, "
            f"p99 {statistics.median(r.p99_ms for r in runs):.1f} ms"
        )
    print(f"load average after: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
