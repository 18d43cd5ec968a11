"""One candidate kernel's guest: prepare, boot once, run tests, reboot when needed.

:class:`KernelGuest` is the only object that sequences a kernel's life:
resolve the kernel, build its initrd, boot it (once, reused across tests),
run each test with its console window and taint measured, classify, and
decide whether the next test needs a fresh boot.  It records evidence into
the results directory as it goes, before anything is reported, so an
interrupted run still leaves what it saw.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import paramiko

from harness.compile import CompileResult, compile_test
from harness.config import KernelSpec
from harness.errors import BuildFailed, GuestUnreachable, HarnessError
from harness.guest.image import TESTS_DIR, build_initrd
from harness.guest.keys import GuestKeys, make_keys
from harness.kernels import KernelImage
from harness.ktap import parse_ktap
from harness.machine import accel as accel_mod
from harness.machine.qemu import BootInfo, MachineConfig, QemuMachine
from harness.oops import KernelReport, parse
from harness.outcome import Outcome, RunFacts, Verdict, classify
from harness.report import report_json
from harness.results import Timings, write_json
from harness.session import CommandResult, GuestSession
from harness.testdef import GuestTest

_TRAILER = re.compile(r"@@HARNESS rc=(\d+) taint_before=(\d+) taint_after=(\d+)\s*$")
_SETTLE = 0.5  # seconds of console silence that ends a report still being printed
REPORT_GRACE = 10.0  # quiet seconds after a report before a still-running test is given up


@dataclass(frozen=True)
class RunContext:
    """What every kernel's guest shares within one run."""

    results: Path
    keys: GuestKeys
    compiled: dict[str, CompileResult]
    accel: accel_mod.Accel | None = None  # command-line override of kernels.yaml
    port_range: tuple[int, int] | None = None
    log: Callable[[str], None] = print


def new_context(
    run_dir: Path,
    tests: list[GuestTest],
    accel: accel_mod.Accel | None = None,
    port_range: tuple[int, int] | None = None,
    log: Callable[[str], None] = print,
) -> RunContext:
    """Keys and compiled tests for a run whose evidence goes to ``run_dir``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    compiled = {t.name: _compile(t) for t in tests}
    return RunContext(run_dir, make_keys(run_dir / "keys"), compiled, accel, port_range, log)


def _compile(test: GuestTest) -> CompileResult:
    try:
        return compile_test(test.source)
    except HarnessError as exc:
        return CompileResult(test.name, None, str(exc))


@dataclass(frozen=True)
class OutsideReport:
    """A kernel report that no test's window holds: the boot's or the harness's."""

    kernel: str
    boot: int
    when: str  # "boot", "between tests", "after the last test"
    report: KernelReport


@dataclass(frozen=True)
class TestRun:
    """Everything known about one test on one kernel, after the fact."""

    test: str
    kernel: str
    verdict: Verdict
    seconds: float
    directory: Path
    result: CommandResult | None = None
    reports: tuple[KernelReport, ...] = ()
    new_taint: int = 0
    boot: int = 0


