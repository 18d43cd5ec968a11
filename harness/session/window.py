"""One test's window on the console: run it, stop waiting in time, probe a hang, settle.

A test runs between two kmsg markers (:mod:`harness.guest.protocol`), so
whatever the kernel prints between them is the test's.  This module waits
for that window to be complete and no longer: it stops waiting for a test
the moment the kernel died, or once a report was printed and the console
went quiet (a process killed by an oops often leaves its siblings stuck);
after a timeout it asks for a blocked-task dump (over the channel, else by
the magic key); and it turns what it saw into facts for
:func:`harness.outcome.classify`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from harness.display.progress import Kind, Progress, track
from harness.errors import GuestUnreachable
from harness.guest import protocol
from harness.machine.base import Channel, CommandResult, Machine
from harness.machine.capture import Capture
from harness.oops import KernelReport, parse
from harness.outcome import Outcome, RunFacts, Verdict, classify
from harness.results.records import TestRun
from harness.session.policy import Policy
from harness.testkinds.ktap import parse_ktap
from harness.testkinds.testdef import GuestTest


@dataclass(frozen=True)
class Observed:
    """What one test's window showed, before it is judged."""

    result: CommandResult  # as the channel gave it: the trailer still on stderr
    trailer: protocol.Trailer
    died: bool  # the kernel panicked
    reports: tuple[KernelReport, ...]
    window: str  # the console text between the markers (and what followed in the settle)
    end: int  # the console offset where the window ends
    machine_exit: str | None  # how the guest's process ended, if it did
    hang_notes: tuple[str, ...]  # how a blocked-task dump was had, after a timeout

    def command(self) -> CommandResult:
        """The test's command as the records keep it: exit code and stderr without the trailer."""
        r, t = self.result, self.trailer
        return CommandResult(r.command, t.exit_code, r.stdout, t.stderr, r.seconds, r.timed_out)

    def test_run(
        self, test: GuestTest, kernel: str, verdict: Verdict, seconds: float, out: Path, boot: int
    ) -> TestRun:
        """The record of the test this window ran (its evidence in ``out``)."""
        reports, taint = self.reports, self.trailer.new_taint
        return TestRun(
            test.name, kernel, verdict, seconds, out, self.command(), reports, taint, boot
        )


