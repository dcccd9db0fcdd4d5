"""Settings come from CLICKSTREAM_* variables, typed and validated, documented in one place."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import PluginSetting
from core.config import ConfigError, KafkaSettings, Settings, declarations, describe
from core.host.plugin_manager import build_registry, make_plugin_manager

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
OPS_TOKEN = "ops-secret-7f3a9c"


def test_variables_override_defaults_with_their_types() -> None:
    settings = Settings.from_env(
        {
            "CLICKSTREAM_API_PORT": "9000",
            "CLICKSTREAM_AUTH_TIMEOUT_S": "0.75",
            "CLICKSTREAM_JWT_ALGORITHMS": "RS256, HS256",
            "CLICKSTREAM_KAFKA_TOPIC": "clicks",
            "UNRELATED": "x",
        }
    )
    assert settings.api.port == 9000
    assert settings.auth.timeout_s == 0.75
    assert settings.jwt.algorithms == ("RS256", "HS256")
    assert settings.kafka.topic == "clicks"
    assert Settings.from_env({}) == Settings()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CLICKSTREAM_API_PORT", "eighty"),
        ("CLICKSTREAM_API_PORT", "0"),
        ("CLICKSTREAM_AUTH_TIMEOUT_S", "-1"),
        ("CLICKSTREAM_AUTH_METHOD", "DELETE"),
        ("CLICKSTREAM_JWT_ALGORITHMS", "none"),
        ("CLICKSTREAM_JWT_ALGORITHMS", ""),
        ("CLICKSTREAM_WAREHOUSE_DSN", "mysql://x"),
        ("CLICKSTREAM_MAX_BODY_BYTES", "-5"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable(variable, value) -> None:
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env({variable: value})


def test_the_configuration_page_is_not_stale() -> None:
    plugin_settings = build_registry(make_plugin_manager()).settings.values()
    assert DOCS.read_text(encoding="utf-8") == describe(plugin_settings), "run `make docs`"


def test_each_setting_belongs_to_one_group_under_its_variable() -> None:
    declared = list(declarations())
    variables = [setting.variable for setting in declared]
    assert len(variables) == len(set(variables)), "two settings share a variable"
    assert all(setting.spec.metadata["doc"] for setting in declared)
    by_variable = {setting.variable: setting for setting in declared}
    # Names and variables are those of the flat settings before the groups: unchanged.
    assert by_variable["CLICKSTREAM_MAX_BODY_BYTES"].group == "api"
    assert by_variable["CLICKSTREAM_RATE_LIMIT_IP_REQUESTS"].attribute == "ip_requests"
    assert by_variable["CLICKSTREAM_LOG_LEVEL"].group == "log"


def test_settings_change_by_name_or_by_whole_group_and_are_validated() -> None:
    changed = Settings.of(kafka_topic="clicks", max_body_bytes=10, rate_limit_window_s=5)
    assert (changed.kafka.topic, changed.api.max_body_bytes) == ("clicks", 10)
    assert changed.limits.window_s == 5
    assert changed.spool == Settings().spool
    assert Settings().replace(kafka=KafkaSettings(topic="t")).kafka.topic == "t"
    with pytest.raises(TypeError, match="no such setting: kafka_topik"):
        Settings.of(kafka_topik="x")
    with pytest.raises(ConfigError, match="CLICKSTREAM_API_PORT must be positive"):
        Settings.of(api_port=0)
    with pytest.raises(ConfigError, match="CLICKSTREAM_OPS_PORT"):
        Settings.of(ops_port=8000, api_port=8000)


def test_the_environment_of_some_settings_gives_them_back() -> None:
    settings = Settings.of(
        cors_origins=("https://a.example", "*"), spool_fsync=False, etl_interval_s=0.5
    )
    env = settings.to_env()
    assert env["CLICKSTREAM_CORS_ORIGINS"] == "https://a.example,*"
    assert env["CLICKSTREAM_SPOOL_FSYNC"] == "false"
    assert Settings.from_env(env) == settings


@pytest.mark.parametrize("origin", ["cinema.example", "https://cinema.example/path"])
def test_an_origin_with_no_scheme_or_with_a_path_is_refused(origin) -> None:
    with pytest.raises(ConfigError, match="CLICKSTREAM_CORS_ORIGINS"):
        Settings.from_env({"CLICKSTREAM_CORS_ORIGINS": origin})


@pytest.mark.parametrize(
    "environ",
    [
        {"CLICKSTREAM_RATE_LIMIT_IP_REQUESTS": "-1"},
        {"CLICKSTREAM_RATE_LIMIT_WINDOW_S": "0"},
        {"CLICKSTREAM_CORS_ORIGINS": "https://cinema.example/"},
        {"CLICKSTREAM_CORS_ORIGINS": "cinema.example"},
        {"CLICKSTREAM_OPS_PORT": "8000"},
        {"CLICKSTREAM_OPS_PORT": "70000"},
    ],
)
def test_bad_security_settings_stop_start_up(environ) -> None:
    with pytest.raises(ConfigError, match=next(iter(environ))):
        Settings.from_env(environ)


def test_security_settings_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "CLICKSTREAM_CORS_ORIGINS": "https://cinema.example, http://localhost:3000",
            "CLICKSTREAM_RATE_LIMIT_USER_EVENTS": "600",
            "CLICKSTREAM_OPS_TOKEN": OPS_TOKEN,
        }
    )
    assert settings.cors.origins == ("https://cinema.example", "http://localhost:3000")
    assert settings.limits.user_events == 600
    assert settings.ops.token == OPS_TOKEN


@pytest.mark.parametrize(
    ("default", "raw", "value"),
    [
        (10, "25", 25),
        (1.5, "0.25", 0.25),
        (False, "yes", True),
        (True, "off", False),
        ("a", "b", "b"),
    ],
)
def test_a_plugin_setting_is_read_from_its_variable_as_its_defaults_type(default, raw, value):
    setting = PluginSetting("note_limit", default, "x")
    settings = Settings.from_env({"CLICKSTREAM_NOTE_LIMIT": raw})
    assert settings.plugin_value(setting) == value
    assert Settings.from_env({}).plugin_value(setting) == default
    assert Settings.from_env(settings.to_env()).plugin_value(setting) == value
