"""Integration fixtures: a throwaway project for pytest runs, and a leak check."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest

from harness.cache import cache_root
from tests.integration.helpers import REPO, harness_qemus


@pytest.fixture(autouse=True, scope="module")
def no_qemu_left_behind() -> Iterator[None]:
    """Every integration module must end with no QEMU of its own still running.

    Module scope, because some modules share one booted guest across tests;
    the function-level tests check their own QEMUs where it matters.
    """
    before = harness_qemus()
    yield
    left = harness_qemus() - before
    for pid in left:
        subprocess.run(["kill", "-9", str(pid)], check=False)
    assert not left, f"QEMU processes left behind: {sorted(left)}"


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A throwaway project: conftest, guest-tests/c with the shared headers.

    pytester points HOME at a temporary directory; the kernel cache must stay
    the real one or every test would download its kernels again.
    """
    monkeypatch.setenv("KHARNESS_CACHE", str(cache_root()))
    pytester.makeconftest('pytest_plugins = ["harness.pytest_plugin"]\n')
    pytester.makeini("[pytest]\njunit_logging = all\n")
    cdir = pytester.path / "guest-tests" / "c"
    cdir.mkdir(parents=True)
    for header in (REPO / "guest-tests" / "c").glob("*.h"):
        shutil.copy(header, cdir)
    return pytester
