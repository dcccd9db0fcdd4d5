"""Every fenced block of the documentation runs as written, or is checked as far as it can be
without starting the stack, or is exempted in the page with its reason.

The blocks come from ``tests/docs_snippets.py``; :func:`claim` gives each one its runner.
Python is compiled for the oldest supported Python and executed; JSON events are posted
to the API; SQL runs on a chDB warehouse with the schema made; shell blocks run in bash
against a served API and auth service, with ``clickstream`` answered in-process, unless a
command starts the stack or installs (then every command is checked for being real);
blocks that need Kafka run in ``tests/integration/test_docs_snippets_live.py``.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
import tomllib
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import orjson
import pytest

from core.api import create_app
from core.api.tracker import bundle
from core.config import Settings
from core.host.plugin_manager import ENTRY_POINT_GROUP, build_registry, make_plugin_manager
from core.ingest.identity import IdentityResolver
from core.message import ENVELOPE_COLUMNS_DDL, envelope_error, missing_keys
from etl import ledger
from etl.sql import statements_of
from etl.warehouse import Warehouse
from tests.docs_snippets import (
    MINIMUM_PYTHON,
    ROOT,
    Block,
    check_command,
    collect,
    commands,
    expected_status,
    run_cli,
    sh_mode,
    shell_runner,
)
from tests.fakes import FakeIdentity, FakePublisher
from tests.servers import serve, subprocess_env

BLOCKS = collect()
EXAMPLE = ROOT / "examples" / "plugin-rating"
sys.path.insert(0, str(EXAMPLE))
import clickstream_rating  # noqa: E402 - the example plugin, which two pages install

sys.path.remove(str(EXAMPLE))
PLUGINS = (clickstream_rating,)
NODE = shutil.which("node")
DATABASE = "clickstream"  # the default, which the pages' SQL names
SCRATCH = "snippets_scratch"
#: Kinds no runner can execute: program output, trees, tables, diagrams.
EXEMPT_KINDS = {"": "output, a tree or a table", "mermaid": "a diagram"}
#: Blocks of pages being rewritten on another branch, failing as written; fix the page,
#: then remove the entry (strict: an entry whose block passes fails).
KNOWN_FAILURES: dict[str, str] = {}
#: The module an untitled Python block of the page belongs to: section 9 of the plugin
#: guide shows the page-view plugin's own hooks, which read its package's files.
PAGE_MODULE = {"docs/writing-plugins.md": "plugins.page_view"}


def events_named(heading: str) -> list[str]:
    return re.findall(r"`([a-z_]+)`", heading.split("→")[0])


def posted(block: Block) -> bool:
    """Whether a JSON block is sent to the API: an event, a batch, or the ``data`` of the
    event type its section is about."""
    value = orjson.loads(block.text)
    if isinstance(value, list) or "event" in value and "data" in value and "event_id" not in value:
        return True
    return block.page == "docs/events.md" and "error" not in value


def claim(block: Block) -> tuple[str, str]:
    """(runner, how): how is "executed", "checked" (parsed or proved real, not run) or
    "exempt"; a runner of "" means no runner takes the block."""
    if block.exemption is not None:
        return "exempt", "exempt"
    if block.language in EXEMPT_KINDS:
        return "text", "exempt"
    if block.language == "sh":
        mode, _ = sh_mode(block)
        return f"sh-{mode}", "checked" if mode == "checked" else "executed"
    if block.language == "json":
        return "json", "executed" if posted(block) else "checked"
    if block.language == "js":
        return "js", "checked" if "clickstream." in block.text else "executed"
    kinds = {"python": "executed", "sql": "executed", "toml": "checked", "html": "checked"}
    if block.language in kinds:
        return block.language, kinds[block.language]
    if block.language == "cron":
        return "cron", "checked"
    return "", ""


def claimed(runner: str) -> list:
    return [
        pytest.param(
            block,
            id=block.id,
            marks=[pytest.mark.xfail(reason=KNOWN_FAILURES[block.id], strict=True)]
            if block.id in KNOWN_FAILURES
            else [],
        )
        for block in BLOCKS
        if claim(block)[0] == runner
    ]


def pages_of(runner: str) -> list[str]:
    return sorted({block.page for block in BLOCKS if claim(block)[0] == runner})


def heading_of(block: Block) -> str:
    lines = (ROOT / block.page).read_text(encoding="utf-8").splitlines()[: block.line]
    return next((line for line in reversed(lines) if re.match(r"#+ ", line)), "")


def test_every_block_is_claimed_and_every_exemption_says_why() -> None:
    claims = {block.id: claim(block) for block in BLOCKS}
    assert len(BLOCKS) > 80
    unclaimed = [block_id for block_id, (runner, _) in claims.items() if not runner]
    assert unclaimed == [], "no runner takes these blocks: give them one, or exempt them"
    silent = [b.id for b in BLOCKS if b.exemption == ""]
    assert silent == [], "exemptions must say why: <!-- snippet: not run (reason) -->"
    print(
        f"\n{len(BLOCKS)} blocks;",
        dict(Counter(how for _, how in claims.values())),
        dict(Counter(f"{runner}:{how}" for runner, how in claims.values())),
    )


# --- the services the blocks talk to ---------------------------------------------------


@pytest.fixture(scope="module")
def auth_url():
    from auth_service.app import create_app as create_auth_service

    with serve(create_auth_service()) as url:
        yield url


@pytest.fixture(scope="module")
def api_url(auth_url):
    """The API with the example plugin, its identity resolved by the served auth service
    (no Redis), Kafka faked."""
    settings = Settings.of(auth_url=f"{auth_url}/api/v1/auth/verify", jwt_allow_dev_secret=True)
    identity = IdentityResolver(settings.auth, settings.jwt, settings.cache)
    app = create_app(
        settings, make_plugin_manager(PLUGINS), identity=identity, publisher=FakePublisher()
    )
    with serve(app) as url:
        yield url


@pytest.fixture(scope="module")
def api():
    """The API's test client, identity and Kafka faked."""
    app = create_app(
        Settings.of(jwt_allow_dev_secret=True),
        make_plugin_manager(PLUGINS),
        identity=FakeIdentity(),
        publisher=FakePublisher(),
    )
    return app.test_client()


