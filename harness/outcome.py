"""Outcomes and the one place that decides them.

Every run of a guest test ends in exactly one :class:`Outcome`.  The
classifier takes the plain facts gathered about the run (exit code, KTAP,
kernel reports seen in the test's console window, whether the kernel died,
whether the timeout hit) and returns a :class:`Verdict`; pytest and the
reporters only ever translate a verdict, they never re-derive it.
"""

from __future__ import annotations

import enum
import signal
from collections.abc import Iterable
from dataclasses import dataclass, field

from harness.testkinds.ktap import KtapResult


class Outcome(enum.Enum):
    """What happened to one guest test on one kernel (see docs/results.md, outcome model)."""

    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"
    OOPS = "oops"
    PANIC = "panic"
    HANG = "hang"
    BOOT_FAIL = "boot-fail"
    BUILD_FAIL = "build-fail"
    ERROR = "error"  # the test could not run: it did not compile, SSH broke, QEMU died
    NOT_RUN = "not-run"  # the run was interrupted before this test's turn

    @property
    def rule(self) -> OutcomeRule:
        """This outcome's row of :data:`RULES`."""
        return RULES[self]

    @property
    def is_failure(self) -> bool:
        """A failed test in pytest's terms (the kernel or the test misbehaved)."""
        return self.rule.pytest == "failed"

    @property
    def ok(self) -> bool:
        """Nothing for a reader to look at (pass or skip), absent an expectation."""
        return self.rule.pytest in ("passed", "skipped")

    @property
    def ends_guest(self) -> bool:
        """The guest cannot be trusted for the next test: it gets a fresh boot."""
        return self.rule.ends_guest

    @property
    def untestable(self) -> bool:
        """Says nothing about the kernel under test (bisect skips such a commit)."""
        return self.rule.untestable

    @property
    def comparable(self) -> bool:
        """Comparing two runs can use it: the harness did test (see compare)."""
        return self.rule.comparable


@dataclass(frozen=True)
class OutcomeRule:
    """How every output translates one outcome: the one table of them.

    ``pytest`` is pytest's word for it (``failed`` ones raise the outcome's
    exception below so a kernels.yaml expectation can xfail exactly that
    outcome; ``error`` ones fail during setup), ``kcidb`` the KCIDB v5 test
    status, ``cell`` the text summary's matrix cell, ``ends_guest`` whether
    the next test needs a fresh boot, ``expectable`` whether kernels.yaml may
    ``expect`` it, ``untestable`` whether it tells nothing about the kernel
    (bisect skips such a commit), ``comparable`` whether two runs can be
    compared on it: not when the harness itself could not test (error, not
    run), while a kernel that did not build or boot is the change's doing;
    ``kernel_lives`` whether the kernel lives on after it (then only a kernel
    report or new taint calls for a fresh boot, and kernels.yaml's
    ``reboot_after_oops: false`` may keep the guest instead).
    """

    pytest: str
    kcidb: str
    cell: str
    ends_guest: bool = False
    expectable: bool = False
    untestable: bool = False
    comparable: bool = True
    kernel_lives: bool = False


RULES: dict[Outcome, OutcomeRule] = {
    Outcome.PASS: OutcomeRule("passed", "PASS", "pass", kernel_lives=True),
    Outcome.SKIP: OutcomeRule("skipped", "SKIP", "skip", untestable=True, kernel_lives=True),
    Outcome.FAIL: OutcomeRule("failed", "FAIL", "FAIL", expectable=True, kernel_lives=True),
    Outcome.OOPS: OutcomeRule(
        "failed", "FAIL", "OOPS", ends_guest=True, expectable=True, kernel_lives=True
    ),
    Outcome.PANIC: OutcomeRule("failed", "FAIL", "PANIC", ends_guest=True, expectable=True),
    Outcome.HANG: OutcomeRule("failed", "FAIL", "HANG", ends_guest=True, expectable=True),
    Outcome.BOOT_FAIL: OutcomeRule("error", "MISS", "BOOT", ends_guest=True, untestable=True),
    Outcome.BUILD_FAIL: OutcomeRule("error", "MISS", "BUILD", ends_guest=True, untestable=True),
    Outcome.ERROR: OutcomeRule(
        "error", "ERROR", "ERROR", ends_guest=True, untestable=True, comparable=False
    ),
    Outcome.NOT_RUN: OutcomeRule("error", "MISS", "-", untestable=True, comparable=False),
}

