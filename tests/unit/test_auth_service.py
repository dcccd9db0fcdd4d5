"""The reference auth service's injected slowness: from start-up, and changed at run time."""

from __future__ import annotations

import pytest

import auth_service.app
from auth_service.app import create_app


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    waited: list[float] = []
    monkeypatch.setattr(auth_service.app.time, "sleep", waited.append)
    return waited


def verify(client, token: str) -> int:
    return client.post(
        "/api/v1/auth/verify", headers={"Authorization": f"Bearer {token}"}
    ).status_code


def test_a_service_started_slow_waits_before_every_verify_answer(sleeps):
    client = create_app(secret="s" * 32, delay_s=1.5).test_client()
    token = client.post("/api/v1/auth/login", json={"user_id": "u1"}).get_json()["token"]
    assert verify(client, token) == 200
    assert sleeps == [1.5]


def test_the_delay_is_changed_and_cleared_at_run_time(sleeps):
    client = create_app(secret="s" * 32, delay_s=1.5).test_client()
    token = client.post("/api/v1/auth/login", json={"user_id": "u1"}).get_json()["token"]
    assert client.post("/_test/faults", json={"delay_s": 0.25}).status_code == 200
    verify(client, token)
    assert client.post("/_test/faults", json={}).status_code == 200
    verify(client, token)
    assert sleeps == [0.25]
