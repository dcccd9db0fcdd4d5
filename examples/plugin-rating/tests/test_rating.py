"""The rating plugin on its own, with no service running: clickstream's checks, then its rules."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from core.testing import CheckedPlugin, check_plugin

import clickstream_rating
from clickstream_rating import EXAMPLE
from clickstream_rating.schema import MAX_REVIEW, MAX_VIDEO_ID

EVENT = "rating_submitted"
PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def rating() -> CheckedPlugin:
    # clickstream's start-up checks, the example sent to the API, mapped to a row and
    # stored in its table, made by ClickHouse (chDB, in a temporary directory).
    return check_plugin(clickstream_rating)


def test_clickstream_loads_it_and_stores_its_example(rating: CheckedPlugin) -> None:
    assert rating.registry.names == [EVENT]
    assert rating.registry[EVENT].table == "ratings"
    row = rating.rows[EVENT]
    assert (row["video_id"], row["score"], row["review"]) == ("tt0079944", 9, EXAMPLE["review"])


def test_the_entry_point_names_this_module() -> None:
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["entry-points"]["clickstream.plugins"] == {
        "rating": "clickstream_rating"
    }


@pytest.mark.parametrize("score", [1, 5, 10])
def test_scores_from_one_to_ten_are_accepted(rating: CheckedPlugin, score: int) -> None:
    assert rating.row(EVENT, rating.example(EVENT, score=score))["score"] == score


@pytest.mark.parametrize("score", [0, 11, -1, 7.5, "7", True, None])
def test_other_scores_are_refused(rating: CheckedPlugin, score: object) -> None:
    rating.assert_refused(EVENT, rating.example(EVENT, score=score), "score")


def test_video_id_and_score_are_required(rating: CheckedPlugin) -> None:
    details = rating.assert_refused(EVENT, {"review": "Шедевр"}, "video_id", "score")
    assert set(details) == {"data.video_id", "data.score"}


def test_the_video_id_is_the_catalogues_string_id(rating: CheckedPlugin) -> None:
    # Any non-empty string up to MAX_VIDEO_ID characters: the catalogue's ids are opaque.
    for video_id in ("tt0111161", "3f2b8c1e-5d4a-4e6f-9a7b-1c2d3e4f5a6b", "x" * MAX_VIDEO_ID):
        assert rating.row(EVENT, rating.example(EVENT, video_id=video_id))["video_id"] == video_id
    for video_id in ("", "x" * (MAX_VIDEO_ID + 1), 111161, None, ["tt0111161"]):
        rating.assert_refused(EVENT, rating.example(EVENT, video_id=video_id), "video_id")


def test_the_review_is_optional_and_kept_as_written(rating: CheckedPlugin) -> None:
    assert rating.row(EVENT, rating.example(EVENT, review=...))["review"] is None
    assert rating.rows[EVENT]["review"] == EXAMPLE["review"]


def test_the_review_is_bounded_in_characters_not_bytes(rating: CheckedPlugin) -> None:
    longest = "ё" * MAX_REVIEW
    assert rating.stored(EVENT, rating.example(EVENT, review=longest))["review"] == longest
    rating.assert_refused(EVENT, rating.example(EVENT, review=longest + "ё"), "review")
    rating.assert_refused(EVENT, rating.example(EVENT, review=""), "review")


def test_unknown_fields_are_refused(rating: CheckedPlugin) -> None:
    rating.assert_refused(EVENT, rating.example(EVENT, comment="nice"), "comment")


def test_the_table_is_generated_from_the_schema_sorted_by_video(rating: CheckedPlugin) -> None:
    columns = [(column.name, column.type) for column in rating.columns["ratings"]]
    assert columns[-3:] == [
        ("video_id", "String"),
        ("score", "UInt8"),
        ("review", "Nullable(String)"),
    ]
    ddl = rating.registry[EVENT].ddl
    assert "ENGINE = ReplacingMergeTree" in ddl
    assert ddl.strip().endswith("ORDER BY (video_id, timestamp, event_id)")
