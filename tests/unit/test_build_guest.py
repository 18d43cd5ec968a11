"""A kernel built here has no modules: the guest image and /init must not need any."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.guest.image import build_initrd, modules_layer
from harness.guest.keys import GuestKeys
from harness.kernels.base import KernelImage
from harness.kernels.config_fragments import GUEST_FRAGMENT, read_fragment
from harness.testkinds.compile import CompileResult


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KHARNESS_CACHE", str(tmp_path / "cache"))


def test_no_modules_layer_for_a_kernel_without_modules(tmp_path: Path) -> None:
    image = KernelImage(tmp_path / "bzImage", None, "6.12.0", "built here")
    assert modules_layer(image) is None


def test_initrd_of_a_module_less_kernel_has_init_and_no_module_list(tmp_path: Path) -> None:
    if not Path("/bin/busybox").is_file() or not Path("/usr/sbin/dropbear").is_file():
        pytest.skip("busybox-static and dropbear-bin are needed (make setup installs them)")
    (tmp_path / "host_key").write_bytes(b"key")
    keys = GuestKeys(
        tmp_path / "host_key", "ssh-ed25519 AAAA", tmp_path / "client", "ssh-ed25519 BBBB"
    )
    image = KernelImage(tmp_path / "bzImage", None, None, "built here")
    initrd = build_initrd(image, [CompileResult("t", None, "")], keys, tmp_path / "initrd.img")
    listing = subprocess.run(
        ["cpio", "-it"], stdin=initrd.open("rb"), capture_output=True, text=True, check=False
    ).stdout.split()
    assert "init" in listing and "bin/dropbear" in listing
    assert not any(name.startswith("lib/harness-modules") for name in listing)
    assert "etc/harness/modules" not in listing


def test_guest_fragment_builds_in_what_init_would_otherwise_load() -> None:
    values = dict(read_fragment(GUEST_FRAGMENT).values)
    for option in (
        "VIRTIO_PCI",
        "VIRTIO_NET",
        "DEVTMPFS",
        "BLK_DEV_INITRD",
        "BINFMT_SCRIPT",
        "SERIAL_8250_CONSOLE",
        "UNIX",
        "INET",
        "TMPFS",
        "PROC_SYSCTL",
    ):
        assert values[f"CONFIG_{option}"] == "y", option
