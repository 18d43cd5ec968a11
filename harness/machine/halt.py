"""QEMU's own signs that a guest will never run on: a boot waits for nothing once it sees one.

An accelerator that cannot run the guest (``-accel kvm`` on a host whose
CPU offers no vmx/svm to KVM) leaves QEMU alive with the guest paused and
the console empty: ``KVM internal error. Suberror: 1`` ... ``emulation
failure`` on QEMU's stderr, ``paused (internal-error)`` from its monitor.
Waiting for a ready line then costs the whole boot timeout; these checks
let the boot end at once with QEMU's message instead.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

#: QEMU's stderr lines that mean the guest stopped for good (KVM's, TCG's, the block layer's)
FATAL_LINES = (
    "KVM internal error",
    "emulation failure",
    "kvm run failed",
    "Could not access KVM kernel module",
    "failed to initialize kvm",
    "qemu: fatal:",
)
#: run states (HMP ``info status``: ``VM status: paused (STATE)``) of a guest that will not run on
FATAL_STATES = ("internal-error", "guest-panicked", "io-error", "shutdown")
#: at most this many of QEMU's lines go into the boot's failure
MAX_LINES = 3


def halt_in_stderr(stderr: bytes) -> str | None:
    """QEMU's own fatal lines in its stderr, joined; None when it shows none."""
    text = stderr[-65536:].decode("utf-8", "replace")
    lines = [
        ln.strip()[:200] for ln in text.splitlines() if any(sign in ln for sign in FATAL_LINES)
    ]
    return " / ".join(dict.fromkeys(lines[:MAX_LINES])) or None


def halt_in_status(status: str) -> str | None:
    """The fatal run state in an ``info status`` answer (``paused (internal-error)``), if any."""
    for line in status.splitlines():
        if "VM status:" not in line:
            continue
        state = line.split("VM status:", 1)[1].strip()
        if any(f"({name})" in state for name in FATAL_STATES):
            return f"QEMU's run state is {state[:80]}"
    return None


@runtime_checkable
class HaltAware(Protocol):
    """A machine that can tell the guest was stopped by its emulator, not by its kernel."""

    def halted(self) -> str | None:
        """QEMU's own message when it stopped the guest for good; None otherwise."""
        ...
