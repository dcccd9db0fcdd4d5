"""The token is never logged, stored or echoed: every log line, answer, Redis key and Kafka
message is searched for it, on accepted and refused requests and on the fallback paths.

Two servers: werkzeug in a thread (its access log and the app's logs captured at DEBUG by
caplog) and gunicorn in a subprocess with its access log on (its output searched).
"""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import time

import jwt
import orjson
import pytest
import redis
import requests

from core.api.extension import identity_of
from core.config import PROJECT_ROOT
from tests.servers import serve, subprocess_env

CLOSED_PORT_URL = "http://127.0.0.1:9/api/v1/auth/verify"
CLOSED_REDIS = "redis://127.0.0.1:1/0"
OPS_TOKEN = "ops-token-5d1e77b0c2"
JSON = {"Content-Type": "application/json"}
EXAMPLE = {"element_type": "poster", "element_id": "card-3", "page_type": "main"}


def click(token: str | None, **data) -> dict:
    return {"event": "element_click", "token": token, "data": {**EXAMPLE, **data}}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def send_everything(base: str, tokens: dict[str, str]) -> list[requests.Response]:
    """Accepted, refused and malformed requests, each carrying a token somewhere."""
    url, batch = f"{base}/api/v1/events", f"{base}/api/v1/events/batch"
    good, forged = tokens["good"], tokens["forged"]
    body_with_token = orjson.dumps(click(forged))
    answers = [
        requests.post(url, json=click(good), timeout=10),
        requests.post(url, json=click(good), timeout=10),  # cached this time
        requests.post(url, json=click(forged), timeout=10),
        requests.post(url, json=click(tokens["garbage"]), timeout=10),
        requests.post(url, json=click(good, position=-1), timeout=10),
        requests.post(
            batch, json=[click(good), click(forged), click(None), click(good)], timeout=10
        ),
        requests.post(url, data=body_with_token[:-3], headers=JSON, timeout=10),
        requests.post(
            url, data=body_with_token.replace(b"{", b'{"token": 1, ', 1), headers=JSON, timeout=10
        ),
        requests.post(url, data=body_with_token, headers={"Content-Type": "text/xml"}, timeout=10),
        requests.post(
            url, json=click(good), headers={"Authorization": f"Bearer {good}"}, timeout=10
        ),
        requests.get(
            f"{base}/metrics", headers={"Authorization": f"Bearer {OPS_TOKEN}"}, timeout=10
        ),
        requests.get(f"{base}/metrics", headers={"Authorization": "Bearer nope"}, timeout=10),
    ]
    statuses = [answer.status_code for answer in answers]
    assert statuses[2:4] == [401, 401] and statuses[4] == 422, statuses
    assert statuses[6:9] == [400, 400, 415] and statuses[10:12] == [200, 401], statuses
    return answers


def secrets(tokens: dict[str, str]) -> list[str]:
    """Each token, and its signature alone: a log that cut the token up must not hide it."""
    found = [OPS_TOKEN]
    for token in tokens.values():
        found.append(token)
        if token.count(".") == 2:
            found.append(token.rsplit(".", 1)[1])
    return found


def assert_absent(secret_values: list[str], where: str, text: str) -> None:
    for secret in secret_values:
        assert secret not in text, f"a token appears in {where}"


def redis_text(redis_url: str, prefix: str) -> str:
    client = redis.Redis.from_url(redis_url)
    parts = []
    for key in client.scan_iter(f"{prefix}*"):
        parts.append(key.decode())
        if client.type(key) == b"string":
            parts.append((client.get(key) or b"").decode(errors="replace"))
    return "\n".join(parts)


