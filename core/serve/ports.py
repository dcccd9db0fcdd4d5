"""Refusing to start on a port someone else holds, naming the process that holds it.

Without this check a second server would fail deep inside its bind (granian's worker, the
ETL's metrics thread) or, worse, an operator's readiness probe would be answered by the
other process. :func:`refuse_if_taken` runs before the server binds.
"""

from __future__ import annotations

import errno
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil

from core.config import EtlSettings, env_name


class PortTakenError(RuntimeError):
    """The port is taken; the message names it and, when it can be seen, its holder."""


@dataclass(frozen=True)
class Holder:
    """A process listening on a port."""

    pid: int
    name: str
    command: str


def is_free(host: str, port: int) -> bool:
    """Whether a listener could bind ``host:port`` now (as servers do, with SO_REUSEADDR)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def holders(port: int) -> list[Holder]:
    """The processes listening on ``port`` on any address (those this user may see)."""
    found: dict[int, Holder] = {}
    for connection in psutil.net_connections(kind="tcp"):
        if connection.status != psutil.CONN_LISTEN or not connection.laddr:
            continue
        if connection.laddr.port != port or connection.pid is None:
            continue
        try:
            process = psutil.Process(connection.pid)
            found[process.pid] = Holder(process.pid, process.name(), " ".join(process.cmdline()))
        except psutil.Error:
            continue
    return sorted(found.values(), key=lambda holder: holder.pid)


def taken_message(what: str, variable: str, host: str, port: int, by: list[Holder]) -> str:
    """One line saying which port is taken, by whom, and what to do."""
    if by:
        who = "; ".join(f"pid {h.pid} ({h.command[:120] or h.name})" for h in by)
    else:
        who = "a process this user cannot see"
    return (
        f"{what} port {host}:{port} is already taken by {who}: stop it, or set {variable} "
        "to a free port"
    )


def refuse_if_taken(
    what: str,
    variable: str,
    host: str,
    port: int,
    wait_s: float = 0,
    welcome: Callable[[Holder], bool] | None = None,
) -> None:
    """Raise :class:`PortTakenError` if ``host:port`` cannot be bound (port 0 always can)
    within ``wait_s`` seconds (time for a crashed server's workers to exit), unless every
    holder is ``welcome`` (one sharing the port on purpose, with SO_REUSEPORT)."""
    if not port:
        return
    deadline = time.monotonic() + wait_s
    while not is_free(host, port):
        by = holders(port)
        if by and welcome is not None and all(welcome(holder) for holder in by):
            return
        if time.monotonic() >= deadline:
            raise PortTakenError(taken_message(what, variable, host, port, by))
        time.sleep(0.1)


def refuse_etl_metrics_port_if_taken(etl: EtlSettings) -> None:
    """:func:`refuse_if_taken` for the ETL's metrics listener, when it has one."""
    if etl.metrics_port:
        refuse_if_taken(
            "ETL metrics", env_name("etl_metrics_port"), etl.metrics_host, etl.metrics_port
        )
