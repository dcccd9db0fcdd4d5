"""gunicorn's workers count into one directory (``core.serve.multiprocess``)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from tests.fakes import sample


def test_gunicorn_workers_add_up_in_multiprocess_mode(tmp_path):
    """Two processes count into one directory; a scrape of either shows the sum."""
    script = textwrap.dedent(
        """
        import os, sys
        from core.serve import multiprocess
        multiprocess.enable()
        from core.api.metrics import ApiMetrics
        metrics = ApiMetrics()
        pid = os.fork()
        for _ in range(2 if pid == 0 else 1):
            metrics.event_done("element_click", 202)
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        multiprocess.worker_exited(pid)
        sys.stdout.write(metrics.render()[0].decode())
        """
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    (tmp_path / "counter_99999.db").write_bytes(b"stale")  # from an earlier run: removed
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert sample(out, "clickstream_events_total", event="element_click", status="202") == 3
    assert not (tmp_path / "counter_99999.db").exists()
