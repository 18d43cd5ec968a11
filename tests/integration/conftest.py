"""Integration fixtures: a throwaway project for pytest runs, and a leak check."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.cache import cache_root
from tests.integration.helpers import REPO, TEST_TAG, harness_qemus
from tests.integration.selftest_history import History, selftest_history


@pytest.fixture(autouse=True, scope="session")
def session_tag() -> Iterator[str]:
    """A tag in os.environ that everything this session starts inherits.

    pytester runs, CLI subprocesses and the QEMUs they spawn carry it, so the
    leak check looks at this session's QEMUs only, never at those of another
    harness run on the same machine.
    """
    old = os.environ.get(TEST_TAG)
    tag = os.environ[TEST_TAG] = uuid.uuid4().hex
    yield tag
    if old is None:
        os.environ.pop(TEST_TAG, None)
    else:
        os.environ[TEST_TAG] = old


@pytest.fixture(autouse=True, scope="module")
def no_qemu_left_behind(session_tag: str) -> Iterator[None]:
    """Every integration module must end with no QEMU of its own still running.

    Module scope, because some modules share one booted guest across tests;
    the function-level tests check their own QEMUs where it matters.  Only
    QEMUs of this session (see :func:`session_tag`) are looked at or killed.
    """
    before = harness_qemus()
    yield
    left = harness_qemus() - before
    for pid in left:
        subprocess.run(["kill", "-9", str(pid)], check=False)
    assert not left, f"QEMU processes left behind: {sorted(left)}"


@pytest.fixture(scope="session")
def kernel_cache() -> Path:
    """The real kernel cache, read before any pytester points HOME elsewhere.

    Session scope makes it resolve before the function-scoped ``pytester``
    fixture sets HOME to a temporary directory (read inside ``project`` it
    named a fresh cache per test: a download or a full kernel build each).
    """
    return cache_root()


@pytest.fixture
def project(
    kernel_cache: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> pytest.Pytester:
    """A throwaway project: conftest, guest-tests/c with the shared headers.

    pytester points HOME at a temporary directory; the kernel cache must stay
    the real one or every test would download its kernels again.
    """
    monkeypatch.setenv("KHARNESS_CACHE", str(kernel_cache))
    # runpytest_subprocess runs this checkout's harness, whichever one is installed
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    )
    pytester.makeconftest('pytest_plugins = ["harness.plugin.hooks"]\n')
    pytester.makeini("[pytest]\njunit_logging = all\n")
    cdir = pytester.path / "guest-tests" / "c"
    cdir.mkdir(parents=True)
    for header in (REPO / "guest-tests" / "c").glob("*.h"):
        shutil.copy(header, cdir)
    return pytester


@pytest.fixture(scope="session")
def history() -> History:
    """The self-test kernel history (see :func:`selftest_history`), shared by the
    self-test, bisect and mailing-list modules: one fixture, registered here so
    no module has to import it by name."""
    return selftest_history()
