"""The native stack of ``make up``: the API and the ETL under supervisord, restarted when they
crash, stopped whole, reloaded without a refused request.

``python -m core.serve.stack up|down|status|reload`` (``scripts/app.sh``). Everything lives
under one var directory: supervisord's config (``run/supervisord.conf``, rendered here), its
control socket, pid file and logs. Every process of the stack carries the variable
:data:`MARKER` (the var directory) from supervisord down to the server's workers, so
``down`` finds them in the process table, orphans included, rather than trusting pid files.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import xmlrpc.client
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from core.config import PROJECT_ROOT, ConfigError, Settings, env_name
from core.serve import ports, reload

#: Set on supervisord and inherited by every process of the stack: the var directory.
MARKER = "SUPERVISED_CLICKSTREAM_STACK"
#: The programs supervisord runs, in start order.
PROGRAMS = ("api", "etl")
#: How long ``up`` waits for the API to answer, and ``down`` for a process to exit.
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Stack:
    """Where one stack keeps its files, and what it runs."""

    var_dir: Path
    root: Path = PROJECT_ROOT
    python: str = sys.executable

    @property
    def run_dir(self) -> Path:
        return self.var_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.var_dir / "log"

    @property
    def config_file(self) -> Path:
        return self.run_dir / "supervisord.conf"

    @property
    def socket(self) -> Path:
        return self.run_dir / "supervisord.sock"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "supervisord.pid"

    @property
    def settings_file(self) -> Path:
        return self.run_dir / "api.env"


def etl_stop_wait_s(settings: Settings) -> int:
    """How long supervisord lets a stopping ETL finish its pass before it kills it: a pass
    may wait ``etl_session_timeout_s`` for partitions and ``etl_replay_timeout_s`` to read a
    replay, then load (a minute is plenty on this machine's largest passes)."""
    return int(settings.etl.session_timeout_s + settings.etl.replay_timeout_s + 60)


def render_config(stack: Stack, settings: Settings) -> str:
    """supervisord's configuration for ``stack``: restarts with backoff, whole-group stops."""
    common = {
        "directory": stack.root,
        "autostart": "true",
        # A crash restarts the program at once; a start that dies within startsecs is
        # retried after 1, 2, 3... s (supervisord's backoff), startretries times, then FATAL.
        "autorestart": "true",
        "startsecs": 5,
        "startretries": 8,
        "stopsignal": "TERM",
        # The signal and, past stopwaitsecs, SIGKILL go to the whole process group: workers too.
        "stopasgroup": "true",
        "killasgroup": "true",
        "redirect_stderr": "true",
        "stdout_logfile_maxbytes": "50MB",
        "stdout_logfile_backups": 3,
    }
    # Through the settings file: a program restarted after a reload keeps its settings.
    launch = f"{stack.python} -m core.serve.reload {stack.settings_file} {stack.python}"
    programs = {
        "api": {
            "command": f"{launch} -m core.serve",
            "priority": 100,
            # Granian stops its workers after their requests are answered.
            "stopwaitsecs": 30,
        },
        "etl": {
            "command": f"{launch} -m etl.cli etl",
            "priority": 200,
            # SIGTERM lets the pass in progress finish (etl/runner.py: run_forever).
            "stopwaitsecs": etl_stop_wait_s(settings),
        },
    }
    sections = [
        ("unix_http_server", {"file": stack.socket, "chmod": "0700"}),
        (
            "supervisord",
            {
                "logfile": stack.log_dir / "supervisord.log",
                "pidfile": stack.pid_file,
                "childlogdir": stack.log_dir,
                "directory": stack.root,
                "nodaemon": "false",
                "silent": "true",
            },
        ),
        (
            "rpcinterface:supervisor",
            {"supervisor.rpcinterface_factory": "supervisor.rpcinterface:make_main_rpcinterface"},
        ),
        ("supervisorctl", {"serverurl": f"unix://{stack.socket}"}),
    ]
    for name in PROGRAMS:
        options = {**programs[name], **common, "stdout_logfile": stack.log_dir / f"{name}.log"}
        sections.append((f"program:{name}", options))
    text = "; Rendered by `python -m core.serve.stack up` (core/serve/stack.py); edits are lost.\n"
    for title, options in sections:
        text += f"\n[{title}]\n" + "".join(f"{key}={value}\n" for key, value in options.items())
    return text


def environment(stack: Stack, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment supervisord (and so every program) starts with."""
    settings_file = env_name("api_settings_file")
    return {
        **environ,
        MARKER: str(stack.var_dir),
        settings_file: environ.get(settings_file) or str(stack.settings_file),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(stack.root), environ.get("PYTHONPATH")])),
    }


def process_title(environ: Mapping[str, str]) -> str | None:
    """The process title of a granian server in a stack (its workers add `` worker-N``).

    granian rewrites its processes' titles (setproctitle), which overwrites what the
    kernel shows of their environment: the title carries the stack's mark instead.
    """
    var_dir = environ.get(MARKER)
    return f"clickstream-api {MARKER}={var_dir}" if var_dir else None


def members(stack: Stack) -> list[psutil.Process]:
    """Every live process of ``stack``, found by :data:`MARKER` in its environment or title."""
    title = process_title({MARKER: str(stack.var_dir)})
    found = []
    for process in psutil.process_iter():
        try:
            marked = process.environ().get(MARKER) == str(stack.var_dir)
            if marked or _titled(" ".join(process.cmdline()).strip(), title):
                found.append(process)
        except psutil.Error:
            continue
    return found


def _titled(command: str, title: str | None) -> bool:
    return command == title or command.startswith(f"{title} worker-")


def describe(process: psutil.Process) -> str:
    """``pid N (command line)``, or just the pid of a process gone meanwhile."""
    try:
        return f"pid {process.pid} ({' '.join(process.cmdline())[:100]})"
    except psutil.Error:
        return f"pid {process.pid}"


def control(stack: Stack) -> xmlrpc.client.ServerProxy:
    """supervisord's XML-RPC interface, over the stack's socket."""
    from supervisor.xmlrpc import SupervisorTransport

    transport = SupervisorTransport(None, None, f"unix://{stack.socket}")
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)


def supervisor_running(stack: Stack) -> bool:
    """Whether this stack's supervisord answers on its socket."""
    if not stack.socket.exists():
        return False
    try:
        control(stack).supervisor.getState()
    except (OSError, xmlrpc.client.Error):
        return False
    return True


def api_tree(stack: Stack) -> set[int]:
    """The pids of the API server supervisord runs and of its workers (empty if none)."""
    info = control(stack).supervisor.getProcessInfo("api")
    if not info["pid"]:
        return set()
    try:
        server = psutil.Process(info["pid"])
        return {server.pid, *(child.pid for child in server.children(recursive=True))}
    except psutil.Error:
        return set()


def serves_the_port(stack: Stack, settings: Settings) -> bool:
    """Whether every process listening on the API's port is this stack's API (and one is)."""
    listening = {holder.pid for holder in ports.holders(settings.api.port)}
    return bool(listening) and listening <= api_tree(stack)


def answers_ready(settings: Settings) -> bool:
    url = f"http://{settings.api.host}:{settings.api.port}/health/ready"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def wait_ready(stack: Stack, settings: Settings, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Wait until the API answers ready *and* the answer comes from this stack's server.

    Raises :class:`RuntimeError` with the end of the API's log when it does not come (the
    API went FATAL after its retries, or someone else's server holds the port).
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = control(stack).supervisor.getProcessInfo("api")["statename"]
        if state == "FATAL":
            break
        if state == "RUNNING" and answers_ready(settings) and serves_the_port(stack, settings):
            return
        time.sleep(0.3)
    raise RuntimeError(f"api: not ready; last lines of its log:\n{tail(stack.log_dir / 'api.log')}")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"({path} unreadable)"


def up(stack: Stack, settings: Settings, environ: Mapping[str, str]) -> int:
    """Start supervisord with the API and the ETL (unless it runs); wait for this API."""
    for directory in (stack.run_dir, stack.log_dir):
        directory.mkdir(parents=True, exist_ok=True)
    if supervisor_running(stack):
        print(f"supervisord: already running (socket {stack.socket})")
    else:
        try:
            ports.refuse_if_taken("API", env_name("api_port"), settings.api.host, settings.api.port)
            ports.refuse_etl_metrics_port_if_taken(settings.etl)
        except ports.PortTakenError as error:
            print(f"make up: {error}", file=sys.stderr)
            return 1
        reload.write(stack.settings_file, environment(stack, environ))
        stack.config_file.write_text(render_config(stack, settings))
        subprocess.run(
            [stack.python, "-m", "supervisor.supervisord", "-c", str(stack.config_file)],
            env=environment(stack, environ),
            cwd=stack.root,
            check=True,
        )
        _wait_for(lambda: supervisor_running(stack), STOP_TIMEOUT_S)
        print(f"supervisord: started (config {stack.config_file}, logs {stack.log_dir})")
    try:
        wait_ready(stack, settings)
    except RuntimeError as error:
        print(f"{error}\n(supervisord still runs: `make down` stops it)", file=sys.stderr)
        return 1
    url = f"http://{settings.api.host}:{settings.api.port}"
    print(f"api: ready at {url} (server and workers: {sorted(api_tree(stack))})")
    print(f"etl: {control(stack).supervisor.getProcessInfo('etl')['description']}")
    return 0


def _wait_for(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def down(stack: Stack) -> int:
    """Stop every process of the stack, say which, and fail if one survives."""
    before = {process.pid: describe(process) for process in members(stack)}
    if supervisor_running(stack):
        proxy = control(stack)
        for info in proxy.supervisor.getAllProcessInfo():
            if info["pid"]:
                proxy.supervisor.stopProcess(info["name"], True)
                print(f"{info['name']}: stopped (was pid {info['pid']})")
        supervisord = psutil.Process(proxy.supervisor.getPID())
        proxy.supervisor.shutdown()
        psutil.wait_procs([supervisord], timeout=STOP_TIMEOUT_S)
        print("supervisord: stopped")
    survivors = members(stack)
    for process in survivors:
        # Orphans of a crash (a worker, a server whose supervisord was killed): end them too.
        print(f"stopping a process supervisord no longer knew: {describe(process)}")
        try:
            process.terminate()
        except psutil.Error:
            continue
    _, alive = psutil.wait_procs(survivors, timeout=STOP_TIMEOUT_S)
    for process in alive:
        print(f"killing, after {STOP_TIMEOUT_S:.0f} s: {describe(process)}")
        try:
            process.kill()
        except psutil.Error:
            continue
    psutil.wait_procs(alive, timeout=5)
    left = members(stack)
    if left:
        for process in left:
            print(f"still running: {describe(process)}", file=sys.stderr)
        return 1
    if not before:
        print("nothing of the stack was running")
    else:
        print(f"stack: stopped, {len(before)} processes; none left (process table checked)")
    return 0


def status(stack: Stack) -> int:
    """What supervisord says of each program, and any process it does not know of."""
    known: set[int] = set()
    if supervisor_running(stack):
        known.add(control(stack).supervisor.getPID())
        for info in control(stack).supervisor.getAllProcessInfo():
            print(f"{info['name']}: {info['statename'].lower()} ({info['description']})")
            if info["pid"]:
                known |= {info["pid"]}
                try:
                    children = psutil.Process(info["pid"]).children(recursive=True)
                    known |= {child.pid for child in children}
                except psutil.Error:
                    pass
    else:
        print("supervisord: not running")
    strays = [process for process in members(stack) if process.pid not in known]
    for process in strays:
        print(f"not supervised: {describe(process)}")
    return 0 if supervisor_running(stack) and not strays else 1


def reload_stack(stack: Stack, settings: Settings, environ: Mapping[str, str]) -> int:
    """New code and settings everywhere: the API's workers one at a time, then the ETL
    between two passes. Returns once every worker is new and the API answers ready."""
    if not supervisor_running(stack):
        print("reload: the stack is not running (make up)", file=sys.stderr)
        return 1
    if settings.api.server != "granian":
        # gunicorn preloads the application in its master: its SIGHUP brings no new code.
        print(
            f"reload: only the granian server reloads ({env_name('api_server')}="
            f"{settings.api.server}); restart instead: "
            f"supervisorctl -c {stack.config_file} restart api etl",
            file=sys.stderr,
        )
        return 2
    proxy = control(stack)
    reload.write(stack.settings_file, environment(stack, environ))
    server = proxy.supervisor.getProcessInfo("api")["pid"]
    old_workers = api_tree(stack) - {server}
    os.kill(server, signal.SIGHUP)
    wait_s = (settings.api.workers + 1) * (settings.api.respawn_interval_s + STOP_TIMEOUT_S)

    def renewed() -> bool:
        workers = api_tree(stack) - {server}
        return len(workers) >= settings.api.workers and not workers & old_workers

    if not _wait_for(renewed, wait_s) or not _wait_for(lambda: answers_ready(settings), 30):
        print(f"api: workers not renewed; log:\n{tail(stack.log_dir / 'api.log')}", file=sys.stderr)
        return 1
    print(f"api: reloaded, workers {sorted(old_workers)} -> {sorted(api_tree(stack) - {server})}")
    # stopProcess waits for the ETL's SIGTERM to end its pass (stopwaitsecs at most).
    proxy.supervisor.stopProcess("etl", True)
    proxy.supervisor.startProcess("etl", True)
    print(
        f"etl: restarted between passes ({proxy.supervisor.getProcessInfo('etl')['description']})"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    options = argparse.ArgumentParser(prog="python -m core.serve.stack", description=__doc__)
    options.add_argument("command", choices=("up", "down", "status", "reload", "config"))
    options.add_argument(
        "--var-dir",
        type=Path,
        default=Path(os.environ.get("CLICKSTREAM_VAR_DIR") or PROJECT_ROOT / "var"),
        help="the stack's directory (default: $CLICKSTREAM_VAR_DIR or var/)",
    )
    args = options.parse_args(argv)
    stack = Stack(var_dir=args.var_dir.resolve())
    if args.command == "down":
        return down(stack)
    if args.command == "status":
        return status(stack)
    try:
        settings = Settings.from_env()
    except ConfigError as error:
        print(f"clickstream: {error}", file=sys.stderr)
        return 2
    if args.command == "config":
        sys.stdout.write(render_config(stack, settings))
        return 0
    if args.command == "up":
        return up(stack, settings, os.environ)
    return reload_stack(stack, settings, os.environ)


if __name__ == "__main__":
    sys.exit(main())
