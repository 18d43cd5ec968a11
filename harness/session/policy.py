"""The session's policy: how long it waits for what, and when a guest is no longer trusted."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.machine.capture import OutputLimit
from harness.outcome import Outcome


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
    seen in CI, once twice in a row on 2026-12-04), a crash real hardware
    never shows: three attempts.  A kernel that cannot
    boot fails every attempt (a panic is noticed at once, so this is cheap);
    a failed attempt's crash stays in the results as a report outside tests.
    Only a boot that died (a panic, QEMU's process gone) is tried again: one
    that hangs to the boot timeout, or whose SSH never answers, would hang
    again, and retrying it would double the wait.
    ``output``: how much of a test's stdout and of its stderr is kept
    (``--max-output``; :mod:`harness.machine.capture`).
    """

    settle: float = 0.5
    report_grace: float = 10.0
    end_marker: float = 5.0
    dying: float = 5.0
    dump_quiet: float = 1.0
    dump_wait: float = 15.0
    boot_tail: float = 3.0
    boot_attempts: int = 3
    output: OutputLimit = field(default_factory=OutputLimit)  # kept of each test stream


def needs_fresh_guest(outcome: Outcome, reported: bool, reboot_after_oops: bool) -> bool:
    """Whether the next test must boot afresh after a test ended in ``outcome``.

    ``reported``: the test's window held a kernel report or the kernel gained
    taint.  The outcome's row of :data:`harness.outcome.RULES` decides: an
    outcome that ends the guest does so, unless the kernel lives on after it
    and only its report (an oops, a warning, new taint) is the reason, which
    kernels.yaml's ``reboot_after_oops: false`` may overrule.
    """
    rule = outcome.rule
    if rule.kernel_lives and (reported or outcome is Outcome.OOPS):
        return reboot_after_oops
    return rule.ends_guest or reported
