"""Every fenced block of the documentation, and what running one means: the collector, the
shell commands of an ``sh`` block, and a runner that executes such a block in bash with
``clickstream`` answered in-process (so a command costs milliseconds, not a Python start).

A block that nothing can run is exempted in the page itself, right before its fence:
``<!-- snippet: not run (why) -->``. ``tests/unit/test_docs_snippets.py`` claims every other
block for a runner; ``docs/testing.md`` describes the whole.
"""

from __future__ import annotations

import configparser
import functools
import io
import json
import os
import re
import shlex
import socket
import socketserver
import subprocess
import sys
import tempfile
import textwrap
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import chdir, contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted(
    [*(ROOT / "docs").glob("*.md"), ROOT / "README.md", *(ROOT / "examples").glob("*/README.md")]
)
FENCE = re.compile(r"^(?P<indent> *)```(?P<info>.*)$")
EXEMPTION = re.compile(r"^\s*<!--\s*snippet:(?P<body>.*?)-->\s*$")
NOT_RUN = re.compile(r"^\s*not run \((?P<reason>.*\S.*)\)\s*$")
#: The oldest Python the project supports (setup.cfg's python_requires).
_config = configparser.ConfigParser()
_config.read(ROOT / "setup.cfg")
MINIMUM_PYTHON = tuple(
    int(part) for part in _config["options"]["python_requires"].removeprefix(">=").split(".")
)


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language (``""`` unlabelled), its text."""

    page: str
    line: int
    language: str
    title: str | None
    text: str
    #: None without a ``<!-- snippet: ... -->`` comment; else its reason ("" if it gave none).
    exemption: str | None

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def blocks_of(path: Path) -> list[Block]:
    """The fenced blocks of one Markdown page, indented ones (in list items) included."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found, index = [], 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        info = opening["info"].strip()
        end = next(
            i for i in range(index + 1, len(lines)) if lines[i].strip() == "```"
        )  # an unclosed fence is a broken page: StopIteration says so
        body = textwrap.dedent("\n".join(lines[index + 1 : end]))
        title = re.search(r'title="([^"]*)"', info)
        previous = next((lines[i] for i in range(index - 1, -1, -1) if lines[i].strip()), "")
        comment = EXEMPTION.match(previous)
        exemption = None
        if comment:
            reason = NOT_RUN.match(comment["body"])
            exemption = reason["reason"].strip() if reason else ""
        found.append(
            Block(
                path.relative_to(ROOT).as_posix(),
                index + 1,
                info.split()[0] if info else "",
                title[1] if title else None,
                body + "\n",
                exemption,
            )
        )
        index = end + 1
    return found


def collect() -> list[Block]:
    """Every fenced block of docs/*.md, README.md and the examples' READMEs."""
    return [block for page in PAGES for block in blocks_of(page)]


# --- shell blocks: their commands -------------------------------------------------------

REDIRECTS = {">", ">>", "<", ">&", "&>", "<<", "<<<", "2>", "2>>"}
SEPARATORS = {"|", "||", "&&", ";", "(", ")", "&", ";;"}
ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.DOTALL)


@dataclass
class Command:
    """One simple command of a shell block: ``VAR=value ... program args``."""

    line: int  # in the block, 1-based
    words: list[str]
    env: dict[str, str] = field(default_factory=dict)
    #: the comment lines right after the command's logical line (often its output)
    comment: str = ""

    @property
    def program(self) -> str:
        return self.words[0] if self.words else ""

    def __str__(self) -> str:
        return shlex.join([*(f"{k}={v}" for k, v in self.env.items()), *self.words])


