"""supervisord's configuration for a stack, and how the stack's processes are recognised."""

from __future__ import annotations

import configparser
import subprocess
import sys
import time
from pathlib import Path

from core.config import Settings
from core.serve import stack


def parsed(text: str) -> configparser.RawConfigParser:
    config = configparser.RawConfigParser()
    config.read_string(text)
    return config


def test_the_programs_restart_with_backoff_and_stop_as_a_group(tmp_path) -> None:
    config = parsed(stack.render_config(stack.Stack(var_dir=tmp_path), Settings()))
    for name, command in (("api", "-m core.serve"), ("etl", "-m etl.cli etl")):
        program = config[f"program:{name}"]
        launch = f"{sys.executable} -m core.serve.reload {tmp_path}/run/api.env {sys.executable}"
        assert program["command"] == f"{launch} {command}"
        assert program["autorestart"] == "true"
        assert int(program["startretries"]) > 1
        assert program["stopasgroup"] == program["killasgroup"] == "true"
        assert program["stdout_logfile"] == str(tmp_path / "log" / f"{name}.log")
    assert config["unix_http_server"]["file"] == str(tmp_path / "run" / "supervisord.sock")
    assert config["supervisorctl"]["serverurl"] == f"unix://{tmp_path}/run/supervisord.sock"
    assert config["supervisord"]["pidfile"] == str(tmp_path / "run" / "supervisord.pid")


def test_the_etl_is_given_time_to_finish_its_pass() -> None:
    settings = Settings.of(etl_session_timeout_s=45, etl_replay_timeout_s=30)
    config = parsed(stack.render_config(stack.Stack(var_dir=Path("/v")), settings))
    assert int(config["program:etl"]["stopwaitsecs"]) == stack.etl_stop_wait_s(settings) == 135
    assert int(config["program:api"]["stopwaitsecs"]) < 135


def test_supervisord_accepts_the_rendered_configuration(tmp_path) -> None:
    """supervisord's own parser reads the file (it refuses unknown options)."""
    from supervisor.options import ServerOptions

    (tmp_path / "log").mkdir()
    (tmp_path / "run").mkdir()
    path = tmp_path / "run" / "supervisord.conf"
    path.write_text(stack.render_config(stack.Stack(var_dir=tmp_path), Settings()))
    options = ServerOptions()
    options.realize(["-c", str(path)])
    assert sorted(group.name for group in options.process_group_configs) == ["api", "etl"]


def test_the_environment_marks_the_stack_and_names_the_settings_file(tmp_path) -> None:
    env = stack.environment(stack.Stack(var_dir=tmp_path), {"PATH": "/bin"})
    assert env[stack.MARKER] == str(tmp_path)
    assert env["CLICKSTREAM_API_SETTINGS_FILE"] == str(tmp_path / "run" / "api.env")
    assert env["PATH"] == "/bin"
    assert env["PYTHONPATH"].split(":")[0] == str(stack.PROJECT_ROOT)


def test_members_are_found_by_environment_and_by_process_title(tmp_path) -> None:
    """A marked process and one titled like a stack's granian worker are members; a process
    of another stack (a longer var directory with the same start) is not."""
    mine = stack.Stack(var_dir=tmp_path / "v")
    title = stack.process_title({stack.MARKER: str(mine.var_dir)})
    other = stack.process_title({stack.MARKER: f"{mine.var_dir}2"})
    sleep = "import sys, time; time.sleep(60)"
    marked = subprocess.Popen([sys.executable, "-c", sleep], env={stack.MARKER: str(mine.var_dir)})
    titled = subprocess.Popen(["bash", "-c", f"exec -a '{title} worker-1' sleep 60"])
    stranger = subprocess.Popen(["bash", "-c", f"exec -a '{other} worker-1' sleep 60"])
    try:
        time.sleep(0.5)
        assert {process.pid for process in stack.members(mine)} == {marked.pid, titled.pid}
    finally:
        for process in (marked, titled, stranger):
            process.kill()
            process.wait()
    assert stack.members(mine) == []


def test_no_process_title_outside_a_stack() -> None:
    assert stack.process_title({}) is None
