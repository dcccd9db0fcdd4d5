"""Run every fault scenario on the real services and write the table of docs/reliability.md.

``make reliability`` (or ``python3 scripts/reliability.py``). The fault tests record what
they counted (tests/reliability.py); this script runs them, the minute-long ones included,
prints the table and puts it between the markers of docs/reliability.md. It exits non-zero
when a test fails, an accepted event was lost or a row was stored twice.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "reliability.md"
START, END = "<!-- reliability-table:start -->", "<!-- reliability-table:end -->"
TESTS = [
    "tests/integration/test_faults_kafka.py",
    "tests/integration/test_faults_services.py",
    "tests/integration/test_identity_outage_live.py::test_under_traffic_malformed_tokens_never_switch_verification_off",
    "tests/integration/test_identity_outage_live.py::test_under_traffic_a_429_falls_back_per_event_and_the_service_keeps_deciding",
    "tests/integration/test_etl_runner_live.py::test_a_crash_between_insert_and_commit_loses_and_doubles_nothing",
    "tests/integration/test_etl_runner_live.py::test_a_pass_without_warehouse_commits_nothing_and_the_next_catches_up",
    "tests/integration/test_etl_replay_live.py",
    "tests/integration/test_etl_group_live.py",
]


def table(rows: list[dict]) -> str:
    """The markdown table; ``stored twice`` is a row's ``stored_twice`` note (raw ``count()``
    minus distinct events, for the scenarios that load the warehouse themselves)."""
    lines = [
        "| scenario | sent | accepted (202) | rows in warehouse | re-deliveries absorbed "
        "| stored twice (raw `count()`) | lost | notes |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        notes = dict(row["notes"])
        twice = notes.pop("stored_twice", "")
        rendered = ", ".join(f"{key} {value}" for key, value in notes.items())
        lines.append(
            f"| {row['scenario']} | {row['sent']} | {row['accepted']} | {row['rows']} "
            f"| {row['duplicates']} | {twice} | {row['lost']} | {rendered} |"
        )
    return "\n".join(lines)


def main() -> int:
    with tempfile.TemporaryDirectory() as directory:
        results = Path(directory) / "results.jsonl"
        env = {
            **os.environ,
            "CLICKSTREAM_TEST_RELIABILITY_OUT": str(results),
            "CLICKSTREAM_TEST_SLOW": "1",
        }
        tests = subprocess.run([sys.executable, "-m", "pytest", "-q", *TESTS], cwd=ROOT, env=env)
        rows = (
            [orjson.loads(line) for line in results.read_bytes().splitlines()]
            if results.exists()
            else []
        )
    rendered = table(rows)
    print(rendered)
    text = DOC.read_text()
    before, _, rest = text.partition(START)
    _, _, after = rest.partition(END)
    DOC.write_text(f"{before}{START}\n{rendered}\n{END}{after}")
    lost = sum(row["lost"] for row in rows)
    twice = sum(row["notes"].get("stored_twice", 0) for row in rows)
    if tests.returncode or lost or twice:
        print(
            f"reliability: tests exit {tests.returncode}, {lost} events lost, "
            f"{twice} rows stored twice",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
