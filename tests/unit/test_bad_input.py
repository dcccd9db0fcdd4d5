"""Every class of bad input the API must refuse cleanly: a 4xx in the documented error shape."""

from __future__ import annotations

import gzip
import zlib

import orjson
import pytest

from core.config import Settings
from core.host.fields import MAX_TEXT
from core.host.plugin_manager import build_registry, make_plugin_manager
from core.message import MAX_TOKEN_LENGTH

URL = "/api/v1/events"
BATCH = "/api/v1/events/batch"
EXAMPLES = {t.name: dict(t.example) for t in build_registry(make_plugin_manager())}
#: A click with the optional fields too, so there is text and a number to damage.
CLICK_DATA = {**EXAMPLES["element_click"], "element_id": "top10-carousel-card-3", "position": 2}
CLICK = {"event": "element_click", "token": None, "data": CLICK_DATA}
LIMIT = 4096


@pytest.fixture
def app_settings() -> Settings:
    return Settings.of(max_body_bytes=LIMIT, max_batch_bytes=4 * LIMIT)


def post(client, body: bytes, url: str = URL, **headers: str):
    headers.setdefault("Content-Type", "application/json")
    return client.post(url, data=body, headers=headers)


def assert_error(response, status: int, code: str | None = None) -> dict:
    """The answer is ``status`` with the documented ``{error, message, details}`` shape."""
    assert response.status_code == status, response.data
    body = response.json
    assert isinstance(body["error"], str) and isinstance(body["message"], str)
    assert isinstance(body["details"], dict)
    for field, messages in body["details"].items():
        assert isinstance(field, str)
        assert messages and all(isinstance(text, str) for text in messages)
    if code is not None:
        assert body["error"] == code, body
    return body


# Encoding of the body


def test_invalid_utf8_is_400(client, publisher) -> None:
    body = orjson.dumps(CLICK).replace(b"top10", b"top\xff\xfe10")
    assert_error(post(client, body), 400, "invalid_json")
    assert publisher.sent == []


def test_an_escaped_lone_surrogate_is_400(client) -> None:
    body = orjson.dumps(CLICK).replace(b"top10", b"top\\ud800")
    assert_error(post(client, body), 400, "invalid_json")


def test_a_utf8_bom_is_ignored(client, publisher) -> None:
    assert post(client, b"\xef\xbb\xbf" + orjson.dumps(CLICK)).status_code == 202
    assert len(publisher.sent) == 1


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_utf16_and_utf32_bodies_are_400(client, encoding) -> None:
    body = orjson.dumps(CLICK).decode().encode(encoding)
    assert_error(post(client, body), 400, "invalid_json")


@pytest.mark.parametrize("body", [b"", b"\xef\xbb\xbf"])
def test_an_empty_body_is_400(client, body) -> None:
    assert_error(post(client, body), 400, "invalid_json")


# Structure


def test_a_duplicate_key_is_400_naming_it(client, publisher) -> None:
    body = b'{"event": "element_click", "token": null, "event": "page_view_start", "data": {}}'
    error = assert_error(post(client, body), 400, "duplicate_key")
    assert "'event'" in error["message"]
    assert publisher.sent == []


def test_a_duplicate_key_inside_data_is_400(client, publisher) -> None:
    data = orjson.dumps(CLICK_DATA)[:-1] + b', "position" : 7}'
    body = b'{"event": "element_click", "data": ' + data + b"}"
    error = assert_error(post(client, body), 400, "duplicate_key")
    assert "'position'" in error["details"]["body"][0]
    assert publisher.sent == []


@pytest.mark.parametrize(
    "body",
    [
        # Compact, as orjson and JSON.stringify write: but not what orjson writes of the
        # value it parsed, since the first "position" is gone from it.
        orjson.dumps(CLICK)[:-2] + b',"position":7}}',
        b'{"event":"element_click","event":"element_click","data":{}}',
    ],
)
def test_a_duplicate_key_in_a_compact_body_is_400(client, publisher, body) -> None:
    assert_error(post(client, body), 400, "duplicate_key")
    assert publisher.sent == []


def test_a_duplicate_key_in_one_batch_element_refuses_the_batch(client, publisher) -> None:
    body = b"[" + orjson.dumps(CLICK) + b', {"event": "x", "event": "y"}]'
    assert_error(post(client, body, BATCH), 400, "duplicate_key")
    assert publisher.sent == []


def test_equal_keys_in_different_objects_are_fine(client, publisher) -> None:
    page_view = {"event": "page_view_start", "token": None, "data": EXAMPLES["page_view_start"]}
    assert post(client, orjson.dumps([CLICK, page_view]), BATCH).json["accepted"] == 2
    assert [key for key, _ in publisher.sent] == ["element_click", "page_view_start"]