@dataclass
class KernelGuest:
    """The guest of one kernel across the tests that run on it."""

    spec: KernelSpec
    ctx: RunContext
    tests: list[GuestTest]
    timings: Timings = field(default_factory=Timings)
    image: KernelImage | None = None
    initrd: Path | None = None
    setup_error: Verdict | None = None
    machine: QemuMachine | None = None
    session: GuestSession | None = None
    boot_info: BootInfo | None = None
    boots: int = 0
    outside: list[OutsideReport] = field(default_factory=list)
    _seen: int = 0  # console offset up to which reports have been attributed
    _ran: int = 0  # tests run on the current boot
    _nodes_online: str | None = None  # /sys/devices/system/node/online of this boot

    @property
    def directory(self) -> Path:
        """This kernel's part of the results directory."""
        return self.ctx.results / self.spec.name

    def prepare(self) -> Verdict | None:
        """Resolve the kernel and build its initrd once; a Verdict if that failed."""
        if self.initrd is not None or self.setup_error is not None:
            return self.setup_error
        try:
            started = time.monotonic()
            self.image = self.spec.source.resolve(self.ctx.log)
            self.timings.add("fetch", time.monotonic() - started)
            started = time.monotonic()
            compiled = [
                self.ctx.compiled[t.name] for t in self.tests if t.name in self.ctx.compiled
            ]
            self.initrd = build_initrd(
                self.image, compiled, self.ctx.keys, self.directory / "initrd.img"
            )
            self.timings.add("image", time.monotonic() - started)
        except BuildFailed as exc:
            details = (exc.details,) + ((f"full log: {exc.log}",) if exc.log else ())
            self.setup_error = Verdict(Outcome.BUILD_FAIL, f"build-fail: {exc}", details)
        except HarnessError as exc:
            self.setup_error = Verdict(
                Outcome.ERROR, f"kernel '{self.spec.name}' unavailable: {exc}"
            )
        write_json(
            self.directory / "kernel.json",
            {
                "name": self.spec.name,
                "source": self.spec.source.describe(),
                "origin": self.image.origin if self.image else None,
                "error": self.setup_error.summary if self.setup_error else None,
                "timings": self.timings.phases,
            },
        )
        return self.setup_error

    def machine_config(self) -> MachineConfig:
        """The guest shape: the kernel's settings, grown to what its tests need."""
        assert self.image is not None and self.initrd is not None
        nodes = max([t.needs.numa_nodes for t in self.tests] or [1])
        memory = max([self.spec.memory_mib, *(t.needs.memory_mib for t in self.tests)])
        thp = next((t.needs.thp for t in self.tests if t.needs.thp), None)
        choice = accel_mod.choose(self.ctx.accel or self.spec.accel)
        return MachineConfig(
            self.image.vmlinuz,
            self.initrd,
            choice,
            memory,
            max(self.spec.cpus, nodes),
            nodes,
            self.spec.cmdline,
            thp,
            self.ctx.port_range,
        )

    def ensure_booted(self) -> Verdict | None:
        """Boot unless a live guest is there; a BOOT_FAIL verdict if it never got ready."""
        if self.session is not None and self.machine is not None and self.machine.running:
            return None
        if self.setup_error is not None:
            return self.setup_error
        self.shutdown()
        self.boots += 1
        boot_dir = self.directory / f"boot-{self.boots}"
        cfg = self.machine_config()
        self.machine = QemuMachine(cfg, boot_dir)
        started = time.monotonic()
        try:
            self.machine.start()
        except HarnessError as exc:
            self.shutdown()
            self.setup_error = Verdict(Outcome.ERROR, f"error: cannot start the guest: {exc}")
            return self.setup_error
        info = self.machine.wait_ready(self.spec.timeouts.boot, started)
        self.timings.add("boot", time.monotonic() - started)
        write_json(
            boot_dir / "boot.json",
            {"accel": cfg.accel, "ready": info, "seconds": round(time.monotonic() - started, 3)},
        )
        if info is None:
            return self._boot_failed(started)
        try:
            self.session = GuestSession(info.ssh_port, self.ctx.keys)
        except GuestUnreachable as exc:
            self.shutdown()
            self.setup_error = Verdict(Outcome.BOOT_FAIL, f"boot-fail: {exc}")
            return self.setup_error
        self.timings.add("ssh", time.monotonic() - started - info.seconds)
        self.boot_info = info
        self._seen, self._ran, self._nodes_online = 0, 0, None
        self._attribute_outside(self.machine.console.offset())  # type: ignore[union-attr]
        return None

    def _attribute_outside(self, end: int) -> None:
        """Record reports printed since the last window: they belong to no test."""
        if self.machine is None or self.machine.console is None or end <= self._seen:
            return
        when = "boot" if self._ran == 0 else "between tests"
        for report in parse(self.machine.console.text(self._seen, end)):
            self.outside.append(OutsideReport(self.spec.name, self.boots, when, report))
            self.ctx.log(
                f"{self.spec.name} boot-{self.boots}: kernel report during {when}: {report.title}"
            )
        self._seen = end

    def _boot_failed(self, started: float) -> Verdict:
        assert self.machine is not None and self.machine.console is not None
        console = self.machine.console
        console.wait_quiet(0.5, 3)
        waited = time.monotonic() - started
        if console.panicked:
            why = "the kernel panicked during boot"
        elif console.eof:
            why = f"QEMU exited after {waited:.1f}s"
        else:
            why = f"no ready line within {self.spec.timeouts.boot:.0f}s"
        reports = parse(console.text())
        title = f": {reports[0].title}" if reports else ""
        tail = console.tail(30)
        self.shutdown()
        self.setup_error = Verdict(
            Outcome.BOOT_FAIL,
            f"boot-fail: {why}{title}",
            (f"console tail ({self.machine_dir()}/console.log):\n{tail}",),
        )
        return self.setup_error

    def machine_dir(self) -> Path:
        """The current boot's evidence directory."""
        return self.directory / f"boot-{self.boots}"

    def preflight(self, test: GuestTest) -> TestRun | None:
        """Everything before the test runs; a TestRun (error, boot-fail) if it cannot."""
        started = time.monotonic()
        compiled = self.ctx.compiled.get(test.name)
        if compiled is not None and not compiled.ok:
            verdict = Verdict(Outcome.ERROR, "error: the test does not compile", (compiled.log,))
            return self._record(test, verdict, started, self.directory / test.name)
        problem = self.prepare() or self.ensure_booted()
        if problem is not None:
            return self._record(test, problem, started, self.directory / test.name)
        return None

    def run(self, test: GuestTest) -> TestRun:
        """Run ``test`` on this kernel's guest and classify what happened."""
        started = time.monotonic()
        out_dir = self.directory / test.name
        failed = self.preflight(test)
        if failed is not None:
            return failed
        unmet = self._unmet_needs(test)
        if unmet:
            return self._record(test, Verdict(Outcome.SKIP, unmet), started, out_dir)
        return self._execute(test, started, out_dir)

    def _unmet_needs(self, test: GuestTest) -> str | None:
        assert self.session is not None
        if test.needs.numa_nodes > 1:
            if self._nodes_online is None:
                node_list = self.session.run("cat /sys/devices/system/node/online", 10)
                self._nodes_online = node_list.stdout.strip()
            online = self._nodes_online
            count = _count_ranges(online)
            if count < test.needs.numa_nodes:
                return (
                    f"needs {test.needs.numa_nodes} NUMA nodes, the guest has {count} "
                    f"(node/online '{online or 'missing'}': kernel without CONFIG_NUMA?)"
                )
        return None

    def _execute(self, test: GuestTest, started: float, out_dir: Path) -> TestRun:
        """Run the test between kmsg markers, then judge its console window."""
        assert self.machine is not None and self.machine.console is not None
        console = self.machine.console
        tag = f"{test.name}-{self.boots}-{int(started * 1000) % 100000}"
        window_start = console.offset()
        self._attribute_outside(window_start)
        self._ran += 1
        result, died, notes = self._run_in_guest(test, tag, window_start)
        if not died:
            self._settle(tag, window_start)
        window_end = console.offset()
        window = console.text(window_start, window_end)
        self._seen = window_end
        reports = tuple(parse(window))
        stderr, rc, taint = _split_trailer(result)
        verdict = classify(_facts(test, result, rc, died, reports, taint))
        if notes and verdict.outcome is Outcome.HANG:
            verdict = Verdict(verdict.outcome, verdict.summary, verdict.details + notes)
        self._reboot_if_untrusted(verdict, taint, reports)
        command = CommandResult(
            result.command, rc, result.stdout, stderr, result.seconds, result.timed_out
        )
        run = TestRun(
            test.name,
            self.spec.name,
            verdict,
            time.monotonic() - started,
            out_dir,
            command,
            reports,
            taint,
            self.boots,
        )
        _save(run, window)
        return run

    def _run_in_guest(
        self, test: GuestTest, tag: str, window_start: int
    ) -> tuple[CommandResult, bool, tuple[str, ...]]:
        """The test's command with its timeout: (result, kernel died, hang notes)."""
        assert self.session is not None and self.machine is not None
        console = self.machine.console
        assert console is not None
        timeout = test.timeout if self.spec.timeouts.test is None else self.spec.timeouts.test
        try:
            result = self.session.run(
                _wrap(test.name, tag), timeout, abort=self._stop_waiting(window_start)
            )
        except (GuestUnreachable, paramiko.SSHException, OSError, EOFError) as exc:
            # The channel broke under us; the console tells whether the kernel did.
            result = CommandResult(test.name, None, "", f"SSH session lost: {exc}", 0.0)
        if result.exit_code is None and not result.timed_out:
            console.wait_quiet(_SETTLE, 5)  # the kernel may be dying: let it say why
        notes: tuple[str, ...] = ()
        if result.timed_out and self.machine.running and not console.panicked:
            notes = self._dump_blocked_tasks()
        return result, not self.machine.running or console.panicked, notes

    def _reboot_if_untrusted(
        self, verdict: Verdict, taint: int, reports: tuple[KernelReport, ...]
    ) -> None:
        """After a hang, panic, lost channel, oops or new taint, the next test boots fresh."""
        if verdict.outcome in (Outcome.HANG, Outcome.PANIC, Outcome.ERROR) or (
            (verdict.outcome is Outcome.OOPS or taint or reports) and self.spec.reboot_after_oops
        ):
            self.shutdown()

    def _stop_waiting(self, window_start: int) -> Callable[[], bool]:
        """When to stop waiting for a test before its timeout.

        At once if the kernel died.  And once a kernel report has been printed
        in the test's window and the console has been quiet for REPORT_GRACE
        seconds: the outcome is ``oops`` whatever the test does next, and a
        process killed by an oops often leaves its siblings stuck on its locks.
        """
        assert self.machine is not None and self.machine.console is not None
        machine, console = self.machine, self.machine.console
        parsed: dict[int, bool] = {}

        def abort() -> bool:
            if console.panicked or not machine.running:
                return True
            if not console.report_since(window_start) or console.idle_seconds() < REPORT_GRACE:
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
        assert self.machine is not None and self.machine.console is not None
        console = self.machine.console
        console.wait_for(re.escape(f"HARNESS-END {tag}").encode(), 5, window_start)
        if parse(console.text(window_start)):
            console.wait_quiet(_SETTLE, 5)

    def _dump_blocked_tasks(self) -> tuple[str, ...]:
        """After a timeout: probe the guest, then ask for a blocked-task dump (sysrq w)."""
        assert self.session is not None and self.machine is not None
        console = self.machine.console
        assert console is not None
        if self.session.alive(5):
            self.session.run("echo w > /proc/sysrq-trigger", 10)
            how = "sysrq-w over SSH"
        elif self.machine.sysrq("w"):
            how = "sysrq-w on the keyboard (SSH no longer answers: kernel wedged?)"
        else:
            return ("the guest answers neither SSH nor QEMU's monitor",)
        console.wait_quiet(1.0, 15)
        return (f"blocked tasks dumped with {how}: see the console window",)

    def _record(self, test: GuestTest, verdict: Verdict, started: float, out_dir: Path) -> TestRun:
        run = TestRun(
            test.name, self.spec.name, verdict, time.monotonic() - started, out_dir, boot=self.boots
        )
        _save(run, "")
        return run

    def shutdown(self) -> None:
        """Close the session and stop QEMU, if any (idempotent)."""
        if self.machine is not None and self.machine.console is not None:
            self._attribute_outside(self.machine.console.offset())
        if self.session is not None:
            self.session.close()
            self.session = None
        if self.machine is not None:
            self.machine.stop()
            self.machine = None


