"""Operational endpoints (``core.api.ops``): open when nothing is set, else only with the ops
token and only on the ops port."""

from __future__ import annotations

import orjson
import pytest

from core.host.plugin_manager import build_registry, make_plugin_manager

URL = "/api/v1/events"
EXAMPLE = dict(
    next(t for t in build_registry(make_plugin_manager()) if t.name == "element_click").example
)
CLICK = orjson.dumps({"event": "element_click", "data": EXAMPLE})
OPS_TOKEN = "ops-secret-7f3a9c"


def test_operational_endpoints_are_closed_when_nothing_is_set(make_client) -> None:
    assert make_client(ops_open=False).get("/ops-probe").status_code == 403
    assert make_client(ops_open=True).get("/ops-probe").status_code == 200


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer wrong", f"Basic {OPS_TOKEN}", f"Bearer {OPS_TOKEN}x"],
)
def test_the_ops_token_is_required_when_set(make_client, authorization) -> None:
    client = make_client(ops_token=OPS_TOKEN)
    headers = {"Authorization": authorization} if authorization is not None else {}
    answer = client.get("/ops-probe", headers=headers)
    assert answer.status_code == 401
    assert answer.json["error"] == "unauthorized"
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert OPS_TOKEN.encode() not in answer.data


def test_the_ops_token_opens_operational_endpoints_only(make_client) -> None:
    client = make_client(ops_token=OPS_TOKEN)
    assert client.get("/ops-probe", headers={"Authorization": f"Bearer {OPS_TOKEN}"}).json == {
        "ok": True
    }
    assert client.post(URL, data=CLICK, content_type="application/json").status_code == 202


def test_with_an_ops_port_operational_endpoints_answer_only_there(make_client) -> None:
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


def test_ops_port_and_token_together(make_client) -> None:
    client = make_client(ops_port=9102, ops_token=OPS_TOKEN)
    on_ops = {"SERVER_PORT": "9102"}
    assert client.get("/ops-probe", environ_overrides=on_ops).status_code == 401
    authorized = client.get(
        "/ops-probe",
        environ_overrides=on_ops,
        headers={"Authorization": f"Bearer {OPS_TOKEN}"},
    )
    assert authorized.status_code == 200
