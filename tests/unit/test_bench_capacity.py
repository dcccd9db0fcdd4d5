"""The capacity plan's measurements (bench/capacity.py) and how the report shows them."""

from __future__ import annotations

import os
import time
from pathlib import Path

from bench import capacity, report
from bench.load import ClosedLoop, OpenLoop
from bench.report import Results
from etl.warehouse import Warehouse


def test_kafka_bytes_counts_only_the_topics_own_log_segments(tmp_path: Path):
    for partition, size in (("events-0", 100), ("events-1", 250)):
        (tmp_path / partition).mkdir()
        (tmp_path / partition / "00000000000000000000.log").write_bytes(b"x" * size)
        (tmp_path / partition / "00000000000000000000.index").write_bytes(b"i" * 999)
    # Another topic whose name starts the same way, and a deleted partition's directory.
    (tmp_path / "events-retry-0").mkdir()
    (tmp_path / "events-retry-0" / "00000000000000000000.log").write_bytes(b"y" * 77)
    (tmp_path / "events-2.0f1e-delete").mkdir()
    (tmp_path / "events-2.0f1e-delete" / "00000000000000000000.log").write_bytes(b"z" * 5)
    assert capacity.kafka_bytes(tmp_path, "events") == 350
    assert capacity.kafka_bytes(tmp_path, "events-retry") == 77
    assert capacity.kafka_bytes(tmp_path, "missing") == 0


def test_component_meter_charges_cpu_to_the_process_that_spent_it():
    me = os.getpid()
    meter = capacity.ComponentMeter({"me": lambda: [me], "nobody": lambda: []})
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:
        pass
    shares = {s.component: s.cpu_s for s in meter.read()}
    assert shares["me"] >= 0.15
    assert shares["nobody"] == 0
    assert set(shares) == {"me", "nobody", "other"}


def test_service_pids_reads_the_pid_files_of_running_services(tmp_path: Path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "kafka.pid").write_text(f"{os.getpid()}\n")
    (tmp_path / "run" / "redis.pid").write_text("not a pid\n")
    found = capacity.service_pids(tmp_path)
    assert set(found) == {"kafka"}
    assert found["kafka"]()[0] == os.getpid()


def test_warehouse_bytes_reports_rows_and_compression_of_each_table(settings):
    warehouse = Warehouse.from_settings(settings)
    with warehouse.session() as client:
        client.command(f"CREATE DATABASE IF NOT EXISTS {warehouse.database}")
        client.command(
            f"CREATE TABLE {warehouse.table('clicks')} (n UInt64, s String) "
            "ENGINE = MergeTree ORDER BY n"
        )
        client.command(
            f"INSERT INTO {warehouse.table('clicks')} "
            "SELECT number, repeat('a', 100) FROM numbers(10000)"
        )
        client.command(f"CREATE TABLE {warehouse.table('empty')} (n UInt64) ENGINE = Log")
    try:
        (clicks,) = capacity.warehouse_bytes(settings)
        assert (clicks.table, clicks.rows) == ("clicks", 10000)
        # 108+ bytes a row before compression, a few after: the same text every time.
        assert clicks.uncompressed >= 108 * 10000
        assert 0 < clicks.compressed < clicks.uncompressed / 10
        assert capacity.warehouse_bytes(settings, ["other"]) == []
    finally:
        with warehouse.session() as client:
            client.command(f"DROP DATABASE IF EXISTS {warehouse.database}")


def _open(p99: float, ok: int = 13200) -> OpenLoop:
    summary = {"p50_ms": 3.0, "p99_ms": p99, "p999_ms": p99 * 2, "errors": 0, "ok": ok}
    return OpenLoop({**summary, "rate": 660, "requests": ok}, cpu_api=0.4, cpu_machine=1.0)


def test_the_report_judges_each_target_and_shows_the_load_beside_it(settings):
    single = ClosedLoop(6000, 0, 5, 9, cpu_api=1.0, cpu_machine=1.9)  # 0.167 ms/event
    batch = ClosedLoop(120, 0, 20, 40, cpu_api=1.5, cpu_machine=1.9)  # x500 = 60,000/s
    results = Results(
        args={"server": "granian", "runs": 1, "seconds": 10, "etl_messages": 100_000},
        load_before=(0.5, 0.5, 0.5),
        single={"granian": [single]},
        batch=[batch],
        seed=[_open(8.0)],
        backlog=[_open(40.0)],
        soak={"seconds": 60, "rss": [(0, [70.0]), (60, [71.0])], "load": _open(9.0)},
        freshness=[{"p95_s": 6.0, "missing": 0}],
        etl_interval_s=5,
        etl={100_000: [type("T", (), {"rows_per_s": 90_000.0, "seconds": 1.1})()]},
        loads={"batch": 3.3, "seed": 1.5},
        components=[capacity.CpuShare("api", 2.64), capacity.CpuShare("kafka", 1.32)],
        component_events=13200,
        kafka_bytes=13200 * 480,
        kafka_events=13200,
        warehouse=[capacity.TableBytes("clicks", 1000, 60_000, 300_000)],
    )
    rows = {figure: rest for figure, *rest in report._rows(results, settings)}
    batched = next(v for k, v in rows.items() if k.startswith("batched ingestion"))
    assert batched[2:] == ["yes", "3.3"]
    cpu = rows["API CPU per single event (wrk runs)"]
    assert cpu[1] == "0.167 ms" and cpu[2] == "yes"
    etl = next(v for k, v in rows.items() if k.startswith("ETL load"))
    assert etl[2] == "**no**"
    backlog = next(v for k, v in rows.items() if "while one ETL pass" in k)
    assert backlog[2] == "**no**"
    peer = next(v for k, v in rows.items() if "peer" in k)
    assert peer[1] == f"{60_000 / report.PEER_SINGLE_PEAK:.2f}x"
    text = "\n".join(report._capacity(results))
    assert "| api | 0.200 | 67% |" in text
    assert "| Kafka | 13,200 | 480 | |" in text
    assert "| warehouse `clicks` | 1,000 | 300 | 60 |" in text
