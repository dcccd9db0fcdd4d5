"""All settings, read once from ``CLICKSTREAM_*`` environment variables and validated.

Settings come in groups, one per component that reads them (``settings.kafka``,
``settings.spool``, ``settings.auth``...), and each component receives its own group.
Each setting is declared once below: its type, default, rule, and a line of
documentation. Its *name* is its environment variable without the prefix
(``kafka_topic`` for ``CLICKSTREAM_KAFKA_TOPIC``), which is also how tests change it:
``Settings.of(kafka_topic="clicks")``. ``python -m core.host.configuration`` prints
``docs/configuration.md`` from these declarations.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import Field, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

PREFIX = "CLICKSTREAM_"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: The default of CLICKSTREAM_JWT_SECRET, shared by the reference auth service: published,
#: hence refused at start-up unless CLICKSTREAM_JWT_ALLOW_DEV_SECRET says this is development.
DEV_JWT_SECRET = "dev-secret-change-me-0123456789abcdef"


class ConfigError(ValueError):
    """A setting has a bad value; the message names its environment variable."""


@dataclass(frozen=True)
class Rule:
    """What a value must satisfy beyond its type, and how to say so."""

    holds: Callable[[Any], bool]
    expected: str


POSITIVE = Rule(lambda value: value > 0, "must be positive")
NOT_NEGATIVE = Rule(lambda value: value >= 0, "must be 0 or more")
PORT_OR_ZERO = Rule(lambda value: 0 <= value <= 65535, "must be a port, or 0")


#: The choices of ``etl_unknown_events``: what the ETL does with an event of no installed plugin.
UNKNOWN_EVENTS_DEAD_LETTER = "dead_letter"
UNKNOWN_EVENTS_SKIP = "skip"
UNKNOWN_EVENTS_CHOICES = (UNKNOWN_EVENTS_DEAD_LETTER, UNKNOWN_EVENTS_SKIP)


def one_of(*choices: str) -> Rule:
    return Rule(lambda value: value.upper() in choices, "must be " + " or ".join(choices))


def _setting(
    default: Any,
    doc: str,
    *,
    rule: Rule | None = None,
    env: str = "",
    parse: Callable[[str], Any] | None = None,
    shown: str = "",
) -> Any:
    """A setting; ``env`` names its variable when it is not the group's prefix + its name."""
    metadata = {"doc": doc, "rule": rule, "env": env, "parse": parse, "shown": shown}
    return field(default=default, metadata=metadata)


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
class ApiSettings:
    """The HTTP API and its server (``core/api``, ``core/serve``)."""

    host: str = _setting("127.0.0.1", "Address the API listens on.")
    port: int = _setting(8000, "Port the API listens on.", rule=POSITIVE)
    workers: int = _setting(2, "Server worker processes (make up).", rule=POSITIVE)
    threads: int = _setting(8, "Threads per server worker (make up).", rule=POSITIVE)
    server: str = _setting(
        "granian",
        "WSGI server of make up: granian (faster here, see docs/benchmarks.md) or gunicorn "
        "(needed for a separate operational listener).",
        rule=Rule(lambda value: value in ("granian", "gunicorn"), "must be granian or gunicorn"),
    )
    settings_file: str = _setting(
        "",
        "File of CLICKSTREAM_* lines the granian server re-reads on SIGHUP (make reload), before "
        "it respawns its workers one at a time, so new settings reach every worker without a "
        "refused request; empty: the workers keep the server's environment (make up sets "
        "var/run/api.env).",
    )
    respawn_interval_s: float = _setting(
        3.5,
        "Seconds granian gives a respawned worker (a reload) to start before it stops the old "
        "one: the time the new worker needs to import the application.",
        rule=POSITIVE,
    )
    max_body_bytes: int = _setting(
        65536,
        "Largest accepted single-event body, in bytes (413 above).",
        rule=POSITIVE,
        env="max_body_bytes",
    )
    max_batch_bytes: int = _setting(
        1048576,
        "Largest accepted batch body, in bytes (413 above).",
        rule=POSITIVE,
        env="max_batch_bytes",
    )
    max_batch_events: int = _setting(
        500, "Most events in one batch (413 above).", rule=POSITIVE, env="max_batch_events"
    )
    access_log: bool = _setting(
        True,
        "Log one JSON line per API request: method, route, status, duration, request id.",
        env="access_log",
    )
    max_clock_skew_s: int = _setting(
        86400,
        "Largest difference, in seconds, between a client's sent_at and the server's clock "
        "for which the event's client_time is stored (null beyond it).",
        rule=POSITIVE,
    )


