"""KVM where it really works, TCG everywhere else.

/dev/kvm existing is not enough: on nested or restricted hosts it is present
while the CPU offers no vmx/svm, and a KVM guest then fails or crawls.  So KVM
is chosen only when /dev/kvm opens read-write *and* the host CPU flags show
vmx or svm; the choice and its reason are recorded with every boot.
"""

from __future__ import annotations

import enum
import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.arch import Arch, host


class Accel(enum.Enum):
    """Accelerator requested in kernels.yaml or on the command line."""

    AUTO = "auto"
    KVM = "kvm"
    TCG = "tcg"


@dataclass(frozen=True)
class AccelChoice:
    """The accelerator a boot uses and why."""

    accel: Accel
    reason: str


def kvm_usable(
    dev: Path = Path("/dev/kvm"), cpuinfo: Path = Path("/proc/cpuinfo")
) -> tuple[bool, str]:
    """Whether KVM can run a normal guest here, with the reason either way."""
    if not dev.exists():
        return False, f"{dev} does not exist"
    if not os.access(dev, os.R_OK | os.W_OK):
        return False, f"{dev} is not read-writable by this user"
    try:
        flags = _cpu_flags(cpuinfo.read_text())
    except OSError as exc:
        return False, f"cannot read {cpuinfo}: {exc}"
    if not flags & {"vmx", "svm"}:
        return False, "the host CPU shows neither vmx nor svm"
    return True, f"{dev} usable and the CPU has {' '.join(sorted(flags & {'vmx', 'svm'}))}"


def _cpu_flags(text: str) -> set[str]:
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


@functools.cache
def host_kvm() -> tuple[bool, str]:
    """:func:`kvm_usable` for this host, probed once per process (the CPU does not change)."""
    return kvm_usable()


def choose(
    requested: Accel,
    arch: Arch | None = None,
    probe: Callable[[], tuple[bool, str]] = host_kvm,
) -> AccelChoice:
    """Resolve ``auto``; an explicit request is honoured (and its risk stated).

    A guest of another architecture than the host's always runs under TCG:
    KVM runs only the host's instruction set.  ``auto`` takes KVM only when
    ``probe`` (the device *and* the CPU's vmx/svm) says it can run a guest;
    an explicit ``kvm`` on a host where it cannot ends the boot as soon as
    QEMU says so (:mod:`harness.machine.halt`), not at the boot timeout.
    """
    if arch is not None and not arch.is_host:
        return AccelChoice(
            Accel.TCG, f"TCG: an {arch.name} guest on an {host().name} host cannot use KVM"
        )
    ok, why = probe()
    if requested is Accel.TCG:
        return AccelChoice(Accel.TCG, "tcg requested")
    if requested is Accel.KVM:
        note = "kvm requested" + ("" if ok else f" although {why}; QEMU will say if it fails")
        return AccelChoice(Accel.KVM, note)
    if ok:
        return AccelChoice(Accel.KVM, f"auto: {why}")
    return AccelChoice(Accel.TCG, f"auto: TCG because {why}")