@pytest.fixture(scope="module")
def registry():
    return build_registry(make_plugin_manager(PLUGINS))


@pytest.fixture(scope="module")
def warehouse_settings(base_settings: Settings, registry):
    """The session's chDB warehouse, in the default database the pages name, every table
    and view made; a scratch database beside it for DDL."""
    settings = base_settings.replace(warehouse_database=DATABASE)
    warehouse = Warehouse.from_settings(settings)
    with warehouse.session() as client:
        warehouse.ensure_schema(client, registry, ledger.TABLES)
        client.command(f"CREATE DATABASE IF NOT EXISTS {SCRATCH}")
    yield settings
    with warehouse.session() as client:
        client.command(f"DROP DATABASE IF EXISTS {DATABASE}")
        client.command(f"DROP DATABASE IF EXISTS {SCRATCH}")


@pytest.fixture(scope="module")
def runner(warehouse_settings, api_url, auth_url):
    urls = {"127.0.0.1:8000": api_url, "localhost:8000": api_url, "127.0.0.1:8001": auth_url}
    with shell_runner(warehouse_settings, urls, PLUGINS) as shell:
        yield shell


# --- python --------------------------------------------------------------------------


def test_python_blocks_compile_with_the_oldest_supported_python() -> None:
    """``compile`` on Python 3.11 refuses what only later versions accept (a quote of the
    f-string's own kind inside it, for one); on a later Python, ``ast`` at 3.11 is the
    closest check when no python3.11 is installed."""
    sources = {block.id: block.text for block in BLOCKS if block.language == "python"}
    version = "{}.{}".format(*MINIMUM_PYTHON)
    interpreter = sys.executable if sys.version_info[:2] == MINIMUM_PYTHON else None
    interpreter = interpreter or shutil.which(f"python{version}")
    if interpreter is None:
        for name, source in sources.items():
            ast.parse(source, name, feature_version=MINIMUM_PYTHON)
        return
    check = (
        "import json, sys\nfor name, source in json.load(sys.stdin).items():\n"
        "    compile(source, name, 'exec')\n"
    )
    done = subprocess.run(
        [interpreter, "-c", check], input=json.dumps(sources), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


DRIVER = """
import json, sys
from pathlib import Path
blocks, module = json.load(sys.stdin), sys.argv[1]
shared, scripts = {"__name__": module}, []
for block in blocks:
    title = block["title"]
    if title:  # a file of the example package, run as that file
        path = Path(sys.argv[2]) / title
        namespace = {"__name__": title.removesuffix(".py").replace("/", "."), "__file__": str(path)}
    else:
        namespace = shared
    before = set(namespace)
    exec(compile(block["text"], block["id"], "exec"), namespace)
    for name in set(namespace) - before:
        if name.startswith("register_") and callable(namespace[name]):
            for item in namespace[name]():
                if type(item).__name__ == "TrackerScript":
                    scripts.append(item.source)
print(json.dumps(scripts))
"""


@pytest.mark.parametrize("page", pages_of("python"))
def test_python_blocks_run_in_order(page: str, api_url: str, tmp_path, base_settings) -> None:
    """A page's Python blocks run one after the other in one interpreter, as a reader
    pastes them (a file of the example package as that file); the hooks they define are
    called, and a tracker script they return is valid JavaScript."""
    blocks = [
        {"id": b.id, "title": b.title, "text": b.text.replace("http://127.0.0.1:8000", api_url)}
        for b in BLOCKS
        if b.page == page and claim(b)[0] == "python"
    ]
    env = subprocess_env(base_settings)
    env["PYTHONPATH"] = f"{ROOT}:{EXAMPLE}"
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "metrics")
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, PAGE_MODULE.get(page, "__main__"), str(EXAMPLE)],
        input=json.dumps(blocks),
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    for source in json.loads(done.stdout.splitlines()[-1]):
        node_check(tmp_path, f"(function (tracker) {{\n{source}\n}});\n")