def _wrap(name: str, tag: str) -> str:
    """The guest command: markers in the kernel log and taint around the test.

    The markers go through /dev/kmsg so they sit in the console stream in
    order with whatever the kernel prints: a report between them is the
    test's.  Exit code and taint travel back as a trailer line on stderr.
    """
    return (
        f"echo 'HARNESS-START {tag}' > /dev/kmsg; tb=$(cat /proc/sys/kernel/tainted); "
        f"cd /tmp && {TESTS_DIR}/{name}; rc=$?; "
        f"ta=$(cat /proc/sys/kernel/tainted); echo 'HARNESS-END {tag}' > /dev/kmsg; "
        "printf '\\n@@HARNESS rc=%d taint_before=%s taint_after=%s\\n' $rc $tb $ta >&2; exit $rc"
    )


def _split_trailer(result: CommandResult) -> tuple[str, int | None, int]:
    """Take the harness's trailer off stderr: (stderr, exit code, new taint bits)."""
    m = _TRAILER.search(result.stderr)
    if not m:
        return result.stderr, result.exit_code, 0
    stderr = result.stderr[: m.start()].removesuffix("\n")
    before, after = int(m.group(2)), int(m.group(3))
    return stderr, int(m.group(1)), after & ~before


def _facts(
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


def _count_ranges(text: str) -> int:
    """Count the members of a kernel cpu/node list such as '0-1,3'."""
    count = 0
    for part in filter(None, text.split(",")):
        low, _, high = part.partition("-")
        if low.isdigit():
            count += int(high) - int(low) + 1 if high.isdigit() else 1
    return count


def _save(run: TestRun, window: str) -> None:
    run.directory.mkdir(parents=True, exist_ok=True)
    if run.result is not None:
        (run.directory / "stdout.txt").write_text(run.result.stdout)
        (run.directory / "stderr.txt").write_text(run.result.stderr)
    (run.directory / "console.txt").write_text(window)
    write_json(
        run.directory / "result.json",
        {
            "test": run.test,
            "kernel": run.kernel,
            "outcome": run.verdict.outcome,
            "summary": run.verdict.summary,
            "details": run.verdict.details,
            "seconds": round(run.seconds, 3),
            "boot": run.boot,
            "exit_code": run.result.exit_code if run.result else None,
            "new_taint": run.new_taint,
            "reports": [report_json(r) for r in run.reports],
        },
    )