def log_text(records: list[logging.LogRecord]) -> str:
    """Every record as a formatter would write it, with its ``extra`` fields and traceback."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(f"{formatter.format(record)} {vars(record)!r}" for record in records)


@pytest.fixture
def tokens(login, live_settings) -> dict[str, str]:
    good = login("secret-user-31")
    header, payload, _ = good.split(".")
    forged = jwt.encode({"sub": "someone-else", "exp": time.time() + 600}, "not-the-secret-" * 3)
    return {
        "good": good,
        "forged": forged,
        "tampered": f"{header}.{payload}.AAAAsignatureAAAA",
        "garbage": "opaque-garbage-token-e41f",
    }


@pytest.mark.parametrize(
    "situation",
    ["normal", "auth service down", "redis down", "user rate limited"],
)
def test_the_token_never_reaches_a_log_an_answer_redis_or_kafka(
    situation, make_live_app, live_settings, tokens, caplog, capfd, read_topic, redis_url
) -> None:
    changes = {
        "normal": {},
        "auth service down": {"auth_url": CLOSED_PORT_URL, "auth_breaker_failures": 1},
        "redis down": {"redis_url": CLOSED_REDIS},
        "user rate limited": {"rate_limit_user_events": 2},
    }[situation]
    app = make_live_app(ops_token=OPS_TOKEN, log_level="DEBUG", **changes)
    caplog.set_level(logging.DEBUG)
    with serve(app) as base:  # werkzeug in a thread
        answers = send_everything(base, tokens)
        tampered = requests.post(
            f"{base}/api/v1/events", json=click(tokens["tampered"]), timeout=10
        )
    assert tampered.status_code == 401
    statuses = [answer.status_code for answer in answers]
    if situation == "user rate limited":
        assert 429 in statuses
    else:
        assert statuses[:2] == [202, 202], statuses
    values = secrets(tokens)
    assert any(record.name == "werkzeug" for record in caplog.records)
    assert_absent(values, "the logs", log_text(caplog.records))
    captured = capfd.readouterr()
    assert_absent(values, "stdout/stderr", captured.out + captured.err)
    for answer in [*answers, tampered]:
        assert_absent(values, f"an answer ({answer.status_code})", answer.text)
    assert_absent(values, "Redis", redis_text(redis_url, live_settings.redis.prefix))
    accepted = sum(
        answer.json().get("accepted", answer.status_code == 202)
        for answer in answers
        if answer.status_code in (200, 202)
        and answer.headers["Content-Type"].startswith("application/json")
        and "metrics" not in answer.url
    )
    messages = read_topic(live_settings.kafka.topic, accepted)
    assert len(messages) == accepted
    assert_absent(values, "Kafka", repr(messages))


def test_gunicorn_with_its_access_log_on_never_shows_the_token(
    live_settings, tokens, tmp_path
) -> None:
    port = free_port()
    settings = live_settings.replace(
        api_port=port, api_workers=1, api_threads=2, ops_token=OPS_TOKEN, log_level="DEBUG"
    )
    log_file = tmp_path / "gunicorn.log"
    with log_file.open("wb") as output:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "core/serve/gunicorn_config.py",
                "--access-logfile",
                "-",
                "core.serve.wsgi:app",
            ],
            cwd=PROJECT_ROOT,
            env=subprocess_env(settings),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if requests.get(f"{base}/health/live", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        send_everything(base, tokens)
    finally:
        server.terminate()
        server.wait(timeout=30)
    text = log_file.read_text(errors="replace")
    assert "POST /api/v1/events" in text, text[-2000:]
    assert_absent(secrets(tokens), "gunicorn's output", text)


def test_tokens_that_would_break_the_auth_header_never_reach_the_service(live_app) -> None:
    app = live_app
    client = app.test_client()
    identity = identity_of(app)
    for token in ["я-token", "a\nb", "a\r\nX-Injected: yes", "tab\there", "nul\x00"] * 2:
        answer = client.post("/api/v1/events", json=click(token))
        assert answer.status_code == 422, answer.json
        assert "token" in answer.json["details"]
    assert identity.stats()["auth_calls"] == 0
    assert identity.breaker.state == "closed"
