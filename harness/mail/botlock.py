"""One watch bot per state directory: an flock on ``watch.lock`` beside its database."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path

from harness.errors import UserError

LOCKNAME = "watch.lock"


class BotLock:
    """``watch.lock`` beside the database, flocked for the bot's life: one bot per state.

    The kernel drops an flock when its holder dies, however it dies, so a
    lock left by a killed bot never blocks the next one; the file's text
    (pid, host, start time) only names the holder for the refusal.  The
    descriptor is not inherited (Python's default), so a child that outlives
    the bot holds nothing.
    """

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / LOCKNAME
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(self.fd)
            os.close(self.fd)
            raise UserError(
                f"another kharness watch uses {directory} ({holder}); stop it, or give this "
                "one its own --results-dir"
            ) from None
        me = {"pid": os.getpid(), "host": socket.gethostname(),
              "started": time.strftime("%Y-%m-%d %H:%M:%S %z")}  # fmt: skip
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, (json.dumps(me) + "\n").encode(), 0)

    def release(self) -> None:
        """Let the next bot start (also done by the kernel when this process dies)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _holder(fd: int) -> str:
    """'pid 123 on host, started at ...' from the lock file, as far as it says."""
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {data['pid']} on {data['host']}, started at {data['started']}"
    except (ValueError, KeyError, TypeError, OSError):
        return "its pid is not recorded"
