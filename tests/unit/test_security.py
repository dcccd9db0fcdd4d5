"""CORS, operational-endpoint protection, client addresses and their settings (no services)."""

from __future__ import annotations

import runpy

import orjson
import pytest
from flask import Blueprint

from core.api import create_app, limits, ops
from core.api.extension import identity_of, pipeline_of
from core.api.limits import rate_limiter_of
from core.config import PROJECT_ROOT, ConfigError, Settings
from core.host.plugin_manager import build_registry, make_plugin_manager
from tests.fakes import FakeIdentity, FakePublisher

URL = "/api/v1/events"
EXAMPLE = dict(
    next(t for t in build_registry(make_plugin_manager()) if t.name == "element_click").example
)
CLICK = orjson.dumps({"event": "element_click", "data": EXAMPLE})
SITE = "https://cinema.example"
OPS_TOKEN = "ops-secret-7f3a9c"


def make_client(**changes):
    app = create_app(Settings.of(**changes), identity=FakeIdentity(), publisher=FakePublisher())
    probe = ops.protect(Blueprint("probe", __name__))
    probe.get("/ops-probe")(lambda: {"ok": True})
    app.register_blueprint(probe)
    return app.test_client()


# CORS


def preflight(client, origin: str = SITE, url: str = URL):
    return client.options(
        url,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, content-encoding",
        },
    )


def test_cors_is_off_by_default() -> None:
    client = make_client()
    answer = client.post(URL, data=CLICK, content_type="text/plain", headers={"Origin": SITE})
    assert answer.status_code == 202
    assert "Access-Control-Allow-Origin" not in answer.headers
    assert "Access-Control-Allow-Origin" not in preflight(client).headers


def test_a_beacon_from_an_allowed_origin_gets_cors_headers() -> None:
    client = make_client(cors_origins=(SITE, "http://localhost:3000"))
    answer = client.post(
        URL, data=CLICK, content_type="text/plain;charset=UTF-8", headers={"Origin": SITE}
    )
    assert answer.status_code == 202
    assert answer.headers["Access-Control-Allow-Origin"] == SITE
    assert "Origin" in answer.headers["Vary"]
    assert "Retry-After" in answer.headers["Access-Control-Expose-Headers"]
    assert "Access-Control-Allow-Credentials" not in answer.headers


def test_errors_carry_cors_headers_too() -> None:
    client = make_client(cors_origins=(SITE,))
    answer = client.post(URL, data=b"{", content_type="text/plain", headers={"Origin": SITE})
    assert answer.status_code == 400
    assert answer.headers["Access-Control-Allow-Origin"] == SITE


def test_a_preflight_from_an_allowed_origin_is_answered() -> None:
    answer = preflight(make_client(cors_origins=(SITE,), cors_max_age_s=120))
    assert answer.status_code == 200
    assert answer.headers["Access-Control-Allow-Origin"] == SITE
    assert answer.headers["Access-Control-Allow-Methods"] == "POST"
    allowed = answer.headers["Access-Control-Allow-Headers"].lower()
    assert "content-type" in allowed and "content-encoding" in allowed
    assert answer.headers["Access-Control-Max-Age"] == "120"


def test_the_batch_endpoint_answers_preflights() -> None:
    answer = preflight(make_client(cors_origins=(SITE,)), url="/api/v1/events/batch")
    assert answer.headers["Access-Control-Allow-Origin"] == SITE


def test_another_origin_gets_no_cors_headers() -> None:
    client = make_client(cors_origins=(SITE,))
    for answer in (
        preflight(client, origin="https://evil.example"),
        client.post(URL, data=CLICK, content_type="text/plain", headers={"Origin": SITE + ".evil"}),
    ):
        assert "Access-Control-Allow-Origin" not in answer.headers
        assert "Origin" in answer.headers["Vary"]


@pytest.mark.parametrize(
    "origin",
    [
        "http://cinema.example",  # another scheme
        "https://cinema.example:8443",  # another port
        "https://www.cinema.example",  # a subdomain
        "https://cinema.example.evil.example",  # the allowed origin as a prefix
        "HTTPS://CINEMA.EXAMPLE.evil",
        "null",  # sandboxed iframes and file:// pages
        "",
    ],
)
def test_an_origin_is_allowed_only_when_listed_exactly(origin: str) -> None:
    client = make_client(cors_origins=(SITE, "http://localhost:3000"))
    beacon = client.post(URL, data=CLICK, content_type="text/plain", headers={"Origin": origin})
    assert beacon.status_code == 202  # CORS is the browser's business; the event still counts
    for answer in (beacon, preflight(client, origin=origin)):
        assert "Access-Control-Allow-Origin" not in answer.headers
        assert "Access-Control-Allow-Methods" not in answer.headers
    listed = preflight(client, origin="http://localhost:3000")
    assert listed.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"


def test_any_origin_with_a_star() -> None:
    answer = preflight(make_client(cors_origins=("*",)), origin="https://anyone.example")
    assert answer.headers["Access-Control-Allow-Origin"] == "*"


