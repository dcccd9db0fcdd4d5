"""``python -m bench.disk``: the seed's 660 events/s with the ETL schedule running, the
warehouse once on the project's disk and once on a separate filesystem (tmpfs).

It isolates why latency with the ETL differs from latency without it: on one disk, the
ETL's chDB writes stall the broker's and the API's I/O (see bench/notes.md).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from bench import load, stack
from bench.__main__ import SEED_RATE
from core.config import PROJECT_ROOT, Settings


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__)
    options.add_argument("--runs", type=int, default=3, help="runs of 20 s per placement")
    options.add_argument("--port", type=int, default=8100, help="port of the API under test")
    args = options.parse_args()
    var_dir = PROJECT_ROOT / "var" / "bench"
    work = Path(tempfile.mkdtemp(prefix="disk-", dir=var_dir))
    base = Settings.from_env()
    singles, _ = load.write_bodies(work, load.login_tokens(base, users=5), 1)
    separate = Path(tempfile.mkdtemp(prefix="clickstream-warehouse-", dir="/dev/shm"))
    placements = {"same disk as Kafka": None, "separate filesystem (tmpfs)": separate}
    print("| warehouse | p50 ms | p99 ms | p99.9 ms |\n|---|---|---|---|")
    try:
        for name, directory in placements.items():
            settings = stack.bench_settings(base, args.port, var_dir)
            if directory is not None:
                settings = settings.replace(warehouse_dsn=f"chdb://{directory}")
            url = f"http://{base.api.host}:{args.port}/api/v1/events"
            with (
                stack.api_server("granian", settings, var_dir / "log") as api,
                stack.etl_schedule(settings, var_dir / "log"),
            ):
                load.open_loop(url, singles, SEED_RATE, 10, api)  # warm-up
                for _ in range(args.runs):
                    summary = load.open_loop(url, singles, SEED_RATE, 20, api).summary
                    print(
                        f"| {name} | {summary['p50_ms']:.1f} | {summary['p99_ms']:.1f} "
                        f"| {summary['p999_ms']:.1f} |"
                    )
    finally:
        shutil.rmtree(separate, ignore_errors=True)


if __name__ == "__main__":
    main()