def logical_lines(text: str) -> Iterator[tuple[int, str, str]]:
    """(line, command text, comment lines after it) of a shell block: continued lines joined,
    multi-line quotes and here-documents kept with their command."""
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        start, current = index, lines[index]
        index += 1
        if not current.strip() or current.lstrip().startswith("#"):
            continue
        while True:
            if current.endswith("\\") and index < len(lines):
                current = current[:-1] + " " + lines[index].strip()
                index += 1
                continue
            try:
                shlex.split(current, comments=True)
            except ValueError:  # a quote still open: the command goes on
                if index >= len(lines):
                    raise
                current += "\n" + lines[index]
                index += 1
                continue
            break
        heredoc = re.search(r"<<-?\s*'?(\w+)'?", current)
        if heredoc:
            while index < len(lines) and lines[index].strip() != heredoc[1]:
                index += 1
            index += 1
        comments = []
        while index < len(lines) and lines[index].lstrip().startswith("#"):
            comments.append(lines[index].lstrip()[1:].strip())
            index += 1
        yield start + 1, current, "\n".join(comments)


def _simple(line: int, words: list[str], comment: str) -> Command | None:
    """A simple command of its words: leading assignments are its environment."""
    words, env = list(words), {}
    while words and ASSIGNMENT.match(words[0]):
        name, value = ASSIGNMENT.match(words[0]).groups()
        env[name] = value
        words.pop(0)
    if words and words[0] in ("do", "then", "else"):
        words.pop(0)
    if words in (["done"], ["fi"]) or not (words or env):
        return None
    return Command(line, words, env, comment)