@dataclass(frozen=True)
class KafkaSettings:
    """The broker, for the publisher, the ETL's consumer and the dead-letter requeue."""

    bootstrap: str = _setting("127.0.0.1:9092", "Kafka bootstrap servers, host:port[,...].")
    topic: str = _setting("events", "The one topic every event is published to.")
    partitions: int = _setting(
        6,
        "Partitions of the topic when scripts/services.sh creates it: the most ETL processes "
        "of one group that get work (docs/etl.md).",
        rule=POSITIVE,
    )
    client: str = _setting(
        "kafka-python",
        "The API's producer: kafka-python, or confluent (librdkafka, the [fast] extra: "
        "its send path and I/O thread outside the GIL; docs/benchmarks.md).",
        rule=Rule(
            lambda value: value in ("kafka-python", "confluent"),
            "must be kafka-python or confluent",
        ),
    )
    linger_ms: int = _setting(2, "Producer linger: how long a send waits to fill a batch.")
    batch_bytes: int = _setting(
        262144,
        "Producer batch size per partition; large enough that a 500-event batch request "
        "leaves in a few requests, not hundreds (docs/benchmarks.md).",
        rule=POSITIVE,
    )
    ack_timeout_s: float = _setting(
        5.0,
        "How long a request waits for the broker's acknowledgement before failing (503).",
        rule=POSITIVE,
    )


@dataclass(frozen=True)
class SpoolSettings:
    """The disk spool, where events wait while Kafka does not acknowledge (docs/reliability.md)."""

    dir: str = _setting(
        str(PROJECT_ROOT / "var" / "spool"),
        "Directory of the disk spools; each process writes to a subdirectory of its own.",
        shown="<repo>/var/spool",
    )
    max_bytes: int = _setting(
        268435456,
        "Most bytes of events one process spools (503 beyond; 0 turns the spool off).",
        rule=NOT_NEGATIVE,
    )
    fsync: bool = _setting(
        True,
        "fsync each spool write before answering 202 (concurrent writers share one fsync); "
        "false survives a crash of the process but not of the machine.",
    )
    replay_interval_s: float = _setting(
        1.0, "Seconds between two attempts to replay the spool to Kafka.", rule=POSITIVE
    )


@dataclass(frozen=True)
class RedisSettings:
    """Redis, shared by the identity cache and the rate limits."""

    url: str = _setting("redis://127.0.0.1:6379/0", "Redis holding the identity cache.")
    prefix: str = _setting("clickstream:", "Prefix of every Redis key clickstream writes.")
    timeout_s: float = _setting(
        0.2, "Redis socket timeout; past it the cache is skipped.", rule=POSITIVE
    )


@dataclass(frozen=True)
class AuthSettings:
    """The auth service the identity resolver asks first."""

    url: str = _setting(
        "http://127.0.0.1:8001/api/v1/auth/verify", "Auth service endpoint that verifies a token."
    )
    method: str = _setting(
        "POST", "HTTP method of the verify call (GET or POST).", rule=one_of("GET", "POST")
    )
    user_id_field: str = _setting(
        "user_id", "Dotted path of the user id in the auth service's JSON answer."
    )
    expiry_field: str = _setting(
        "exp", "Dotted path of the token's expiry (Unix seconds) in the answer, if any."
    )
    timeout_s: float = _setting(0.3, "Timeout of one auth service call, in seconds.", rule=POSITIVE)
    breaker_failures: int = _setting(
        3, "Consecutive auth service failures that open the circuit breaker.", rule=POSITIVE
    )
    breaker_reset_s: float = _setting(
        5.0, "Seconds the breaker stays open before one trial call.", rule=POSITIVE
    )


