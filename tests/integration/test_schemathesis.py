"""schemathesis against the published docs/openapi.json, on the live API over HTTP.

The real app (real Kafka, Redis, auth service) is served by werkzeug in a thread. Every
generated request, valid or not by the document, must get an answer the document
describes: a documented status, content type, headers and body, and never a 500.
Bounded for a shared machine: a few dozen examples per operation, a deadline per example.
"""

from __future__ import annotations

import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from core.api import create_app
from core.config import PROJECT_ROOT, Settings
from tests.servers import serve

SCHEMA = schemathesis.openapi.from_path(PROJECT_ROOT / "docs" / "openapi.json")


@pytest.fixture(scope="module")
def live_api(base_settings: Settings, kafka_bootstrap, redis_url, auth_service_url):
    unique = uuid.uuid4().hex[:10]
    app = create_app(
        base_settings.replace(kafka_topic=f"test-{unique}", redis_prefix=f"test:{unique}:")
    )
    with serve(app) as url:
        yield url


@SCHEMA.parametrize()
@settings(
    max_examples=40,
    deadline=5000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_the_live_api_answers_as_documented(case, live_api) -> None:
    # A cross-field rule (a search has a search_query or filters) is not expressible in the
    # document, so a request it calls valid may be a 422.
    case.call_and_validate(base_url=live_api, excluded_checks=[positive_data_acceptance])
