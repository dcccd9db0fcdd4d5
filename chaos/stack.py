"""The chaos run's private stack: Kafka, Redis, the auth service, the API and the ETL, on free
ports, everything under ``var/chaos/<run>/``. The shared services are never touched.

Kafka and Redis are started by ``scripts/services.sh`` (the same jars as the shared broker's,
borrowed from ``var/kafka/lib``); the auth service, the API (``python -m core.serve``, granian,
2 workers) and the ETL (``python -m etl.cli etl``) are processes of this module's own, each in
a process group of its own so that a ``kill -9`` takes exactly what it means to.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
SERVICES = str(ROOT / "scripts" / "services.sh")
JWT_SECRET = "chaos-secret-0123456789abcdef0123456789"
#: How often the ETL runs a pass during the chaos run, in seconds.
ETL_INTERVAL_S = 1.0


#: Ports are drawn below Linux's ephemeral range (32768-60999): a port the kernel gives to a
#: client connection while its service is down would stop the service from coming back.
PORTS = range(20000, 32000)


def free_port() -> int:
    """A port of :data:`PORTS` that nothing listens on now."""
    rng = random.SystemRandom()
    while True:
        port = rng.choice(PORTS)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


@functools.cache
def can_mount() -> bool:
    """Whether this process may mount (root, and not a container's root without the right):
    then the full spool is a real tmpfs and the read-only warehouse a read-only bind mount;
    otherwise both are emulated with chmod (weaker: see docs/reliability.md)."""
    if os.geteuid() != 0:
        return False
    probe = tempfile.mkdtemp(prefix="chaos-mount-probe-")
    try:
        tried = ["mount", "-t", "tmpfs", "-o", "size=1m", "chaos-probe", probe]
        if subprocess.run(tried, capture_output=True).returncode:
            return False
        subprocess.run(["umount", probe], check=False)
        return True
    finally:
        os.rmdir(probe)


class Process:
    """One long-running child in a process group of its own, its output appended to a log."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.command, self.env, self.log = name, command, env, log
        self.popen: subprocess.Popen | None = None
        #: Set when the run ends: a fault's heal still under way starts nothing any more.
        self.closed = False

    def start(self) -> None:
        if self.closed:
            return
        with self.log.open("ab") as out:
            out.write(f"\n=== {time.strftime('%H:%M:%S')} start\n".encode())
            self.popen = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal_group(self, signum: int) -> None:
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signum)

    def kill(self) -> None:
        """``kill -9`` of the whole group (a granian master and its workers at once)."""
        self.signal_group(signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait(timeout=30)

    def stop(self, timeout_s: float = 30) -> None:
        self.signal_group(signal.SIGTERM)
        if self.popen is not None:
            try:
                self.popen.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()

    def children(self) -> list[int]:
        """The pids of the direct children (granian's workers)."""
        if not self.running:
            return []
        found = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(self.popen.pid)], capture_output=True, text=True
        )
        return [int(pid) for pid in found.stdout.split()]


