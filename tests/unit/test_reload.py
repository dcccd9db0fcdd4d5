"""The settings file of a reload: written from an environment, applied only when valid."""

from __future__ import annotations

from core.serve import reload


def test_a_written_file_reads_back_its_clickstream_variables(tmp_path) -> None:
    path = tmp_path / "api.env"
    reload.write(path, {"CLICKSTREAM_API_WORKERS": "3", "HOME": "/root", "CLICKSTREAM_X": "a=b"})
    assert reload.read(path) == {"CLICKSTREAM_API_WORKERS": "3", "CLICKSTREAM_X": "a=b"}
    assert path.stat().st_mode & 0o777 == 0o600


def test_applying_replaces_every_clickstream_variable(tmp_path) -> None:
    path = tmp_path / "api.env"
    path.write_text("# new settings\nCLICKSTREAM_LOG_LEVEL=DEBUG\n\n")
    environ = {"CLICKSTREAM_LOG_LEVEL": "INFO", "CLICKSTREAM_API_THREADS": "4", "PATH": "/bin"}
    assert reload.apply(path, environ)
    assert environ == {"CLICKSTREAM_LOG_LEVEL": "DEBUG", "PATH": "/bin"}


def test_invalid_settings_change_nothing(tmp_path) -> None:
    path = tmp_path / "api.env"
    path.write_text("CLICKSTREAM_API_WORKERS=none\n")
    environ = {"CLICKSTREAM_API_WORKERS": "2"}
    assert not reload.apply(path, environ)
    assert environ == {"CLICKSTREAM_API_WORKERS": "2"}


def test_a_line_that_is_no_setting_changes_nothing(tmp_path) -> None:
    path = tmp_path / "api.env"
    path.write_text("PATH=/tmp\n")
    environ = {"CLICKSTREAM_API_WORKERS": "2"}
    assert not reload.apply(path, environ)
    assert not reload.apply(tmp_path / "missing.env", environ)
    assert environ == {"CLICKSTREAM_API_WORKERS": "2"}


def test_a_command_runs_with_the_files_settings(tmp_path) -> None:
    import subprocess
    import sys

    path = tmp_path / "api.env"
    path.write_text("CLICKSTREAM_LOG_LEVEL=DEBUG\n")
    show = (
        "import os; print(os.environ.get('CLICKSTREAM_LOG_LEVEL'), 'CLICKSTREAM_X' in os.environ)"
    )
    for file, expected in ((path, "DEBUG False"), (tmp_path / "none.env", "INFO True")):
        ran = subprocess.run(
            [sys.executable, "-m", "core.serve.reload", str(file), sys.executable, "-c", show],
            env={"CLICKSTREAM_LOG_LEVEL": "INFO", "CLICKSTREAM_X": "1", "PATH": "/usr/bin"},
            capture_output=True,
            text=True,
            cwd=reload.__file__.rsplit("/core/", 1)[0],
        )
        assert ran.stdout.strip() == expected, ran.stderr