def test_only_the_event_endpoints_get_cors_headers() -> None:
    client = make_client(cors_origins=("*",))
    for path in ("/health/live", "/openapi.json", "/ops-probe"):
        assert (
            "Access-Control-Allow-Origin" not in client.get(path, headers={"Origin": SITE}).headers
        )


# Operational endpoints


def test_operational_endpoints_are_closed_when_nothing_is_set() -> None:
    assert make_client().get("/ops-probe").status_code == 403
    assert make_client(ops_open=True).get("/ops-probe").status_code == 200


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer wrong", f"Basic {OPS_TOKEN}", f"Bearer {OPS_TOKEN}x"],
)
def test_the_ops_token_is_required_when_set(authorization) -> None:
    client = make_client(ops_token=OPS_TOKEN)
    headers = {"Authorization": authorization} if authorization is not None else {}
    answer = client.get("/ops-probe", headers=headers)
    assert answer.status_code == 401
    assert answer.json["error"] == "unauthorized"
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert OPS_TOKEN.encode() not in answer.data


def test_the_ops_token_opens_operational_endpoints_only() -> None:
    client = make_client(ops_token=OPS_TOKEN)
    assert client.get("/ops-probe", headers={"Authorization": f"Bearer {OPS_TOKEN}"}).json == {
        "ok": True
    }
    assert client.post(URL, data=CLICK, content_type="application/json").status_code == 202


def test_with_an_ops_port_operational_endpoints_answer_only_there() -> None:
    client = make_client(ops_port=9102)
    assert client.get("/ops-probe").status_code == 404
    assert client.get("/ops-probe", base_url="http://localhost:8000").status_code == 404
    # The Host header names the public port; the listener's own port is what counts.
    on_ops = client.get("/ops-probe", environ_overrides={"SERVER_PORT": "9102"})
    assert on_ops.status_code == 200
    spoofed = client.get(
        "/ops-probe", headers={"Host": "localhost:9102"}, environ_overrides={"SERVER_PORT": "8000"}
    )
    assert spoofed.status_code == 404


def test_ops_port_and_token_together() -> None:
    client = make_client(ops_port=9102, ops_token=OPS_TOKEN)
    on_ops = {"SERVER_PORT": "9102"}
    assert client.get("/ops-probe", environ_overrides=on_ops).status_code == 401
    authorized = client.get(
        "/ops-probe",
        environ_overrides=on_ops,
        headers={"Authorization": f"Bearer {OPS_TOKEN}"},
    )
    assert authorized.status_code == 200


def test_the_ops_listener_is_bound_by_gunicorn(monkeypatch, tmp_path) -> None:
    config = PROJECT_ROOT / "core" / "serve" / "gunicorn_config.py"
    # The config switches on multiprocess metrics; keep that inside this test.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    for name in ("CLICKSTREAM_API_HOST", "CLICKSTREAM_API_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("CLICKSTREAM_OPS_PORT", raising=False)
    assert runpy.run_path(str(config))["bind"] == ["127.0.0.1:8000"]
    monkeypatch.setenv("CLICKSTREAM_OPS_PORT", "9102")
    monkeypatch.setenv("CLICKSTREAM_OPS_HOST", "10.0.0.5")
    assert runpy.run_path(str(config))["bind"] == ["127.0.0.1:8000", "10.0.0.5:9102"]


# Client addresses for the IP limit


@pytest.mark.parametrize(
    ("remote", "forwarded", "hops", "expected"),
    [
        ("10.0.0.1", None, 0, "10.0.0.1"),
        ("10.0.0.1", "203.0.113.9", 0, "10.0.0.1"),  # not trusted: the client wrote it
        ("10.0.0.1", "203.0.113.9", 1, "203.0.113.9"),
        ("10.0.0.1", "1.1.1.1, 203.0.113.9", 1, "203.0.113.9"),  # 1.1.1.1 is a client's lie
        ("10.0.0.1", "1.1.1.1, 203.0.113.9, 10.0.0.2", 2, "203.0.113.9"),
        ("10.0.0.1", "203.0.113.9", 2, "10.0.0.1"),  # fewer entries than proxies
        ("10.0.0.1", " , ", 1, "10.0.0.1"),
        (None, None, 0, "unknown"),
    ],
)
def test_client_ip(remote, forwarded, hops, expected) -> None:
    assert limits.client_ip(remote, forwarded, hops) == expected


def test_limits_off_leave_the_app_untouched() -> None:
    app = make_client().application
    assert rate_limiter_of(app) is None
    assert isinstance(pipeline_of(app).identity, FakeIdentity)
    assert app.before_request_funcs.get(None, []).count(limits._limit_client_ip) == 0


def test_a_user_limit_wraps_the_resolver_and_the_probes_still_see_the_resolver() -> None:
    client = make_client(rate_limit_user_events=5, ops_open=True)
    app = client.application
    assert isinstance(pipeline_of(app).identity, limits.UserLimitedIdentity)
    assert isinstance(identity_of(app), FakeIdentity)
    ready = client.get("/health/ready").json
    assert ready["checks"]["redis"] == {"ok": True, "detail": "fake"}


# Settings


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
