"""The rating plugin on its own: its schema, its row and its table, with no service running."""

from __future__ import annotations

import re
import tomllib
import uuid
from pathlib import Path
from typing import Any

import pytest
from core import ENVELOPE_COLUMNS
from core.host.registry import Registry
from marshmallow import ValidationError

from clickstream_rating import EXAMPLE, register_event_types
from clickstream_rating.schema import MAX_REVIEW, MAX_VIDEO_ID

PROJECT = Path(__file__).resolve().parents[1]
COLUMN = re.compile(r"^\s+([a-z_][a-z0-9_]*)\s+\S", re.MULTILINE)


@pytest.fixture(scope="module")
def rating():
    [event_type] = register_event_types()
    return event_type


def load(rating, **changes: Any) -> dict[str, Any]:
    """The example with ``changes`` applied (``...`` removes a field), loaded by the schema."""
    data = {key: value for key, value in {**EXAMPLE, **changes}.items() if value is not ...}
    return rating.schema().load(data)


def errors(rating, **changes: Any) -> dict[str, Any]:
    with pytest.raises(ValidationError) as raised:
        load(rating, **changes)
    return raised.value.messages


def test_the_event_type_passes_clickstreams_checks(rating) -> None:
    registry = Registry([("clickstream_rating", [rating])])
    assert registry.names == ["rating_submitted"]
    assert registry["rating_submitted"].table == "ratings"


def test_the_entry_point_names_this_module() -> None:
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["entry-points"]["clickstream.plugins"] == {
        "rating": "clickstream_rating"
    }


@pytest.mark.parametrize("score", [1, 5, 10])
def test_scores_from_one_to_ten_are_accepted(rating, score: int) -> None:
    assert load(rating, score=score)["score"] == score


@pytest.mark.parametrize("score", [0, 11, -1, 7.5, "7", True, None])
def test_other_scores_are_refused(rating, score: object) -> None:
    assert "score" in errors(rating, score=score)


def test_video_id_and_score_are_required(rating) -> None:
    assert set(errors(rating, video_id=..., score=...)) == {"video_id", "score"}


def test_the_video_id_is_the_catalogues_string_id(rating) -> None:
    # Any non-empty string up to MAX_VIDEO_ID characters: the catalogue's ids are opaque.
    for video_id in ("tt0111161", "3f2b8c1e-5d4a-4e6f-9a7b-1c2d3e4f5a6b", "x" * MAX_VIDEO_ID):
        assert load(rating, video_id=video_id)["video_id"] == video_id
    for video_id in ("", "x" * (MAX_VIDEO_ID + 1), 111161, None, ["tt0111161"]):
        assert "video_id" in errors(rating, video_id=video_id)


def test_the_review_is_optional_and_kept_as_written(rating) -> None:
    assert load(rating, review=...)["review"] is None
    assert load(rating)["review"] == EXAMPLE["review"]


def test_the_review_is_bounded_in_characters_not_bytes(rating) -> None:
    longest = "ё" * MAX_REVIEW
    assert load(rating, review=longest)["review"] == longest
    assert "review" in errors(rating, review=longest + "ё")
    assert "review" in errors(rating, review="")


def test_unknown_fields_are_refused(rating) -> None:
    assert "comment" in errors(rating, comment="nice")


@pytest.mark.parametrize("review", [EXAMPLE["review"], ...])
def test_the_row_has_exactly_the_table_columns_in_order(rating, review: object) -> None:
    message = {
        "event_id": str(uuid.uuid4()),
        "event": "rating_submitted",
        "timestamp": "2026-11-28T10:00:00.123Z",
        "user_id": "user-42",
        "identity": "verified",
        "schema_version": 1,
        "data": load(rating, review=review),
    }
    row = rating.row(message)
    columns = COLUMN.findall(rating.table_ddl())
    assert list(row) == columns
    assert columns[: len(ENVELOPE_COLUMNS)] == list(ENVELOPE_COLUMNS)
    assert row["video_id"] == EXAMPLE["video_id"] == "tt0079944"
    assert row["score"] == 9
    assert row["review"] == (None if review is ... else review)


def test_the_table_is_generated_from_the_schema_one_row_per_event(rating) -> None:
    ddl = rating.table_ddl().replace("{database}", "analytics").replace("{table}", "ratings")
    assert ddl.startswith("CREATE TABLE IF NOT EXISTS analytics.ratings")
    assert "ENGINE = ReplacingMergeTree" in ddl
    assert "\n    video_id String COMMENT 'The rated video: the catalogue''s id" in ddl
    assert "\n    score UInt8 COMMENT 'From 1 (worst) to 10 (best).'" in ddl
    assert "\n    review Nullable(String) COMMENT" in ddl
    assert ddl.strip().endswith("ORDER BY (video_id, timestamp, event_id)")