class Stack:
    """Every service of one chaos run; ``up`` starts them, ``down`` stops them."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.kafka_bootstrap = f"127.0.0.1:{free_port()}"
        self.redis_url = f"redis://127.0.0.1:{free_port()}/0"
        self.auth_port = free_port()
        self.auth_base = f"http://127.0.0.1:{self.auth_port}"
        self.api_port = free_port()
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.spool_dir = self.dir / "spool"
        self.warehouse_dir = self.dir / "warehouse"
        self.services_env = {
            **os.environ,
            "CLICKSTREAM_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "KAFKA_CONTROLLER_PORT": str(free_port()),
            "CLICKSTREAM_REDIS_URL": self.redis_url,
            "CLICKSTREAM_VAR_DIR": str(self.dir),
            "PYTHON": sys.executable,
        }
        env = self.settings_env()
        logs = self.dir / "log"
        logs.mkdir(exist_ok=True)
        python = sys.executable
        self.auth = Process(
            "auth",
            [python, "-m", "auth_service", "--port", str(self.auth_port)],
            env,
            logs / "auth.log",
        )
        self.api = Process("api", [python, "-m", "core.serve"], env, logs / "api.log")
        self.etl = Process("etl", [python, "-m", "etl.cli", "etl"], env, logs / "etl.log")
        self.spool_mounted = False
        #: Every broker pid seen: one a failed restart orphaned is killed at the end too.
        self.kafka_pids: set[int] = set()

    def settings_env(self) -> dict[str, str]:
        """The environment of the auth service, the API and the ETL: this checkout's code,
        and exactly the chaos run's settings (every other one at its default)."""
        from core.config import PREFIX, Settings

        base = {k: v for k, v in os.environ.items() if not k.startswith(PREFIX)}
        base.pop("PROMETHEUS_MULTIPROC_DIR", None)
        path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        overrides = {
            "API_PORT": self.api_port,
            "API_WORKERS": 2,
            "API_SERVER": "granian",
            "KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "KAFKA_ACK_TIMEOUT_S": 1.0,
            "SPOOL_DIR": self.spool_dir,
            "SPOOL_REPLAY_INTERVAL_S": 0.5,
            "REDIS_URL": self.redis_url,
            "AUTH_URL": f"{self.auth_base}/api/v1/auth/verify",
            "JWT_SECRET": JWT_SECRET,
            "WAREHOUSE_DSN": f"chdb://{self.warehouse_dir}",
            "ETL_INTERVAL_S": ETL_INTERVAL_S,
            "ETL_INSTANCE_ID": "chaos-etl",
            "ETL_METRICS_PORT": 0,
            "ETL_POLL_TIMEOUT_S": 0.5,
            "OPS_OPEN": "true",
        }
        env = {**base, **Settings().to_env(), "PYTHONPATH": path}
        env.update({f"{PREFIX}{key}": str(value) for key, value in overrides.items()})
        return env

    def etl_settings(self):
        """The Settings the ETL runs with (for the checker, once the ETL has stopped)."""
        from core.config import Settings

        return Settings.from_env(self.settings_env())

    # --- the services -----------------------------------------------------------------------

    def services(self, command: str, name: str) -> None:
        subprocess.run(
            [SERVICES, command, name],
            env=self.services_env,
            check=True,
            capture_output=True,
            timeout=180,
        )
        if name == "kafka" and (pid := self.kafka_pid()):
            self.kafka_pids.add(pid)

    def kafka_pid(self) -> int | None:
        try:
            return int((self.dir / "run" / "kafka.pid").read_text())
        except (OSError, ValueError):
            return None

    def up(self) -> None:
        kafka = self.dir / "kafka"
        kafka.mkdir(exist_ok=True)
        shared = ROOT / "var" / "kafka" / "lib"
        if shared.is_dir() and not (kafka / "lib").exists():
            (kafka / "lib").symlink_to(shared)
        self.mount_spool()
        self.warehouse_dir.mkdir(exist_ok=True)
        self.services("up", "kafka")
        self.services("up", "redis")
        self.auth.start()
        wait_for(f"{self.auth_base}/health", "the auth service")
        self.start_api()
        self.etl.start()

    def start_api(self) -> None:
        self.api.start()
        wait_for(f"{self.api_url}/health/live", "the API")

    def down(self) -> None:
        for process in (self.etl, self.api, self.auth):
            process.closed = True
        for process in (self.etl, self.api, self.auth):
            process.stop()
        for name in ("redis", "kafka"):
            pid = self.kafka_pid() if name == "kafka" else None
            if pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
            try:
                self.services("down", name)
            except subprocess.SubprocessError as error:
                print(f"chaos: stopping {name} failed: {error}", file=sys.stderr)
        for pid in self.kafka_pids:
            # Only a broker of this run: its command line names this run's directory.
            with contextlib.suppress(OSError):
                if str(self.dir).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.kill(pid, signal.SIGKILL)
        self.unmount_spool()

    # --- the spool's own small filesystem (a full disk needs one) -----------------------------

    def mount_spool(self) -> None:
        """As root, the spool gets a tmpfs of its own, which a fault can fill for real."""
        self.spool_dir.mkdir(exist_ok=True)
        if can_mount() and not self.spool_mounted:
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "size=64m", "chaos-spool", str(self.spool_dir)],
                check=True,
            )
            self.spool_mounted = True

    def unmount_spool(self) -> None:
        if self.spool_mounted:
            subprocess.run(["umount", "-l", str(self.spool_dir)], check=False)
            self.spool_mounted = False


def wait_for(url: str, what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not answer {url} within {timeout_s} s")
