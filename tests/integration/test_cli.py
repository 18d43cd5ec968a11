"""The CLI on real kernels: boot a shell command, and clean up on signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.cache import cache_root
from tests.integration.helpers import REPO, default_sigint, harness_qemus

pytestmark = pytest.mark.boot


def _env() -> dict[str, str]:
    return {**os.environ, "KHARNESS_CACHE": str(cache_root()), "PYTHONUNBUFFERED": "1"}


def _boot(tmp_path: Path, command: str) -> list[str]:
    """``kharness boot --kernel debian-6.12 --command COMMAND`` with results in tmp_path."""
    return [
        sys.executable,
        "-m",
        "harness",
        "boot",
        "--kernel",
        "debian-6.12",
        "--results-dir",
        str(tmp_path),
        "--command",
        command,
    ]


def test_boot_runs_a_command_in_the_guest(tmp_path: Path) -> None:
    proc = subprocess.run(
        _boot(tmp_path, "cat /proc/cmdline; cat /sys/devices/system/node/online; ls /opt/tests"),
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "harness.nonce=" in proc.stdout
    assert "0-1\n" in proc.stdout, "the default tests need two NUMA nodes"
    assert "uffd_api_unknown_feature" in proc.stdout
    assert "booted debian-6.12" in proc.stderr


def test_kernels_lists_and_errors_cleanly() -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "harness", "kernels"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ok.returncode == 0 and "debian-6.12" in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "harness", "kernels", "--kernel", "nope"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert bad.stderr.startswith("kharness: error: --kernel nope: not in")
    assert "Traceback" not in bad.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_the_guest(tmp_path: Path, sig: signal.Signals) -> None:
    before = harness_qemus()
    proc = subprocess.Popen(
        _boot(tmp_path, "sleep 300"),
        cwd=REPO,
        env=_env(),
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.startswith("booted "):
                break
        assert harness_qemus() - before, "the guest should be running now"
        proc.send_signal(sig)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    deadline = time.monotonic() + 5
    while harness_qemus() - before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not harness_qemus() - before
