"""The seam between the harness and whatever runs a candidate kernel.

Two roles, split the way LTP's kirk splits the system under test from the
channel that reaches it:

* a :class:`Machine` runs one boot of a kernel: it starts, tells when the
  guest is ready (bounded), exposes the kernel console as a byte stream for
  the guest's whole life, can press a sysrq "magic key" whether or not the
  guest still answers, and stops for sure;
* a :class:`Channel` runs commands in a ready guest: a command with a timeout
  and an abort predicate, a file pushed in, a liveness probe.

A :class:`Backend` (one file each under ``harness/machine/``, one row in
:mod:`harness.machine.backends`) prepares what its boots need once per kernel
and makes a Machine per boot.  The runner sees only these protocols, so its
policy can be driven by the replay backend in unit tests.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from harness.arch import Arch, host
from harness.command_result import CommandResult
from harness.guest.keys import GuestKeys
from harness.kernels.base import KernelImage
from harness.machine.accel import AccelChoice
from harness.machine.capture import Capture
from harness.machine.console import ConsoleWatcher
from harness.testkinds.compile import CompileResult

#: the kernel command line every backend's guest gets after its console (virtme adds its own)
BASE_CMDLINE = "panic=-1 mitigations=off"


def base_cmdline(arch: Arch) -> str:
    """The harness's own kernel command line for a guest of ``arch``: console first."""
    return f"console={arch.console},115200 {BASE_CMDLINE}"


@dataclass(frozen=True)
class GuestPayload:
    """What a guest must carry, whatever boots it: kernel, tests and keys."""

    kernel: KernelImage
    tests: tuple[CompileResult, ...]
    keys: GuestKeys
    arch: Arch = field(default_factory=host)


@dataclass(frozen=True)
class BootFiles:
    """What a backend prepared once per kernel and every boot of it reuses."""

    tests_dir: str  # where the compiled tests are, as the guest sees it
    initrd: Path | None = None


@dataclass(frozen=True)
class GuestShape:
    """The guest's hardware and command line, grown to what its tests need."""

    memory_mib: int = 2048
    cpus: int = 2
    numa_nodes: int = 1
    cmdline: str = ""  # the user's, appended after the harness's own
    thp: str | None = None


@dataclass(frozen=True)
class MachineConfig:
    """Everything that decides how one boot of one kernel happens."""

    payload: GuestPayload
    files: BootFiles
    accel: AccelChoice
    shape: GuestShape = GuestShape()
    port_range: tuple[int, int] | None = None


@dataclass(frozen=True)
class Ready:
    """What the guest's ready line and the clock told us about a boot."""

    ssh_port: int
    seconds: float
    boot_taint: int
    release: str


class Channel(Protocol):
    """A way to run commands in a ready guest (SSH, or a replay script)."""

    def run(
        self,
        command: str,
        timeout: float,
        stdin: bytes | None = None,
        abort: Callable[[], bool] | None = None,
        capture: Capture | None = None,
    ) -> CommandResult:
        """Run ``command``; on timeout or abort the result says so (never raises for it).

        ``capture`` takes the output as it arrives and bounds what is kept
        (:mod:`harness.machine.capture`); the result's text is what it kept.
        """
        ...

    def push(self, data: bytes, remote: str, mode: int = 0o755, timeout: float = 60) -> None:
        """Write ``data`` to ``remote`` in the guest."""
        ...

    def alive(self, timeout: float = 5.0) -> bool:
        """Whether the guest still runs a trivial command within ``timeout``."""
        ...

    def close(self) -> None:
        """Let go of the channel (the guest keeps running)."""
        ...


class Machine(Protocol):
    """One boot of one kernel."""

    @property
    def console(self) -> ConsoleWatcher:
        """The kernel console, read from start to exit (valid after :meth:`start`)."""
        ...

    @property
    def running(self) -> bool:
        """The guest's process is still alive."""
        ...

    def start(self) -> None:
        """Launch the guest; raise HarnessError if it cannot even be started."""
        ...

    def wait_ready(self, timeout: float) -> Ready | None:
        """Wait for this boot's ready line; None if the kernel died or time ran out."""
        ...

    def connect(self, ready: Ready, timeout: float = 30.0) -> Channel:
        """Open the channel into the ready guest (raises GuestUnreachable)."""
        ...

    def magic_key(self, key: str) -> bool:
        """Press sysrq-``key`` without the guest's help (keyboard, serial break)."""
        ...

    def exit_status(self) -> str | None:
        """How the guest's process ended ('exit status 1', 'killed by SIGKILL'), if it has."""
        ...

    def command_line(self) -> list[str]:
        """The exact argv that started the guest, for the evidence."""
        ...

    def stop(self) -> None:
        """Stop the guest for sure and release everything it held (idempotent)."""
        ...


class Backend(Protocol):
    """A way of booting kernels: prepares once per kernel, one Machine per boot."""

    name: str

    def prepare(self, payload: GuestPayload, directory: Path) -> BootFiles:
        """Build what every boot of this kernel reuses (an initrd, a tests directory)."""
        ...

    def machine(self, cfg: MachineConfig, boot_dir: Path) -> Machine:
        """A not yet started Machine whose evidence goes to ``boot_dir``."""
        ...


def describe_exit(returncode: int | None) -> str | None:
    """A process's return code in words; None while it runs."""
    if returncode is None:
        return None
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name}"
    return f"exit status {returncode}"
