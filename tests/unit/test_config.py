"""Settings come from CLICKSTREAM_* variables, typed and validated, documented in one place."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import ConfigError, Settings, describe
from core.host.plugin_manager import build_registry, make_plugin_manager

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


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
