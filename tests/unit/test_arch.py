"""Architectures as data: the table, the image check, QEMU's argv, the toolchain, KCIDB."""

from __future__ import annotations

import gzip
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from harness.arch import ARCHES, ARM64, X86_64, MagicKey, by_name, host
from harness.config import check_host_tools, load_kernels, select
from harness.errors import ConfigError
from harness.guest.keys import GuestKeys
from harness.guest.userland import base_suite, closure, newest
from harness.kernels import debian_archive as archive
from harness.kernels.base import KernelImage
from harness.kernels.build import BuildSource
from harness.kernels.debian import newest_match
from harness.kernels.image import image_kind, kernel_image_problem, unpack_zboot
from harness.kernels.kbuild import Toolchain
from harness.machine.accel import Accel, AccelChoice, choose
from harness.machine.base import BootFiles, GuestPayload, GuestShape, MachineConfig
from harness.machine.qemu import qemu_command
from harness.reporters import kcidb
from harness.results.records import KernelRecord, RunSummary
from harness.testkinds.compile import compile_test

DATA = Path(__file__).resolve().parents[1] / "data" / "arch"
ARM64_HEAD = DATA / "debian-6.12-arm64-Image.head"
X86_HEAD = DATA / "debian-6.12-amd64-bzImage.head"


def test_every_row_is_complete_and_names_resolve() -> None:
    assert set(ARCHES) == {"x86_64", "arm64"}
    assert by_name("aarch64") is ARM64 and by_name("amd64") is X86_64
    assert by_name("riscv64") is None
    assert host() is X86_64  # this machine; the default arch of kernels.yaml
    assert ARM64.console == "ttyAMA0" and X86_64.console == "ttyS0"
    assert ARM64.magic_key is MagicKey.SERIAL_BREAK
    # from an x86 host arm64 is cross-built, x86_64 natively
    assert ARM64.cc == "aarch64-linux-gnu-gcc" and X86_64.cc == "gcc"


def test_real_image_headers_are_told_apart(tmp_path: Path) -> None:
    assert image_kind(ARM64_HEAD.read_bytes()).arch is ARM64
    assert image_kind(X86_HEAD.read_bytes()).arch is X86_64
    assert kernel_image_problem(ARM64_HEAD, ARM64) is None
    assert kernel_image_problem(X86_HEAD, X86_64) is None
    wrong = kernel_image_problem(ARM64_HEAD, X86_64)
    assert wrong is not None and "arm64 kernel (Image)" in wrong and "arch: arm64" in wrong
    wrong = kernel_image_problem(X86_HEAD, ARM64)
    assert wrong is not None and "x86_64 kernel (bzImage)" in wrong and "arch: x86_64" in wrong


def _zboot(payload: bytes, method: bytes) -> bytes:
    """An EFI zboot file as the kernel's zboot-header.S lays it out (header fields only)."""
    head = bytearray(0x40)
    head[0:2], head[4:8] = b"MZ", b"zimg"
    struct.pack_into("<II", head, 8, 0x40, len(payload))
    head[0x18 : 0x18 + len(method)] = method
    return bytes(head) + payload


def test_zboot_is_unpacked_to_the_image_inside() -> None:
    image = ARM64_HEAD.read_bytes() + b"rest of the kernel"
    packed = _zboot(gzip.compress(image), b"gzip")
    assert image_kind(packed + b"\0" * 0x240).form == "zboot"
    assert unpack_zboot(packed, Path("vmlinuz")) == image


def test_qemu_argv_for_an_arm64_guest() -> None:
    keys = GuestKeys(Path("/k/host"), "ssh-ed25519 AAAA", Path("/k/client"), "ssh-ed25519 BBBB")
    kernel = KernelImage(Path("/k/Image"), None, None, "test")
    payload = GuestPayload(kernel, (), keys, ARM64)
    kvm = AccelChoice(Accel.KVM, "asked for")
    cfg = MachineConfig(
        payload, BootFiles("/opt/tests", Path("/k/i")), kvm, GuestShape(numa_nodes=2)
    )
    argv = qemu_command(cfg, 2222, "n")
    after = {a: argv[i + 1] for i, a in enumerate(argv[:-1]) if a.startswith("-")}
    assert argv[0] == "qemu-system-aarch64"
    assert after["-machine"].startswith("virt") and after["-cpu"] == "cortex-a57"
    assert after["-accel"] == "tcg", "KVM never runs another architecture's guest"
    assert after["-append"].startswith("console=ttyAMA0,115200 ")
    assert "mux=on" in after["-chardev"], "the serial break (sysrq) goes through the mux"
    assert argv.count("-numa") == 2