# --- json ----------------------------------------------------------------------------


@pytest.mark.parametrize("block", claimed("json"))
def test_json_blocks(block: Block, api, registry) -> None:
    """Events and batches are accepted by the API; a section's ``data`` by one of its
    event types; a Kafka message is complete and its data valid; answers have the API's
    shape and codes."""
    value = orjson.loads(block.text)
    if isinstance(value, list):
        answer = api.post("/api/v1/events/batch", json=value)
        assert answer.status_code == 200 and answer.json["rejected"] == 0, answer.json
    elif "event" in value and "data" in value and "event_id" not in value:
        answer = api.post("/api/v1/events", json=value)
        assert answer.status_code == 202, answer.json
    elif "event_id" in value:
        assert missing_keys(value) == [] and envelope_error(value) is None
        registry[value["event"]].schema().load(value["data"])
    elif "error" in value:
        sources = "".join(path.read_text() for path in (ROOT / "core").rglob("*.py"))
        assert f'"{value["error"]}"' in sources, f"the API has no error {value['error']}"
        assert set(value) <= {"error", "message", "details", "known_events", "retry_after"}
        assert all(re.match(r"(data\.\w+|token|event)$", key) for key in value.get("details", {}))
    elif "results" in value:
        assert value["accepted"] + value["rejected"] == len(value["results"])
        for result in value["results"]:
            assert result["status"] == 202 and "event_id" in result or "error" in result
    elif "user_id" in value:  # the auth service's answer
        assert isinstance(value["user_id"], str | int) and isinstance(value["exp"], int)
    else:
        names = events_named(heading_of(block))
        assert names, f"{block.id}: whose data is this? its section names no event"
        statuses = [
            api.post("/api/v1/events", json={"event": name, "token": None, "data": value})
            for name in names
        ]
        assert any(s.status_code == 202 for s in statuses), [s.json for s in statuses]


# --- sql -----------------------------------------------------------------------------


def migrated_table(block: Block) -> str | None:
    """The table the page's next ``clickstream migrate`` names: whose migration this is."""
    page = (ROOT / block.page).read_text(encoding="utf-8").splitlines()[block.line :]
    found = re.search(r"clickstream migrate (\w+)", "\n".join(page))
    return found[1] if found else None


@pytest.mark.parametrize("block", claimed("sql"))
def test_sql_blocks(block: Block, warehouse_settings, registry) -> None:
    """Queries run read-only through ``clickstream sql`` in the warehouse's database;
    a CREATE TABLE runs in a scratch database (one ``clickstream ddl`` prints must be what
    it prints); a migration runs on a scratch copy of the table it migrates."""
    text = block.text.replace("{envelope_columns}", ENVELOPE_COLUMNS_DDL)
    keywords = {statement.keyword for statement in statements_of(text)}
    if keywords <= {"SELECT", "WITH"}:
        code, out, err = run_cli(["sql", text], "", warehouse_settings, PLUGINS)
        assert code == 0, err
        return
    if keywords == {"CREATE"}:
        printed = re.match(r"-- (\w+): ([\w, ]+?), from ", text)
        if printed:
            _, ddl, err = run_cli(["ddl", *printed[2].split(", ")], "", warehouse_settings, PLUGINS)
            statement = "\n".join(line for line in ddl.splitlines() if not line.startswith("--"))
            shown = "\n".join(line for line in text.splitlines() if not line.startswith("--"))
            assert shown.strip() == statement.strip(), "clickstream ddl prints another table"
        table = printed[1] if printed else "snippet_table"
        script = re.sub(r"\bclickstream\.", f"{SCRATCH}.", text)
        script = script.replace("{database}", SCRATCH).replace("{table}", table)
    else:
        table = migrated_table(block)
        assert table in registry.tables(), f"{block.id}: which table does this migrate?"
        create = registry.tables()[table].ddl.replace("{database}", SCRATCH)
        script = create.replace("{table}", table) + ";\n"
        script += text.replace("{database}", SCRATCH).replace("{table}", table)
    drop = f"DROP TABLE IF EXISTS {SCRATCH}.{table};\n"
    code, out, err = run_cli(["sql", "--write", drop + script], "", warehouse_settings, PLUGINS)
    assert code == 0, err


