"""``python -m bench`` (``make bench``): run every benchmark on the real stack, write
docs/benchmarks.md and print its table. ``--help`` lists the knobs."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from kafka import KafkaAdminClient

from bench import capacity, etl, load, profile, report, stack
from core.config import PROJECT_ROOT, Settings
from core.host.plugin_manager import build_registry, make_plugin_manager
from core.ingest.producers import CLIENTS

SEED_RATE = load.SEED_RATE
SERVERS = ("granian", "gunicorn")
#: Where scripts/services.sh keeps the development services' pid files and Kafka's logs.
SERVICES_VAR = Path(os.environ.get("CLICKSTREAM_VAR_DIR", PROJECT_ROOT / "var"))


def main(argv: list[str] | None = None) -> int:
    options = argparse.ArgumentParser(description=__doc__)
    options.add_argument("--port", type=int, default=8100, help="port of the API under test")
    options.add_argument("--runs", type=int, default=3, help="runs of each figure")
    options.add_argument("--seconds", type=float, default=10, help="length of a throughput run")
    options.add_argument("--soak", type=float, default=60, help="length of the memory soak, s")
    options.add_argument("--server", choices=SERVERS, default=SERVERS[0], help="server measured")
    options.add_argument(
        "--compare",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure the other server's single-event throughput",
    )
    options.add_argument("--etl-messages", type=int, default=100_000, help="messages per ETL run")
    options.add_argument("--out", type=Path, default=PROJECT_ROOT / "docs" / "benchmarks.md")
    options.add_argument(
        "--capacity",
        type=Path,
        default=PROJECT_ROOT / "docs" / "capacity.md",
        help="the capacity plan whose measured section is rewritten",
    )
    options.add_argument(
        "--kafka-client",
        choices=CLIENTS,
        help="the API's producer (default: CLICKSTREAM_KAFKA_CLIENT, else kafka-python)",
    )
    args = options.parse_args(argv)

    var_dir = PROJECT_ROOT / "var" / "bench"
    logs = var_dir / "log"
    var_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=var_dir))
    base = Settings.from_env()
    if args.kafka_client:
        base = base.replace(kafka_client=args.kafka_client)
    results = report.Results(args=vars(args), load_before=os.getloadavg())
    topics: list[str] = []

    def fresh() -> Settings:
        settings = stack.bench_settings(base, args.port, var_dir)
        topics.append(settings.kafka.topic)
        return settings

    registry = build_registry(make_plugin_manager())
    tokens = load.login_tokens(base, users=5)
    singles, batches = load.write_bodies(work, tokens, base.api.max_batch_events)
    api_url = f"http://{base.api.host}:{args.port}"
    try:
        say("generator ceiling against a trivial server")
        results.ceiling = _ceiling(args.port + 1)

        for kind in SERVERS if args.compare else (args.server,):
            settings = fresh()
            with stack.api_server(kind, settings, logs) as api:
                say(f"{kind}: most single events per second (wrk, closed loop)")
                load.wrk(f"{api_url}/api/v1/events", singles, 3, 64)
                runs = [
                    load.wrk(f"{api_url}/api/v1/events", singles, args.seconds, 64, api)
                    for _ in range(args.runs)
                ]
                results.single[kind] = runs
                results.loads[f"single-{kind}"] = os.getloadavg()[0]
                if kind != args.server:
                    continue
                say("batches of events per second (wrk, closed loop)")
                results.batch = [
                    load.wrk(
                        f"{api_url}/api/v1/events/batch",
                        batches,
                        args.seconds,
                        8,
                        api,
                        status=200,
                        body_must='"rejected":0',
                    )
                    for _ in range(args.runs)
                ]
                results.loads["batch"] = os.getloadavg()[0]
                results.cost = _cost_growth(api_url, singles, api, results, args.seconds)
                say("profile of a worker at 1,000 events/s")
                results.profile = _profile(api_url, singles, api, work)

        say(f"{SEED_RATE} events/s with the ETL schedule, and the memory soak")
        settings = fresh()
        with (
            stack.api_server(args.server, settings, logs) as api,
            stack.etl_schedule(settings, logs) as etl_process,
        ):
            results.seed = []
            accepted = []
            meter = capacity.ComponentMeter(
                {"api": api.pids, "etl": etl_process.pids, **capacity.service_pids(SERVICES_VAR)}
            )
            for run in range(args.runs):
                accepted.append(work / f"accepted-{run}.txt")
                results.seed.append(
                    load.open_loop(
                        f"{api_url}/api/v1/events", singles, SEED_RATE, 20, api, ids=accepted[-1]
                    )
                )
            etl.wait_loaded(settings, timeout_s=4 * settings.etl.interval_s + 30)
            results.components = meter.read()
            results.component_events = sum(r["ok"] for r in results.seed)
            results.loads["seed"] = os.getloadavg()[0]
            results.soak = _soak(api_url, singles, api, args.soak)
            etl.wait_loaded(settings, timeout_s=4 * settings.etl.interval_s + 30)
        results.etl_interval_s = settings.etl.interval_s
        loaded = etl.loaded_at(settings)
        results.freshness = [etl.freshness(path, loaded) for path in accepted]
        results.kafka_bytes = capacity.kafka_bytes(
            SERVICES_VAR / "kafka" / "data", settings.kafka.topic
        )
        results.kafka_events = results.component_events + results.soak["load"]["ok"]
        results.warehouse = capacity.warehouse_bytes(settings, list(registry.tables()))

        say(f"{SEED_RATE} events/s while one ETL pass loads a backlog of {args.etl_messages:,}")
        results.backlog = [
            _seed_with_backlog(fresh(), registry, args, api_url, singles, logs)
            for _ in range(args.runs)
        ]
        results.loads["backlog"] = os.getloadavg()[0]

        say(f"ETL passes over {args.etl_messages:,} messages")
        settings = fresh()
        results.produce_s = etl.produce_messages(settings, registry, args.etl_messages)
        sizes = sorted({1000, 10_000, 50_000, args.etl_messages})
        results.etl = {
            size: [etl.timed_pass(settings, registry, size) for _ in range(args.runs)]
            for size in sizes
            if size <= args.etl_messages
        }
        results.loads["etl"] = os.getloadavg()[0]
        results.etl_stages = [
            etl.breakdown(settings, registry, args.etl_messages) for _ in range(args.runs)
        ]
    finally:
        _delete_topics(base, topics)
    results.load_after = os.getloadavg()
    text = report.markdown(results, base)
    args.out.write_text(text)
    report.replace_section(args.capacity, "capacity-figures", report.capacity_section(results))
    print(report.table(results))
    print(f"\nwritten to {args.out}")
    return 0


def say(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def _ceiling(port: int) -> list[load.OpenLoop]:
    server = stack.start(
        "trivial",
        [sys.executable, "-m", "bench.trivial", str(port)],
        Settings(),
        PROJECT_ROOT / "var" / "bench" / "log",
    )
    try:
        time.sleep(0.5)
        empty = PROJECT_ROOT / "var" / "bench" / "empty.jsonl"
        empty.write_text("{}\n")
        return [
            load.open_loop(f"http://127.0.0.1:{port}/", empty, rate, 5) for rate in (2000, 4000)
        ]
    finally:
        server.stop()


def _cost_growth(api_url, singles, api, results, seconds) -> list[load.OpenLoop]:
    best = statistics.median(r.rate for r in results.single[results.args["server"]])
    rates = [r for r in (100, 250, 500, 1000, 1500, 2000, 3000, 4000) if r < best * 0.9]
    top = int(best * 0.9) // 50 * 50
    if not rates or top > rates[-1]:
        rates.append(top)
    steps = []
    for rate in rates:
        say(f"cost growth: {rate} events/s")
        steps.append(load.open_loop(f"{api_url}/api/v1/events", singles, rate, seconds, api))
    return steps


def _profile(api_url, singles, api, work) -> dict | None:
    worker = api.descendants()[-1]
    box: dict = {}

    def drive() -> None:
        box["load"] = load.open_loop(f"{api_url}/api/v1/events", singles, 1000, 12, api)

    driver = threading.Thread(target=drive)
    driver.start()
    time.sleep(2)
    recorded = profile.record(worker, 8, work)
    driver.join()
    if not recorded:
        return None
    return {
        kind: {"stages": profile.stages(text), "hottest": profile.hottest(text)}
        for kind, text in recorded.items()
    }


def _seed_with_backlog(settings, registry, args, api_url, singles, logs) -> load.OpenLoop:
    """The seed rate's latency while the ETL's first pass loads ``args.etl_messages``
    messages: the worst moment of the schedule, an ETL catching up on the API's cores."""
    etl.produce_messages(settings, registry, args.etl_messages)
    settings = settings.replace(etl_max_records=args.etl_messages)
    with stack.api_server(args.server, settings, logs) as api:
        box: dict = {}

        def drive() -> None:
            box["load"] = load.open_loop(f"{api_url}/api/v1/events", singles, SEED_RATE, 20, api)

        driver = threading.Thread(target=drive)
        driver.start()
        time.sleep(2)
        with stack.etl_schedule(settings, logs):
            driver.join()
    return box["load"]


def _soak(api_url, singles, api, seconds) -> dict:
    say(f"memory soak: {SEED_RATE} events/s for {seconds:g} s")
    samples: list[tuple[float, list[float]]] = []
    box: dict = {}

    def drive() -> None:
        box["load"] = load.open_loop(f"{api_url}/api/v1/events", singles, SEED_RATE, seconds, api)

    driver = threading.Thread(target=drive)
    started = time.monotonic()
    driver.start()
    while driver.is_alive():
        samples.append((time.monotonic() - started, [stack.rss_mb(p) for p in api.descendants()]))
        driver.join(timeout=max(1.0, seconds / 20))
    return {"load": box["load"], "rss": samples, "seconds": seconds}


def _delete_topics(settings: Settings, topics: list[str]) -> None:
    try:
        admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap.split(","))
        try:
            existing = set(admin.list_topics())
            admin.delete_topics([t for t in topics if t in existing])
        finally:
            admin.close()
    except Exception as error:  # cleaning up must not hide the figures
        say(f"could not delete the benchmark topics {topics}: {error}")


if __name__ == "__main__":
    sys.exit(main())