@dataclass(frozen=True)
class JwtSettings:
    """Local JWT verification, the identity resolver's fallback."""

    algorithms: tuple[str, ...] = _setting(
        ("HS256",),
        "Allowed JWT algorithms for local verification, comma-separated.",
        rule=Rule(
            lambda value: bool(value) and all(name.lower() != "none" for name in value),
            "needs at least one algorithm, and must not allow 'none'",
        ),
        parse=_list,
    )
    secret: str = _setting(
        DEV_JWT_SECRET,
        "Shared secret for HS* JWTs (local fallback). The default is the development secret, "
        "which anyone can read here: start-up refuses it unless "
        "CLICKSTREAM_JWT_ALLOW_DEV_SECRET is true.",
    )
    allow_dev_secret: bool = _setting(
        False,
        "Development only (make up, the demo, the tests, docker-compose.yml): accept the "
        "default CLICKSTREAM_JWT_SECRET, with which anyone can sign a token the fallback takes.",
    )
    public_key: str = _setting(
        "", "PEM public key, or a path to one, for RS*/ES*/EdDSA JWTs (local fallback)."
    )
    user_id_claim: str = _setting("sub", "JWT claim holding the user id.")
    max_expired_s: float = _setting(
        math.inf,
        "Longest time since its expiry that the fallback still takes a token; inf ignores "
        "the expiry, as the specification says; a number also refuses tokens without exp.",
        rule=NOT_NEGATIVE,
    )


@dataclass(frozen=True)
class CacheSettings:
    """How long the identity resolver keeps its answers, in Redis and in memory."""

    max_ttl_s: int = _setting(
        3600, "Longest time an accepted token's identity is cached.", rule=POSITIVE
    )
    rejection_ttl_s: int = _setting(30, "How long a rejected token is remembered.", rule=POSITIVE)
    local_size: int = _setting(
        10000, "Entries in each process's in-memory identity cache (0 turns it off)."
    )
    local_ttl_s: float = _setting(60.0, "Longest time a process keeps an identity in memory.")


@dataclass(frozen=True)
class WarehouseSettings:
    """ClickHouse, for the ETL, the reports and every command reading the tables."""

    dsn: str = _setting(
        f"chdb://{PROJECT_ROOT / 'var' / 'warehouse'}",
        "ClickHouse DSN: chdb:///<dir> (in-process engine) or http(s)://user:pass@host:port.",
        rule=Rule(
            lambda value: value.startswith(("chdb://", "http://", "https://")),
            "must start with chdb://, http:// or https://",
        ),
        shown="chdb://<repo>/var/warehouse",
    )
    database: str = _setting("clickstream", "ClickHouse database of the event tables.")
    lock_timeout_s: float = _setting(
        60.0, "How long a chDB user waits for another process to release the data directory."
    )
    dedup_window: int = _setting(
        1000, "Insert blocks each event table remembers to drop a re-sent batch (per table)."
    )


