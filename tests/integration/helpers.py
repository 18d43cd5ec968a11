"""Helpers shared by the integration tests (the fixtures live in conftest.py)."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GUEST_DATA = REPO / "tests" / "data" / "guest"
#: The kernel most integration tests boot: the default kernels.yaml's 6.12 entry.
DEBIAN_612 = '{package: "linux-image-6.12.*-amd64-unsigned", suite: bookworm-security}'


def harness_qemus() -> set[int]:
    """PIDs of QEMU processes started by a harness (they carry harness.nonce)."""
    out = subprocess.run(
        ["pgrep", "-f", "qemu-system.*harness.nonce"], capture_output=True, text=True, check=False
    ).stdout
    return {int(p) for p in out.split()}


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
