"""docker-compose.yml keeps every service's state on a named volume (issue 13, item 9).

No Docker engine runs here, so the file is read as YAML: a container's own filesystem dies
with ``docker compose down``, and with it whatever the API answered 202 for from its spool.
"""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest
import yaml

from core.config import PROJECT_ROOT

COMPOSE = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
DOCKERFILE = (PROJECT_ROOT / "Dockerfile").read_text()
SERVICES = COMPOSE["services"]

#: Where each stateful service keeps what must outlive its container.
STATE = {
    "kafka": lambda service: service["environment"]["KAFKA_LOG_DIRS"],
    "redis": lambda service: "/data",
    "clickhouse": lambda service: "/var/lib/clickhouse",
    "api": lambda service: service["environment"]["CLICKSTREAM_SPOOL_DIR"],
}
#: Services that keep nothing: why.
STATELESS = {
    "auth": "the reference auth service keeps revocations in memory, for development only",
    "etl": "its progress is in Kafka's committed offsets and in ClickHouse's tables",
}


def named_volumes(service: dict) -> dict[PurePosixPath, str]:
    """The service's mount points of named volumes, each with its volume."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, _, target = volume.partition(":")
        if source and not source.startswith((".", "/", "~")):
            mounts[PurePosixPath(target.split(":")[0])] = source
    return mounts


def test_every_service_is_known_to_keep_state_or_not() -> None:
    assert set(SERVICES) == set(STATE) | set(STATELESS)


@pytest.mark.parametrize("name", sorted(STATE))
def test_state_lives_on_a_named_volume(name: str) -> None:
    service = SERVICES[name]
    path = PurePosixPath(STATE[name](service))
    mounts = named_volumes(service)
    held = [target for target in mounts if path == target or target in path.parents]
    assert held, f"{name} keeps {path} in the container's own filesystem"
    assert mounts[held[0]] in COMPOSE["volumes"]


def test_the_spool_volume_is_writable_by_the_api_user() -> None:
    """A fresh named volume takes the owner of its mount point in the image: root, unless
    the image creates the directory for the user the API runs as."""
    spool = SERVICES["api"]["environment"]["CLICKSTREAM_SPOOL_DIR"]
    assert f"mkdir -p {spool}" in DOCKERFILE
    assert "chown -R clickstream /app/var" in DOCKERFILE


def test_it_is_a_development_stack_and_says_so() -> None:
    environment = COMPOSE["x-clickstream"]["environment"]
    assert environment["CLICKSTREAM_JWT_ALLOW_DEV_SECRET"].endswith(":-true}")
    assert environment["CLICKSTREAM_OPS_OPEN"].endswith(":-true}")


def test_the_api_runs_under_the_one_server_the_native_stack_and_the_benchmarks_use() -> None:
    """``python -m core.serve``: granian unless CLICKSTREAM_API_SERVER says gunicorn."""
    assert SERVICES["api"]["command"] == ["python", "-m", "core.serve"]
    assert 'CMD ["python", "-m", "core.serve"]' in DOCKERFILE
    assert "CLICKSTREAM_OPS_PORT" not in COMPOSE["x-clickstream"]["environment"]