@dataclass(frozen=True)
class EtlSettings:
    """The ETL's passes, its schedule and its metrics."""

    interval_s: float = _setting(5.0, "Seconds between two ETL passes.", rule=POSITIVE)
    nice: int = _setting(
        10,
        "CPU niceness of `clickstream etl` (0-19): its passes yield the cores to the API, "
        "whose latency is the one clients see.",
        rule=Rule(lambda value: 0 <= value <= 19, "must be between 0 and 19"),
    )
    group: str = _setting("clickstream-etl", "Kafka consumer group of the ETL.")
    session_timeout_s: float = _setting(
        10.0,
        "How long the group waits for a silent ETL (killed, or cut off) before it gives its "
        "partitions to the others; a pass also waits up to this long to get partitions.",
        rule=Rule(
            lambda value: 6 <= value <= 1800,
            "must be between 6 and 1800 (a broker's default session limits)",
        ),
    )
    instance_id: str = _setting(
        "",
        "Name of this ETL process in its group, stable across its restarts and unique in the "
        "group (a static member: a restart gets its partitions back without a rebalance); "
        "empty joins as a dynamic member.",
    )
    max_records: int = _setting(
        50000, "Most messages one ETL pass reads before it loads.", rule=POSITIVE
    )
    max_poll_records: int = _setting(
        50000,
        "Most messages one Kafka poll of an ETL pass returns (at most the pass's own cap).",
        rule=POSITIVE,
    )
    max_partition_fetch_bytes: int = _setting(
        8 * 1024 * 1024,
        "Most bytes the ETL's consumer fetches from one partition in one request: larger "
        "fetches, fewer round trips per pass.",
        rule=POSITIVE,
    )
    fetch_max_bytes: int = _setting(
        64 * 1024 * 1024,
        "Most bytes the ETL's consumer fetches in one request, over all its partitions.",
        rule=POSITIVE,
    )
    poll_timeout_s: float = _setting(
        0.5, "How long one Kafka poll of an ETL pass waits for messages, in seconds."
    )
    replay_timeout_s: float = _setting(
        30.0,
        "How long a pass replaying a crashed pass's exact offset range waits for all of its "
        "records; past it the pass fails and loads nothing (a partial range would be stored "
        "twice).",
        rule=POSITIVE,
    )
    metrics_port: int = _setting(
        9464,
        "Port where `clickstream etl` serves Prometheus metrics; 0 turns it off.",
        rule=PORT_OR_ZERO,
    )
    metrics_host: str = _setting("127.0.0.1", "Address of the ETL's metrics listener.")
    metrics_textfile: str = _setting(
        "",
        "File the ETL rewrites with its metrics after each pass, for node_exporter's textfile "
        "collector (`clickstream etl --once` from cron); empty writes none.",
    )
    quality_interval_s: float = _setting(
        60.0,
        "Seconds between two refreshes of the warehouse quality figures the ETL exports.",
        rule=POSITIVE,
    )
    unknown_events: str = _setting(
        UNKNOWN_EVENTS_DEAD_LETTER,
        "What a pass does with a message whose event type no installed plugin handles (its "
        "plugin was removed): dead_letter stores it in dead_letters (reason unknown_event), to "
        "re-queue once the plugin is back; skip commits past it, counted by event "
        "(clickstream_etl_skipped_messages_total, etl_passes.skipped) and logged once per pass.",
        rule=Rule(
            lambda value: value in UNKNOWN_EVENTS_CHOICES,
            "must be " + " or ".join(UNKNOWN_EVENTS_CHOICES),
        ),
    )


@dataclass(frozen=True)
class LimitsSettings:
    """Abuse limits of the event endpoints (docs/security.md)."""

    ip_requests: int = _setting(
        0,
        "Requests one client IP may make to the event endpoints per rate-limit window "
        "(429 above); 0 turns the limit off.",
        rule=NOT_NEGATIVE,
    )
    user_events: int = _setting(
        0,
        "Events one signed-in user may send per rate-limit window (429 above); 0 turns it off.",
        rule=NOT_NEGATIVE,
    )
    window_s: int = _setting(60, "Length of a rate-limit window, in seconds.", rule=POSITIVE)
    trusted_proxy_hops: int = _setting(
        0,
        "Proxies in front of the API that append the client to X-Forwarded-For; "
        "0 takes the client IP from the connection.",
        rule=NOT_NEGATIVE,
        env="trusted_proxy_hops",
    )


@dataclass(frozen=True)
class CorsSettings:
    """Which browser origins may send events (docs/security.md)."""

    origins: tuple[str, ...] = _setting(
        (),
        "Browser origins allowed to send events, comma-separated (https://cinema.example), "
        "or * for any; empty turns CORS off.",
        rule=Rule(
            lambda value: all(
                origin == "*" or re.fullmatch(r"https?://[^/\s]+", origin) for origin in value
            ),
            "must list origins (scheme://host[:port], no path) or *",
        ),
        parse=_list,
    )
    max_age_s: int = _setting(
        600, "How long a browser may reuse a CORS preflight answer.", rule=NOT_NEGATIVE
    )


@dataclass(frozen=True)
class OpsSettings:
    """The operational endpoints: metrics and admin (docs/operations.md)."""

    port: int = _setting(
        0,
        "Port of a second listener for operational endpoints (metrics, admin), which then "
        "answer only there; 0 serves them with the API.",
        rule=PORT_OR_ZERO,
    )
    host: str = _setting("127.0.0.1", "Address of the operational listener.")
    token: str = _setting(
        "", "Bearer token operational endpoints require (and readiness details show to)."
    )
    open: bool = _setting(
        False,
        "Trusted networks only (make up, docker-compose.yml): serve operational endpoints and "
        "readiness details to anyone when neither CLICKSTREAM_OPS_TOKEN nor "
        "CLICKSTREAM_OPS_PORT is set; otherwise they answer 403.",
    )
    ready_ttl_s: float = _setting(
        5.0,
        "Seconds a readiness probe reuses the last check of Kafka, Redis and the auth service "
        "(one refresh at a time per process); 0 checks them at every probe.",
        rule=NOT_NEGATIVE,
    )


