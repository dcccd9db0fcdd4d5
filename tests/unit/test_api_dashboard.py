"""``GET /ops/dashboard`` (``core.api.dashboard``): the ETL's page served as written, behind the
operational endpoints' protection, loading nothing from anywhere; 404 when no file is set,
503 until the ETL has written it."""

from __future__ import annotations

import os

import pytest

from core.api.dashboard import POLICY

PAGE = "<!doctype html><title>dashboard</title><p>figures</p>"
OPS_TOKEN = "ops-secret-5d1e"


@pytest.fixture
def page(tmp_path):
    path = tmp_path / "dashboard.html"
    path.write_text(PAGE, encoding="utf-8")
    return path


def test_the_page_is_served_as_the_etl_wrote_it(make_app, page) -> None:
    answer = make_app(dashboard_file=str(page)).test_client().get("/ops/dashboard")

    assert answer.status_code == 200
    assert answer.mimetype == "text/html"
    assert answer.get_data(as_text=True) == PAGE
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["Content-Security-Policy"] == POLICY
    assert "default-src 'none'" in POLICY and "connect-src" not in POLICY
    assert answer.last_modified is not None


def test_a_rewritten_page_is_served_at_the_next_request(make_app, page) -> None:
    client = make_app(dashboard_file=str(page)).test_client()
    client.get("/ops/dashboard")
    page.write_text("<p>newer</p>", encoding="utf-8")

    assert client.get("/ops/dashboard").get_data(as_text=True) == "<p>newer</p>"


@pytest.mark.parametrize(
    ("changes", "headers", "status"),
    [
        ({"ops_open": False}, {}, 403),
        ({"ops_token": OPS_TOKEN}, {}, 401),
        ({"ops_token": OPS_TOKEN}, {"Authorization": "Bearer wrong"}, 401),
        ({"ops_token": OPS_TOKEN}, {"Authorization": f"Bearer {OPS_TOKEN}"}, 200),
        ({"ops_port": 9102}, {}, 404),
    ],
)
def test_it_is_an_operational_endpoint(make_app, page, changes, headers, status) -> None:
    client = make_app(dashboard_file=str(page), **changes).test_client()

    answer = client.get("/ops/dashboard", headers=headers)

    assert answer.status_code == status
    assert (PAGE.encode() in answer.data) == (status == 200)


def test_on_the_ops_port_it_answers(make_app, page) -> None:
    client = make_app(dashboard_file=str(page), ops_port=9102).test_client()

    answer = client.get("/ops/dashboard", environ_overrides={"SERVER_PORT": "9102"})

    assert answer.status_code == 200


def test_without_a_file_set_it_says_how_to_have_one(make_app) -> None:
    answer = make_app(dashboard_file="").test_client().get("/ops/dashboard")

    assert answer.status_code == 404
    assert answer.json["error"] == "dashboard_off"
    assert "CLICKSTREAM_DASHBOARD_FILE" in answer.json["message"]


def test_until_the_etl_wrote_it_the_answer_is_503_with_retry_after(make_app, tmp_path) -> None:
    missing = tmp_path / "not yet.html"
    app = make_app(dashboard_file=str(missing), dashboard_interval_s=30)

    answer = app.test_client().get("/ops/dashboard")

    assert answer.status_code == 503
    assert answer.json["error"] == "dashboard_not_ready"
    assert answer.headers["Retry-After"] == "30"
    assert not os.path.exists(missing)
