"""The published OpenAPI document is valid, complete and up to date."""

from __future__ import annotations

import json
from pathlib import Path

from openapi_spec_validator import validate

from core.api.openapi import build_spec, render
from core.host.plugin_manager import build_registry, is_built_in, make_plugin_manager

PUBLISHED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
#: The project's document describes its own event types: a plugin installed here from
#: elsewhere publishes its own fragment (tests/unit/test_openapi_fragment.py).
REGISTRY = build_registry(make_plugin_manager(), keep=is_built_in)


def test_the_committed_document_is_not_stale() -> None:
    assert PUBLISHED.read_text(encoding="utf-8") == render(REGISTRY), (
        "docs/openapi.json is stale: run `make docs`"
    )


def test_the_document_is_valid_openapi() -> None:
    validate(json.loads(PUBLISHED.read_text(encoding="utf-8")))


def test_every_event_type_is_a_documented_variant_with_an_example() -> None:
    spec = build_spec(REGISTRY)
    body = spec["paths"]["/api/v1/events"]["post"]["requestBody"]["content"]["application/json"]
    mapping = body["schema"]["discriminator"]["mapping"]
    assert sorted(mapping) == REGISTRY.names
    for name in REGISTRY.names:
        assert body["examples"][name]["value"]["data"] == dict(REGISTRY[name].example)
        assert mapping[name].rsplit("/", 1)[1] in spec["components"]["schemas"]


def test_every_error_status_is_described() -> None:
    responses = build_spec(REGISTRY)["paths"]["/api/v1/events"]["post"]["responses"]
    assert {"202", "400", "401", "413", "415", "422", "503"} <= set(responses)
