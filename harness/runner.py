"""One candidate kernel's guest across its tests: the life and the policy.

:class:`KernelGuest` sequences a kernel's life (resolve it, let its backend
prepare once, boot, reuse the boot across tests, boot afresh when the last
test left the kernel untrusted) and holds the policy of a test run: the
console window between kmsg markers, when to stop waiting (kernel dead, a
report printed and the console quiet), how a hang is probed (blocked-task
dump over the channel, or the magic key when the channel is dead), when a
report is complete.  Everything else sits behind a seam: the backend and its
:class:`~harness.machine.base.Machine` and
:class:`~harness.machine.base.Channel`, the classifier
(:mod:`harness.outcome`), the evidence (:mod:`harness.results`).  So the
replay backend can drive this policy in unit tests without booting anything.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness import results
from harness.arch import Arch
from harness.compile import CompileResult, check_script, compile_test
from harness.config import KernelSpec
from harness.errors import BuildFailed, GuestUnreachable, HarnessError
from harness.guest.keys import GuestKeys, make_keys
from harness.kernels import kernelconfig
from harness.kernels.base import KernelImage
from harness.kernels.kselftest_build import BuiltTarget
from harness.ktap import parse_ktap
from harness.machine import accel as accel_mod
from harness.machine.backends import BACKENDS, DEFAULT_BACKEND, BackendFactory
from harness.machine.base import (
    Backend,
    BootFiles,
    Channel,
    CommandResult,
    GuestPayload,
    GuestShape,
    Machine,
    MachineConfig,
    Ready,
)
from harness.machine.console import is_report_line
from harness.oops import KernelReport, ReportType, fold, parse
from harness.outcome import Outcome, RunFacts, SetupFacts, Verdict, classify, classify_setup
from harness.progress import NO_PROGRESS, Activity, Kind, Labelled, Progress, track
from harness.records import KernelRecord, OutsideReport, TestRun
from harness.results import Timings
from harness.symbolize import Symbolizer, decode_reports
from harness.testdef import GuestTest

_TRAILER = re.compile(r"@@HARNESS rc=(\d+) taint_before=(\d+) taint_after=(\d+)\s*$")


@dataclass(frozen=True)
class Policy:
    """The runner's waits, in seconds: one place to tune them (the replay tests shrink them).

    ``settle``: console silence that ends a report still being printed;
    ``report_grace``: quiet seconds after a report before a still-running test
    is given up (the outcome is oops whatever it does next, and a process
    killed by an oops often leaves its siblings stuck on its locks);
    ``end_marker``: how long the end marker may lag the test's exit;
    ``dying``: how long a kernel that may be dying gets to say why;
    ``dump_quiet``/``dump_wait``: how a blocked-task dump is waited for.
    ``boot_attempts``: boots tried before a kernel is called unbootable.  TCG
    emulates cross-modifying code imperfectly: now and then a kernel dies
    patching its own text in early boot ("Oops: int3" in sched_clock_cpu,
    seen in CI), a crash real hardware never shows.  A kernel that cannot
    boot fails every attempt (a panic is noticed at once, so this is cheap);
    a failed attempt's crash stays in the results as a report outside tests.
    Only a boot that died (a panic, QEMU's process gone) is tried again: one
    that hangs to the boot timeout, or whose SSH never answers, would hang
    again, and retrying it would double the wait.
    """

    settle: float = 0.5
    report_grace: float = 10.0
    end_marker: float = 5.0
    dying: float = 5.0
    dump_quiet: float = 1.0
    dump_wait: float = 15.0
    boot_tail: float = 3.0
    boot_attempts: int = 2


@dataclass(frozen=True)
class RunContext:
    """What every kernel's guest shares within one run."""

    results: Path
    keys: GuestKeys
    compiled: Mapping[str, CompileResult]
    accel: accel_mod.Accel | None = None  # command-line override of kernels.yaml
    port_range: tuple[int, int] | None = None
    log: Callable[[str], None] = print
    backend: str | None = None  # command-line override of kernels.yaml
    backends: Mapping[str, BackendFactory] = field(default_factory=lambda: BACKENDS)
    policy: Policy = Policy()
    progress: Progress = NO_PROGRESS  # feedback during downloads, builds, boots and tests
    #: tests compiled for guests of another architecture than the host's, by (arch, test)
    foreign: dict[tuple[str, str], CompileResult] = field(default_factory=dict)

    def compiled_for(self, arch: Arch, tests: list[GuestTest]) -> Mapping[str, CompileResult]:
        """``tests`` compiled for ``arch``: the host's were compiled up front, others now."""
        if arch.is_host:
            return self.compiled
        for t in tests:
            if (arch.name, t.name) not in self.foreign:
                self.foreign[(arch.name, t.name)] = _compile(t, arch)
        return {t.name: self.foreign[(arch.name, t.name)] for t in tests}


def new_context(
    run_dir: Path,
    tests: list[GuestTest],
    accel: accel_mod.Accel | None = None,
    port_range: tuple[int, int] | None = None,
    log: Callable[[str], None] = print,
    backend: str | None = None,
    progress: Progress = NO_PROGRESS,
) -> RunContext:
    """Keys and compiled tests for a run whose evidence goes to ``run_dir``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    compiled = {t.name: _compile(t) for t in tests}
    context = RunContext(
        run_dir, make_keys(run_dir / "keys"), compiled, accel, port_range, log, backend
    )
    return replace(context, progress=progress)


def _compile(test: GuestTest, arch: Arch | None = None) -> CompileResult:
    try:
        return check_script(test.source) if test.kind == "sh" else compile_test(test.source, arch)
    except HarnessError as exc:
        return CompileResult(test.name, None, str(exc))


@dataclass
class KernelGuest:
    """The guest of one kernel across the tests that run on it."""

    spec: KernelSpec
    ctx: RunContext
    tests: list[GuestTest]
    timings: Timings = field(default_factory=Timings)
    image: KernelImage | None = None
    files: BootFiles | None = None
    payload: GuestPayload | None = None
    setup_error: Verdict | None = None
    setup_reports: tuple[KernelReport, ...] = ()  # the crash that made setup_error (boot)
    machine: Machine | None = None
    channel: Channel | None = None
    ready: Ready | None = None
    boots: int = 0
    outside: list[OutsideReport] = field(default_factory=list)
    _backend: Backend | None = None
    _seen: int = 0  # console offset up to which reports have been attributed
    _ran: int = 0  # tests run on the current boot
    _nodes_online: str | None = None  # /sys/devices/system/node/online of this boot
    _config: kernelconfig.KernelConfig | None = None  # for @needs config=, found once
    _booting: Activity | None = None  # the boot's progress line while it boots
    _boot_died: bool = False  # the last failed boot crashed (worth one more try)
    kselftests: dict[str, BuiltTarget] | None = None  # selftests: targets built so far
    kselftest_pushed: set[tuple[int, str]] = field(default_factory=set)  # (boot, target)
    _symbolizer: Symbolizer | None = None  # made on the first report, if debug info is at hand

    def reports_in(self, text: str) -> tuple[KernelReport, ...]:
        """The kernel reports of a console text: one per bug, symbolized when possible."""
        reports = fold(parse(text))
        if not reports or self.image is None or self.image.debug is None:
            return tuple(reports)
        if self._symbolizer is None:
            self._symbolizer = Symbolizer(self.image.debug)
        return decode_reports(reports, self._symbolizer)

    @property
    def directory(self) -> Path:
        """This kernel's part of the results directory."""
        return self.ctx.results / self.spec.name

    @property
    def backend_name(self) -> str:
        """The backend booting this kernel: --backend, else kernels.yaml's."""
        return self.ctx.backend or self.spec.backend

    @property
    def progress(self) -> Progress:
        """The run's feedback, with this kernel's name on every line."""
        return Labelled(self.ctx.progress, self.spec.name)

    @property
    def policy(self) -> Policy:
        """The run's waits."""
        return self.ctx.policy

    def backend(self) -> Backend:
        """This kernel's backend, made on first use."""
        if self._backend is None:
            name = self.backend_name
            if name not in self.ctx.backends:
                known = ", ".join(sorted(self.ctx.backends))
                raise HarnessError(f"unknown backend '{name}'; known backends: {known}")
            if name != DEFAULT_BACKEND and not self.spec.arch.is_host:
                raise HarnessError(
                    f"backend '{name}' boots only the host's architecture; kernel "
                    f"'{self.spec.name}' is {self.spec.arch.name}: use --backend {DEFAULT_BACKEND}"
                )
            self._backend = self.ctx.backends[name]()
        return self._backend

    def compiled(self) -> Mapping[str, CompileResult]:
        """This kernel's tests compiled for its architecture."""
        return self.ctx.compiled_for(self.spec.arch, self.tests)

    # -- before the first boot -------------------------------------------------
    def prepare(self) -> Verdict | None:
        """Resolve the kernel and let the backend prepare once; a Verdict if that failed."""
        if self.files is not None or self.setup_error is not None:
            return self.setup_error
        try:
            started = time.monotonic()
            self.image = self.spec.source.resolve(self.ctx.log, self.progress)
            self.timings.add("fetch", time.monotonic() - started)
            for phase, seconds in self.image.phases.items():
                self.timings.add(phase, seconds)
            started = time.monotonic()
            backend = self.backend()  # a backend that cannot boot this arch says so first
            built = self.compiled()
            compiled = tuple(built[t.name] for t in self.tests if t.name in built)
            self.payload = GuestPayload(self.image, compiled, self.ctx.keys, self.spec.arch)
            self.files = backend.prepare(self.payload, self.directory)
            self.timings.add("image", time.monotonic() - started)
        except BuildFailed as exc:
            details = (exc.details,) + ((f"full log: {exc.log}",) if exc.log else ())
            self.setup_error = classify_setup(SetupFacts("build", str(exc), details))
        except HarnessError as exc:
            message = f"kernel '{self.spec.name}': {exc}"
            self.setup_error = classify_setup(SetupFacts("fetch", message))
        error = self.setup_error.summary if self.setup_error else None
        results.write_kernel(self.directory, self.record(), error)
        return self.setup_error

    def record(self) -> KernelRecord:
        """This kernel as the run's summary shows it."""
        return KernelRecord(
            self.spec.name,
            self.spec.source.describe(),
            self.image.origin if self.image else None,
            self.ready.release if self.ready else None,
            self.backend_name,
            self.boots,
            self.ready.boot_taint if self.ready else None,
            dict(self.timings.phases),
            self.spec.arch.name,
        )

    def machine_config(self) -> MachineConfig:
        """The guest shape: the kernel's settings, grown to what its tests need."""
        assert self.payload is not None and self.files is not None
        nodes = max([t.needs.numa_nodes for t in self.tests] or [1])
        memory = max([self.spec.memory_mib, *(t.needs.memory_mib for t in self.tests)])
        thp = next((t.needs.thp for t in self.tests if t.needs.thp), None)
        shape = GuestShape(memory, max(self.spec.cpus, nodes), nodes, self.spec.cmdline, thp)
        choice = accel_mod.choose(self.ctx.accel or self.spec.accel, self.spec.arch)
        return MachineConfig(self.payload, self.files, choice, shape, self.ctx.port_range)

    # -- boots -------------------------------------------------------------------
    def ensure_booted(self) -> Verdict | None:
        """Boot unless a live guest is there; a BOOT_FAIL verdict if it never got ready."""
        if self.channel is not None and self.machine is not None and self.machine.running:
            return None
        if self.setup_error is not None:
            return self.setup_error
        verdict = self._boot()
        for _ in range(1, self.policy.boot_attempts):
            if verdict is None or not self._boot_died:
                break
            self.ctx.log(
                f"{self.spec.name}: boot-{self.boots} failed ({verdict.summary}); "
                "booting once more (TCG can crash a sound kernel in early boot)"
            )
            self.setup_error, self.setup_reports = None, ()
            verdict = self._boot()
        return verdict

    def _boot(self) -> Verdict | None:
        """One boot: start, wait for the ready line, connect; a verdict if it failed."""
        self.shutdown()
        self.boots += 1
        self._seen, self._boot_died = 0, False  # a new console: nothing of it attributed yet
        boot_dir = self.boot_dir()
        cfg = self.machine_config()
        started = time.monotonic()
        machine = self.backend().machine(cfg, boot_dir)
        try:
            machine.start()
        except HarnessError as exc:
            machine.stop()
            self.setup_error = classify_setup(SetupFacts("start", str(exc)))
            return self.setup_error
        except BaseException:  # Ctrl-C mid-start: nothing may be left running
            machine.stop()
            raise
        self.machine = machine
        with track(self.progress, Kind.BOOT, f"boot-{self.boots}") as self._booting:
            self._follow_console()
            ready = self.machine.wait_ready(self.spec.timeouts.boot)
        self._booting = None
        seconds = time.monotonic() - started
        self.timings.add("boot", seconds)
        results.write_boot(boot_dir, self.backend_name, cfg, ready, seconds)
        if ready is None:
            return self._boot_failed(seconds)
        try:
            self.channel = self.machine.connect(ready)
        except GuestUnreachable as exc:
            self.shutdown()
            self.setup_error = classify_setup(SetupFacts("connect", str(exc)))
            return self.setup_error
        self.timings.add("ssh", time.monotonic() - started - seconds)
        self.ready = ready
        self._seen, self._ran, self._nodes_online = 0, 0, None
        self._attribute_outside(self.machine.console.offset())
        return None

    def _follow_console(self) -> None:
        """Show the boot's last console line; stream the console when asked (--console)."""
        assert self.machine is not None
        progress, name = self.ctx.progress, self.spec.name

        def line(text: str) -> None:
            booting = self._booting
            if booting is not None and text.strip():
                booting.update(detail=text.strip())
            if progress.streams_console:
                progress.console(name, text, is_report_line(text))

        self.machine.console.add_listener(line)

    def boot_dir(self) -> Path:
        """The current boot's evidence directory."""
        return self.directory / f"boot-{self.boots}"

    def _attribute_outside(self, end: int) -> None:
        """Record reports printed since the last window: they belong to no test."""
        if self.machine is None or end <= self._seen:
            return
        when = "boot" if self._ran == 0 else "between tests"
        for report in self.reports_in(self.machine.console.text(self._seen, end)):
            self.outside.append(OutsideReport(self.spec.name, self.boots, when, report))
            self.ctx.log(
                f"{self.spec.name} boot-{self.boots}: kernel report during {when}: {report.title}"
            )
        self._seen = end

    def _boot_failed(self, seconds: float) -> Verdict:
        """A boot that never got ready: name the crash that killed it, show the console's end.

        ``wait_ready`` returns the moment a panic is printed, so this runs
        seconds after the kernel died, not after the boot timeout.
        """
        assert self.machine is not None
        machine, console = self.machine, self.machine.console
        console.wait_quiet(self.policy.settle, self.policy.boot_tail)
        self._boot_died = console.panicked or not machine.running
        if console.panicked:
            why = "the kernel panicked during boot"
        elif not machine.running:
            why = f"the guest's process ended after {seconds:.1f}s ({machine.exit_status()})"
        else:
            why = f"no ready line within {self.spec.timeouts.boot:.0f}s"
        self._attribute_outside(console.offset())  # parsed and symbolized once, here
        crash = boot_crash(tuple(o.report for o in self.outside if o.boot == self.boots))
        title = f": {crash.title}" if crash else ""
        tail = console.tail(30)
        self.shutdown()
        self.setup_reports = (crash,) if crash else ()
        self.setup_error = classify_setup(
            SetupFacts(
                "boot",
                f"{why}{title}",
                (f"last console lines ({self.boot_dir()}/console.log):\n{tail}",),
            )
        )
        return self.setup_error

    # -- tests -------------------------------------------------------------------
    def preflight(self, test: GuestTest, attempt: int = 0) -> TestRun | None:
        """Everything before the test runs; a TestRun (error, boot-fail) if it cannot."""
        started = time.monotonic()
        compiled = self.compiled().get(test.name)
        if compiled is not None and not compiled.ok:
            verdict = classify_setup(SetupFacts("compile", "", (compiled.log,)))
            return self.record_setup(test, verdict, started, attempt=attempt)
        problem = self.prepare() or self.ensure_booted()
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
        unmet = self._unmet_needs(test) or self._unmet_config(test)
        if unmet:
            verdict = classify_setup(SetupFacts("need", unmet))
            return self.record_setup(test, verdict, started, attempt=attempt)
        return self.execute(test, started, self._config_notes(test), attempt=attempt)

    def test_dir(self, test: GuestTest, attempt: int = 0) -> Path:
        """Where the evidence of one run of ``test`` goes."""
        base = self.directory / test.name
        return base / f"run-{attempt}" if attempt else base

    def kernel_config(self) -> kernelconfig.KernelConfig:
        """This kernel's config: beside its image on the host, else /proc/config.gz."""
        if self._config is None:
            assert self.image is not None and self.channel is not None
            self._config = kernelconfig.from_host(self.image)
            if self._config is None:
                try:
                    proc = self.channel.run(kernelconfig.PROC_CONFIG_COMMAND, 30)
                except GuestUnreachable:  # the test's own run will say what broke
                    return kernelconfig.from_guest(None)
                self._config = kernelconfig.from_guest(proc.stdout if proc.exit_code == 0 else "")
        return self._config

    def _unmet_config(self, test: GuestTest) -> str | None:
        """The skip reason naming the options the kernel lacks; unknown config: say so, run."""
        if not test.needs.config:
            return None
        config = self.kernel_config()
        missing = config.missing(test.needs.config)
        if missing:
            return kernelconfig.unmet_message(missing, config.source)
        return None

    def _config_notes(self, test: GuestTest) -> tuple[str, ...]:
        """For the result's details and the log: config needs that could not be checked."""
        if not test.needs.config or self.kernel_config().values is not None:
            return ()
        note = kernelconfig.unknown_note(test.needs.config, self.kernel_config())
        self.ctx.log(f"{self.spec.name} {test.name}: {note}")
        return (note,)

    def _unmet_needs(self, test: GuestTest) -> str | None:
        assert self.channel is not None
        if test.needs.numa_nodes > 1:
            if self._nodes_online is None:
                node_list = self.channel.run("cat /sys/devices/system/node/online", 10)
                self._nodes_online = node_list.stdout.strip()
            online = self._nodes_online
            count = count_ranges(online)
            if count < test.needs.numa_nodes:
                return (
                    f"needs {test.needs.numa_nodes} NUMA nodes, the guest has {count} "
                    f"(node/online '{online or 'missing'}': kernel without CONFIG_NUMA?)"
                )
        return None

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
        assert self.machine is not None and self.files is not None
        console = self.machine.console
        tag = f"{test.name}-{self.boots}-{int(started * 1000) % 100000}"
        window_start = console.offset()
        self._attribute_outside(window_start)
        self._ran += 1
        result, hang_notes = self._run_in_guest(test, tag, window_start, guest_cmd)
        machine_exit = self._exit_if_gone()
        died = console.panicked
        if not died and machine_exit is None:
            self._settle(tag, window_start)
        window_end = console.offset()
        window = console.text(window_start, window_end)
        self._seen = window_end
        reports = self.reports_in(window)
        stderr, rc, taint = split_trailer(result)
        facts = run_facts(test, result, rc, died, reports, taint)
        if machine_exit is not None:
            tail = results.stderr_tail(self.boot_dir())
            facts = _with_exit(facts, machine_exit, tail)
        verdict = classify(facts)
        verdict = replace(verdict, details=verdict.details + notes)
        if hang_notes and verdict.outcome is Outcome.HANG:
            verdict = Verdict(verdict.outcome, verdict.summary, verdict.details + hang_notes)
        self._reboot_if_untrusted(verdict, taint, reports)
        command = CommandResult(
            result.command, rc, result.stdout, stderr, result.seconds, result.timed_out
        )
        run = TestRun(
            test.name,
            self.spec.name,
            verdict,
            time.monotonic() - started,
            directory or self.test_dir(test, attempt),
            command,
            reports,
            taint,
            self.boots,
        )
        results.save_test(run, window)
        return run

    def _run_in_guest(
        self, test: GuestTest, tag: str, window_start: int, guest_cmd: str | None = None
    ) -> tuple[CommandResult, tuple[str, ...]]:
        """The test's command with its timeout: (result, hang notes)."""
        assert self.channel is not None and self.machine is not None and self.files is not None
        console = self.machine.console
        timeout = test.timeout if self.spec.timeouts.test is None else self.spec.timeouts.test
        command = wrap(guest_cmd or guest_command(test, self.files.tests_dir), tag)
        try:
            with track(self.progress, Kind.TEST, test.name, timeout=timeout):
                result = self.channel.run(command, timeout, abort=self._stop_waiting(window_start))
        except GuestUnreachable as exc:
            # The channel broke under us; the console tells whether the kernel did.
            result = CommandResult(test.name, None, "", str(exc), 0.0)
        if result.exit_code is None and not result.timed_out:
            console.wait_quiet(self.policy.settle, self.policy.dying)  # let it say why
        notes: tuple[str, ...] = ()
        if result.timed_out and self.machine.running and not console.panicked:
            notes = self._dump_blocked_tasks()
        return result, notes

    def _exit_if_gone(self) -> str | None:
        """How the guest's process ended, if it did; None while it runs.

        A dead process closes its console and sockets a moment before it can
        be reaped: once the console is at EOF, give the exit a moment to show.
        """
        assert self.machine is not None
        deadline = time.monotonic() + 2.0
        while self.machine.console.eof and self.machine.running and time.monotonic() < deadline:
            time.sleep(0.02)
        return None if self.machine.running else self.machine.exit_status()

    def _reboot_if_untrusted(
        self, verdict: Verdict, taint: int, reports: tuple[KernelReport, ...]
    ) -> None:
        """After a hang, panic, lost channel, oops or new taint, the next test boots fresh.

        ``reboot_after_oops: false`` keeps a guest that only oopsed or tainted.
        """
        oopsish = verdict.outcome is Outcome.OOPS or bool(taint) or bool(reports)
        if oopsish and verdict.outcome in (Outcome.OOPS, Outcome.PASS, Outcome.FAIL, Outcome.SKIP):
            if self.spec.reboot_after_oops:
                self.shutdown()
        elif verdict.outcome.ends_guest or oopsish:
            self.shutdown()

    def _stop_waiting(self, window_start: int) -> Callable[[], bool]:
        """When to stop waiting for a test before its timeout.

        At once if the kernel died or its process ended.  And once a kernel
        report has been printed in the test's window and the console has been
        quiet for ``report_grace`` seconds.
        """
        assert self.machine is not None
        machine, console = self.machine, self.machine.console
        grace = self.policy.report_grace
        parsed: dict[int, bool] = {}

        def abort() -> bool:
            if console.panicked or not machine.running:
                return True
            if not console.report_since(window_start) or console.idle_seconds() < grace:
                return False
            end = console.offset()
            if end not in parsed:  # parse once per new console state, not every poll
                parsed[end] = bool(parse(console.text(window_start, end)))
            return parsed[end]

        return abort

    def _settle(self, tag: str, window_start: int) -> None:
        """Wait until the test's window is complete on the console.

        printk keeps order, so once the end marker is on the console everything
        the test made the kernel print is too; only a report still being
        printed (from another CPU) needs the console to go quiet.
        """
        assert self.machine is not None
        console = self.machine.console
        marker = re.escape(f"HARNESS-END {tag}").encode()
        console.wait_for(marker, self.policy.end_marker, window_start)
        if parse(console.text(window_start)):
            console.wait_quiet(self.policy.settle, self.policy.end_marker)

    def _dump_blocked_tasks(self) -> tuple[str, ...]:
        """After a timeout: probe the guest, then ask for a blocked-task dump (sysrq w)."""
        assert self.channel is not None and self.machine is not None
        if self.channel.alive(5):
            try:
                self.channel.run("echo w > /proc/sysrq-trigger", 10)
                how = "sysrq-w over the channel"
            except GuestUnreachable:
                how = ""
        else:
            how = ""
        if not how:
            if not self.machine.magic_key("w"):
                return ("the guest answers neither its channel nor the magic sysrq key",)
            how = "the magic sysrq key (the channel no longer answers: kernel wedged?)"
        self.machine.console.wait_quiet(self.policy.dump_quiet, self.policy.dump_wait)
        return (f"blocked tasks dumped with {how}: see the console window",)

    def record_setup(
        self,
        test: GuestTest,
        verdict: Verdict,
        started: float,
        directory: Path | None = None,
        attempt: int = 0,
    ) -> TestRun:
        """A test that never ran (``verdict`` says why), recorded with its evidence dir."""
        run = TestRun(
            test.name,
            self.spec.name,
            verdict,
            time.monotonic() - started,
            directory or self.test_dir(test, attempt),
            reports=self.setup_reports if verdict is self.setup_error else (),
            boot=self.boots,
        )
        results.save_test(run, "")
        return run

    def shutdown(self) -> None:
        """Close the channel and stop the machine, if any (idempotent)."""
        if self.machine is not None:
            self._attribute_outside(self.machine.console.offset())
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        if self.machine is not None:
            self.machine.stop()
            self.machine = None


def boot_crash(reports: tuple[KernelReport, ...]) -> KernelReport | None:
    """The report that killed a boot: the last one before the first panic, else the panic.

    A fatal oops prints its report, then "Kernel panic - not syncing: Fatal
    exception" (or "Attempted to kill init!"): the oops is the crash, the
    panic its consequence.  Without a panic, the last report printed.
    """
    panic = next((i for i, r in enumerate(reports) if r.type is ReportType.PANIC), None)
    before = reports[:panic] if panic is not None else reports
    if before:
        return before[-1]
    return reports[panic] if panic is not None else None


def guest_command(test: GuestTest, tests_dir: str) -> str:
    """How the guest starts ``test``: the binary, or the guest's own sh on the script."""
    path = f"{tests_dir}/{test.name}"
    return f"sh {path}" if test.kind == "sh" else path


def wrap(binary: str, tag: str) -> str:
    """The guest command: markers in the kernel log and taint around the test.

    The markers go through /dev/kmsg so they sit in the console stream in
    order with whatever the kernel prints: a report between them is the
    test's.  Exit code and taint travel back as a trailer line on stderr.
    """
    return (
        f"echo 'HARNESS-START {tag}' > /dev/kmsg; tb=$(cat /proc/sys/kernel/tainted); "
        f"cd /tmp && {binary}; rc=$?; "
        f"ta=$(cat /proc/sys/kernel/tainted); echo 'HARNESS-END {tag}' > /dev/kmsg; "
        "printf '\\n@@HARNESS rc=%d taint_before=%s taint_after=%s\\n' $rc $tb $ta >&2; exit $rc"
    )


def split_trailer(result: CommandResult) -> tuple[str, int | None, int]:
    """Take the harness's trailer off stderr: (stderr, exit code, new taint bits)."""
    m = _TRAILER.search(result.stderr)
    if not m:
        return result.stderr, result.exit_code, 0
    stderr = result.stderr[: m.start()].removesuffix("\n")
    before, after = int(m.group(2)), int(m.group(3))
    return stderr, int(m.group(1)), after & ~before


def run_facts(
    test: GuestTest,
    result: CommandResult,
    rc: int | None,
    died: bool,
    reports: tuple[KernelReport, ...],
    taint: int,
) -> RunFacts:
    """What was observed, with reports the test expected set apart from the rest."""
    pattern = test.expect_report
    expected = [r for r in reports if pattern and re.search(pattern, r.title)]
    return RunFacts(
        exit_code=rc,
        timed_out=result.timed_out,
        kernel_died=died,
        reports=tuple(r.title for r in reports if r not in expected),
        ktap=parse_ktap(result.stdout),
        new_taint=taint,
        lost=result.stderr if rc is None and not result.timed_out else None,
        expected_report=pattern,
        expected_seen=expected[0].title if expected else None,
    )


def _with_exit(facts: RunFacts, machine_exit: str, stderr: str) -> RunFacts:
    return replace(facts, machine_exit=machine_exit, machine_stderr=stderr)


def count_ranges(text: str) -> int:
    """Count the members of a kernel cpu/node list such as '0-1,3'."""
    count = 0
    for part in filter(None, text.split(",")):
        low, _, high = part.partition("-")
        if low.isdigit():
            count += int(high) - int(low) + 1 if high.isdigit() else 1
    return count
