"""Outcomes and the one place that decides them.

Every run of a guest test ends in exactly one :class:`Outcome`.  The
classifier takes the plain facts gathered about the run (exit code, KTAP,
kernel reports seen in the test's console window, whether the kernel died,
whether the timeout hit) and returns a :class:`Verdict`; pytest and the
reporters only ever translate a verdict, they never re-derive it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from harness.ktap import KtapResult


class Outcome(enum.Enum):
    """What happened to one guest test on one kernel (see README, outcome model)."""

    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"
    OOPS = "oops"
    PANIC = "panic"
    HANG = "hang"
    BOOT_FAIL = "boot-fail"
    BUILD_FAIL = "build-fail"
    ERROR = "error"  # the test could not run: it did not compile, SSH broke

    @property
    def is_failure(self) -> bool:
        """Whether pytest should count this as a failed test."""
        return self in _FAILURES

    @property
    def kills_guest(self) -> bool:
        """Whether the guest cannot be trusted for the next test."""
        return self in (Outcome.OOPS, Outcome.PANIC, Outcome.HANG, Outcome.BOOT_FAIL)


_FAILURES = frozenset({Outcome.FAIL, Outcome.OOPS, Outcome.PANIC, Outcome.HANG})

#: Outcomes a kernels.yaml ``expect`` entry may name (they become xfail).
EXPECTABLE = frozenset({Outcome.FAIL, Outcome.OOPS, Outcome.PANIC, Outcome.HANG})

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
    return Verdict(Outcome.FAIL, f"fail: unexpected exit code {code}", ktap_lines)