def test_json_text_inside_a_string_is_not_parsed_for_keys(client, publisher) -> None:
    filters = '{"event": "a", "event": "b", "data": "\\":"}'
    body = {"event": "search_filter", "data": {"search_query": '":', "filters": filters}}
    assert post(client, orjson.dumps(body)).status_code == 202
    assert orjson.loads(publisher.sent[0][1])["data"]["filters"] == filters


def _nested_click(depth: int) -> bytes:
    nested = b"[" * depth + b"]" * depth
    spec = b'"element_type": "trailer", "page_type": "movie"'
    return b'{"event": "element_click", "data": {' + spec + b', "element_id": ' + nested + b"}}"


def test_a_shallow_nested_value_where_text_belongs_is_422_naming_it(client, publisher) -> None:
    error = assert_error(post(client, _nested_click(50)), 422, "validation_error")
    assert set(error["details"]) == {"data.element_id"}
    assert publisher.sent == []


@pytest.mark.parametrize("depth", [1030, 1900])
def test_json_nested_past_the_parsers_limit_is_400(client, publisher, depth) -> None:
    body = _nested_click(depth)
    assert len(body) <= LIMIT
    error = assert_error(post(client, body), 400, "invalid_json")
    assert set(error["details"]) == {"body"}
    assert publisher.sent == []


def test_a_deeply_nested_body_cut_at_the_limit_is_400(client, publisher) -> None:
    error = assert_error(post(client, _nested_click(100_000)[:LIMIT]), 400, "invalid_json")
    assert set(error["details"]) == {"body"}
    assert publisher.sent == []


def test_deep_nesting_inside_a_batch_refuses_the_batch(client, publisher) -> None:
    body = b"[" + b'{"a":' * 1030 + b"1" + b"}" * 1030 + b"]"
    assert_error(post(client, body, BATCH), 400, "invalid_json")
    assert publisher.sent == []


def test_moderate_nesting_in_a_batch_element_is_refused_for_that_element(client, publisher) -> None:
    body = b"[" + b'{"a":' * 20 + b"1" + b"}" * 20 + b"," + orjson.dumps(CLICK) + b"]"
    response = post(client, body, BATCH)
    assert response.status_code == 200, response.json
    assert [result["status"] for result in response.json["results"]] == [422, 202]
    assert [key for key, _ in publisher.sent] == ["element_click"]


@pytest.mark.parametrize(
    "raw", [b"[]", b"[1]", b'"text"', b"42", b"true", b"null", b"[" + orjson.dumps(CLICK) + b"]"]
)
def test_something_other_than_an_object_is_400(client, raw) -> None:
    assert_error(post(client, raw), 400, "invalid_body")


@pytest.mark.parametrize("data", [None, [], [EXAMPLES["element_click"]], "text", 7, True])
def test_data_that_is_not_an_object_is_422(client, data) -> None:
    error = assert_error(post(client, orjson.dumps({**CLICK, "data": data})), 422)
    assert "data" in error["details"]


@pytest.mark.parametrize("envelope", [[CLICK], "x", None, {"event": ["element_click"]}])
def test_arrays_where_objects_belong_in_a_batch(client, envelope) -> None:
    response = post(client, orjson.dumps([CLICK, envelope]), BATCH)
    assert response.status_code == 200
    assert [r["status"] for r in response.json["results"]] in ([202, 400], [202, 422])


# Numbers


@pytest.mark.parametrize(
    "literal",
    [b"NaN", b"-NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e999", b"1" + b"0" * 400],
)
def test_nan_infinity_and_numbers_beyond_a_double_are_400(client, literal) -> None:
    body = orjson.dumps(CLICK).replace(b'"position":2', b'"position":' + literal)
    assert b'"position":' + literal in body
    assert_error(post(client, body), 400, "invalid_json")


@pytest.mark.parametrize(
    "literal",
    [
        b"18446744073709551616",  # 2**64: orjson reads it as a float, an integer field refuses it
        b"123456789012345678901234567890",
        b"-9223372036854775809",
        b"18446744073709551615",
        b"2.5",
        b"1e3",
    ],
)
def test_huge_or_fractional_numbers_in_integer_fields_are_422(client, literal) -> None:
    body = orjson.dumps(CLICK).replace(b'"position":2', b'"position":' + literal)
    error = assert_error(post(client, body), 422)
    assert "data.position" in error["details"]


def test_a_huge_number_where_a_string_belongs_is_422(client) -> None:
    body = orjson.dumps(CLICK).replace(b'"movie"', b"1" * 300)
    assert "data.page_type" in assert_error(post(client, body), 422)["details"]


# Strings over their bounds


