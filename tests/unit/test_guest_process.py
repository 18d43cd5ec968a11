"""A guest's process dies with the harness process that started it, even on SIGKILL.

What the dead-worker test checked about QEMU when it booted real kernels (the
killed xdist worker's QEMU must not outlive it): every backend starts its
guest through :func:`harness.machine.process.spawn`, so a child started by it
is checked here, in a second.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.paths import REPO

PARENT = """
import sys, time
from pathlib import Path
from harness.machine.process import spawn
guest = spawn(["sleep", "300"], Path(sys.argv[1]))
print(guest.proc.pid, flush=True)
time.sleep(300)
"""


def test_guest_process_dies_with_its_killed_parent(tmp_path: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(tmp_path / "stderr.txt")],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 5
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child), "the guest's process outlived the process that started it"
    finally:
        if parent.poll() is None:
            parent.kill()


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its new parent counts as dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