@dataclass(frozen=True)
class DashboardSettings:
    """The dashboard: the file the ETL rewrites after its passes, which the API serves."""

    file: str = _setting(
        "",
        "HTML file `clickstream etl` rewrites with the dashboard after a pass, at most every "
        "CLICKSTREAM_DASHBOARD_INTERVAL_S, and the API serves at GET /ops/dashboard (behind "
        "the operational endpoints' protection); empty writes and serves none (make up sets "
        "var/dashboard.html).",
    )
    interval_s: float = _setting(
        60.0,
        "Seconds between two rewrites of the dashboard file by the ETL.",
        rule=POSITIVE,
    )


@dataclass(frozen=True)
class AvailabilitySettings:
    """The availability objective: the share of API requests answered without a 5xx."""

    objective: float = _setting(
        0.999,
        "Share of API requests to answer without a server error (5xx) over the window: "
        "the objective the dashboard and clickstream_availability_* metrics measure against.",
        rule=Rule(lambda value: 0 < value < 1, "must be between 0 and 1 (0.999 is 99.9 %)"),
    )
    window_s: float = _setting(
        2592000.0,
        "Seconds of the availability window (30 days: a 99.9 % objective leaves 43 minutes "
        "of errors a month).",
        rule=POSITIVE,
    )
    metrics_url: str = _setting(
        "",
        "The API's /metrics the ETL scrapes after each pass into the api_requests table "
        "(with CLICKSTREAM_OPS_TOKEN if set); empty: the API's or operational listener's "
        "address from these settings; 'off' scrapes nothing.",
    )


@dataclass(frozen=True)
class LogSettings:
    """Logging of the API and the ETL (docs/operations.md)."""

    level: str = _setting("INFO", "Log level of the API and the ETL.")


def _group(kind: type, prefix: str, title: str) -> Any:
    return field(default_factory=kind, metadata={"prefix": prefix, "title": title})