# The sets other modules test membership in, derived from RULES so that no
# module keeps its own list (a set also answers ``None in SET`` with False).
#: Outcomes a kernels.yaml ``expect`` entry may name (they become xfail).
EXPECTABLE = frozenset(o for o, rule in RULES.items() if rule.expectable)
#: nothing for a reader to look at: pass or skip (:attr:`Outcome.ok`)
OK = frozenset(o for o in Outcome if o.ok)
#: a run that says nothing about the kernel: bisect skips the commit
UNTESTABLE = frozenset(o for o in Outcome if o.untestable)
#: the harness could not test: neither side of a comparison can use it
NOT_COMPARABLE = frozenset(o for o in Outcome if not o.comparable)
#: a failed test in pytest's terms (:attr:`Outcome.is_failure`)
FAILURES = frozenset(o for o in Outcome if o.is_failure)


def is_flaky(outcomes: Iterable[Outcome]) -> bool:
    """Runs of one test both passed and failed: flaky, never a regression by itself."""
    seen = set(outcomes)
    return Outcome.PASS in seen and bool(seen & FAILURES)


class GuestTestFailure(Exception):
    """A guest test ended in a failing outcome; one subclass per outcome.

    ``run`` is the runner's record of the test (kept untyped here so this
    module depends on nothing but KTAP).
    """

    outcome = Outcome.FAIL

    def __init__(self, summary: str, run: object = None) -> None:
        super().__init__(summary)
        self.run = run


class TestFailed(GuestTestFailure):
    """The reproducer reported a failure (exit 1 or KTAP not ok)."""

    __test__ = False
    outcome = Outcome.FAIL


class KernelOops(GuestTestFailure):
    """A kernel report appeared in the test's console window."""

    outcome = Outcome.OOPS


class KernelPanic(GuestTestFailure):
    """The kernel died during the test."""

    outcome = Outcome.PANIC


class TestHang(GuestTestFailure):
    """The test did not finish before its timeout."""

    __test__ = False
    outcome = Outcome.HANG


#: the exception each failed outcome raises in pytest (xfail(raises=...) names it)
EXCEPTIONS: dict[Outcome, type[GuestTestFailure]] = {
    cls.outcome: cls for cls in (TestFailed, KernelOops, KernelPanic, TestHang)
}
assert set(EXCEPTIONS) == {o for o in Outcome if o.is_failure}, "one exception per failure"


def as_expected(outcome: Outcome, expected: Outcome | None) -> bool:
    """Whether ``outcome`` is what the run should have given."""
    return outcome is expected if expected is not None else outcome.ok


#: kselftest exit codes
EXIT_PASS, EXIT_FAIL, EXIT_SKIP = 0, 1, 4


@dataclass(frozen=True)
class RunFacts:
    """Everything observed about one test run, before any judgement."""

    exit_code: int | None
    timed_out: bool = False
    kernel_died: bool = False
    reports: tuple[str, ...] = ()  # titles of unexpected kernel reports in the test's window
    ktap: KtapResult | None = None
    new_taint: int = 0
    lost: str | None = None  # why no exit status came back (the SSH channel broke)
    machine_exit: str | None = None  # the guest's process ended ("killed by SIGKILL")
    machine_stderr: str = ""  # the last lines it wrote to stderr
    expected_report: str | None = None  # the test's @expect-report regex
    expected_seen: str | None = None  # title of the report that matched it


@dataclass(frozen=True)
class Verdict:
    """The classifier's answer: an outcome and the one line that explains it."""

    outcome: Outcome
    summary: str
    details: tuple[str, ...] = field(default=())


def classify(facts: RunFacts) -> Verdict:
    """Turn the facts of one run into its outcome.

    Order matters: a dead kernel outranks a report, a report outranks the
    exit code (a reproducer that crashed the kernel but exited 0 did not
    pass), and a timeout with the kernel still alive is a hang.
    """
    ktap_lines = facts.ktap.failures if facts.ktap else ()
    if facts.machine_exit is not None and not facts.kernel_died:
        # The process running the guest went away and the console shows no panic:
        # QEMU (or virtme-ng) was killed or crashed.  Not the kernel's doing.
        why = f"error: infrastructure: the guest's process ended ({facts.machine_exit}) "
        why += "with no panic on the console"
        details = (f"its stderr:\n{facts.machine_stderr}",) if facts.machine_stderr else ()
        return Verdict(Outcome.ERROR, why, details + facts.reports)
    if facts.kernel_died and (facts.reports or not facts.expected_seen):
        title = facts.reports[0] if facts.reports else "kernel died"
        return Verdict(Outcome.PANIC, f"panic: {title}", facts.reports)
    if facts.reports:
        return Verdict(Outcome.OOPS, f"oops: {facts.reports[0]}", facts.reports)
    if facts.timed_out:
        return Verdict(Outcome.HANG, "hang: no result before the timeout", ktap_lines)
    if facts.expected_report is not None:
        return _classify_expected_crash(facts, ktap_lines)
    if facts.exit_code is None:
        return Verdict(Outcome.ERROR, f"error: {facts.lost or 'the test returned no exit status'}")
    return _classify_exit(facts, ktap_lines)