@dataclass
class TestWindow:
    """The console window of one test on a running guest."""

    machine: Machine
    channel: Channel
    policy: Policy
    progress: Progress
    reports_in: Callable[[str], tuple[KernelReport, ...]]

    def observe(
        self,
        test: GuestTest,
        command: str,
        timeout: float,
        tag: str,
        start: int,
        capture: Capture | None = None,
    ) -> Observed:
        """Run the test between its markers and wait until its window is complete.

        ``start``: the console offset where the window opens (what came before
        was attributed to no test up to exactly there).  ``capture`` files the
        test's output as it arrives (the trailer is cut off its stderr file).
        """
        console = self.machine.console
        capture = capture or Capture.in_memory(self.policy.output)
        try:
            result, hang_notes = self.run(test, command, timeout, tag, start, capture)
        finally:
            capture.close(lambda rest: protocol.split_trailer(rest, None).stderr)
        machine_exit = self.exit_if_gone()
        died = console.panicked
        if not died and machine_exit is None:
            self.settle(tag, start, marker=result.exit_code is not None)
        end = console.offset()
        text = console.text(start, end)
        trailer = protocol.split_trailer(result.stderr, result.exit_code)
        reports = self.reports_in(text)
        return Observed(result, trailer, died, reports, text, end, machine_exit, hang_notes)

    def run(
        self,
        test: GuestTest,
        command: str,
        timeout: float,
        tag: str,
        start: int,
        capture: Capture,
    ) -> tuple[CommandResult, tuple[str, ...]]:
        """The test's command, stopped in time: (result, hang notes)."""
        console = self.machine.console
        try:
            with track(self.progress, Kind.TEST, test.name, timeout=timeout):
                result = self.channel.run(
                    protocol.wrap(command, tag),
                    timeout,
                    abort=self.stop_waiting(start),
                    capture=capture,
                )
        except GuestUnreachable as exc:
            # The channel broke under us; the console tells whether the kernel did.
            result = CommandResult(test.name, None, capture.stdout.text(), str(exc), 0.0)
        if result.exit_code is None and not result.timed_out:
            console.wait_quiet(self.policy.settle, self.policy.dying)  # let it say why
        notes: tuple[str, ...] = ()
        if result.timed_out and self.machine.running and not console.panicked:
            notes = self.dump_blocked_tasks()
        return result, notes

    def exit_if_gone(self) -> str | None:
        """How the guest's process ended, if it did; None while it runs.

        A dead process closes its console and sockets a moment before it can
        be reaped: once the console is at EOF, give the exit a moment to show.
        """
        deadline = time.monotonic() + 2.0
        while self.machine.console.eof and self.machine.running and time.monotonic() < deadline:
            time.sleep(0.02)
        return None if self.machine.running else self.machine.exit_status()

    def stop_waiting(self, start: int) -> Callable[[], bool]:
        """When to stop waiting for a test before its timeout.

        At once if the kernel died or its process ended.  And once a kernel
        report has been printed in the test's window and the console has been
        quiet for ``report_grace`` seconds.
        """
        machine, console = self.machine, self.machine.console
        grace = self.policy.report_grace
        parsed: dict[int, bool] = {}

        def abort() -> bool:
            if console.panicked or not machine.running:
                return True
            if not console.report_since(start) or console.idle_seconds() < grace:
                return False
            end = console.offset()
            if end not in parsed:  # parse once per new console state, not every poll
                parsed[end] = bool(parse(console.text(start, end)))
            return parsed[end]

        return abort

    def settle(self, tag: str, start: int, marker: bool = True) -> None:
        """Wait until the test's window is complete on the console.

        printk keeps order, so once the end marker is on the console everything
        the test made the kernel print is too; only a report still being
        printed (from another CPU) needs the console to go quiet.  A test
        whose command never exited (it timed out, was given up on after a
        report, or its channel broke: ``marker`` False) prints no end marker,
        and waiting the marker's whole lag for it only made every hang 5 s
        longer.
        """
        console = self.machine.console
        if marker:
            console.wait_for(protocol.end_pattern(tag), self.policy.end_marker, start)
        if parse(console.text(start)):
            console.wait_quiet(self.policy.settle, self.policy.end_marker)

    def dump_blocked_tasks(self) -> tuple[str, ...]:
        """After a timeout: probe the guest, then ask for a blocked-task dump (sysrq w)."""
        how = ""
        if self.channel.alive(5):
            try:
                self.channel.run("echo w > /proc/sysrq-trigger", 10)
                how = "sysrq-w over the channel"
            except GuestUnreachable:
                how = ""
        if not how:
            if not self.machine.magic_key("w"):
                return ("the guest answers neither its channel nor the magic sysrq key",)
            how = "the magic sysrq key (the channel no longer answers: kernel wedged?)"
        self.machine.console.wait_quiet(self.policy.dump_quiet, self.policy.dump_wait)
        return (f"blocked tasks dumped with {how}: see the console window",)


def verdict_for(
    test: GuestTest, seen: Observed, machine_stderr: str, notes: tuple[str, ...]
) -> Verdict:
    """The outcome of what a window showed (:func:`harness.outcome.classify` decides)."""
    trailer = seen.trailer
    facts = run_facts(
        test, seen.result, trailer.exit_code, seen.died, seen.reports, trailer.new_taint
    )
    if seen.machine_exit is not None:
        facts = replace(facts, machine_exit=seen.machine_exit, machine_stderr=machine_stderr)
    verdict = classify(facts)
    hang = seen.hang_notes if verdict.outcome is Outcome.HANG else ()
    return replace(verdict, details=verdict.details + notes + hang)


def run_facts(
    test: GuestTest,
    result: CommandResult,
    rc: int | None,
    died: bool,
    reports: tuple[KernelReport, ...],
    taint: int = 0,
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
