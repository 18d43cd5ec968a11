"""Starting and stopping a guest's host process tree, for sure.

Both backends run a process (QEMU, or virtme-ng which runs QEMU and maybe
virtiofsd) whose stdout is the kernel console.  It is started in its own
process group, so that stopping it takes every helper it spawned too, and
with PR_SET_PDEATHSIG, so that a harness killed with SIGKILL does not leave
a guest behind.  The console is a plain pipe the caller reads until EOF;
stderr is a second pipe drained into a file in the boot directory (a pipe,
not the file itself: QEMU reopens /proc/self/fd/2 with O_TRUNC for virtme's
script port, which on a regular file would overwrite what came before).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def on_parent_death(sig: int) -> Callable[[], None]:
    """A ``preexec_fn``: the child gets ``sig`` when its parent dies, even by SIGKILL.

    SIGKILL for a guest (nothing to clean up in QEMU); SIGTERM for a harness
    child, which then stops its own guests (:mod:`harness.interrupts`).
    """

    def setup() -> None:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, sig)

    return setup


_child_setup = on_parent_death(signal.SIGKILL)  # a guest's: get SIGKILL if the harness dies


@dataclass
class GuestProcess:
    """A started guest process: the process, its console pipe, its stderr drain."""

    proc: subprocess.Popen[bytes]
    console_fd: int  # read end of stdout; the ConsoleWatcher owns and closes it
    stderr: Path
    _drain: threading.Thread

    def stderr_bytes(self, wait: float = 2.0) -> bytes:
        """Everything written to stderr so far (after the process ended: all of it)."""
        if self.proc.poll() is not None:
            self._drain.join(wait)
        return self.stderr.read_bytes() if self.stderr.is_file() else b""

    def terminate(self, grace: float = 3.0) -> None:
        """Stop the whole group for sure (see :func:`terminate`) and finish the drain."""
        terminate(self.proc, grace)
        self._drain.join(5)


def spawn(argv: list[str], stderr: Path, env: dict[str, str] | None = None) -> GuestProcess:
    """Start ``argv`` in a new process group with stdout and stderr on pipes.

    stdin is a pipe nobody writes, so a stdio chardev sees no terminal and no EOF.
    """
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=out_w,
            stderr=err_w,
            preexec_fn=_child_setup,
            start_new_session=True,
            env=env,
        )
    except BaseException:
        os.close(out_r)
        os.close(err_r)
        raise
    finally:
        os.close(out_w)
        os.close(err_w)
    return GuestProcess(proc, out_r, stderr, _drain_to_file(err_r, stderr))


def _drain_to_file(fd: int, path: Path) -> threading.Thread:
    """Copy a pipe into ``path`` until EOF, in a thread."""

    def pump() -> None:
        with path.open("ab") as out:
            while True:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                out.write(chunk)
                out.flush()
        with contextlib.suppress(OSError):
            os.close(fd)

    thread = threading.Thread(target=pump, name=f"stderr:{path.name}", daemon=True)
    thread.start()
    return thread


def terminate(proc: subprocess.Popen[bytes], grace: float = 3.0) -> None:
    """SIGTERM the process group, SIGKILL it after ``grace`` seconds, reap the leader.

    The one way the harness stops a process group (guests, MCP jobs, the bot's
    children, make).  ``grace`` 0: SIGKILL at once, for a group with nothing
    to clean up (a build's compilers); the group is still waited for, up to
    3 s, so nothing of it is left when this returns.
    """
    signals = (signal.SIGTERM, signal.SIGKILL) if grace > 0 else (signal.SIGKILL,)
    for sig in signals:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        deadline = time.monotonic() + (grace if sig == signal.SIGTERM else max(grace, 3.0))
        while time.monotonic() < deadline:
            if proc.poll() is not None and not alive(proc.pid, group=True):
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


def alive(pid: int, group: bool = False) -> bool:
    """Whether process ``pid`` is left (``group``: any process of the group ``pid``); another
    user's process counts as alive, and is not ours to judge."""
    try:
        (os.killpg if group else os.kill)(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