def commands(text: str) -> list[Command]:
    """The simple commands of a shell block, in order, those inside ``$(...)`` included;
    redirections dropped, ``for``/``do``/``done`` unwrapped."""
    found: list[Command | None] = []
    for line, logical, comment in logical_lines(text):
        lexer = shlex.shlex(logical, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        tokens = list(lexer)
        current: list[str] = []
        in_for = False  # the words of `for NAME in ...;` are no command
        position = 0
        while position < len(tokens):
            token = tokens[position]
            position += 1
            if token in REDIRECTS:
                position += 1  # its target
                if current and current[-1].isdigit():
                    current.pop()  # the descriptor of 2>&1
            elif token.endswith("=$") and tokens[position : position + 1] == ["("]:
                found.append(_simple(line, [*current, token[:-1] + "$(...)"], comment))
                current, position = [], position + 1
            elif token in SEPARATORS:
                if not in_for:
                    found.append(_simple(line, current, comment))
                current, in_for = [], False
            else:
                in_for = in_for or (not current and token == "for")
                current.append(token)
        if not in_for:
            found.append(_simple(line, current, comment))
    return [command for command in found if command is not None]


def assigned_names(text: str) -> list[str]:
    """Variables a shell block sets at the top level (kept for the page's next blocks)."""
    return sorted(
        set(re.findall(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=", text, re.MULTILINE))
        | {
            name
            for match in re.findall(r"^export\s+(.*?)(?<!\\)$", text, re.MULTILINE | re.DOTALL)
            for name in re.findall(r"\b([A-Z_][A-Z0-9_]*)=", match)
        }
    )


# --- running a shell block --------------------------------------------------------------

#: The files a block presumes the reader has, made in the directory the block runs in.
PRESUMED_FILES = {"weekly.sql": "SELECT 1;\nSELECT count() FROM page_views\n"}

SHIM = """#!{python} -IS
import json, os, socket, sys
stdin = "" if sys.stdin.isatty() else sys.stdin.read()
link = socket.socket(socket.AF_UNIX)
link.connect({socket_path!r})
link.sendall(json.dumps({{"argv": sys.argv[1:], "cwd": os.getcwd(), "stdin": stdin}}).encode())
link.shutdown(socket.SHUT_WR)
answer = json.loads(b"".join(iter(lambda: link.recv(65536), b"")))
sys.stdout.write(answer["stdout"])
sys.stderr.write(answer["stderr"])
sys.exit(answer["code"])
"""

PRELUDE = """set -euo pipefail
[ -f "$SNIPPET_STATE" ] && source "$SNIPPET_STATE"
curl() {{ command curl --dump-header "$SNIPPET_CURL_LOG/$(date +%s%N)" "$@"; }}
# `jq .` is all the pages use: where jq is not installed, Python checks and prints the JSON.
command -v jq >/dev/null || jq() {{ python3 -m json.tool; }}
"""


def run_cli(argv: list[str], stdin: str, settings, plugins: tuple = ()) -> tuple[int, str, str]:
    """``clickstream ARGV`` in this process, with ``settings`` (instead of the environment's)
    and ``plugins`` registered beside the installed ones: (exit code, stdout, stderr)."""
    from core.host import plugin_manager
    from etl import cli

    out, err = io.StringIO(), io.StringIO()

    def manager(extra=(), load_entry_points=True):
        return plugin_manager.make_plugin_manager([*plugins, *extra], load_entry_points)

    with (
        redirect_stdout(out),
        redirect_stderr(err),
        mock.patch.object(sys, "stdin", io.StringIO(stdin)),
        mock.patch.object(cli, "make_plugin_manager", manager),
    ):
        try:
            args = cli.parser().parse_args(argv)
            code = args.run(settings, args)
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 2
        except Exception:
            traceback.print_exc()
            code = 1
    return code, out.getvalue(), err.getvalue()


@dataclass
class ShellResult:
    code: int
    output: str
    #: the HTTP status of each curl request, in the order they were sent
    statuses: list[int]


class ShellRunner:
    """Runs shell blocks in bash, page by page: variables a block sets are there for the
    page's next blocks, ``clickstream`` is answered by :func:`run_cli`, and the addresses
    the docs use (the API on 8000, the auth service on 8001) are replaced by ``urls``."""

    def __init__(self, settings, urls: dict[str, str], plugins: tuple = (), env=None) -> None:
        self.settings, self.urls, self.plugins = settings, urls, plugins
        self.env = env if env is not None else dict(os.environ)
        self.work = Path(tempfile.mkdtemp(prefix="clickstream-snippets-"))
        self._lock = threading.Lock()
        socket_path = str(self.work / "clickstream.sock")
        runner = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                request = json.loads(self.rfile.read())
                with runner._lock, chdir(request["cwd"]):
                    code, out, err = run_cli(
                        request["argv"], request["stdin"], runner.settings, runner.plugins
                    )
                self.wfile.write(json.dumps({"code": code, "stdout": out, "stderr": err}).encode())

        self.server = socketserver.UnixStreamServer(socket_path, Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        bin_dir = self.work / "bin"
        bin_dir.mkdir()
        shim = bin_dir / "clickstream"
        shim.write_text(SHIM.format(python=sys.executable, socket_path=socket_path))
        shim.chmod(0o755)
        self.bin_dir = bin_dir

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
        subprocess.run(["rm", "-rf", str(self.work)], check=False)

    def page_dir(self, page: str) -> Path:
        """Where a page's blocks run: the repository's folders linked in, ``plugin-rating``
        (writing-plugins.md works beside it) and the files readers are presumed to have."""
        directory = self.work / page.replace("/", "_")
        if not directory.exists():
            directory.mkdir()
            for entry in ROOT.iterdir():
                if entry.name not in (".git", "var"):
                    (directory / entry.name).symlink_to(entry)
            (directory / "plugin-rating").symlink_to(ROOT / "examples" / "plugin-rating")
            for name, content in PRESUMED_FILES.items():
                (directory / name).write_text(content)
            (directory / "tmp").mkdir()
        return directory

    def rewrite(self, text: str, directory: Path) -> str:
        for address, url in self.urls.items():
            text = re.sub(rf"(?:https?://)?{re.escape(address)}", url, text)
        return text.replace("/tmp/", f"{directory}/tmp/")

    def run(self, block: Block, timeout_s: float = 120) -> ShellResult:
        directory = self.page_dir(block.page)
        state = directory / "state.sh"
        log = Path(tempfile.mkdtemp(dir=self.work))
        names = assigned_names(block.text)
        epilogue = "".join(f'declare -p {name} >> "$SNIPPET_STATE"\n' for name in names)
        script = PRELUDE.format() + self.rewrite(block.text, directory) + epilogue
        env = {
            **self.env,
            "PATH": f"{self.bin_dir}:{self.env.get('PATH', '')}",
            "PYTHONPATH": str(ROOT),
            "PYTEST_ADDOPTS": "-p no:cacheprovider",
            # The example plugin's tests use none of this environment's pytest plugins
            # (schemathesis, hypothesis, ...), whose loading alone takes seconds.
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
            "SNIPPET_STATE": str(state),
            "SNIPPET_CURL_LOG": str(log),
        }
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=directory,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
        statuses = []
        for dump in sorted(log.iterdir(), key=lambda path: int(path.name)):
            lines = [line for line in dump.read_text().splitlines() if line.startswith("HTTP/")]
            statuses.append(int(lines[-1].split()[1]))
        return ShellResult(done.returncode, done.stdout + done.stderr, statuses)


@contextmanager
def shell_runner(settings, urls: dict[str, str], plugins: tuple = (), env=None):
    runner = ShellRunner(settings, urls, plugins, env)
    try:
        yield runner
    finally:
        runner.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def expected_status(command: Command) -> Callable[[int], bool]:
    """What the page says a curl command gets: the status its comment starts with, an error
    when its comment shows an error answer, else success."""
    stated = re.match(r"(\d{3})\b", command.comment)
    if stated:
        return lambda status: status == int(stated[1])
    if '"error"' in command.comment:
        return lambda status: 400 <= status < 500
    return lambda status: 200 <= status < 300


# --- shell commands: real, and runnable here ----------------------------------------------

UTILITIES = {"echo", "printf", "cat", "mkdir", "rm", "jq", "gzip", "true", "export", "cd"}
#: ``clickstream`` commands that need the real Kafka (integration tests run them).
NEEDS_KAFKA = (("etl", "--once"), ("deadletters", "requeue"), ("report", "quality"))


@functools.cache
def _declared_variables() -> set[str]:
    from core.config import declarations, env_name
    from core.host.plugin_manager import build_registry, make_plugin_manager

    plugin_settings = build_registry(make_plugin_manager()).settings
    return {d.variable for d in declarations()} | {env_name(name) for name in plugin_settings}


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def check_variable(name: str) -> str | None:
    """Why a variable a command sets is not real, or None: a ``CLICKSTREAM_*`` one is a
    declared setting (or read by a script or the tests), any other is read by a script."""
    named = re.compile(rf"\b{re.escape(name)}\b")
    scripts = "".join(_read(path) for path in (ROOT / "scripts").iterdir())
    if name.startswith("CLICKSTREAM_"):
        tests = "".join(_read(path) for path in (ROOT / "tests").rglob("*.py"))
        if name in _declared_variables() or named.search(scripts) or named.search(tests):
            return None
        return f"{name} is no setting (core/config.py declarations() or a plugin's)"
    return None if named.search(scripts) else f"{name} is read by no script in scripts/"


def _exists(relative: str) -> bool:
    return any((base / relative).exists() for base in (ROOT, ROOT / "examples"))


def check_command(command: Command) -> list[str]:
    """What is not real about a command: a make target, script, path, package, service,
    ``clickstream`` subcommand or option, module or variable that does not exist."""
    from etl import cli

    # A bare assignment sets a shell variable (API, TOKEN); one before a command is for it.
    checked = [n for n in command.env if command.words or n.startswith("CLICKSTREAM_")]
    problems = [problem for name in checked if (problem := check_variable(name))]
    words, program = command.words, command.program
    if program == "export":
        names = [ASSIGNMENT.match(word)[1] for word in words[1:] if ASSIGNMENT.match(word)]
        problems += [problem for name in names if (problem := check_variable(name))]
    elif program == "make":
        targets = set(re.findall(r"^([\w-]+):", _read(ROOT / "Makefile"), re.MULTILINE))
        problems += [f"make has no target {t}" for t in words[1:] if t not in targets]
    elif program == "clickstream":
        errors = io.StringIO()
        with redirect_stderr(errors):
            try:
                cli.parser().parse_args(words[1:])
            except SystemExit:
                problems.append(f"clickstream refuses {shlex.join(words[1:])}: {errors.getvalue()}")
    elif program.startswith(("scripts/", "./scripts/")):
        script = ROOT / program.removeprefix("./")
        if not os.access(script, os.X_OK):
            problems.append(f"{program} is not an executable script")
        usage = re.search(r"usage:\s*\S+ (.*)", _read(script))
        known = set(re.findall(r"[\w-]+", usage[1])) if usage else set()
        problems += [f"{program} takes no {word}" for word in words[1:] if word not in known]
    elif program in ("python", "python3"):
        if words[1:2] == ["-m"]:
            import importlib.util

            if importlib.util.find_spec(words[2]) is None:
                problems.append(f"no module {words[2]}")
        elif words[1:2] == ["-c"]:
            compile(words[2], "<python -c>", "exec")
        elif not (ROOT / words[1]).is_file():
            problems.append(f"no script {words[1]}")
    elif program == "curl":
        if not any(re.match(r"(https?://|\$API|localhost:)", word) for word in words):
            problems.append("curl without a URL")
    elif program == "pip":
        if words[1] == "install":
            paths = [word for word in words[2:] if word.startswith(("./", "/"))]
            problems += [f"no package at {path}" for path in paths if not _exists(path)]
    elif program == "apt-get":
        installer = _read(ROOT / "scripts" / "system-deps.sh")
        problems += [
            f"scripts/system-deps.sh does not install {package}"
            for package in words[2:]
            if not re.search(rf"\b{re.escape(package)}\b", installer)
        ]
    elif program == "docker":
        services = set(re.findall(r"^  ([\w-]+):$", _read(ROOT / "docker-compose.yml"), re.M))
        named = [word for word in words[4:] if not word.startswith("-")]
        if words[2] == "logs":
            problems += [
                f"docker-compose.yml has no service {s}" for s in named if s not in services
            ]
    elif program == "flock":
        inner = [word for word in words[1:] if not word.startswith("-")][1:]
        problems += check_command(Command(command.line, inner, {}, command.comment))
    elif program and program not in UTILITIES:
        problems.append(f"{program}: a command the snippet checks do not know")
    if program == "cd" and not words[1].startswith("/") and not _exists(words[1]):
        problems.append(f"no directory {words[1]}")
    return problems


def not_run_reason(command: Command, block_commands: list[Command]) -> str | None:
    """Why a command is not run by the tests (it starts or stops the stack, installs, serves
    until stopped, or runs a whole suite), or None."""
    program, words = command.program, command.words
    reasons = {
        "make": "make runs the stack, its installs or whole suites",
        "apt-get": "installs system packages",
        "docker": "Docker Compose runs the whole stack",
        "pip": "installs into the environment",
        "systemctl": "manages system services",
    }
    if program in reasons and not (program == "pip" and words[1:2] == ["show"]):
        return reasons[program]
    if program.startswith(("scripts/", "./scripts/")):
        return "starts or stops services"
    if program in ("python", "python3") and words[1:3] in (
        ["-m", "auth_service"],
        ["-m", "http.server"],
    ):
        return "serves until stopped"
    if program in ("python", "python3") and words[1:3] == ["-m", "pytest"]:
        inside_example = any(
            c.program == "cd" and _exists(f"examples/{c.words[1]}") for c in block_commands
        )
        return None if inside_example else "runs the test suite"
    if program == "clickstream" and words[1:] == ["etl"]:
        return "runs until stopped"
    if program == "cd" and words[1].startswith("/"):
        return "works in a directory of the reader's machine"
    return None


def needs_kafka(command: Command) -> bool:
    words = tuple(command.words[1:])
    return command.program == "clickstream" and any(words[: len(n)] == n for n in NEEDS_KAFKA)


def sh_mode(block: Block) -> tuple[str, str]:
    """How a shell block is covered: ("run", ""), ("live", "") on the real services, or
    ("checked", why it is not run)."""
    found = commands(block.text)
    reasons = sorted({reason for c in found if (reason := not_run_reason(c, found))})
    if reasons:
        return "checked", "; ".join(reasons)
    return ("live", "") if any(needs_kafka(c) for c in found) else ("run", "")
