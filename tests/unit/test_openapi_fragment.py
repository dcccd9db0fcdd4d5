"""A plugin's own part of the OpenAPI document (``clickstream openapi --plugin``): what it
holds, and its check for staleness and unversioned breaking changes, which never touch the
project's docs/openapi.json (that one describes the built-in event types only)."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest
from marshmallow import Schema, fields
from openapi_spec_validator import validate

import etl.cli
from core import EventType, Integer, Text, hookimpl
from core.api.compat import PUBLISHED_DOCUMENT, event_schemas
from core.api.openapi import build_spec, dumps, fragment
from core.host.plugin_manager import build_registry, is_built_in, make_plugin_manager
from core.message import ENVELOPE_COLUMNS_DDL
from etl.cli import main

BUILT_IN = build_registry(make_plugin_manager())


class Tag(Schema):
    label = Text(max_length=32, required=True)


class Rating(Schema):
    video_id = Text(max_length=128, required=True)
    score = Integer(min=1, max=10, required=True)
    review = Text(max_length=2000, load_default=None)
    # A nested schema becomes a component of its own, which the fragment must carry too.
    tag = fields.Nested(Tag, load_default=None, allow_none=True)


class WithWatched(Rating):
    watched_s = Integer(min=0, max=86400, load_default=None)


class ShorterReview(Rating):
    review = Text(max_length=500, load_default=None)


# A nested field names no column: the table is written rather than generated.
DDL = f"CREATE TABLE IF NOT EXISTS {{database}}.{{table}} ({ENVELOPE_COLUMNS_DDL}) ENGINE = Memory"


def plugin(schema: type[Schema] = Rating, version: int = 1, description: str = "") -> ModuleType:
    """A plugin kept outside this repository, as the module ``clickstream_rating``."""
    module = ModuleType("clickstream_rating")

    @hookimpl
    def register_event_types() -> list[EventType]:
        return [
            EventType(
                name="rating_submitted",
                schema=schema,
                table="ratings",
                ddl=DDL,
                example={"video_id": "tt0079944", "score": 9, "tag": {"label": "classic"}},
                description=description or "A viewer rated a video.",
                version=version,
            )
        ]

    module.register_event_types = register_event_types
    return module


def registry_with(outside: ModuleType):
    return build_registry(make_plugin_manager(extra_plugins=[outside]))


@pytest.fixture
def installed(monkeypatch):
    """``installed(plugin)``: the CLI then sees ``plugin`` beside the built-in ones."""

    def install(outside: ModuleType) -> None:
        monkeypatch.setattr(
            etl.cli, "make_plugin_manager", lambda: make_plugin_manager(extra_plugins=[outside])
        )

    return install


def test_the_fragment_holds_the_plugins_variants_schemas_and_examples_as_in_the_document():
    registry = registry_with(plugin())
    whole, part = build_spec(registry), fragment(registry, ["rating_submitted"])

    validate(part)
    assert set(part["components"]["schemas"]) == {
        "RatingSubmittedData",
        "RatingSubmittedEvent",
        "Tag",
    }
    for name, schema in part["components"]["schemas"].items():
        assert schema == whole["components"]["schemas"][name]
    body = part["paths"]["/api/v1/events"]["post"]["requestBody"]["content"]["application/json"]
    whole_body = whole["paths"]["/api/v1/events"]["post"]["requestBody"]["content"][
        "application/json"
    ]
    assert body["examples"] == {"rating_submitted": whole_body["examples"]["rating_submitted"]}
    assert body["schema"]["oneOf"] == [{"$ref": "#/components/schemas/RatingSubmittedEvent"}]
    assert event_schemas(part) == {"rating_submitted": event_schemas(whole)["rating_submitted"]}
    assert list(part["paths"]) == ["/api/v1/events"]
    assert "clickstream_rating" in part["info"]["title"]


def test_the_project_document_is_the_built_in_event_types_whatever_else_is_installed():
    everything = make_plugin_manager(extra_plugins=[plugin()])
    assert "rating_submitted" in build_registry(everything)
    built_in = build_registry(everything, keep=is_built_in)
    assert built_in.names == BUILT_IN.names
    assert all(is_built_in(event_type.plugin) for event_type in built_in)


def test_clickstream_openapi_prints_a_plugins_fragment_by_module_or_distribution(installed, capsys):
    installed(plugin())
    assert main(["openapi", "--plugin", "clickstream_rating"]) == 0
    printed = capsys.readouterr().out
    assert printed == dumps(fragment(registry_with(plugin()), ["rating_submitted"]))

    assert main(["openapi", "--plugin", "clickstream"]) == 0
    assert json.loads(capsys.readouterr().out) == fragment(BUILT_IN, BUILT_IN.names)

    assert main(["openapi"]) == 0
    assert json.loads(capsys.readouterr().out) == build_spec(registry_with(plugin()))


def test_an_up_to_date_fragment_passes_and_docs_openapi_json_is_left_alone(
    installed, tmp_path: Path, capsys
):
    published = PUBLISHED_DOCUMENT.read_bytes()
    installed(plugin())
    committed = tmp_path / "openapi.json"
    main(["openapi", "--plugin", "clickstream_rating"])
    committed.write_text(capsys.readouterr().out, encoding="utf-8")

    assert main(["openapi", "--plugin", "clickstream_rating", "--check", str(committed)]) == 0
    assert capsys.readouterr().out == f"{committed} is up to date\n"
    assert PUBLISHED_DOCUMENT.read_bytes() == published


def commit_fragment(path: Path, schema: type[Schema] = Rating, **changes) -> None:
    current = fragment(registry_with(plugin(schema, **changes)), ["rating_submitted"])
    path.write_text(dumps(current), encoding="utf-8")


def check(path: Path, capsys) -> tuple[int, str]:
    status = main(["openapi", "--plugin", "clickstream_rating", "--check", str(path)])
    return status, capsys.readouterr().out


def test_a_fragment_behind_a_compatible_change_is_stale(installed, tmp_path: Path, capsys):
    committed = tmp_path / "openapi.json"
    commit_fragment(committed)
    installed(plugin(WithWatched))

    status, out = check(committed, capsys)

    assert status == 1
    assert "rating_submitted.data.watched_s: optional field added [ok]" in out
    assert f"{committed} is stale (no unversioned breaking change): rewrite {committed} " in out
    assert f"(clickstream openapi --plugin clickstream_rating > {committed})" in out
    assert "make docs" not in out


def test_a_changed_description_alone_makes_it_stale(installed, tmp_path: Path, capsys):
    committed = tmp_path / "openapi.json"
    commit_fragment(committed)
    installed(plugin(description="A viewer gave a video a score."))

    status, out = check(committed, capsys)

    assert status == 1
    assert "the event types' data is unchanged" in out


def test_a_breaking_change_fails_unless_the_version_is_bumped(installed, tmp_path: Path, capsys):
    committed = tmp_path / "openapi.json"
    commit_fragment(committed)
    installed(plugin(ShorterReview))

    status, out = check(committed, capsys)

    assert status == 1
    assert "rating_submitted.data.review: maxLength changed from 2000 to 500 [BREAKING]" in out
    assert "1 breaking change(s) in rating_submitted" in out
    assert "bump the event type's version, then rewrite" in out

    installed(plugin(ShorterReview, version=2))
    status, out = check(committed, capsys)
    assert status == 1  # accepted, but the committed fragment must be rewritten
    assert "[breaking, versioned]" in out and "no unversioned breaking change" in out

    commit_fragment(committed, ShorterReview, version=2)
    assert check(committed, capsys) == (0, f"{committed} is up to date\n")


def test_a_removed_event_type_is_a_breaking_change_of_the_fragment(
    installed, tmp_path: Path, capsys
):
    committed = tmp_path / "openapi.json"
    commit_fragment(committed)
    document = json.loads(committed.read_text(encoding="utf-8"))
    document["paths"]["/api/v1/events"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]["discriminator"]["mapping"]["rating_retracted"] = "#/components/schemas/RatingSubmittedEvent"
    committed.write_text(json.dumps(document), encoding="utf-8")
    installed(plugin())

    status, out = check(committed, capsys)

    assert status == 1
    assert "rating_retracted: event type removed" in out and "[BREAKING]" in out


def test_the_command_says_what_is_missing(installed, tmp_path: Path, capsys):
    installed(plugin())
    assert main(["openapi", "--check", str(tmp_path / "x.json")]) == 2
    assert "--check needs --plugin" in capsys.readouterr().err
    assert main(["openapi", "--plugin", "clickstream_ratings"]) == 2
    assert "installed: clickstream_rating (no distribution), plugins." in capsys.readouterr().err
    missing = tmp_path / "openapi.json"
    assert main(["openapi", "--plugin", "clickstream_rating", "--check", str(missing)]) == 1
    assert f"clickstream openapi --plugin clickstream_rating > {missing}" in (
        capsys.readouterr().err
    )


def test_schema_check_points_a_plugin_kept_elsewhere_to_its_own_fragment(installed, capsys):
    installed(plugin(ShorterReview))

    assert main(["schema-check"]) == 0

    out = capsys.readouterr().out
    assert out.splitlines() == [
        "no change since the published document",
        "rating_submitted: from clickstream_rating, outside this repository, so not in "
        "docs/openapi.json; check its own fragment with "
        "`clickstream openapi --plugin clickstream_rating --check FILE`",
    ]