def _classify_expected_crash(facts: RunFacts, ktap_lines: tuple[str, ...]) -> Verdict:
    """A test that crashes the kernel on purpose: the expected report is its pass."""
    if facts.expected_seen is None:
        return Verdict(
            Outcome.FAIL,
            f"fail: expected a kernel report matching /{facts.expected_report}/, none came",
            ktap_lines,
        )
    if facts.kernel_died or facts.exit_code is None:
        return Verdict(Outcome.PASS, f"pass: expected kernel report seen ({facts.expected_seen})")
    verdict = _classify_exit(facts, ktap_lines)
    if verdict.outcome is Outcome.PASS:
        return Verdict(Outcome.PASS, f"pass: expected kernel report seen ({facts.expected_seen})")
    return verdict


def _classify_exit(facts: RunFacts, ktap_lines: tuple[str, ...]) -> Verdict:
    code = facts.exit_code
    if code == EXIT_SKIP:
        reason = facts.ktap.skip_reason if facts.ktap and facts.ktap.skip_reason else None
        return Verdict(Outcome.SKIP, reason or "the test skipped without saying why (exit 4)")
    if code == EXIT_PASS and not ktap_lines:
        return Verdict(Outcome.PASS, "pass")
    if code == EXIT_PASS:
        return Verdict(Outcome.FAIL, "exit 0 but KTAP reports failures", ktap_lines)
    if code == EXIT_FAIL:
        # the summary is one line: the first "not ok" itself; its diagnostics go in details
        first = ktap_lines[0].splitlines()[-1] if ktap_lines else "exit 1"
        return Verdict(Outcome.FAIL, f"fail: {first}", ktap_lines)
    killed = signal_of(code)
    if killed is not None:
        return Verdict(Outcome.FAIL, f"fail: killed by {killed} (exit status {code})", ktap_lines)
    return Verdict(Outcome.FAIL, f"fail: unexpected exit code {code}", ktap_lines)


def signal_of(code: int | None) -> str | None:
    """The signal behind a shell exit status, ``SIGSEGV`` for 139; None for a plain exit.

    The guest runs each test from a shell, which reports a child killed by
    signal N as status 128+N (exit codes above 128 are this by convention:
    kselftest's runner reads them the same way).
    """
    if code is None or not 128 < code < 128 + signal.NSIG:
        return None
    try:
        return signal.Signals(code - 128).name
    except ValueError:
        return f"signal {code - 128}"


@dataclass(frozen=True)
class SetupFacts:
    """What went wrong before a test could run, and at which stage.

    Stages: ``compile`` (the test), ``fetch`` (the kernel), ``build`` (from
    source or its series), ``start`` (the guest's process), ``boot`` (no
    ready line), ``connect`` (ready, but the channel never opened), ``need``
    (the guest lacks what the test needs), ``kselftest`` (a built kselftest
    could not be put into the guest or is not where its target says).
    """

    stage: str
    message: str
    details: tuple[str, ...] = ()


_SETUP = {
    "compile": (Outcome.ERROR, "error: the test does not compile"),
    "fetch": (Outcome.ERROR, "error: kernel unavailable"),
    "build": (Outcome.BUILD_FAIL, "build-fail"),
    "start": (Outcome.ERROR, "error: cannot start the guest"),
    "boot": (Outcome.BOOT_FAIL, "boot-fail"),
    "connect": (Outcome.BOOT_FAIL, "boot-fail"),
    "need": (Outcome.SKIP, ""),
    "kselftest": (Outcome.ERROR, "error"),
}


def classify_setup(facts: SetupFacts) -> Verdict:
    """The outcome of a test that never ran, by the stage that stopped it."""
    outcome, prefix = _SETUP[facts.stage]
    summary = f"{prefix}: {facts.message}" if prefix and facts.message else prefix or facts.message
    return Verdict(outcome, summary, facts.details)
