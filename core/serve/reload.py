"""New settings for a running server: the file of ``CLICKSTREAM_*`` lines it re-reads on SIGHUP.

``make reload`` writes the caller's ``CLICKSTREAM_*`` variables with :func:`write`, then
sends the granian server SIGHUP; its reload hook (:func:`apply`) puts them in the server's
environment before granian respawns the workers, which fork from the server and so read
them. A file that does not parse, or settings that do not validate, change nothing: the
workers respawn with the settings they had, and the log says why.

``python -m core.serve.reload FILE COMMAND...`` runs COMMAND with FILE's settings: what
supervisord runs, so the ETL restarted by a reload, and a server restarted after a crash,
start with the latest settings too.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, MutableMapping, Sequence
from pathlib import Path

from core.config import PREFIX, ConfigError, Settings

log = logging.getLogger(__name__)


def variables(environ: Mapping[str, str]) -> dict[str, str]:
    """The ``CLICKSTREAM_*`` variables of ``environ``."""
    return {key: value for key, value in environ.items() if key.startswith(PREFIX)}


def write(path: Path, environ: Mapping[str, str]) -> None:
    """Atomically write ``environ``'s ``CLICKSTREAM_*`` variables, one ``NAME=value`` a line."""
    lines = []
    for key, value in sorted(variables(environ).items()):
        if "\n" in value:
            raise ValueError(f"{key}: a value of several lines cannot be written to {path}")
        lines.append(f"{key}={value}\n")
    partial = path.with_name(path.name + ".partial")
    partial.write_text("".join(lines))
    os.chmod(partial, 0o600)
    partial.replace(path)


def read(path: Path) -> dict[str, str]:
    """The ``NAME=value`` lines of ``path`` (blank lines and ``#`` comments skipped)."""
    found: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, equals, value = line.partition("=")
        if not equals or not key.startswith(PREFIX):
            raise ValueError(f"{path}:{number}: not a {PREFIX}NAME=value line")
        found[key] = value
    return found


def apply(path: Path, environ: MutableMapping[str, str] | None = None) -> bool:
    """Replace ``environ``'s ``CLICKSTREAM_*`` variables with those of ``path``, if valid."""
    environ = os.environ if environ is None else environ
    try:
        new = read(path)
        others = {key: value for key, value in environ.items() if not key.startswith(PREFIX)}
        Settings.from_env({**others, **new})
    except (OSError, ValueError, ConfigError) as error:
        log.error("api.reload_refused error=%s: the workers keep their settings", error)
        return False
    for key in variables(environ):
        if key not in new:
            del environ[key]
    environ.update(new)
    log.info("api.reload settings_file=%s variables=%d", path, len(new))
    return True


def main(argv: Sequence[str] | None = None) -> None:
    """Apply the settings file (if there is one), then become the command."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 2:
        sys.exit("usage: python -m core.serve.reload FILE COMMAND...")
    path, command = Path(args[0]), args[1:]
    if path.exists():
        apply(path)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
