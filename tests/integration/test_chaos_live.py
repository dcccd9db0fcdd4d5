"""The chaos run's short mode (about two minutes) on its own private stack, in `make test`.

Random, overlapping faults from a random seed (printed, so a failure can be replayed with
``python -m chaos --short --seed N``); the run's checker must find nothing: every event
answered 202 stored exactly once in the raw tables, nothing refused stored, the quality
report agreeing.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.servers import ROOT, this_checkout

pytestmark = pytest.mark.integration


def test_the_short_chaos_run_loses_nothing_and_stores_nothing_twice():
    run = subprocess.run(
        [sys.executable, "-m", "chaos", "--short"],
        cwd=ROOT,
        env=this_checkout(dict(os.environ)),
        capture_output=True,
        text=True,
        timeout=900,
    )
    print(run.stdout)
    assert run.returncode == 0, f"{run.stdout[-4000:]}\n{run.stderr[-4000:]}"
    assert "| lost | 0 |" in run.stdout and "| stored twice | 0 |" in run.stdout
