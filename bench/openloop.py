"""An open-loop HTTP load generator: requests leave at fixed times whatever the server does.

Each request is due at ``start + i / rate``. Its latency is measured from that due time,
not from when it was actually sent, so a server (or a client pool) that falls behind
shows up as latency instead of silently lowering the rate: no coordinated omission.
Run in its own process: ``python -m bench.openloop --url ... --rate ... --duration ...``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

from bench.stats import percentile

#: What a send returns: the HTTP status (0 for a transport error) and the event id, if any.
Sender = Callable[[int], Awaitable[tuple[int, str | None]]]


@dataclass(frozen=True)
class Sample:
    """One request: when it was due (seconds from the start), its latency, what came back."""

    due: float
    latency: float
    lag: float
    status: int
    event_id: str | None
    accepted_at: float


def schedule(rate: float, duration_s: float) -> list[float]:
    """Due times, in seconds from the start: ``rate`` per second, evenly spaced."""
    if rate <= 0 or duration_s <= 0:
        raise ValueError("rate and duration must be positive")
    return [i / rate for i in range(round(rate * duration_s))]


async def open_loop(send: Sender, due: list[float], lead_s: float = 0.05) -> list[Sample]:
    """Start ``send(i)`` at each due time (never waiting for earlier answers); all samples."""
    loop = asyncio.get_running_loop()
    start = loop.time() + lead_s
    tasks: list[asyncio.Task[Sample]] = []

    async def timed(index: int) -> Sample:
        due_at = start + due[index]
        sent = loop.time()
        status, event_id = await send(index)
        done = loop.time()
        return Sample(due[index], done - due_at, sent - due_at, status, event_id, time.time())

    index = 0
    while index < len(due):
        now = loop.time()
        # Everything due by now leaves now: at high rates a sleep per request would lag.
        while index < len(due) and start + due[index] <= now:
            tasks.append(asyncio.create_task(timed(index)))
            index += 1
        if index < len(due):
            await asyncio.sleep(max(0.0, start + due[index] - loop.time()))
    return list(await asyncio.gather(*tasks))


def summarize(samples: list[Sample], duration_s: float) -> dict[str, object]:
    """Counts, achieved rate and latency percentiles (ms) of one run."""
    statuses: dict[str, int] = {}
    for sample in samples:
        statuses[str(sample.status)] = statuses.get(str(sample.status), 0) + 1
    ok = [s for s in samples if 200 <= s.status < 300]
    latencies = [s.latency * 1000 for s in samples]
    lags = [s.lag * 1000 for s in samples]
    return {
        "requests": len(samples),
        "ok": len(ok),
        "errors": len(samples) - len(ok),
        "statuses": statuses,
        "rate": len(ok) / duration_s,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "p999_ms": percentile(latencies, 99.9),
        "max_ms": max(latencies),
        "send_lag_p99_ms": percentile(lags, 99),
    }


async def _run(args: argparse.Namespace) -> list[Sample]:
    import aiohttp

    bodies = Path(args.bodies).read_bytes().splitlines() if args.bodies else [b"{}"]
    connector = aiohttp.TCPConnector(limit=args.connections, force_close=False)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def send(index: int) -> tuple[int, str | None]:
            body = bodies[index % len(bodies)]
            try:
                async with session.request(args.method, args.url, data=body, headers=headers) as r:
                    answer = await r.read()
            except (TimeoutError, aiohttp.ClientError):
                return 0, None
            if args.ids and r.status == 202:
                return r.status, orjson.loads(answer).get("event_id")
            return r.status, None

        return await open_loop(send, schedule(args.rate, args.duration))


def main(argv: list[str] | None = None) -> int:
    options = argparse.ArgumentParser(description=__doc__)
    options.add_argument("--url", required=True)
    options.add_argument("--method", default="POST")
    options.add_argument("--rate", type=float, required=True, help="requests per second")
    options.add_argument("--duration", type=float, required=True, help="seconds")
    options.add_argument("--bodies", help="file of request bodies, one per line, sent in turn")
    options.add_argument("--connections", type=int, default=256, help="most open connections")
    options.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    options.add_argument("--ids", help="write 'event_id accepted_at' lines of 202s to this file")
    args = options.parse_args(argv)
    samples = asyncio.run(_run(args))
    if args.ids:
        with open(args.ids, "w") as out:
            out.writelines(
                f"{s.event_id} {s.accepted_at:.6f}\n" for s in samples if s.event_id is not None
            )
    sys.stdout.write(orjson.dumps(summarize(samples, args.duration)).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
