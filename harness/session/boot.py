"""One boot of a kernel: start the machine, wait for the ready line, say why it failed.

A boot that never gets ready is diagnosed at once (``wait_ready`` returns
the moment a panic is printed): the crash that killed it is named from the
console, and the console's last lines go with the verdict.  Whether a failed
boot is worth one more try (it died, rather than hung) is the caller's
decision, from :attr:`BootOutcome.died`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.display.progress import Activity, Kind, Progress, track
from harness.errors import GuestUnreachable, HarnessError
from harness.machine.base import Backend, Channel, Machine, MachineConfig, Ready
from harness.machine.console import is_report_line
from harness.machine.halt import HaltAware
from harness.oops import KernelReport
from harness.outcome import SetupFacts, Verdict, classify_setup
from harness.results import evidence
from harness.session.outside import boot_crash
from harness.session.policy import Policy


@dataclass(frozen=True)
class BootOutcome:
    """What one boot gave: a connected guest, or a verdict saying why not."""

    machine: Machine | None = None
    channel: Channel | None = None
    ready: Ready | None = None
    verdict: Verdict | None = None
    died: bool = False  # the failed boot crashed (worth one more try)
    crash: tuple[KernelReport, ...] = ()  # the report that killed a failed boot
    boot_seconds: float | None = None  # None: the machine never started
    ssh_seconds: float = 0.0


@dataclass
class BootRun:
    """The facts one boot needs; :meth:`boot` does it."""

    kernel: str
    number: int
    backend_name: str
    backend: Backend
    config: MachineConfig
    directory: Path
    timeout: float
    policy: Policy
    progress: Progress  # labelled with the kernel
    console_progress: Progress  # the run's own, which streams consoles by kernel name
    #: attributes the console up to an offset to no test, returns the reports of this boot
    attribute: Callable[[Machine, int], tuple[KernelReport, ...]]

    def boot(self) -> BootOutcome:
        """Start, wait for the ready line, connect."""
        started = time.monotonic()
        machine = self.backend.machine(self.config, self.directory)
        try:
            machine.start()
        except HarnessError as exc:
            machine.stop()
            return BootOutcome(verdict=classify_setup(SetupFacts("start", str(exc))))
        except BaseException:  # Ctrl-C mid-start: nothing may be left running
            machine.stop()
            raise
        try:
            return self._wait(machine, started)
        except BaseException:  # Ctrl-C or SIGTERM while it boots: nothing may be left running
            machine.stop()
            raise

    def _wait(self, machine: Machine, started: float) -> BootOutcome:
        booting: list[Activity] = []  # the boot's progress line while it boots
        with track(self.progress, Kind.BOOT, f"boot-{self.number}") as activity:
            booting.append(activity)
            machine.console.add_listener(self._console_listener(booting))
            ready = machine.wait_ready(self.timeout)
        booting.clear()
        seconds = time.monotonic() - started
        evidence.write_boot(self.directory, self.backend_name, self.config, ready, seconds)
        if ready is None:
            return self._failed(machine, seconds)
        try:
            channel = machine.connect(ready)
        except GuestUnreachable as exc:
            self.attribute(machine, machine.console.offset())
            machine.stop()
            why = str(exc) + no_network_hint(machine.console.text())
            verdict = classify_setup(SetupFacts("connect", why))
            return BootOutcome(verdict=verdict, boot_seconds=seconds)
        ssh = time.monotonic() - started - seconds
        return BootOutcome(machine, channel, ready, boot_seconds=seconds, ssh_seconds=ssh)

    def _console_listener(self, booting: list[Activity]) -> Callable[[str], None]:
        """Show the boot's last console line while it boots; stream the console if asked."""
        progress, name = self.console_progress, self.kernel

        def line(text: str) -> None:
            if booting and text.strip():
                booting[0].update(detail=text.strip())
            if progress.streams_console:
                progress.console(name, text, is_report_line(text))

        return line

    def _failed(self, machine: Machine, seconds: float) -> BootOutcome:
        """A boot that never got ready: name the crash that killed it, show the console's end."""
        console = machine.console
        halted = machine.halted() if isinstance(machine, HaltAware) else None
        if halted is None:
            console.wait_quiet(self.policy.settle, self.policy.boot_tail)
        # QEMU stopping the guest is no flake of the kernel's: another try would stop too
        died = halted is None and (console.panicked or not machine.running)
        if halted is not None:
            why = f"QEMU stopped the guest after {seconds:.1f}s: {halted}"
        elif console.panicked:
            why = "the kernel panicked during boot"
        elif not machine.running:
            why = f"the guest's process ended after {seconds:.1f}s ({machine.exit_status()})"
        else:
            why = f"no ready line within {self.timeout:.0f}s"
        crash = boot_crash(self.attribute(machine, console.offset()))  # parsed once, here
        title = f": {crash.title}" if crash else ""
        tail = console.tail(30)
        machine.stop()
        facts = SetupFacts(
            "boot",
            f"{why}{title}",
            (f"last console lines ({self.directory}/console.log):\n{tail}",),
        )
        return BootOutcome(
            verdict=classify_setup(facts),
            died=died,
            boot_seconds=seconds,
            crash=(crash,) if crash else (),
        )


def no_network_hint(console: str) -> str:
    """Why SSH cannot answer when the guest's init found no network device, and the fix.

    The harness's init brings up eth0 (virtio-net); a kernel that has the
    driver only as a module, booted without its modules (an image given
    alone), prints ``can't find device 'eth0'`` and can never be reached.
    """
    if "can't find device 'eth0'" not in console:
        return ""
    return (
        "; the guest found no network device (\"can't find device 'eth0'\" on its console): "
        "its kernel has no virtio-net built in; give the image's modules (--modules DIR, "
        "image: {modules: DIR}) or build it in (CONFIG_VIRTIO_NET=y, CONFIG_VIRTIO_PCI=y)"
    )
