"""gunicorn's settings (``core/serve/gunicorn_config.py``) come from the CLICKSTREAM_* settings."""

from __future__ import annotations

import runpy

from core.config import PROJECT_ROOT


def test_the_ops_listener_is_bound_by_gunicorn(monkeypatch, tmp_path) -> None:
    config = PROJECT_ROOT / "core" / "serve" / "gunicorn_config.py"
    # The config switches on multiprocess metrics; keep that inside this test.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    for name in ("CLICKSTREAM_API_HOST", "CLICKSTREAM_API_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("CLICKSTREAM_OPS_PORT", raising=False)
    assert runpy.run_path(str(config))["bind"] == ["127.0.0.1:8000"]
    monkeypatch.setenv("CLICKSTREAM_OPS_PORT", "9102")
    monkeypatch.setenv("CLICKSTREAM_OPS_HOST", "10.0.0.5")
    assert runpy.run_path(str(config))["bind"] == ["127.0.0.1:8000", "10.0.0.5:9102"]
