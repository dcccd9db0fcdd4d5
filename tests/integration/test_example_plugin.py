"""examples/plugin-rating, pip-installed, works end to end with no change to core/ or etl/.

The package goes into a virtual environment of its own (seeing the shared site-packages,
so clickstream and its dependencies are there): installed into the shared environment,
``rating_submitted`` would appear in every other test's app and in docs/openapi.json.
Everything that must see the plugin therefore runs in a subprocess with that
environment's Python, exactly as an operator would after ``pip install`` and a restart,
importing this checkout's clickstream.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.config import Settings
from core.host.plugin_manager import build_registry, make_plugin_manager
from tests.servers import subprocess_env, this_checkout, venv_with

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "plugin-rating"
#: A catalogue id: an opaque string, not a UUID.
VIDEO = "tt0069293"

# Runs in the plugin's environment: POSTs through the real app, prints what it answered.
POST_EVENTS = """
import json, sys
from core.api import create_app
from core.config import Settings

token, video = sys.argv[1], sys.argv[2]
app = create_app(Settings.from_env())
client = app.test_client()
post = lambda body: client.post("/api/v1/events", json=body)
answers = {
    "anonymous": post({"event": "rating_submitted", "data": {"video_id": video, "score": 7}}),
    "verified": post({"event": "rating_submitted", "token": token,
                      "data": {"video_id": video, "score": 10, "review": "Шедевр, «Солярис» ёж"}}),
    "score_11": post({"event": "rating_submitted", "data": {"video_id": video, "score": 11}}),
    "unknown_field": post({"event": "rating_submitted",
                           "data": {"video_id": video, "score": 5, "stars": 5}}),
}
spec = client.get("/openapi.json").json
app.extensions["clickstream.pipeline"].publisher.close()
print(json.dumps({
    "answers": {name: [a.status_code, a.json] for name, a in answers.items()},
    "openapi": spec,
}))
"""

# What docs/writing-plugins.md section 7 runs: the rows of the plugin's table.
READ_RATINGS = (
    "SELECT toString(event_id) AS event_id, video_id, score, review, user_id, identity, "
    "schema_version FROM ratings ORDER BY score"
)


@dataclass(frozen=True)
class PluginEnvironment:
    python: Path
    source: Path


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory) -> PluginEnvironment:
    """A fresh virtual environment with (a copy of) examples/plugin-rating pip-installed."""
    root = tmp_path_factory.mktemp("plugin-rating")
    # pip builds a local project in place: a copy keeps build/, *.egg-info and caches out.
    source = shutil.copytree(
        EXAMPLE, root / "src", ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    python = venv_with(source, root / "venv")
    return PluginEnvironment(python, source)


def run(python: Path, *args: str, settings: Settings | None = None, cwd: Path | None = None):
    # This checkout's clickstream: core.testing, which the plugin's tests use, among the rest.
    env = this_checkout(subprocess_env(settings) if settings else dict(os.environ))
    return subprocess.run(
        [python, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )


def test_the_shared_environment_does_not_see_the_plugin() -> None:
    assert "rating_submitted" not in build_registry(make_plugin_manager())


def test_clickstream_plugins_lists_it_with_its_distribution(plugin_env: PluginEnvironment) -> None:
    listed = run(plugin_env.python, "-m", "etl.cli", "plugins", "--json")
    assert listed.returncode == 0, listed.stderr
    by_event = {entry["event"]: entry for entry in json.loads(listed.stdout)}
    assert by_event["rating_submitted"] == {
        "event": "rating_submitted",
        "version": 1,
        "table": "ratings",
        "plugin": "clickstream_rating",
        "distribution": "clickstream-rating",
        "distribution_version": "0.1.0",
    }
    assert by_event["page_view_start"]["distribution"] == "clickstream"
    table = run(plugin_env.python, "-m", "etl.cli", "plugins")
    [line] = [line for line in table.stdout.splitlines() if line.startswith("rating_submitted")]
    assert line.split() == [
        "rating_submitted",
        "1",
        "ratings",
        "clickstream_rating",
        "clickstream-rating",
        "0.1.0",
    ]


def test_its_own_tests_pass_where_it_is_installed(plugin_env: PluginEnvironment) -> None:
    tests = run(plugin_env.python, "-m", "pytest", "-q", cwd=plugin_env.source)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert " passed" in tests.stdout


def test_it_publishes_its_own_api_fragment_not_the_projects_document(
    plugin_env: PluginEnvironment, tmp_path: Path
) -> None:
    checked = run(plugin_env.python, "-m", "etl.cli", "schema-check")
    assert checked.returncode == 0, checked.stdout
    assert "rating_submitted: from clickstream_rating, outside this repository" in checked.stdout
    assert "clickstream openapi --plugin clickstream_rating --check FILE" in checked.stdout

    printed = run(plugin_env.python, "-m", "etl.cli", "openapi", "--plugin", "clickstream-rating")
    assert printed.returncode == 0, printed.stderr
    schemas = json.loads(printed.stdout)["components"]["schemas"]
    assert set(schemas) == {"RatingSubmittedData", "RatingSubmittedEvent"}
    committed = tmp_path / "openapi.json"
    committed.write_text(printed.stdout, encoding="utf-8")
    again = run(
        plugin_env.python, "-m", "etl.cli", "openapi", "--plugin", "clickstream-rating",
        "--check", str(committed),
    )  # fmt: skip
    assert again.returncode == 0, again.stdout


def test_a_rating_goes_from_the_api_through_kafka_into_its_table(
    plugin_env: PluginEnvironment, live_settings: Settings, read_topic, login, tmp_path: Path
) -> None:
    settings = live_settings.replace(warehouse_dsn=f"chdb://{tmp_path / 'warehouse'}")
    posted = run(
        plugin_env.python, "-c", POST_EVENTS, login("user-rates"), VIDEO, settings=settings
    )
    assert posted.returncode == 0, posted.stderr
    result = json.loads(posted.stdout)
    answers = result["answers"]
    assert answers["anonymous"][0] == 202
    assert answers["verified"][0] == 202
    assert answers["score_11"][0] == 422
    assert "data.score" in answers["score_11"][1]["details"]
    assert answers["unknown_field"][0] == 422
    assert "data.stars" in answers["unknown_field"][1]["details"]

    schemas = result["openapi"]["components"]["schemas"]
    assert schemas["RatingSubmittedData"]["properties"]["score"]["maximum"] == 10
    assert schemas["RatingSubmittedData"]["required"] == ["score", "video_id"]
    video_id = schemas["RatingSubmittedData"]["properties"]["video_id"]
    assert video_id["type"] == "string" and "format" not in video_id  # not a UUID
    assert schemas["RatingSubmittedEvent"]["x-schema-version"] == 1

    published = read_topic(settings.kafka.topic, 2)
    assert [key for key, _ in published] == ["rating_submitted", "rating_submitted"]
    assert [message["schema_version"] for _, message in published] == [1, 1]
    assert [message["data"]["score"] for _, message in published] == [7, 10]

    etl = run(plugin_env.python, "-m", "etl.cli", "etl", "--once", settings=settings)
    assert etl.returncode == 0, etl.stderr
    counts = run(plugin_env.python, "-m", "etl.cli", "report", "counts", settings=settings)
    assert ["ratings", "2", "2"] in [line.split() for line in counts.stdout.splitlines()]

    read = run(
        plugin_env.python,
        "-m",
        "etl.cli",
        "sql",
        "--format",
        "json",
        READ_RATINGS,
        settings=settings,
    )
    assert read.returncode == 0, read.stderr
    anonymous, verified = (list(row.values()) for row in json.loads(read.stdout))
    assert anonymous[:2] == [answers["anonymous"][1]["event_id"], VIDEO]
    assert anonymous[2:] == [7, None, "anonymous", "anonymous", 1]
    assert verified[0] == answers["verified"][1]["event_id"]
    assert verified[2:] == [10, "Шедевр, «Солярис» ёж", "user-rates", "verified", 1]
