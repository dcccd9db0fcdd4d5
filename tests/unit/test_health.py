"""Liveness and readiness (``core.api.health``), with the identity service and Kafka faked."""

from __future__ import annotations


def test_readiness_reports_each_dependency(client, publisher) -> None:
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert set(response.json["checks"]) == {"kafka", "redis", "auth_service"}
    publisher.failing = True
    assert client.get("/health/ready").status_code == 503
    assert client.get("/health/live").status_code == 200