@dataclass(frozen=True)
class Settings:
    """Every knob of clickstream, by group. Build with :meth:`from_env`, or :meth:`of` in tests."""

    api: ApiSettings = _group(ApiSettings, "api_", "HTTP API")
    kafka: KafkaSettings = _group(KafkaSettings, "kafka_", "Kafka")
    spool: SpoolSettings = _group(SpoolSettings, "spool_", "Disk spool")
    redis: RedisSettings = _group(RedisSettings, "redis_", "Redis")
    auth: AuthSettings = _group(AuthSettings, "auth_", "Auth service")
    jwt: JwtSettings = _group(JwtSettings, "jwt_", "Local JWT verification")
    cache: CacheSettings = _group(CacheSettings, "cache_", "Identity cache")
    warehouse: WarehouseSettings = _group(WarehouseSettings, "warehouse_", "Warehouse")
    etl: EtlSettings = _group(EtlSettings, "etl_", "ETL")
    limits: LimitsSettings = _group(LimitsSettings, "rate_limit_", "Abuse limits")
    cors: CorsSettings = _group(CorsSettings, "cors_", "Browsers (CORS)")
    ops: OpsSettings = _group(OpsSettings, "ops_", "Operational endpoints")
    dashboard: DashboardSettings = _group(DashboardSettings, "dashboard_", "Dashboard")
    availability: AvailabilitySettings = _group(
        AvailabilitySettings, "availability_", "Availability objective"
    )
    log: LogSettings = _group(LogSettings, "log_", "Logs")

    #: Values of the settings plugins declare (``register_settings``), by setting name: the
    #: raw ``CLICKSTREAM_*`` text from the environment, or typed values in tests.
    plugin_values: Mapping[str, Any] = field(default_factory=dict, metadata={"plugins": True})

    @classmethod
    def of(cls, **values: Any) -> Settings:
        """Defaults, with ``values`` by setting name (``kafka_topic="clicks"``), validated."""
        return cls().replace(**values)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``CLICKSTREAM_*`` variables; a bad value raises :class:`ConfigError`."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for declared in declarations():
            if declared.variable in environ:
                values[declared.name] = declared.parse(environ[declared.variable])
        known = {declared.variable for declared in declarations()}
        values["plugin_values"] = {
            variable.removeprefix(PREFIX).lower(): raw
            for variable, raw in environ.items()
            if variable.startswith(PREFIX) and variable not in known
        }
        return cls.of(**values)

    def to_env(self) -> dict[str, str]:
        """The ``CLICKSTREAM_*`` variables that make :meth:`from_env` return these settings."""
        env = {
            declared.variable: declared.text(declared.value(self)) for declared in declarations()
        }
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
        """A validated copy with ``changes`` by setting name, or whole groups by group name."""
        groups = {spec.name for spec in fields(self)}
        by_name = {declared.name: declared for declared in declarations()}
        whole = {name: value for name, value in changes.items() if name in groups}
        unknown = sorted(set(changes) - groups - set(by_name))
        if unknown:
            raise TypeError(f"no such setting: {', '.join(unknown)}")
        settings = replace(self, **whole)
        edits: dict[str, dict[str, Any]] = {}
        for name, value in changes.items():
            if name not in groups:
                edits.setdefault(by_name[name].group, {})[by_name[name].attribute] = value
        settings = replace(
            settings,
            **{group: replace(getattr(settings, group), **edit) for group, edit in edits.items()},
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        """Check every setting's rule, then the ones that involve two settings."""
        for declared in declarations():
            rule = declared.rule
            if rule is not None and not rule.holds(declared.value(self)):
                raise ConfigError(f"{declared.variable} {rule.expected}")
        if self.ops.port and self.ops.port == self.api.port:
            raise ConfigError(f"{env_name('ops_port')} must be a free port other than the API's")


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
            return _bool(raw)
        return kind(raw)


@dataclass(frozen=True)
class Declared:
    """One of clickstream's own settings: its group, attribute and environment variable."""

    group: str
    title: str
    spec: Field

    @property
    def attribute(self) -> str:
        return self.spec.name

    @property
    def name(self) -> str:
        return self.spec.metadata["env"] or self._prefix + self.spec.name

    @property
    def _prefix(self) -> str:
        return next(spec for spec in fields(Settings) if spec.name == self.group).metadata["prefix"]

    @property
    def variable(self) -> str:
        return env_name(self.name)

    @property
    def rule(self) -> Rule | None:
        return self.spec.metadata["rule"]

    def value(self, settings: Settings) -> Any:
        return getattr(getattr(settings, self.group), self.attribute)

    def parse(self, raw: str) -> Any:
        parse = self.spec.metadata["parse"] or {"int": int, "float": float, "bool": _bool}.get(
            self.spec.type, str
        )
        try:
            return parse(raw)
        except ValueError as error:
            raise ConfigError(f"{self.variable}={raw!r} is invalid: {error}") from None

    @staticmethod
    def text(value: Any) -> str:
        if isinstance(value, tuple):
            return ",".join(value)
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)


def declarations() -> Iterator[Declared]:
    """Every setting of clickstream's own, group by group, in declaration order."""
    for group in fields(Settings):
        if group.metadata.get("plugins"):
            continue
        for spec in fields(group.default_factory):
            yield Declared(group.name, group.metadata["title"], spec)


def env_name(setting: str) -> str:
    """The environment variable of ``setting``."""
    return PREFIX + setting.upper()


INTRODUCTION = """# Configuration

Every setting is read once, at start-up, from an environment variable with the
prefix `CLICKSTREAM_`, by `core/config.py`. A bad value stops start-up with a
message naming the variable. The API, the ETL, the services script and
`docker-compose.yml` read the same variables. Settings come in groups, one per
component that reads them; each component receives only its group
(`settings.kafka`, `settings.spool`, ...).

Generated by `make docs` from the declarations in `core/config.py`; a test fails
when this page is stale.
"""


def describe(plugin_settings: Iterable[PluginSetting] = ()) -> str:
    """``docs/configuration.md``: every setting, its variable, default and meaning."""
    lines = [INTRODUCTION]
    title = None
    for declared in declarations():
        if declared.title != title:
            title = declared.title
            lines += [
                "",
                f"## {title} (`settings.{declared.group}`)",
                "",
                "| variable | default | meaning |",
                "|---|---|---|",
            ]
        shown = declared.spec.metadata["shown"] or declared.text(declared.spec.default)
        lines.append(f"| `{declared.variable}` | `{shown}` | {declared.spec.metadata['doc']} |")
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
