"""User-Agents classified: crawlers tagged (crawlerdetect), families named (ua-parser), cached."""

from __future__ import annotations

import pytest

from core.ingest.useragent import MAX_USER_AGENT, UserAgentParser
from core.message import UNKNOWN_CLIENT, Client

GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
BINGBOT = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)


@pytest.fixture(scope="module")
def parser() -> UserAgentParser:
    return UserAgentParser()


@pytest.mark.parametrize("agent", [GOOGLEBOT, BINGBOT, "curl/8.5.0", "python-requests/2.32"])
def test_crawlers_and_scripts_are_bots(parser, agent: str) -> None:
    assert parser.classify(agent).is_bot


def test_googlebot_is_named(parser) -> None:
    assert parser.classify(GOOGLEBOT) == Client("Spider", "Googlebot", "Other", True)


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        (CHROME_WINDOWS, Client("Other", "Chrome", "Windows", False)),
        (SAFARI_IPHONE, Client("iPhone", "Mobile Safari", "iOS", False)),
    ],
)
def test_people_s_browsers_are_not_bots_and_are_named(parser, agent, expected) -> None:
    assert parser.classify(agent) == expected


@pytest.mark.parametrize("agent", ["", "   "])
def test_no_user_agent_is_unknown_and_not_a_bot(parser, agent: str) -> None:
    assert parser.classify(agent) == UNKNOWN_CLIENT


def test_answers_are_cached(parser) -> None:
    parser.classify.cache_clear()
    for _ in range(3):
        parser.classify(CHROME_WINDOWS)
    info = parser.classify.cache_info()
    assert (info.misses, info.hits) == (1, 2)


def test_the_cache_is_bounded() -> None:
    small = UserAgentParser(cache_size=2)
    for version in range(5):
        small.classify(f"Mozilla/5.0 Chrome/{version}.0")
    assert small.classify.cache_info().currsize == 2


def test_a_huge_user_agent_is_cut_before_parsing(parser) -> None:
    padded = CHROME_WINDOWS + " x" * 10_000
    assert len(padded) > MAX_USER_AGENT
    assert parser.classify(padded).browser == "Chrome"
