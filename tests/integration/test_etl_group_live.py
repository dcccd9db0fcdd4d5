"""Two ETL processes in one consumer group, on the real Kafka and chDB, without a ClickHouse
server: each writes to a chDB directory of its own, so the union of their tables shows
what the group loaded. One is killed between its inserts and its commit, then restarted.
Every event must be in exactly one of the two, once (raw ``count()``).
"""

from __future__ import annotations

import csv
import io
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from kafka import KafkaAdminClient

from core.config import PROJECT_ROOT, Settings, env_name
from etl.reports import consumer_lag
from tests.etl_helpers import create_topic, envelope, produce
from tests.reliability import record
from tests.servers import subprocess_env

pytestmark = pytest.mark.integration

PARTITIONS = 6

#: An ETL that kills itself (SIGKILL) once its first loading pass has inserted its rows.
KILLED_MID_PASS = textwrap.dedent(
    """
    import functools, os, signal
    from core.config import Settings
    from core.host.plugin_manager import build_registry, make_plugin_manager
    from etl.runner import Etl, run_forever

    def kill():
        print("killed", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    settings = Settings.from_env()
    with Etl(settings) as etl:
        run_forever(
            settings,
            build_registry(make_plugin_manager()),
            pass_function=functools.partial(etl.run_pass, after_insert=kill),
        )
    """
)


def etl_env(settings: Settings, name: str, warehouse: str) -> dict[str, str]:
    env = subprocess_env(
        settings,
        warehouse_dsn=f"chdb://{warehouse}",
        etl_interval_s=0.3,
        etl_metrics_port=0,
        etl_poll_timeout_s=0.2,
    )
    return {**env, env_name("etl_instance_id"): f"etl-{name}"}


def start(env: dict[str, str], script: str | None = None) -> subprocess.Popen:
    command = ["-c", script] if script else ["-m", "etl.cli", "etl"]
    return subprocess.Popen(
        [sys.executable, *command],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def members(settings: Settings) -> int:
    """Members of the ETL's group holding partitions, once the group is stable."""
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap.split(","))
    try:
        group = admin.describe_groups([settings.etl.group])[settings.etl.group]
    finally:
        admin.close()
    if group["group_state"] != "Stable":
        return 0
    return sum(
        1
        for member in group["members"]
        if member["member_assignment"] and member["member_assignment"]["assigned_partitions"]
    )


def wait_until(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.3)
    return False


def logs(processes: list[subprocess.Popen]) -> str:
    """The last lines of each process's stderr, the processes stopped."""
    for process in processes:
        process.kill()
    return "\n".join(process.communicate(timeout=30)[1][-3000:] for process in processes)


def column(settings: Settings, warehouse: str, table: str, expression: str) -> list[str]:
    """``expression`` of every row of ``table`` in one chDB directory (in a process of its
    own: chDB opens one directory per process)."""
    answer = subprocess.run(
        [sys.executable, "-m", "etl.cli", "sql", "--format", "csv"]
        + [f"SELECT {expression} FROM {settings.warehouse.database}.{table}"],
        cwd=PROJECT_ROOT,
        env=subprocess_env(settings, warehouse_dsn=f"chdb://{warehouse}"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert answer.returncode == 0, answer.stderr[-2000:]
    rows = list(csv.reader(io.StringIO(answer.stdout)))
    return [row[0] for row in rows[1:]]


def test_two_etls_in_one_group_load_each_event_once_when_one_is_killed_mid_pass(
    settings: Settings, kafka_bootstrap: str, tmp_path
):
    create_topic(settings, partitions=PARTITIONS)
    warehouses = {name: str(tmp_path / f"warehouse-{name}") for name in "ab"}
    envs = {name: etl_env(settings, name, warehouses[name]) for name in "ab"}
    killed = start(envs["a"], KILLED_MID_PASS)
    b = start(envs["b"])
    processes = [killed, b]
    try:
        # Both members own their partitions before anything arrives: a partition that moved
        # from the killed ETL to the other would be loaded into the other's warehouse too,
        # which only a shared ClickHouse server (the other's replay of the plan) absorbs.
        if not wait_until(lambda: members(settings) == 2, timeout_s=60):
            pytest.fail("the group never formed:\n" + logs(processes))
        sent = [
            envelope("search_filter", {"search_query": f"q{i}", "filters": ""}) for i in range(300)
        ]
        for partition in range(PARTITIONS):
            produce(settings, sent[partition::PARTITIONS], partition=partition)
        killed.wait(timeout=60)
        assert killed.returncode == -signal.SIGKILL, killed.stderr.read()[-2000:]
        a = start(envs["a"])  # restarted, under the same instance id
        processes.append(a)
        assert wait_until(
            lambda: consumer_lag(settings) == dict.fromkeys(range(PARTITIONS), 0), timeout_s=90
        ), consumer_lag(settings)
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        outputs = [process.communicate(timeout=60) for process in processes]
    for process, (_, stderr) in zip(processes[1:], outputs[1:], strict=True):
        assert process.returncode == 0, stderr[-2000:]

    loaded = {
        name: column(settings, warehouses[name], "search_filters", "event_id") for name in "ab"
    }
    deliveries = sum(
        len(column(settings, warehouses[name], "event_deliveries", "event_id")) for name in "ab"
    )
    union = loaded["a"] + loaded["b"]
    ids = {m["event_id"] for m in sent}
    assert loaded["a"] and loaded["b"]  # both took part
    assert set(union) == ids  # nothing lost
    assert len(union) == len(ids)  # nothing stored twice, in either warehouse
    assert deliveries > len(ids)  # the killed ETL had loaded a block, and replayed it
    record(
        "Two ETLs in one group (6 partitions), one killed mid-pass and restarted",
        sent=len(ids),
        accepted=len(ids),
        rows=len(union),
        duplicates=deliveries - len(set(union)),  # the killed ETL's block, replayed
        lost=len(ids - set(union)),
        stored_twice=len(union) - len(set(union)),
    )


def test_a_second_etl_on_the_same_chdb_directory_is_refused_with_a_clear_message(
    settings: Settings, kafka_bootstrap: str, tmp_path
):
    create_topic(settings)
    env = etl_env(settings, "a", str(tmp_path / "warehouse"))
    first = start(env)
    try:
        assert wait_until(lambda: members(settings) == 1, timeout_s=60)
        second = subprocess.run(
            [sys.executable, "-m", "etl.cli", "etl", "--once"],
            cwd=PROJECT_ROOT,
            env={**env, env_name("etl_instance_id"): "etl-b"},
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        first.send_signal(signal.SIGTERM)
        _, stderr = first.communicate(timeout=60)

    assert second.returncode == 1
    assert "already loads" in second.stderr
    assert "chDB takes one ETL process per data directory" in second.stderr
    assert f"pid {first.pid}" in second.stderr
    assert first.returncode == 0, stderr[-2000:]
