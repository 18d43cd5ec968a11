"""The processes a test session started: found by the tag they inherit, nobody else's.

Every process the session starts (pytester runs, CLI subprocesses, their QEMUs)
inherits :data:`TEST_TAG` from its environment, so a leak check finds what this
session left behind, even reparented, and never another session's processes.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

#: Environment variable holding this test session's tag (set by the suites' conftest.py).
TEST_TAG = "KHARNESS_TEST_TAG"
#: What a harness QEMU's command line looks like (it carries harness.nonce).
HARNESS_QEMU = r"qemu-system.*harness\.nonce"


def tagged_processes(pattern: str, tag: str) -> set[int]:
    """PIDs whose command line matches ``pattern`` and whose environment holds ``tag``.

    The environment is read from /proc/PID/environ, so a process is recognised
    after its parent died and it was reparented; other users' processes, or
    ones that exit while being read, are left out.
    """
    wanted = f"{TEST_TAG}={tag}".encode()
    regex = re.compile(pattern)
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            if not regex.search(cmdline.replace(b"\0", b" ").decode(errors="replace")):
                continue
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if wanted in environ.split(b"\0"):
            found.add(int(entry.name))
    return found


def harness_qemus() -> set[int]:
    """PIDs of harness QEMUs started by this test session (carrying its tag), nobody else's."""
    tag = os.environ.get(TEST_TAG)
    if not tag:
        raise RuntimeError(f"{TEST_TAG} is not set; the suite's conftest.py sets it")
    return tagged_processes(HARNESS_QEMU, tag)


def default_sigint() -> None:
    """preexec_fn: SIGINT as on a terminal, even when this suite runs as a background job.

    A shell starts background jobs with SIGINT ignored, Python keeps an ignored
    SIGINT ignored, and a test that sends SIGINT would then wait in vain.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
