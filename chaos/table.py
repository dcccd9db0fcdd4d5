"""The chaos run's tables: the one printed after a run, and the row docs/reliability.md keeps.

The long mode adds its row between the ``chaos-table`` markers of docs/reliability.md,
newest last, keeping the newest ``KEPT`` rows.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from chaos.checker import Findings

START, END = "<!-- chaos-table:start -->", "<!-- chaos-table:end -->"
KEPT = 5
HEADER = (
    "| seed | duration | faults injected (by kind) | sent | accepted (202) | refused | "
    "unanswered | stored once | lost | stored twice | client retries stored again "
    "| longest to table | p99 during faults / without |\n"
    "|---:|---:|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---|"
)


@dataclass(frozen=True)
class Run:
    """What one run measured, for its table."""

    seed: int
    duration_s: float
    faults: Counter
    findings: Findings
    p99_faults_ms: float | None
    p99_calm_ms: float | None


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} ms"


def _by_kind(counter: Counter) -> str:
    return ", ".join(f"{kind} {count}" for kind, count in sorted(counter.items())) or "none"


def row(run: Run) -> str:
    """The run as one markdown row of :data:`HEADER`'s table."""
    f = run.findings
    refused = ", ".join(f"{status}: {n}" for status, n in sorted(f.refused.items())) or "0"
    longest = "n/a" if f.longest_to_table_s is None else f"{f.longest_to_table_s:.1f} s"
    return (
        f"| {run.seed} | {run.duration_s:.0f} s | {_by_kind(run.faults)} | {f.sent} "
        f"| {f.accepted} | {refused} | {f.unanswered} | {f.stored_once} | {f.lost} "
        f"| {f.stored_twice} | {f.retry_copies} | {longest} "
        f"| {_ms(run.p99_faults_ms)} / {_ms(run.p99_calm_ms)} |"
    )


def report(run: Run) -> str:
    """The table printed after a run: the faults by kind, then what became of the events."""
    f = run.findings
    lines = [
        f"chaos run: seed {run.seed}, {run.duration_s:.0f} s",
        "",
        "| fault | injected |",
        "|---|---:|",
        *(f"| {kind} | {count} |" for kind, count in sorted(run.faults.items())),
        "",
        "| events | count |",
        "|---|---:|",
        f"| sent | {f.sent} |",
        f"| accepted (202) | {f.accepted} |",
        *(f"| refused {status} | {n} |" for status, n in sorted(f.refused.items())),
        f"| unanswered | {f.unanswered} |",
        f"| stored once | {f.stored_once} |",
        f"| lost | {f.lost} |",
        f"| stored twice | {f.stored_twice} |",
        f"| client retries stored again (answer lost) | {f.retry_copies} |",
        f"| unanswered or refused, stored by a lost attempt | {f.unanswered_stored} |",
        "",
        "| figure | value |",
        "|---|---:|",
        "| longest time from 202 to its table | "
        + ("n/a" if f.longest_to_table_s is None else f"{f.longest_to_table_s:.1f} s")
        + " |",
        f"| API p99 during faults | {_ms(run.p99_faults_ms)} |",
        f"| API p99 without faults | {_ms(run.p99_calm_ms)} |",
    ]
    return "\n".join(lines)


def update_doc(text: str, new_row: str) -> str:
    """``text`` (docs/reliability.md) with ``new_row`` added to the chaos table."""
    before, _, rest = text.partition(START)
    old, _, after = rest.partition(END)
    rows = [line for line in old.splitlines() if line.startswith("| ") and line not in HEADER]
    rows = [*rows, new_row][-KEPT:]
    return f"{before}{START}\n{HEADER}\n" + "\n".join(rows) + f"\n{END}{after}"
