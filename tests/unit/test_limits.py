"""Rate limits (``core.api.limits``) without Redis: the client address behind proxies, and
what the app is given with limits off and on (counting in Redis: test_limits_live.py)."""

from __future__ import annotations

import pytest

from core.api import limits
from core.api.extension import identity_of, pipeline_of
from core.api.limits import rate_limiter_of
from tests.fakes import FakeIdentity


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


def test_limits_off_leave_the_app_untouched(make_client) -> None:
    app = make_client().application
    assert rate_limiter_of(app) is None
    assert isinstance(pipeline_of(app).identity, FakeIdentity)
    assert app.before_request_funcs.get(None, []).count(limits._limit_client_ip) == 0


def test_a_user_limit_wraps_the_resolver_and_the_probes_still_see_the_resolver(make_client) -> None:
    client = make_client(rate_limit_user_events=5, ops_open=True)
    app = client.application
    assert isinstance(pipeline_of(app).identity, limits.UserLimitedIdentity)
    assert isinstance(identity_of(app), FakeIdentity)
    ready = client.get("/health/ready").json
    assert ready["checks"]["redis"] == {"ok": True, "detail": "fake"}