# --- shell ---------------------------------------------------------------------------


def cron_command(block: Block) -> str:
    fields = block.text.split(maxsplit=5)
    for value in fields[:5]:
        assert re.fullmatch(r"[\d*/,-]+", value), f"{block.id}: {value} is no cron field"
    return fields[5]


def prompted(block: Block) -> str:
    """The ``$ command`` lines of a block of output."""
    return "".join(line[2:] + "\n" for line in block.text.splitlines() if line.startswith("$ "))


@pytest.mark.parametrize(
    "block",
    [
        *claimed("sh-run"),
        *claimed("sh-live"),
        *claimed("sh-checked"),
        *claimed("cron"),
        *(param for param in claimed("text") if prompted(param.values[0])),
    ],
)
def test_every_command_is_real(block: Block) -> None:
    """Run or not, each command names what exists: make targets, scripts and what they
    take, ``clickstream`` subcommands and options, modules, packages, settings; so does
    a ``$ command`` shown with its output."""
    if block.language == "cron":
        text = cron_command(block)
    else:
        text = block.text if block.language == "sh" else prompted(block)
    found = commands(text)
    assert found, f"{block.id}: no command found"
    problems = [f"line {c.line}: {p}" for c in found for p in check_command(c)]
    assert problems == []


@pytest.mark.parametrize("page", pages_of("sh-run"))
def test_shell_blocks_run(page: str, runner) -> None:
    """A page's runnable shell blocks run in bash, in order (what one sets, the next has),
    each command succeeding; each curl request gets what the page says: success, or the
    status or error its comment shows."""
    failures = []
    for block in BLOCKS:
        if block.page != page or claim(block)[0] != "sh-run":
            continue
        if block.id in KNOWN_FAILURES:
            failures.append(f"known: {block.id}")
            continue
        result = runner.run(block)
        curls = [command for command in commands(block.text) if command.program == "curl"]
        wrong = [
            f"{c} got {status}"
            for c, status in zip(curls, result.statuses, strict=False)
            if not expected_status(c)(status)
        ]
        if result.code or wrong or len(curls) != len(result.statuses):
            failures.append(f"{block.id} exit {result.code} {wrong}\n{result.output}")
    assert all(failure.startswith("known: ") for failure in failures), "\n".join(failures)


# --- toml, js, html ------------------------------------------------------------------


@pytest.mark.parametrize("block", claimed("toml"))
def test_toml_blocks(block: Block) -> None:
    """TOML parses; a file of the example package is that file; an entry point is in the
    group clickstream loads."""
    document = tomllib.loads(block.text)
    if block.title:
        assert block.text == (EXAMPLE / block.title).read_text(encoding="utf-8")
    groups = document.get("project", {}).get("entry-points", {})
    assert set(groups) <= {ENTRY_POINT_GROUP}


def node_check(directory: Path, source: str) -> None:
    if NODE is None:
        pytest.skip("node is not installed: JavaScript is not checked")
    path = directory / "snippet.mjs"
    path.write_text(source)
    done = subprocess.run([NODE, "--check", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


TRACKER = bundle(build_registry(make_plugin_manager()))


@pytest.mark.parametrize("block", claimed("js"))
def test_js_blocks(block: Block, tmp_path, api_url) -> None:
    """JavaScript parses (as a module: top-level await); the tracker's functions it calls
    exist; a block that needs no browser runs in node against the API."""
    node_check(tmp_path, block.text)
    used = set(re.findall(r"\bclickstream\.(\w+)\(", block.text))
    assert {name for name in used if not re.search(rf"\b{name}\b\s*[:(]", TRACKER)} == set()
    if not used:
        script = tmp_path / "run.mjs"
        script.write_text(block.text.replace("http://127.0.0.1:8000", api_url))
        done = subprocess.run([NODE, str(script)], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.attributes: set[str] = set()

    def handle_starttag(self, tag, attrs) -> None:
        self.attributes |= {name for name, _ in attrs if name.startswith("data-")}


@pytest.mark.parametrize("block", claimed("html"))
def test_html_blocks(block: Block) -> None:
    """Each ``data-*`` attribute of a tracker snippet is one the tracker reads (what
    ``test_client_docs.py`` checks of the whole guide, here per block)."""
    tags = _Tags()
    tags.feed(block.text)
    for attribute in tags.attributes:
        camel = re.sub(r"-([a-z])", lambda m: m[1].upper(), attribute.removeprefix("data-"))
        assert camel in TRACKER, f"{attribute} is not read by the tracker"