def test_auto_accel_is_tcg_for_a_foreign_guest() -> None:
    for requested in Accel:
        choice = choose(requested, ARM64)
        assert choice.accel is Accel.TCG and "arm64" in choice.reason


def test_cross_toolchain_make_line(tmp_path: Path) -> None:
    argv = Toolchain(2, tmp_path, (), ARM64).argv(Path("/src"), Path("/out"), ("Image",))
    assert "ARCH=arm64" in argv and "CROSS_COMPILE=aarch64-linux-gnu-" in argv
    assert "CC=ccache aarch64-linux-gnu-gcc" in argv and "HOSTCC=ccache gcc" in argv
    native = Toolchain(2, None, (), X86_64).argv(Path("/src"), Path("/out"), ("bzImage",))
    assert not any(a.startswith(("ARCH=", "CROSS_COMPILE=")) for a in native)


@pytest.mark.skipif(not shutil.which("aarch64-linux-gnu-gcc"), reason="ci/bootstrap.sh installs it")
def test_reproducer_is_cross_compiled_static(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("KHARNESS_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "hello.c"
    source.write_text('#include <stdio.h>\nint main(void) { puts("hi"); return 0; }\n')
    arm = compile_test(source, ARM64)
    native = compile_test(source, X86_64)
    assert arm.ok and native.ok and arm.binary != native.binary, "cached per architecture"
    head = arm.binary.read_bytes()[:20]  # type: ignore[union-attr]
    assert struct.unpack_from("<H", head, 18)[0] == 183, "EM_AARCH64"
    info = subprocess.run(["file", str(arm.binary)], capture_output=True, text=True).stdout
    assert "statically linked" in info


def _yaml(tmp_path: Path, body: str) -> str:
    path = tmp_path / "kernels.yaml"
    path.write_text("kernels:\n" + body)
    with pytest.raises(ConfigError) as err:
        load_kernels(path)
    return str(err.value)


def test_bad_arch_input_is_one_clear_message(tmp_path: Path) -> None:
    shutil.copy(ARM64_HEAD, tmp_path / "Image")
    shutil.copy(X86_HEAD, tmp_path / "bzImage")
    text = _yaml(
        tmp_path,
        "  - {name: a, arch: x86_64, image: Image}\n"
        "  - {name: b, arch: arm64, image: bzImage}\n"
        "  - {name: c, arch: arm64, debian: linux-image-6.12.*-amd64-unsigned}\n"
        "  - {name: d, arch: sparc, debian: linux-image-6.12.*-sparc64}\n"
        "  - {name: e, arch: arm64, backend: virtme, debian: linux-image-6.12.*-arm64-unsigned}\n",
    )
    assert "kernel #1 (a)" in text and "is an arm64 kernel (Image)" in text
    assert "kernel #2 (b)" in text and "is an x86_64 kernel (bzImage)" in text
    assert "kernel #3 (c)" in text and "a Debian amd64 kernel but the entry's arch is arm64" in text
    assert "write e.g. linux-image-6.12.*-arm64-unsigned" in text
    assert "arch 'sparc' is not one of x86_64, arm64" in text
    assert "backend 'virtme' boots only the host's architecture" in text


def test_missing_cross_compiler_is_an_error_only_for_a_selected_kernel(
    tmp_path: Path, monkeypatch
) -> None:
    tree = tmp_path / "linux"
    for name in ("Makefile", "Kconfig", "arch/Kconfig", "scripts/kconfig/Makefile"):
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text("")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    path = tmp_path / "kernels.yaml"
    path.write_text(
        "kernels:\n"
        "  - {name: x, arch: arm64, build: linux}\n"
        "  - {name: y, arch: arm64, debian: linux-image-6.12.*-arm64-unsigned}\n"
        "  - {name: z, arch: x86_64, debian: linux-image-6.12.*-amd64-unsigned}\n"
    )
    specs = load_kernels(path)  # the whole file is sound: syntax and keys
    assert check_host_tools(select(specs, ["z"], path))[0].name == "z"
    with pytest.raises(ConfigError) as err:
        check_host_tools(select(specs, [], path))
    text = str(err.value)
    assert "kernel x: arch arm64 needs the compiler aarch64-linux-gnu-gcc" in text
    assert "apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross" in text
    assert "kernel y: arch arm64 needs the compiler" in text
    assert "kernel z" not in text


def test_arm64_build_recipe_has_its_own_slot_and_fragment(tmp_path: Path) -> None:
    path = tmp_path / "kernels.yaml"
    path.write_text(
        "kernels:\n  - {name: a, arch: arm64, build: linux-source-6.12}\n"
        "  - {name: x, build: linux-source-6.12}\n"
    )
    a, x = (s.source for s in load_kernels(path))
    assert isinstance(a, BuildSource) and isinstance(x, BuildSource)
    assert a.recipe.fragments[0].name == "guest-arm64.config"
    assert x.recipe.fragments[0].name == "guest.config"
    assert a.recipe.key() != x.recipe.key()


def _entry(name: str, version: str = "1", depends: str = "") -> archive.PackageEntry:
    return archive.PackageEntry(name, version, f"pool/{name}.deb", "0", 1, depends, "m", "s")


def test_no_package_for_the_arch_names_it() -> None:
    with pytest.raises(Exception) as err:
        newest_match(
            "linux-image-6.12.*-arm64-unsigned", [_entry("linux-image-6.1-arm64")], "arm64"
        )
    assert "no arm64 package in s matches" in str(err.value)


def test_userland_closure_follows_first_alternatives() -> None:
    index = newest(
        [
            _entry("dropbear-bin", "1", "libc6 (>= 2.34), zlib1g | libz-alt, libtomcrypt1"),
            _entry("libtomcrypt1", "1", "libc6, libtommath1:any"),
            _entry("libtommath1"),
            _entry("libc6", "1", "libgcc-s1"),
            _entry("libc6", "2", "libgcc-s1"),
            _entry("libgcc-s1"),
            _entry("zlib1g"),
            _entry("busybox-static"),
        ]
    )
    names = [(e.name, e.version) for e in closure(["busybox-static", "dropbear-bin"], index)]
    assert names == [
        ("busybox-static", "1"),
        ("dropbear-bin", "1"),
        ("libc6", "2"),
        ("libgcc-s1", "1"),
        ("libtomcrypt1", "1"),
        ("libtommath1", "1"),
        ("zlib1g", "1"),
    ]
    sources = [archive.AptSource("http://deb.debian.org/debian-security", ("bookworm-security",))]
    sources.append(
        archive.AptSource("http://deb.debian.org/debian", ("bookworm", "bookworm-updates"))
    )
    assert base_suite(sources) == "bookworm"


def test_kcidb_architecture_comes_from_the_table() -> None:
    summary = RunSummary(run="r", kernels=(KernelRecord("k", "debian x", arch="arm64"),), tests=())
    assert '"architecture": "arm64"' in kcidb.render(summary)


def test_zboot_image_entry_boots_its_unpacked_payload(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("KHARNESS_CACHE", str(tmp_path / "cache"))
    image = ARM64_HEAD.read_bytes() + b"\0" * 4096
    (tmp_path / "vmlinuz").write_bytes(_zboot(gzip.compress(image), b"gzip") + b"\0" * 0x240)
    path = tmp_path / "kernels.yaml"
    path.write_text("kernels:\n  - {name: z, arch: arm64, image: vmlinuz}\n")
    (spec,) = load_kernels(path)
    kernel = spec.source.resolve(lambda _t: None)
    assert kernel.vmlinuz != tmp_path / "vmlinuz" and kernel.vmlinuz.read_bytes() == image
    assert spec.source.resolve(lambda _t: None).vmlinuz == kernel.vmlinuz, "unpacked once"
