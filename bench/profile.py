"""Where a request's time goes: py-spy samples of one API worker, grouped by stage."""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from pathlib import Path

#: Stages, first match wins: (label, text that a stack frame of that stage contains).
STAGES = (
    ("Kafka producer I/O thread", "Sender.run "),
    ("metrics", "prometheus_client/"),
    ("metrics", "core/api/metrics.py"),
    ("logging", "logging/__init__.py"),
    ("identity (cache, auth)", "core/ingest/identity.py"),
    ("Kafka send (serialize, batch)", "KafkaProducer.send "),
    ("Kafka send (serialize, batch)", "ConfluentProducer.send "),
    ("wait for the broker's ack", "_Delivery.get "),
    ("wait for the broker's ack", "kafka/producer/future.py"),
    ("wait for the broker's ack", "kafka/future.py"),
    ("publisher, other", "core/ingest/publisher.py"),
    ("validation (marshmallow)", "marshmallow/"),
    ("message (uuid, time, JSON)", "core/message.py"),
    ("read body (JSON)", "read_json_body "),
    ("pipeline, other", "core/ingest/pipeline.py"),
    ("Flask/werkzeug", "flask/"),
    ("Flask/werkzeug", "werkzeug/"),
)


def record(pid: int, seconds: float, directory: Path, rate: int = 200) -> dict[str, str] | None:
    """Two py-spy recordings of ``pid`` at once, as collapsed stacks: "wall" (every thread
    py-spy does not see as idle) and "cpu" (only the thread holding the GIL). None without
    py-spy."""
    if shutil.which("py-spy") is None:
        return None
    outputs = {"wall": directory / "wall.txt", "cpu": directory / "cpu.txt"}
    runs = [
        subprocess.Popen(
            [
                "py-spy",
                "record",
                "-p",
                str(pid),
                "-d",
                str(int(seconds)),
                "-r",
                str(rate),
                "-f",
                "raw",
                "-o",
                str(out),
                "--nonblocking",
                *(["--gil"] if kind == "cpu" else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for kind, out in outputs.items()
    ]
    for run in runs:
        run.wait()
    return {kind: out.read_text() for kind, out in outputs.items() if out.exists()}


def stages(collapsed: str) -> list[tuple[str, float]]:
    """Share of the samples per stage, largest first (CPU samples: idle threads are left out)."""
    counts: Counter[str] = Counter()
    for line in collapsed.splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit():
            continue
        label = next((label for label, text in STAGES if text in stack), "server and other")
        counts[label] += int(number)
    total = sum(counts.values()) or 1
    return [(label, count / total) for label, count in counts.most_common()]


def hottest(collapsed: str, top: int = 12) -> list[tuple[str, float]]:
    """Functions where the samples were taken (self time), largest first."""
    counts: Counter[str] = Counter()
    for line in collapsed.splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit():
            continue
        leaf = stack.rsplit(";", 1)[-1]
        counts[leaf.split(" (")[0] + " (" + leaf.split(" (")[-1].split(":")[0] + ")"] += int(number)
    total = sum(counts.values()) or 1
    return [(name, count / total) for name, count in counts.most_common(top)]
