"""Debian -dbg packages: which one, where vmlinux is inside, modules extracted on demand.

The real package is a gigabyte (linux-image-6.12.117+deb12-amd64-dbg: 985 MiB
download, 6.4 GiB unpacked), too much for the default suite.  Its layout was
read from the real package's control.tar (md5sums) and the head of its
data.tar: ``usr/lib/debug/boot/System.map-<release>``, then
``usr/lib/debug/boot/vmlinux-<release>`` (the second file), then
``usr/lib/debug/lib/modules/<release>/kernel/**.ko``.  Here a small package
with that layout is built with the real dpkg-deb and read back through the
provider's own code: extract vmlinux only, locate it, and extract a module's
.ko the first time a frame needs it, then symbolize through it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from harness.errors import KernelNotFound, run_checked
from harness.kernels.base import DebugInfo
from harness.kernels.debian import debug_package, extract_module, locate_debug
from harness.kernels.debian_archive import PackageEntry, extract_members
from harness.oops.frames import Frame
from harness.oops.symbolize import Symbolizer
from tests.unit.test_symbolize import SOURCE, _frame, _report

RELEASE = "6.12.117+deb12-amd64"


def _pkg(name: str, version: str = "6.12.117-1~deb12u1") -> PackageEntry:
    return PackageEntry(name, version, f"pool/{name}.deb", "0" * 64, 1, "", "http://m", "s")


def test_debug_package_is_the_release_dbg_of_the_same_version() -> None:
    entry = _pkg("linux-image-6.12.117+deb12-amd64-unsigned")
    index = [
        _pkg("linux-image-6.12.117+deb12-amd64-dbg", "6.12.115-1"),
        _pkg("linux-image-6.12.117+deb12-cloud-amd64-dbg"),
        _pkg("linux-image-6.12.117+deb12-amd64-dbg"),
    ]
    assert debug_package(entry, RELEASE, index) is index[2]
    with pytest.raises(KernelNotFound, match=r"no debug package linux-image-6\.12\.117"):
        debug_package(entry, RELEASE, index[:2])


@pytest.fixture(scope="module")
def dbg_deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A -dbg package laid out as Debian's, holding gcc -g objects of mm/sym.c."""
    assert shutil.which("dpkg-deb") and shutil.which("gcc")
    root = tmp_path_factory.mktemp("dbgsrc")
    (root / "mm").mkdir()
    (root / "mm" / "sym.c").write_text(SOURCE)
    pkg = root / "pkg"
    boot = pkg / "usr/lib/debug/boot"
    mods = pkg / f"usr/lib/debug/lib/modules/{RELEASE}/kernel/mm"
    boot.mkdir(parents=True)
    mods.mkdir(parents=True)
    (boot / f"System.map-{RELEASE}").write_text("0000000000001000 T outer\n")
    flags = ["-g", "-O2", "mm/sym.c"]
    subprocess.run(["gcc", *flags, "-o", str(boot / f"vmlinux-{RELEASE}")], cwd=root, check=True)
    subprocess.run(["gcc", *flags, "-c", "-o", str(mods / "sym-mod.ko")], cwd=root, check=True)
    (pkg / "DEBIAN").mkdir()
    (pkg / "DEBIAN" / "control").write_text(
        "Package: linux-image-6.12.117+deb12-amd64-dbg\nVersion: 6.12.117-1~deb12u1\n"
        "Architecture: amd64\nMaintainer: test <t@example.invalid>\nDescription: test\n"
    )
    deb = root / "dbg.deb"
    run_checked(["dpkg-deb", "-Zxz", "--build", str(pkg), str(deb)])
    return deb


def test_vmlinux_only_is_extracted_then_modules_on_demand(dbg_deb: Path, tmp_path: Path) -> None:
    root = tmp_path / "debug"
    extract_members(dbg_deb, root, [f"./usr/lib/debug/boot/vmlinux-{RELEASE}"], first_only=True)
    debug = locate_debug(root, RELEASE, dbg_deb)
    assert debug.vmlinux.is_file() and debug.archive == dbg_deb
    assert not list(root.rglob("*.ko")) and not list(root.rglob("System.map*"))
    extract_module(debug, "sym_mod")  # the kernel prints - as _
    assert [p.name for p in root.rglob("*.ko")] == ["sym-mod.ko"]


def test_module_frame_symbolized_through_the_kept_package(dbg_deb: Path, tmp_path: Path) -> None:
    root = tmp_path / "debug"
    extract_members(dbg_deb, root, [f"./usr/lib/debug/boot/vmlinux-{RELEASE}"], first_only=True)
    debug = locate_debug(root, RELEASE, dbg_deb)
    probe = tmp_path / "probe.ko"
    extract_members(dbg_deb, tmp_path / "probe", ["./*/sym-mod.ko"])
    shutil.copy(next((tmp_path / "probe").rglob("sym-mod.ko")), probe)
    ip = _frame(probe, "outer.cold", r"ud2", after=False, module="sym_mod")
    decoded = Symbolizer(debug).decode(_report(ip))  # type: ignore[arg-type]
    assert decoded.frames[0].where == "mm/sym.c:4", decoded.note


def test_missing_vmlinux_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(KernelNotFound, match="no usr/lib/debug/boot/vmlinux-"):
        locate_debug(tmp_path, RELEASE, None)
    assert isinstance(DebugInfo(tmp_path / "v"), DebugInfo)
    assert Frame("f", 1, 2).text == "f+0x1/0x2"
