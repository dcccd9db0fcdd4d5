"""chaos/faults.py: making the warehouse's directory read-only, as root, while it is written."""

from __future__ import annotations

import os
import subprocess
import threading

import pytest

from chaos import faults

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="bind mounts need root")


def test_the_directory_turns_read_only_even_while_a_process_writes_into_it(tmp_path):
    stop = threading.Event()

    def write() -> None:  # what the ETL does: open files for writing, all the time
        n = 0
        while not stop.is_set():
            try:
                with open(tmp_path / f"part-{n % 50}", "w") as out:
                    out.write("x")
            except OSError:
                pass
            n += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        for _ in range(5):
            faults._mount_read_only(str(tmp_path))
            with pytest.raises(OSError):
                (tmp_path / "new").write_text("refused")
            subprocess.run(["umount", "-l", str(tmp_path)], check=True)
        (tmp_path / "new").write_text("written again")
    finally:
        stop.set()
        writer.join()
