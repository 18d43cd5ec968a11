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


def _debian_612_image() -> tuple[Path, Path]:
    """The cached Debian 6.12 image and its modules, as a user's own build would be."""
    from harness.config import load_kernels, select

    spec = select(load_kernels(REPO / "kernels.yaml"), ["debian-6.12"], REPO)[0]
    image = spec.source.resolve(lambda _m: None)
    assert image.modules_dir is not None
    return image.vmlinuz, image.modules_dir


def test_run_and_boot_an_image_with_no_kernels_yaml(tmp_path: Path) -> None:
    """``run --image`` and ``boot --image``: the kernel is the file, kernels.yaml is never read."""
    vmlinuz, modules = _debian_612_image()
    adhoc = ["--image", str(vmlinuz), "--modules", str(modules)]
    nowhere = ["--kernels-file", str(tmp_path / "no-such-kernels.yaml")]
    run = subprocess.run(
        [
            *(sys.executable, "-m", "harness", *nowhere, "run", *adhoc),
            *("--test", "uffd_api_unknown_feature", "--results-dir", str(tmp_path / "res")),
        ],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "PASSED" in run.stdout and "uffd_api_unknown_feature.c::image" in run.stdout
    result = tmp_path / "res" / "latest" / "image" / "uffd_api_unknown_feature" / "result.json"
    assert '"outcome": "pass"' in result.read_text()
    boot = subprocess.run(
        [
            *(sys.executable, "-m", "harness", *nowhere, "boot", *adhoc),
            *("--results-dir", str(tmp_path / "res"), "--", "uname", "-r"),
        ],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert boot.returncode == 0, boot.stderr[-2000:]
    assert boot.stdout.strip() == modules.name and "booted image" in boot.stderr


def test_an_ad_hoc_option_without_its_kernel_is_refused(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "run", "--modules", str(tmp_path)],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "--modules goes with --image PATH" in proc.stderr
    assert "Traceback" not in proc.stderr
