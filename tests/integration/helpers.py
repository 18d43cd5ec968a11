"""Helpers shared by the integration tests (the fixtures live in conftest.py)."""

from __future__ import annotations

import os
import re
import shutil
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GUEST_DATA = REPO / "tests" / "data" / "guest"
#: The kernel most integration tests boot: the default kernels.yaml's 6.12 entry.
DEBIAN_612 = '{package: "linux-image-6.12.*-amd64-unsigned", suite: bookworm-security}'
#: Environment variable holding this test session's tag (set by tests/integration/conftest.py).
#: Everything the session starts inherits it: pytester runs, CLI subprocesses, their QEMUs.
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
        raise RuntimeError(f"{TEST_TAG} is not set; tests/integration/conftest.py sets it")
    return tagged_processes(HARNESS_QEMU, tag)


def add_tests(project: pytest.Pytester, *names: str) -> None:
    """Copy guest tests by name from tests/data/guest or guest-tests/c."""
    for name in names:
        src = GUEST_DATA / f"{name}.c"
        if not src.exists():
            src = REPO / "guest-tests" / "c" / f"{name}.c"
        shutil.copy(src, project.path / "guest-tests" / "c")


def write_kernels(project: pytest.Pytester, body: str) -> None:
    """Write the project's kernels.yaml."""
    (project.path / "kernels.yaml").write_text(textwrap.dedent(body))


def default_sigint() -> None:
    """preexec_fn: SIGINT as on a terminal, even when this suite runs as a background job.

    A shell starts background jobs with SIGINT ignored, Python keeps an ignored
    SIGINT ignored, and a test that sends SIGINT would then wait in vain.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
