"""Guest architectures as data: everything that differs between x86_64 and arm64.

One :class:`Arch` row per target says how QEMU emulates it, which console
the kernel writes to, where kbuild leaves the bootable image, what Debian
calls the architecture, which compiler builds its programs, how a sysrq key
reaches a guest that no longer answers, and what KCIDB calls it.  Providers,
the image builder, the test compiler and the backends read the row of the
kernel's ``arch:`` (kernels.yaml; default: the host's) and carry no
architecture literal of their own, so adding a target is adding a row.
"""

from __future__ import annotations

import enum
import platform
from dataclasses import dataclass


class MagicKey(enum.Enum):
    """How a sysrq key reaches a guest without its help."""

    KEYBOARD = "keyboard"  # QEMU monitor ``sendkey alt-sysrq-KEY`` (a PS/2 keyboard exists)
    SERIAL_BREAK = "serial-break"  # a break on the serial line, then the key (no keyboard)


@dataclass(frozen=True)
class Arch:
    """One guest architecture."""

    name: str  # kernels.yaml ``arch:`` value
    aliases: tuple[str, ...]  # other spellings accepted (uname -m, Debian's)
    uname: str  # what ``uname -m`` prints in the guest
    qemu: str  # the QEMU system emulator
    qemu_package: str  # the Debian package that has it
    machine: str  # ``-machine``
    cpu_tcg: str  # ``-cpu`` under TCG (KVM uses ``host``)
    console: str  # the serial console's device name in the guest
    kbuild_arch: str  # ``ARCH=``
    make_target: str  # what ``make`` builds
    build_image: str  # where it lands, relative to the O= directory
    guest_config: str  # the config fragment every guest needs, in harness/kernels/
    debian: str  # Debian's architecture name
    cross_prefix: str  # ``CROSS_COMPILE=`` when the host is another architecture
    cross_packages: str  # Debian packages that install that cross toolchain
    magic_key: MagicKey
    kcidb: str  # KCIDB build ``architecture``

    @property
    def is_host(self) -> bool:
        """Whether the host runs this architecture (native compiler, KVM possible)."""
        return self.uname == platform.machine()

    @property
    def cross_compile(self) -> str:
        """The compiler prefix to use from this host: none natively."""
        return "" if self.is_host else self.cross_prefix

    @property
    def cc(self) -> str:
        """The C compiler for this architecture's programs, from this host."""
        return f"{self.cross_compile}gcc"

    @property
    def cc_packages(self) -> str:
        """What to install when :attr:`cc` is missing."""
        return "gcc libc6-dev" if self.is_host else self.cross_packages


X86_64 = Arch(
    name="x86_64",
    aliases=("amd64", "x86-64"),
    uname="x86_64",
    qemu="qemu-system-x86_64",
    qemu_package="qemu-system-x86",
    machine="q35",
    cpu_tcg="max",
    console="ttyS0",
    kbuild_arch="x86",
    make_target="bzImage",
    build_image="arch/x86/boot/bzImage",
    guest_config="guest.config",
    debian="amd64",
    cross_prefix="x86_64-linux-gnu-",
    cross_packages="gcc-x86-64-linux-gnu libc6-dev-amd64-cross",
    magic_key=MagicKey.KEYBOARD,
    kcidb="x86_64",
)

ARM64 = Arch(
    name="arm64",
    aliases=("aarch64",),
    uname="aarch64",
    qemu="qemu-system-aarch64",
    qemu_package="qemu-system-arm",
    # virt: a GIC, PL011 UART, virtio-pci on a PCIe host bridge, -numa works.
    # cortex-a57 rather than max: max's pointer authentication and SVE make
    # TCG several times slower for nothing the reproducers exercise.
    machine="virt,gic-version=3",
    cpu_tcg="cortex-a57",
    console="ttyAMA0",
    kbuild_arch="arm64",
    make_target="Image",
    build_image="arch/arm64/boot/Image",
    guest_config="guest-arm64.config",
    debian="arm64",
    cross_prefix="aarch64-linux-gnu-",
    cross_packages="gcc-aarch64-linux-gnu libc6-dev-arm64-cross",
    magic_key=MagicKey.SERIAL_BREAK,
    kcidb="arm64",
)

#: every target, by kernels.yaml name
ARCHES: dict[str, Arch] = {a.name: a for a in (X86_64, ARM64)}


def by_name(text: str) -> Arch | None:
    """The architecture called ``text`` (its name or an alias), or None."""
    for arch in ARCHES.values():
        if text == arch.name or text in arch.aliases:
            return arch
    return None


def host() -> Arch:
    """The host's architecture (the default ``arch:``); x86_64 if it is none of ours."""
    return by_name(platform.machine()) or X86_64
