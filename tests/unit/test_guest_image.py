"""cpio layers and module resolution, checked against real tools and real modules."""

from __future__ import annotations

import lzma
import subprocess
from pathlib import Path

import pytest

from harness.errors import run_checked
from harness.guest.cpio import CpioArchive
from harness.guest.modules import module_depends, resolve_modules


def test_cpio_is_read_back_by_gnu_cpio(tmp_path: Path) -> None:
    a = CpioArchive()
    a.add_file("etc/x/hello", b"hello\n", 0o600)
    a.add_symlink("bin/sh", "busybox")
    a.add_dir("root/.ssh", 0o700)
    archive = tmp_path / "a.cpio"
    archive.write_bytes(a.getvalue())
    out = run_checked(["cpio", "-itv"], stdin=archive.open("rb")).stdout
    assert "etc/x/hello" in out and "bin/sh -> busybox" in out
    assert "drwx------" in out.split("root/.ssh")[0].splitlines()[-1]
    subprocess.run(["cpio", "-idm", "--quiet"], stdin=archive.open("rb"), cwd=tmp_path, check=True)
    assert (tmp_path / "etc/x/hello").read_bytes() == b"hello\n"
    assert oct((tmp_path / "etc/x/hello").stat().st_mode & 0o777) == "0o600"


def test_cpio_is_deterministic() -> None:
    def build() -> bytes:
        a = CpioArchive()
        a.add_file("a/b", b"x")
        return a.getvalue()

    assert build() == build()


def _fake_module(path: Path, depends: str, xz: bool) -> None:
    elf = b"\x7fELF" + b"\0" * 16 + b"license=GPL\0depends=" + depends.encode() + b"\0name=x\0"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(lzma.compress(elf) if xz else elf)


def test_dependencies_load_first_and_builtins_are_skipped(tmp_path: Path) -> None:
    mods = tmp_path / "lib/modules/6.99.0"
    _fake_module(mods / "kernel/drivers/net/virtio_net.ko.xz", "net_failover,virtio_ring", True)
    _fake_module(mods / "kernel/drivers/net/net_failover.ko.xz", "failover", True)
    _fake_module(mods / "kernel/net/core/failover.ko", "", False)
    _fake_module(mods / "kernel/drivers/virtio/virtio_ring.ko", "", False)
    (mods / "modules.builtin").write_text(
        "kernel/drivers/virtio/virtio_ring.ko\nkernel/drivers/virtio/virtio_pci.ko\n"
    )
    names = [m.name for m in resolve_modules(mods)]
    assert names == ["failover", "net_failover", "virtio_net"]
    assert all(m.data.startswith(b"\x7fELF") for m in resolve_modules(mods))


def test_no_modules_dir_means_nothing_to_load() -> None:
    assert resolve_modules(None) == []


def test_depends_field_of_a_real_module() -> None:
    found = sorted(Path("/lib/modules").glob("*/kernel/drivers/net/virtio_net.ko*"))
    if not found:
        pytest.skip("no installed kernel modules on this host to read")
    from harness.guest.modules import read_module

    assert "net_failover" in module_depends(read_module(found[0]))
