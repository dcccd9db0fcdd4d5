"""All settings, read once from ``CLICKSTREAM_*`` environment variables and validated.

Each setting is declared once below: its type, default, and a line of documentation.
``python -m core.host.configuration`` prints ``docs/configuration.md`` from them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

PREFIX = "CLICKSTREAM_"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(ValueError):
    """A setting has a bad value; the message names its environment variable."""


def _setting(default: Any, doc: str, parse: Callable[[str], Any] | None = None) -> Any:
    return field(default=default, metadata={"doc": doc, "parse": parse})


def _bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _list(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


@dataclass(frozen=True)
class PluginSetting:
    """A setting a plugin reads, from ``CLICKSTREAM_<NAME>`` like every other setting."""

    name: str
    default: int | float | str | bool
    doc: str
    plugin: str = field(default="", compare=False)

    def parse(self, raw: str) -> int | float | str | bool:
        """``raw`` as the type of the default; raises ``ValueError`` if it is not one."""
        kind = type(self.default)
        if kind is bool:
            lowered = raw.strip().lower()
            if lowered not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                raise ValueError("expected true or false")
            return lowered in ("1", "true", "yes", "on")
        return kind(raw)


@dataclass(frozen=True)
class Settings:
    """Every knob of clickstream. Build with :meth:`from_env` or directly in tests."""

    # HTTP API
    api_host: str = _setting("127.0.0.1", "Address the API listens on.")
    api_port: int = _setting(8000, "Port the API listens on.")
    api_workers: int = _setting(2, "Server worker processes (make up).")
    api_threads: int = _setting(8, "Threads per server worker (make up).")
    api_server: str = _setting(
        "granian",
        "WSGI server of make up: granian (faster here, see docs/benchmarks.md) or gunicorn "
        "(needed for a separate operational listener).",
    )
    max_body_bytes: int = _setting(
        65536, "Largest accepted single-event body, in bytes (413 above)."
    )
    max_batch_bytes: int = _setting(1048576, "Largest accepted batch body, in bytes (413 above).")
    max_batch_events: int = _setting(500, "Most events in one batch (413 above).")

    # Kafka
    kafka_bootstrap: str = _setting("127.0.0.1:9092", "Kafka bootstrap servers, host:port[,...].")
    kafka_topic: str = _setting("events", "The one topic every event is published to.")
    kafka_linger_ms: int = _setting(2, "Producer linger: how long a send waits to fill a batch.")
    kafka_batch_bytes: int = _setting(
        262144,
        "Producer batch size per partition; large enough that a 500-event batch request "
        "leaves in a few requests, not hundreds (docs/benchmarks.md).",
    )
    kafka_ack_timeout_s: float = _setting(
        5.0, "How long a request waits for the broker's acknowledgement before failing (503)."
    )

    # Disk spool: where events wait while Kafka does not acknowledge (docs/reliability.md)
    spool_dir: str = _setting(
        str(PROJECT_ROOT / "var" / "spool"),
        "Directory of the disk spools; each process writes to a subdirectory of its own.",
    )
    spool_max_bytes: int = _setting(
        268435456, "Most bytes of events one process spools (503 beyond; 0 turns the spool off)."
    )
    spool_fsync: bool = _setting(
        True,
        "fsync each spool write before answering 202 (concurrent writers share one fsync); "
        "false survives a crash of the process but not of the machine.",
    )
    spool_replay_interval_s: float = _setting(
        1.0, "Seconds between two attempts to replay the spool to Kafka."
    )

    # Redis
    redis_url: str = _setting("redis://127.0.0.1:6379/0", "Redis holding the identity cache.")
    redis_prefix: str = _setting("clickstream:", "Prefix of every Redis key clickstream writes.")
    redis_timeout_s: float = _setting(0.2, "Redis socket timeout; past it the cache is skipped.")

    # Auth service and local JWT verification
    auth_url: str = _setting(
        "http://127.0.0.1:8001/api/v1/auth/verify", "Auth service endpoint that verifies a token."
    )
    auth_method: str = _setting("POST", "HTTP method of the verify call (GET or POST).")
    auth_user_id_field: str = _setting(
        "user_id", "Dotted path of the user id in the auth service's JSON answer."
    )
    auth_expiry_field: str = _setting(
        "exp", "Dotted path of the token's expiry (Unix seconds) in the answer, if any."
    )
    auth_timeout_s: float = _setting(0.3, "Timeout of one auth service call, in seconds.")
    auth_breaker_failures: int = _setting(
        3, "Consecutive auth service failures that open the circuit breaker."
    )
    auth_breaker_reset_s: float = _setting(
        5.0, "Seconds the breaker stays open before one trial call."
    )
    jwt_algorithms: tuple[str, ...] = _setting(
        ("HS256",), "Allowed JWT algorithms for local verification, comma-separated.", _list
    )
    jwt_secret: str = _setting(
        "dev-secret-change-me-0123456789abcdef", "Shared secret for HS* JWTs (local fallback)."
    )
    jwt_public_key: str = _setting(
        "", "PEM public key, or a path to one, for RS*/ES*/EdDSA JWTs (local fallback)."
    )
    jwt_user_id_claim: str = _setting("sub", "JWT claim holding the user id.")
    cache_max_ttl_s: int = _setting(3600, "Longest time an accepted token's identity is cached.")
    cache_rejection_ttl_s: int = _setting(30, "How long a rejected token is remembered.")
    cache_local_size: int = _setting(
        10000, "Entries in each process's in-memory identity cache (0 turns it off)."
    )
    cache_local_ttl_s: float = _setting(60.0, "Longest time a process keeps an identity in memory.")

    # Warehouse and ETL
    warehouse_dsn: str = _setting(
        f"chdb://{PROJECT_ROOT / 'var' / 'warehouse'}",
        "ClickHouse DSN: chdb:///<dir> (in-process engine) or http(s)://user:pass@host:port.",
    )
    warehouse_database: str = _setting("clickstream", "ClickHouse database of the event tables.")
    warehouse_lock_timeout_s: float = _setting(
        60.0, "How long a chDB user waits for another process to release the data directory."
    )
    etl_interval_s: float = _setting(5.0, "Seconds between two ETL passes.")
    etl_nice: int = _setting(
        10,
        "CPU niceness of `clickstream etl` (0-19): its passes yield the cores to the API, "
        "whose latency is the one clients see.",
    )
    etl_group: str = _setting("clickstream-etl", "Kafka consumer group of the ETL.")
    etl_max_records: int = _setting(50000, "Most messages one ETL pass reads before it loads.")
    warehouse_dedup_window: int = _setting(
        1000, "Insert blocks each event table remembers to drop a re-sent batch (per table)."
    )
    etl_poll_timeout_s: float = _setting(
        0.5, "How long one Kafka poll of an ETL pass waits for messages, in seconds."
    )

    # Abuse limits, browsers and operational endpoints (docs/security.md)
    rate_limit_ip_requests: int = _setting(
        0,
        "Requests one client IP may make to the event endpoints per rate-limit window "
        "(429 above); 0 turns the limit off.",
    )
    rate_limit_user_events: int = _setting(
        0, "Events one signed-in user may send per rate-limit window (429 above); 0 turns it off."
    )
    rate_limit_window_s: int = _setting(60, "Length of a rate-limit window, in seconds.")
    trusted_proxy_hops: int = _setting(
        0,
        "Proxies in front of the API that append the client to X-Forwarded-For; "
        "0 takes the client IP from the connection.",
    )
    cors_origins: tuple[str, ...] = _setting(
        (),
        "Browser origins allowed to send events, comma-separated (https://cinema.example), "
        "or * for any; empty turns CORS off.",
        _list,
    )
    cors_max_age_s: int = _setting(600, "How long a browser may reuse a CORS preflight answer.")
    ops_port: int = _setting(
        0,
        "Port of a second listener for operational endpoints (metrics, admin), which then "
        "answer only there; 0 serves them with the API.",
    )
    ops_host: str = _setting("127.0.0.1", "Address of the operational listener.")
    ops_token: str = _setting(
        "", "Bearer token operational endpoints require; empty requires none."
    )

    log_level: str = _setting("INFO", "Log level of the API and the ETL.")

    # Logs and metrics (docs/operations.md)
    access_log: bool = _setting(
        True, "Log one JSON line per API request: method, route, status, duration, request id."
    )
    etl_metrics_port: int = _setting(
        9464, "Port where `clickstream etl` serves Prometheus metrics; 0 turns it off."
    )
    etl_metrics_host: str = _setting("127.0.0.1", "Address of the ETL's metrics listener.")
    etl_metrics_textfile: str = _setting(
        "",
        "File the ETL rewrites with its metrics after each pass, for node_exporter's textfile "
        "collector (`clickstream etl --once` from cron); empty writes none.",
    )
    etl_quality_interval_s: float = _setting(
        60.0, "Seconds between two refreshes of the warehouse quality figures the ETL exports."
    )

    #: Values of the settings plugins declare (``register_settings``), by setting name: the
    #: raw ``CLICKSTREAM_*`` text from the environment, or typed values in tests.
    plugin_values: Mapping[str, Any] = field(default_factory=dict, metadata={"plugins": True})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``CLICKSTREAM_*`` variables; a bad value raises :class:`ConfigError`."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for spec in core_fields():
            variable = env_name(spec.name)
            if variable in environ:
                values[spec.name] = _parse(spec, variable, environ[variable])
        known = {env_name(spec.name) for spec in core_fields()}
        values["plugin_values"] = {
            variable.removeprefix(PREFIX).lower(): raw
            for variable, raw in environ.items()
            if variable.startswith(PREFIX) and variable not in known
        }
        settings = cls(**values)
        settings.validate()
        return settings

    def to_env(self) -> dict[str, str]:
        """The ``CLICKSTREAM_*`` variables that make :meth:`from_env` return these settings."""
        env = {}
        for spec in core_fields():
            value = getattr(self, spec.name)
            if isinstance(value, tuple):
                value = ",".join(value)
            elif isinstance(value, bool):
                value = "true" if value else "false"
            env[env_name(spec.name)] = str(value)
        for name, value in self.plugin_values.items():
            env[env_name(name)] = str(value).lower() if isinstance(value, bool) else str(value)
        return env

    def plugin_value(self, setting: PluginSetting) -> Any:
        """The value of a plugin's ``setting``: from the environment, else its default."""
        raw = self.plugin_values.get(setting.name, setting.default)
        if not isinstance(raw, str) or isinstance(setting.default, str):
            return raw
        try:
            return setting.parse(raw)
        except ValueError as error:
            raise ConfigError(f"{env_name(setting.name)}={raw!r} is invalid: {error}") from None

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied (settings are immutable)."""
        return replace(self, **changes)

    def validate(self) -> None:
        """Check values that a type alone does not constrain."""
        positive = (
            "api_port",
            "api_workers",
            "api_threads",
            "max_body_bytes",
            "max_batch_bytes",
            "max_batch_events",
            "kafka_batch_bytes",
            "etl_max_records",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{env_name(name)} must be positive")
        for name in (
            "auth_timeout_s",
            "auth_breaker_failures",
            "auth_breaker_reset_s",
            "kafka_ack_timeout_s",
            "etl_interval_s",
            "redis_timeout_s",
            "cache_max_ttl_s",
            "cache_rejection_ttl_s",
            "spool_replay_interval_s",
            "etl_quality_interval_s",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{env_name(name)} must be positive")
        if not 0 <= self.etl_metrics_port <= 65535:
            raise ConfigError(f"{env_name('etl_metrics_port')} must be a port, or 0")
        if self.spool_max_bytes < 0:
            raise ConfigError(f"{env_name('spool_max_bytes')} must be 0 or more")
        if self.api_server not in ("granian", "gunicorn"):
            raise ConfigError(f"{env_name('api_server')} must be granian or gunicorn")
        if not 0 <= self.etl_nice <= 19:
            raise ConfigError(f"{env_name('etl_nice')} must be between 0 and 19")
        if self.auth_method.upper() not in ("GET", "POST"):
            raise ConfigError(f"{env_name('auth_method')} must be GET or POST")
        if any(algorithm.lower() == "none" for algorithm in self.jwt_algorithms):
            raise ConfigError(f"{env_name('jwt_algorithms')} must not allow 'none'")
        if not self.jwt_algorithms:
            raise ConfigError(f"{env_name('jwt_algorithms')} needs at least one algorithm")
        if not self.warehouse_dsn.startswith(("chdb://", "http://", "https://")):
            raise ConfigError(
                f"{env_name('warehouse_dsn')} must start with chdb://, http:// or https://"
            )
        for name in ("rate_limit_ip_requests", "rate_limit_user_events", "trusted_proxy_hops"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{env_name(name)} must be 0 or more")
        if self.rate_limit_window_s <= 0 or self.cors_max_age_s < 0:
            raise ConfigError(
                f"{env_name('rate_limit_window_s')} must be positive, "
                f"{env_name('cors_max_age_s')} 0 or more"
            )
        for origin in self.cors_origins:
            if origin != "*" and not re.fullmatch(r"https?://[^/\s]+", origin):
                raise ConfigError(
                    f"{env_name('cors_origins')}: {origin!r} is not an origin "
                    "(scheme://host[:port], no path) or *"
                )
        if not 0 <= self.ops_port <= 65535 or (self.ops_port and self.ops_port == self.api_port):
            raise ConfigError(f"{env_name('ops_port')} must be a free port other than the API's")


def core_fields() -> tuple:
    """The fields of :class:`Settings` that are clickstream's own settings."""
    return tuple(spec for spec in fields(Settings) if not spec.metadata.get("plugins"))


