"""One candidate kernel's guest across its tests: its life, and the order of things.

:class:`KernelGuest` sequences a kernel's life: resolve it and let its
backend prepare once, boot (once more if the boot crashed), reuse the boot
across tests, boot afresh when the last test left the kernel untrusted.
Each concern sits in its own module of this package: one boot and its
diagnosis (:mod:`.boot`), one test's window (:mod:`.window`), reports no
test owns (:mod:`.outside`), needs (:mod:`.needs`), the waits and the reboot
decision (:mod:`.policy`); the lines exchanged with the guest are
:mod:`harness.guest.protocol`'s.  Kinds of tests that keep state per guest
(kselftest targets pushed, ...) keep it in :attr:`KernelGuest.extras`, under
a key of their own module, never in a field of the session.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.config import KernelSpec
from harness.display.progress import Labelled, Progress
from harness.guest.keys import GuestKeys
from harness.kernels.base import KernelImage
from harness.machine.base import (
    BootFiles,
    Channel,
    Machine,
    MachineConfig,
    Ready,
)
from harness.machine.capture import Capture
from harness.oops import KernelReport
from harness.outcome import SetupFacts, Verdict, classify_setup
from harness.results import evidence
from harness.results.evidence import Timings
from harness.results.records import KernelRecord, OutsideReport, TestRun
from harness.session.context import RunContext
from harness.session.extras import Extras
from harness.session.life import GuestLife
from harness.session.needs import NeedsChecker
from harness.session.outside import OutsideReports, ReportReader
from harness.session.policy import Policy
from harness.session.prepare import Preparation
from harness.session.window import TestWindow, verdict_for
from harness.testkinds.compile import CompileResult
from harness.testkinds.testdef import GuestTest


@dataclass
class KernelGuest:
    """The guest of one kernel across the tests that run on it."""

    spec: KernelSpec
    ctx: RunContext
    tests: list[GuestTest]
    timings: Timings = field(default_factory=Timings)
    extras: Extras = field(default_factory=Extras)  # per-guest state of test kinds
    _reader: ReportReader = field(default_factory=ReportReader)
    _outside: OutsideReports = field(init=False)
    _needs: NeedsChecker = field(init=False)
    _prep: Preparation = field(init=False)
    _life: GuestLife = field(init=False)

    def __post_init__(self) -> None:
        self._prep = Preparation(self.spec, self.ctx, self.tests, self.timings)
        self._outside = OutsideReports(self.spec.name, self._reader, self.ctx.log)
        self._needs = NeedsChecker(self.spec.name, self.ctx.log)
        self._life = GuestLife(
            self._prep, self.ctx, self.progress, self._outside, self.timings, self._needs.new_boot
        )

    # -- the live boot (read-only here; GuestLife changes them) ---------------------------
    @property
    def machine(self) -> Machine | None:
        """The current boot's machine, None between boots."""
        return self._life.machine

    @property
    def channel(self) -> Channel | None:
        """The current boot's channel, None between boots."""
        return self._life.channel

    @property
    def ready(self) -> Ready | None:
        """What the last ready line said."""
        return self._life.ready

    @property
    def boots(self) -> int:
        """Boots so far (the current one's number)."""
        return self._life.boots

    @property
    def setup_error(self) -> Verdict | None:
        """Why this kernel cannot run tests (fetch, build, boot), if it cannot."""
        return self._life.setup_error

    # -- what it is -----------------------------------------------------------------
    @property
    def directory(self) -> Path:
        """This kernel's part of the results directory."""
        return self._prep.directory

    @property
    def backend_name(self) -> str:
        """The backend booting this kernel: --backend, else kernels.yaml's."""
        return self._prep.backend_name

    @property
    def image(self) -> KernelImage | None:
        """The kernel resolved (fetched, built), once :meth:`prepare` succeeded."""
        return self._prep.image

    @property
    def files(self) -> BootFiles | None:
        """What the backend prepared to boot with."""
        return self._prep.files

    @property
    def keys(self) -> GuestKeys:
        """The SSH keys this kernel's guest accepts (the run's, or the snapshot cache's)."""
        return self._prep.payload.keys if self._prep.payload is not None else self.ctx.keys

    @property
    def progress(self) -> Progress:
        """The run's feedback, with this kernel's name on every line."""
        return Labelled(self.ctx.progress, self.spec.name)

    @property
    def policy(self) -> Policy:
        """The run's waits."""
        return self.ctx.policy

    @property
    def outside(self) -> list[OutsideReport]:
        """Kernel reports printed outside every test's window, in order."""
        return self._outside.found

    def reports_in(self, text: str) -> tuple[KernelReport, ...]:
        """The kernel reports of a console text: one per bug, symbolized when possible."""
        return self._reader.reports_in(text)

    def add_timing(self, phase: str, seconds: float) -> None:
        """Count ``seconds`` to ``phase`` in kernel.json's timings."""
        self.timings.add(phase, seconds)

    def compiled(self) -> Mapping[str, CompileResult]:
        """This kernel's tests compiled for its architecture."""
        return self._prep.compiled()

    def record(self) -> KernelRecord:
        """This kernel as the run's summary shows it."""
        return self._life.record()

    # -- before the first boot -----------------------------------------------------
    def prepare(self) -> Verdict | None:
        """Resolve the kernel and let the backend prepare once; a Verdict if that failed."""
        if self.files is not None or self.setup_error is not None:
            return self.setup_error
        verdict = self._life.prepare()
        self._reader.symbolize_with(self.image)  # from here on, in and out of tests
        self._write_record()
        return verdict

    def machine_config(self) -> MachineConfig:
        """The guest shape: the kernel's settings, grown to what its tests need."""
        return self._prep.machine_config()

    # -- boots -----------------------------------------------------------------------
    def ensure_booted(self) -> Verdict | None:
        """Boot unless a live guest is there; a BOOT_FAIL verdict if it never got ready."""
        return self._life.ensure_booted()

    def boot_dir(self) -> Path:
        """The current boot's evidence directory."""
        return self._life.boot_dir()

    def shutdown(self) -> None:
        """Stop the guest, remove its saved state (idempotent); kernel.json says how it started.

        kernel.json is written again: at prepare time it knew no boot, no
        release and no boot timings (it said ``boots: 0`` after every run).
        """
        self._life.close()
        if self.files is not None:
            self._write_record()

    def _write_record(self) -> None:
        error = self.setup_error.summary if self.setup_error else None
        evidence.write_kernel(self.directory, self.record(), error)

    def stop_guest(self) -> None:
        """Stop the live guest, keep its saved state: the next fresh guest is a restore."""
        self._life.shutdown()

    # -- tests -------------------------------------------------------------------------
    def preflight(self, test: GuestTest, attempt: int = 0) -> TestRun | None:
        """Everything before the test runs; a TestRun (error, boot-fail) if it cannot."""
        started = time.monotonic()
        problem = self._prep.compile_failure(test) or self.prepare() or self.ensure_booted()
        if problem is not None:
            return self.record_setup(test, problem, started, attempt=attempt)
        return None

    def run(self, test: GuestTest, attempt: int = 0) -> TestRun:
        """Run ``test`` on this kernel's guest and classify what happened.

        ``attempt`` numbers the runs of a test run several times (``--runs
        N``, from 1): each keeps its evidence in ``<test>/run-<attempt>/``.
        """
        started = time.monotonic()
        failed = self.preflight(test, attempt)
        if failed is not None:
            return failed
        assert self.image is not None and self.channel is not None
        unmet = self._needs.unmet(test, self.image, self.channel)
        if unmet:
            verdict = classify_setup(SetupFacts("need", unmet))
            return self.record_setup(test, verdict, started, attempt=attempt)
        notes = self._needs.notes(test, self.image, self.channel)
        return self.execute(test, started, notes, attempt=attempt)

    def test_dir(self, test: GuestTest, attempt: int = 0) -> Path:
        """Where the evidence of one run of ``test`` goes."""
        base = self.directory / test.name
        return base / f"run-{attempt}" if attempt else base

    def execute(
        self,
        test: GuestTest,
        started: float,
        notes: tuple[str, ...] = (),
        guest_cmd: str | None = None,
        directory: Path | None = None,
        attempt: int = 0,
    ) -> TestRun:
        """Run the test between kmsg markers, then judge its console window.

        ``guest_cmd`` replaces how the guest starts it (a kselftest runs in its
        target's directory), ``directory`` where its evidence goes; ``attempt`` numbers the runs
        of a test run several times (``--runs N``).
        """
        assert self.machine is not None and self.channel is not None and self.files is not None
        tag = f"{test.name}-{self.boots}-{int(started * 1000) % 100000}"
        start = self.machine.console.offset()
        self._life.test_starts(start)
        window = TestWindow(self.machine, self.channel, self.policy, self.progress, self.reports_in)
        timeout = test.timeout if self.spec.timeouts.test is None else self.spec.timeouts.test
        command = guest_cmd or guest_command(test, self.files.tests_dir)
        directory = directory or self.test_dir(test, attempt)
        capture = Capture.to_files(directory, self.policy.output)  # on disk as it arrives
        seen = window.observe(test, command, timeout, tag, start, capture)
        self._outside.seen_until(seen.end)
        tail = evidence.stderr_tail(self.boot_dir()) if seen.machine_exit is not None else ""
        verdict = verdict_for(test, seen, tail, notes)
        self._life.test_ended(verdict.outcome, bool(seen.trailer.new_taint or seen.reports))
        seconds = time.monotonic() - started
        run = seen.test_run(test, self.spec.name, verdict, seconds, directory, self.boots)
        evidence.save_test(run, seen.window, streams_saved=True)
        return run

    def record_setup(
        self,
        test: GuestTest,
        verdict: Verdict,
        started: float,
        directory: Path | None = None,
        attempt: int = 0,
    ) -> TestRun:
        """A test that never ran (``verdict`` says why), recorded with its evidence dir."""
        reports = self._life.setup_reports if verdict is self.setup_error else ()
        seconds, out = time.monotonic() - started, directory or self.test_dir(test, attempt)
        run = TestRun(
            test.name, self.spec.name, verdict, seconds, out, reports=reports, boot=self.boots
        )
        evidence.save_test(run, "")
        return run


def guest_command(test: GuestTest, tests_dir: str) -> str:
    """How the guest starts ``test``: the binary, or the guest's own sh on the script."""
    path = f"{tests_dir}/{test.name}"
    return f"sh {path}" if test.kind == "sh" else path
