"""Plumbing fixtures: a throwaway project whose kernels are replayed guests.

The tests here exercise pytest, xdist, progress, reports and compare through
the real plugin, in a pytest subprocess, exactly as a user runs them; only
the kernel is replayed (tests/support/replay, scenarios in tests/data/replay).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.cache import cache_root
from tests.support.mailinglist import PublicInbox, fake_git_tree, served_inbox
from tests.support.paths import REPO
from tests.support.processes import TEST_TAG, harness_qemus


@pytest.fixture(autouse=True, scope="session")
def session_tag() -> Iterator[str]:
    """A tag every process this session starts inherits (see tests/integration/conftest.py)."""
    old = os.environ.get(TEST_TAG)
    tag = os.environ[TEST_TAG] = uuid.uuid4().hex
    yield tag
    if old is None:
        os.environ.pop(TEST_TAG, None)
    else:
        os.environ[TEST_TAG] = old


@pytest.fixture(autouse=True)
def no_qemu_left_behind(session_tag: str) -> Iterator[None]:
    """A replayed run boots nothing: no QEMU of this session may appear, let alone stay."""
    before = harness_qemus()
    yield
    left = harness_qemus() - before
    for pid in left:
        subprocess.run(["kill", "-9", str(pid)], check=False)
    assert not left, f"QEMU processes started by a replayed run: {sorted(left)}"


@pytest.fixture(scope="session")
def kernel_cache() -> Path:
    """The real kernel cache (the Debian index), read before pytester moves HOME."""
    return cache_root()


@pytest.fixture
def project(
    kernel_cache: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> Iterator[pytest.Pytester]:
    """A throwaway project loading the replay plugin; its temporary files must not outlive it.

    TMPDIR points into the project, and must be empty again after the test:
    a run that leaves a scratch directory behind fails here.
    """
    monkeypatch.setenv("KHARNESS_CACHE", str(kernel_cache))
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    )
    # short: unix sockets made in it must fit in sun_path
    scratch = Path(tempfile.mkdtemp(prefix="kh-plumbing-"))
    monkeypatch.setenv("TMPDIR", str(scratch))
    pytester.makeconftest(
        'pytest_plugins = ["harness.plugin.hooks", "tests.support.replay.plugin"]\n'
    )
    pytester.makeini("[pytest]\njunit_logging = all\n")
    cdir = pytester.path / "guest-tests" / "c"
    cdir.mkdir(parents=True)
    for header in (REPO / "guest-tests" / "c").glob("*.h"):
        shutil.copy(header, cdir)
    yield pytester
    left = sorted(p.name for p in scratch.iterdir())
    shutil.rmtree(scratch)
    assert not left, f"temporary files left behind: {left}"


@pytest.fixture
def inbox(tmp_path: Path) -> Iterator[PublicInbox]:
    """A real list served on 127.0.0.1 (stopped after the test): the bot's plumbing tests'."""
    yield from served_inbox(tmp_path)


@pytest.fixture
def fake_tree(tmp_path: Path) -> Path:
    """A fake kernel tree as a git repository, two commits a series can be made of."""
    return fake_git_tree(tmp_path)
