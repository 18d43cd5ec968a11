"""A kernel's boots: the running guest, a crashed boot tried again, the guest stopped for sure.

The life of one kernel's guest is a sequence of boots; between them
nothing runs.  A boot is cold, or a restore of the ready guest saved after
the first cold boot (:mod:`.saved_guest`), which falls back to a cold boot.
This module owns the machine and channel of the current boot and the
setup error of the last failed one; everything the console shows outside a
test's window is attributed to no test on the way
(:mod:`.outside`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.config import Isolation
from harness.display.progress import Kind, Progress, track
from harness.machine.base import Channel, Machine, Ready
from harness.machine.console import is_report_line
from harness.oops import KernelReport
from harness.outcome import Outcome, Verdict
from harness.results.evidence import Timings
from harness.results.records import KernelRecord
from harness.session.boot import BootRun
from harness.session.context import RunContext
from harness.session.outside import OutsideReports
from harness.session.policy import needs_fresh_guest
from harness.session.prepare import Preparation
from harness.session.saved_guest import Snapshots

#: the longest a restore may take before it is called failed (a cold boot follows)
RESTORE_TIMEOUT = 60.0


@dataclass
class GuestLife:
    """One kernel's boots, the live one's machine and channel."""

    prep: Preparation
    ctx: RunContext
    progress: Progress  # labelled with the kernel
    outside: OutsideReports
    timings: Timings
    on_boot: Callable[[], None]  # a fresh boot is ready (per-boot caches start over)
    machine: Machine | None = None
    channel: Channel | None = None
    retiring: list[threading.Thread] = field(default_factory=list)  # done QEMUs stopping
    let_go: bool = False  # the last guest was alive when it was let go (not a crash)
    ready: Ready | None = None
    boots: int = 0
    setup_error: Verdict | None = None
    setup_reports: tuple[KernelReport, ...] = ()  # the crash that made setup_error (boot)
    ran: int = field(default=0)  # tests run on the current boot
    snaps: Snapshots = field(init=False)

    def __post_init__(self) -> None:
        spec = self.prep.spec
        self.snaps = Snapshots(spec.name, self.ctx.log, spec.snapshot and self.ctx.snapshots)

    @property
    def isolation(self) -> Isolation:
        """--isolation, else the kernel's ``isolation:``."""
        return self.ctx.isolation or self.prep.spec.isolation

    def record(self) -> KernelRecord:
        """This kernel as the run's summary shows it: what it is, how its guests started."""
        spec, image, ready = self.prep.spec, self.prep.image, self.ready
        return KernelRecord(
            spec.name,
            spec.source.describe(),
            image.origin if image else None,
            ready.release if ready else None,
            self.prep.backend_name,
            self.boots,
            ready.boot_taint if ready else None,
            dict(self.timings.phases),
            spec.arch.name,
            image.exact if image else None,
            self.snaps.starts(),
        )

    def boot_dir(self) -> Path:
        """The current boot's evidence directory."""
        return self.prep.directory / f"boot-{self.boots}"

    def ensure_booted(self) -> Verdict | None:
        """Boot unless a live guest is there; a BOOT_FAIL verdict if it never got ready.

        A boot that crashed is tried again, up to ``Policy.boot_attempts``.
        """
        if self.channel is not None and self.machine is not None and self.machine.running:
            return None
        if self.setup_error is not None:
            return self.setup_error
        if self._restore():
            return None
        attempts = max(1, self.ctx.policy.boot_attempts)
        for attempt in range(1, attempts + 1):
            verdict, died = self._boot()
            if verdict is None or not died or attempt == attempts:
                return verdict
            self.ctx.log(
                f"{self.prep.spec.name}: boot-{self.boots} failed ({verdict.summary}); "
                "booting once more (TCG can crash a sound kernel in early boot)"
            )
            self.setup_error, self.setup_reports = None, ()
        return self.setup_error

    def _boot(self) -> tuple[Verdict | None, bool]:
        """One boot: (a verdict if it failed, whether it died rather than hung)."""
        self._stop()
        self.boots += 1
        self.outside.new_console()
        spec = self.prep.spec
        boot = BootRun(
            spec.name,
            self.boots,
            self.prep.backend_name,
            self.prep.backend(),
            self.prep.machine_config(),
            self.boot_dir(),
            spec.timeouts.boot,
            self.ctx.policy,
            self.progress,
            self.ctx.progress,
            self._attribute_boot,
        ).boot()
        if boot.boot_seconds is not None:
            self.timings.add("boot", boot.boot_seconds)
        if boot.verdict is not None:
            self.setup_error, self.setup_reports = boot.verdict, boot.crash
            return boot.verdict, boot.died
        assert boot.machine is not None
        self.timings.add("ssh", boot.ssh_seconds)
        self.snaps.cold_boot(boot.boot_seconds + boot.ssh_seconds)
        self._live(boot.machine, boot.channel, boot.ready)
        if not self._save():
            return self._boot()  # the failed save left no usable guest; snapshots are off now
        self._spare()
        return None, False

    def _live(self, machine: Machine, channel: Channel | None, ready: Ready | None) -> None:
        """A booted or restored guest becomes the live one."""
        self.machine, self.channel, self.ready = machine, channel, ready
        self.ran = 0
        self.on_boot()
        self.attribute(machine.console.offset())

    def _save(self) -> bool:
        """Save the first ready guest for later restores; False if that left it unusable."""
        if self.snaps.state is not None or not self.snaps.enabled:
            return True
        cfg = self.prep.machine_config()
        if not self.snaps.supported(self.prep.backend(), self.prep.backend_name, cfg):
            return True
        assert self.machine is not None and self.ready is not None and self.channel is not None
        started = time.monotonic()
        failed = self.snaps.save(self.machine, self.ready, cfg.shape.memory_mib << 20)
        self.timings.add("snapshot", time.monotonic() - started)
        if failed is not None and not self.channel.alive(10):
            self._stop()
            return False
        return True

    def _restore(self) -> bool:
        """Restore the saved ready guest instead of booting; False if there is none or it failed."""
        cfg = self.prep.machine_config()
        self.snaps.find_kept(self.prep.kept, self.prep.backend(), self.prep.backend_name, cfg)
        if self.snaps.restorable(cfg) is None:
            return False
        between_tests = self.let_go and self.machine is None
        self._stop()
        self.boots += 1
        self.outside.new_console()
        timeout = min(self.prep.spec.timeouts.boot, RESTORE_TIMEOUT)
        with track(self.progress, Kind.BOOT, f"boot-{self.boots} (restore)"):
            restored = self.snaps.restore(
                self.prep.backend(), self.prep.backend_name, self.boot_dir(), timeout, between_tests
            )
        if restored.machine is None:
            return False
        self.timings.add("restore", restored.seconds)
        progress, name = self.ctx.progress, self.prep.spec.name
        if progress.streams_console:  # --console: a restored guest's console streams too
            restored.machine.console.add_listener(
                lambda text: progress.console(name, text, is_report_line(text))
            )
        self._live(restored.machine, restored.channel, restored.ready)
        self._spare()
        return True

    def _spare(self) -> None:
        """Under ``isolation: test`` the next guest is a restore: start its QEMU now.

        Each spare gets a directory name of its own: a QEMU that exits unlinks its
        monitor socket by the path it was started with, which must not be the next's.
        """
        if self.isolation is Isolation.TEST:
            scratch = self.prep.directory / f".spare-for-boot-{self.boots + 1}"
            self.snaps.start_spare(self.prep.backend(), scratch)

    def _attribute_boot(self, machine: Machine, end: int) -> tuple[KernelReport, ...]:
        """Attribute a failing boot's console; the reports of that boot."""
        self.outside.attribute(machine.console.text, end, self.boots, "boot")
        return self.outside.of_boot(self.boots)

    def prepare(self) -> Verdict | None:
        """Resolve the kernel and let the backend prepare once; why it cannot run, if so."""
        self.setup_error = self.prep.prepare(self.progress)
        return self.setup_error

    def test_ended(self, outcome: Outcome, dirty: bool) -> None:
        """Stop the guest if the next test must have a fresh one (restored, else booted):
        ``isolation: test``, or the policy after this ``outcome`` (``dirty``: tainted or
        reported)."""
        spec = self.prep.spec
        if self.isolation is Isolation.TEST or needs_fresh_guest(
            outcome, dirty, spec.reboot_after_oops
        ):
            self.shutdown()

    def test_starts(self, start: int) -> None:
        """A test's window opens at ``start``: what came before is no test's."""
        self.attribute(start)
        self.ran += 1

    def attribute(self, end: int) -> None:
        """Record reports printed since the last window: they belong to no test."""
        if self.machine is None:
            return
        when = "boot" if self.ran == 0 else "between tests"
        self.outside.attribute(self.machine.console.text, end, self.boots, when)

    def close(self) -> None:
        """The kernel is done: stop its guest, wait for the ones let go, remove its saved
        state (idempotent)."""
        try:
            self._stop()
            for thread in self.retiring:
                thread.join()
            self.retiring.clear()
        finally:
            self.snaps.remove()

    def shutdown(self) -> None:
        """This guest is done: close the channel and let its QEMU go (idempotent); the saved
        state stays.  A QEMU still running stops in the background, so that the next
        guest's restore need not wait for it (:meth:`close` waits for it)."""
        self._stop(background=True)

    def _stop(self, background: bool = False) -> None:
        """Close the channel and stop the machine, in a thread with ``background`` (idempotent)."""
        if self.machine is not None:
            self.attribute(self.machine.console.offset())
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        self.retiring = [t for t in self.retiring if t.is_alive()]
        machine, self.machine = self.machine, None
        if machine is None:
            return
        self.let_go = machine.running
        if background and self.let_go:
            thread = threading.Thread(target=machine.stop, name="stop-guest", daemon=True)
            thread.start()
            self.retiring.append(thread)
        else:
            machine.stop()
