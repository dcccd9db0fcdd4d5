"""The documentation's shell blocks that need the real services run as written: the ETL's
dead-letter workflow and reports on a real Kafka topic, and the quick start from sending
events to seeing them in the warehouse (``tests/unit/test_docs_snippets.py`` runs the rest)."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest

from core.api import create_app
from core.config import Settings
from tests.docs_snippets import Block, ShellResult, collect, run_cli, sh_mode, shell_runner
from tests.etl_helpers import create_topic, envelope, produce, scalar
from tests.servers import serve

pytestmark = pytest.mark.integration

SHELL = [block for block in collect() if block.language == "sh" and block.exemption is None]
LIVE_PAGES = sorted({block.page for block in SHELL if sh_mode(block)[0] == "live"})


def run_blocks(runner, blocks: list[Block]) -> list[ShellResult]:
    results = []
    for block in blocks:
        result = runner.run(block)
        assert result.code == 0, f"{block.id} exit {result.code}\n{result.output}"
        results.append(result)
    return results


def etl_pass(settings: Settings) -> None:
    code, out, err = run_cli(["etl", "--once"], "", settings)
    assert code == 0, err


def test_only_the_etl_page_needs_kafka() -> None:
    """A new block needing Kafka needs its setting-up here, as the ETL page's has."""
    assert LIVE_PAGES == ["docs/etl.md"]


def test_the_etl_pages_dead_letter_workflow_and_reports(live_settings: Settings) -> None:
    """A message of an unknown event is dead-lettered by a pass; the page's commands list
    it, re-queue it to the topic, and print every report."""
    create_topic(live_settings)
    produce(live_settings, [envelope("no_such_event", {"x": 1})])
    etl_pass(live_settings)
    blocks = [b for b in SHELL if b.page == "docs/etl.md" and sh_mode(b)[0] == "live"]
    with shell_runner(live_settings, {}) as runner:
        workflow, reports = run_blocks(runner, blocks)
    assert workflow.output.count("unknown_event") >= 2
    assert "re-queued 1 dead letter(s) to the topic" in workflow.output
    assert "duplicates" in reports.output.lower() and "lag" in reports.output.lower()


def test_the_quick_start_sends_events_that_reach_the_warehouse(
    live_settings: Settings, auth_service_url: str
) -> None:
    """Sections 3 and 4 of the quick start on the real services: the anonymous click and
    the signed-in search are stored (the wrong event is refused), and after a pass the
    reports and ``clickstream sql`` show them, the search under the token's user."""
    auth = urlparse(auth_service_url)
    create_topic(live_settings)
    app = create_app(live_settings)
    sections = [b for b in SHELL if b.page == "docs/quickstart.md" and sh_mode(b)[0] == "run"]
    with serve(app) as api_url:
        urls = {"127.0.0.1:8000": api_url, "127.0.0.1:8001": f"http://{auth.netloc}"}
        with shell_runner(live_settings, urls) as runner:
            *sending, seeing = sections
            sent = run_blocks(runner, sending)
            assert [r.statuses for r in sent] == [[202], [200, 202], [422]]
            etl_pass(live_settings)
            [shown] = run_blocks(runner, [seeing])
    assert "element_click" in shown.output and "search_filter" in shown.output
    user = scalar(live_settings, "SELECT user_id FROM {db}.search_filters")
    assert user == "user-42"
    assert scalar(live_settings, "SELECT count() FROM {db}.element_clicks") == 1