def env_name(setting: str) -> str:
    """The environment variable of ``setting``."""
    return PREFIX + setting.upper()


def _parse(spec, variable: str, raw: str) -> Any:
    parse = spec.metadata["parse"] or {"int": int, "float": float, "bool": _bool}.get(
        spec.type, str
    )
    try:
        return parse(raw)
    except ValueError as error:
        raise ConfigError(f"{variable}={raw!r} is invalid: {error}") from None


INTRODUCTION = """# Configuration

Every setting is read once, at start-up, from an environment variable with the
prefix `CLICKSTREAM_`, by `core/config.py`. A bad value stops start-up with a
message naming the variable. The API, the ETL, the services script and
`docker-compose.yml` read the same variables.

Generated by `make docs` from the declarations in `core/config.py`; a test fails
when this page is stale.

"""


def describe(plugin_settings: Iterable[PluginSetting] = ()) -> str:
    """``docs/configuration.md``: every setting, its variable, default and meaning."""
    lines = [INTRODUCTION + "| variable | default | meaning |", "|---|---|---|"]
    for spec in core_fields():
        default = spec.default
        if isinstance(default, tuple):
            default = ",".join(default)
        if spec.name == "warehouse_dsn":
            default = "chdb://<repo>/var/warehouse"
        if spec.name == "spool_dir":
            default = "<repo>/var/spool"
        lines.append(f"| `{env_name(spec.name)}` | `{default}` | {spec.metadata['doc']} |")
    plugin_settings = sorted(plugin_settings, key=lambda setting: setting.name)
    if plugin_settings:
        lines += [
            "",
            "## Settings of plugins",
            "",
            "Declared by the installed plugins (`register_settings`), read the same way.",
            "",
            "| variable | default | meaning | plugin |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| `{env_name(s.name)}` | `{s.default}` | {s.doc} | `{s.plugin.split(' ')[0]}` |"
            for s in plugin_settings
        ]
    return "\n".join(lines) + "\n"
