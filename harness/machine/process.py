"""Starting and stopping a guest's host process tree, for sure.

Both backends run a process (QEMU, or virtme-ng which runs QEMU and maybe
virtiofsd) whose stdout is the kernel console.  It is started in its own
process group, so that stopping it takes every helper it spawned too, and
with PR_SET_PDEATHSIG, so that a harness killed with SIGKILL does not leave
a guest behind.  The console is a plain pipe the caller reads until EOF.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def _child_setup() -> None:
    """Runs in the child: get SIGKILL if the harness dies without cleaning up."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def spawn(
    argv: list[str], stderr: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``argv`` in a new process group: (process, read end of its stdout).

    stderr goes to the file ``stderr`` (evidence of how the process died);
    stdin is a pipe nobody writes, so a console that reads stdin sees no EOF.
    """
    read_fd, write_fd = os.pipe()
    try:
        with stderr.open("ab") as err:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=write_fd,
                stderr=err,
                preexec_fn=_child_setup,
                start_new_session=True,
                env=env,
            )
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    return proc, read_fd


def terminate(proc: subprocess.Popen[bytes], grace: float = 3.0) -> None:
    """SIGTERM the process group, SIGKILL it after ``grace`` seconds, reap the leader."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if proc.poll() is not None and not _group_alive(proc.pid):
                break
            time.sleep(0.05)
        else:
            continue
        break
    with contextlib.suppress(Exception):
        proc.wait(timeout=5)
    if proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.close()


def _group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` is left."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