def _over(field: str, size: int) -> dict:
    return {**CLICK, "data": {**CLICK_DATA, field: "я" * size}}


@pytest.mark.parametrize(("field", "bound"), [("element_type", 64), ("element_id", 256)])
def test_strings_just_over_their_bound_are_422(client, field, bound) -> None:
    assert post(client, orjson.dumps(_over(field, bound))).status_code == 202
    error = assert_error(post(client, orjson.dumps(_over(field, bound + 1))), 422)
    assert f"data.{field}" in error["details"]


def test_strings_far_over_every_bound_are_413(client) -> None:
    assert_error(post(client, orjson.dumps(_over("element_id", 100 * MAX_TEXT))), 413)


def test_a_token_over_its_bound_is_422_without_echoing_it(make_app) -> None:
    token = "t" * (MAX_TOKEN_LENGTH + 1)
    big = make_app(max_body_bytes=2 * MAX_TOKEN_LENGTH).test_client()
    response = post(big, orjson.dumps({**CLICK, "token": token}))
    assert "token" in assert_error(response, 422)["details"]
    assert token.encode() not in response.data


# Content types


@pytest.mark.parametrize(
    "content_type",
    [
        "application/xml",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json; charset=latin-1",
        "text/plain; charset=utf-16",
        "",
    ],
)
def test_wrong_content_types_are_415(client, content_type) -> None:
    response = post(client, orjson.dumps(CLICK), **{"Content-Type": content_type})
    assert "Content-Type" in assert_error(response, 415)["details"]


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=UTF-8", "text/plain;charset=UTF-8"],
)
def test_json_and_beacon_content_types_are_accepted(client, publisher, content_type) -> None:
    response = post(client, orjson.dumps(CLICK), **{"Content-Type": content_type})
    assert response.status_code == 202
    [(key, value)] = publisher.sent
    message = orjson.loads(value)
    assert (key, message["event_id"]) == ("element_click", response.json["event_id"])
    assert orjson.dumps(message["data"]) == orjson.dumps(CLICK_DATA)


# Compressed bodies


def test_a_gzip_body_is_accepted_when_the_header_says_so(client, publisher) -> None:
    response = post(client, gzip.compress(orjson.dumps(CLICK)), **{"Content-Encoding": "gzip"})
    assert response.status_code == 202, response.json
    assert orjson.loads(publisher.sent[0][1])["data"] == CLICK_DATA


def test_a_gzip_batch_and_several_gzip_members_are_accepted(client) -> None:
    half = orjson.dumps([CLICK] * 4)
    body = gzip.compress(half[:50]) + gzip.compress(half[50:])
    response = post(client, body, BATCH, **{"Content-Encoding": "gzip"})
    assert response.json["accepted"] == 4


def test_gzip_without_the_header_is_400(client) -> None:
    assert_error(post(client, gzip.compress(orjson.dumps(CLICK))), 400, "invalid_json")


@pytest.mark.parametrize(
    "body",
    [b"not gzip", gzip.compress(orjson.dumps(CLICK))[:-6], zlib.compress(orjson.dumps(CLICK))],
)
def test_a_body_that_is_not_gzip_as_announced_is_400(client, body) -> None:
    assert_error(post(client, body, **{"Content-Encoding": "gzip"}), 400, "invalid_gzip")


def test_a_zip_bomb_is_413(client) -> None:
    bomb = gzip.compress(b'{"event": "' + b"a" * 10_000_000 + b'"}', compresslevel=9)
    assert len(bomb) < LIMIT * 4
    error = assert_error(post(client, bomb, BATCH, **{"Content-Encoding": "gzip"}), 413)
    assert str(4 * LIMIT) in error["details"]["body"][0]


def test_the_decompressed_limit_is_the_endpoints_limit(client) -> None:
    body = orjson.dumps(_over("element_id", 256)) + b" " * LIMIT
    response = post(client, gzip.compress(body), **{"Content-Encoding": "gzip"})
    assert_error(response, 413, "request_entity_too_large")


@pytest.mark.parametrize("encoding", ["br", "deflate", "compress", "gzip, br"])
def test_other_content_encodings_are_415(client, encoding) -> None:
    response = post(client, orjson.dumps(CLICK), **{"Content-Encoding": encoding})
    assert "Content-Encoding" in assert_error(response, 415)["details"]


@pytest.mark.parametrize("token", ["я", "ä.b.c", "a\nb", "a b", "a\r\nX-Injected: 1", "\x00", "\t"])
def test_a_token_that_cannot_be_a_bearer_token_is_422(client, token) -> None:
    # Such a token could not travel in the auth service's Authorization header.
    response = post(client, orjson.dumps({**CLICK, "token": token}))
    assert "token" in assert_error(response, 422)["details"]
