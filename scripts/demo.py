"""The main job: send traffic of every event type through the running API, wait for the
ETL to load it, and print what landed. Run by ``make demo`` after ``make up``."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

import traffic  # noqa: E402

from core.config import PROJECT_ROOT, Settings  # noqa: E402
from core.host.plugin_manager import build_registry, make_plugin_manager  # noqa: E402
from core.message import ENVELOPE_COLUMNS  # noqa: E402
from etl import dashboard, reports  # noqa: E402
from etl.warehouse import Warehouse  # noqa: E402


def login(settings: Settings, user_id: str) -> str:
    url = settings.auth.url.rsplit("/", 1)[0] + "/login"
    answer = requests.post(url, json={"user_id": user_id}, timeout=5)
    answer.raise_for_status()
    return answer.json()["token"]


#: What the cinema's web clients send: a desktop browser, not a bot.
BROWSER = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def browser_session() -> requests.Session:
    """An HTTP session that presents itself as the clients' browser does."""
    session = requests.Session()
    session.headers["User-Agent"] = BROWSER
    return session


def send(api: str, bodies: list[dict], batch_size: int) -> Counter:
    """Half the events one by one over 8 connections, the other half in batches."""
    statuses: Counter = Counter()
    half = len(bodies) // 2
    local = threading.local()

    def post_one(body: dict) -> int:
        session = getattr(local, "session", None) or browser_session()
        local.session = session
        return session.post(f"{api}/api/v1/events", json=body, timeout=10).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses.update(pool.map(post_one, bodies[:half]))
    rest = bodies[half:]
    with browser_session() as session:
        for start in range(0, len(rest), batch_size):
            answer = session.post(
                f"{api}/api/v1/events/batch", json=rest[start : start + batch_size], timeout=30
            )
            answer.raise_for_status()
            statuses.update(result["status"] for result in answer.json()["results"])
    return statuses


def total_events(settings: Settings, registry) -> int:
    return sum(count.events for count in reports.counts_report(settings, registry))


def newest_rows(settings: Settings, registry) -> str:
    """The newest row of each event type: its user and the columns of its data fields."""
    warehouse = Warehouse.from_settings(settings)
    lines = []
    with warehouse.session() as client:
        for event_type in registry:
            result = client.query(
                f"SELECT * FROM {warehouse.table(event_type.table)} WHERE event = %(event)s "
                "ORDER BY timestamp DESC LIMIT 1",
                parameters={"event": event_type.name},
            )
            for row in result.result_rows:
                values = dict(zip(result.column_names, row, strict=True))
                data = {k: v for k, v in values.items() if k not in ENVELOPE_COLUMNS}
                shown = ", ".join(f"{k}={v!s}" for k, v in data.items() if v is not None)
                lines.append(f"{event_type.name:<16} user_id={values['user_id']}  {shown}")
    return "\n".join(lines)


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__)
    options.add_argument("--events", type=int, default=3000, help="how many events to send")
    options.add_argument("--timeout", type=float, default=120, help="seconds to wait for the ETL")
    options.add_argument(
        "--page-seconds", type=float, default=3, help="pause before the page views end"
    )
    args = options.parse_args()
    settings = Settings.from_env()
    registry = build_registry(make_plugin_manager())
    api = f"http://{settings.api.host}:{settings.api.port}"

    tokens = [None] + [login(settings, f"user-{n}") for n in range(1, 6)]
    bodies = list(traffic.events(args.events, tokens))
    ends = [body for body in bodies if body["event"] == "page_view_end"]
    others = [body for body in bodies if body["event"] != "page_view_end"]
    before = total_events(settings, registry)
    started = time.monotonic()
    statuses = send(api, others, batch_size=250)
    time.sleep(args.page_seconds)  # readers stay on their pages a while before leaving
    statuses += send(api, ends, batch_size=250)
    sending = time.monotonic() - started - args.page_seconds
    accepted = statuses[202]
    print(f"sent {len(bodies)} events in {sending:.1f} s ({len(bodies) / sending:.0f}/s):")
    for name, count in sorted(Counter(body["event"] for body in bodies).items()):
        print(f"  {name:<16} {count}")
    print(f"answers: {dict(sorted(statuses.items()))}")

    deadline = time.monotonic() + args.timeout
    loaded = 0
    while time.monotonic() < deadline:
        loaded = total_events(settings, registry) - before
        if loaded >= accepted:
            break
        print(f"waiting for the ETL: {loaded}/{accepted} loaded")
        time.sleep(settings.etl.interval_s)
    print(f"\nloaded {loaded} of {accepted} accepted events\n")
    print("== events per table ==")
    print(reports.format_counts(reports.counts_report(settings, registry)))
    print("\n== the newest row of each event type (data columns, NULLs left out) ==")
    print(newest_rows(settings, registry))
    print("\n== page views ==")
    print(reports.format_report(reports.plugin_report(settings, registry, "pageviews")))
    print("\n== data quality ==")
    print(reports.format_quality(reports.quality_report(settings, registry)))
    print("\n== the dashboard ==")
    print(where_the_dashboard_is(settings, registry))
    if loaded < accepted:
        print(
            "\nthe ETL did not load everything in time: its log is var/log/etl.log", file=sys.stderr
        )
        return 1
    return 0


def where_the_dashboard_is(settings: Settings, registry) -> str:
    """Write the dashboard where the ETL writes it (make up: var/dashboard.html), so that it
    shows the events just sent; say where it is, as a file and on the operational side."""
    path = Path(settings.dashboard.file or PROJECT_ROOT / "var" / "dashboard.html")
    dashboard.write(settings, registry, path)
    ops = settings.ops
    port = ops.port or settings.api.port
    host = ops.host if ops.port else settings.api.host
    url = f"http://{host}:{port}/ops/dashboard"
    if ops.token:
        how = "with the header Authorization: Bearer $CLICKSTREAM_OPS_TOKEN"
    elif ops.port or ops.open or host.startswith("127.") or host == "localhost":
        how = "open on this machine (make up sets CLICKSTREAM_OPS_OPEN on a loopback address)"
    else:
        how = "closed: set CLICKSTREAM_OPS_TOKEN or CLICKSTREAM_OPS_PORT (docs/operations.md)"
    return (
        f"file:   {path.resolve()} (self-contained: open it in a browser, no network needed)\n"
        f"served: {url} ({how}; rewritten by the ETL every "
        f"{settings.dashboard.interval_s:g} s)"
    )


if __name__ == "__main__":
    sys.exit(main())
