"""KTAP parsing and the outcome classifier (the one place outcomes are decided)."""

from __future__ import annotations

import pytest

from harness.outcome import Outcome, RunFacts, classify
from harness.results.summarize import taint_letters
from harness.testkinds.ktap import parse_ktap

KTAP = """TAP version 13
1..3
ok 1 - probe lists the ioctls
# expected EINVAL, got 0 (features 0x8000000000000000)
not ok 2 - bit 63 refused
ok 3 - second call refused # SKIP no /dev/userfaultfd
# totals: pass:1 fail:1 skip:1
"""


def test_ktap_counts_and_failure_context() -> None:
    k = parse_ktap(KTAP)
    assert (k.planned, k.passed, k.skipped) == (3, 1, 1)
    assert k.failures == (
        "# expected EINVAL, got 0 (features 0x8000000000000000)\nnot ok 2 - bit 63 refused",
    )
    assert "# totals: pass:1 fail:1 skip:1" in k.diagnostics


def test_ktap_whole_skip_and_bail() -> None:
    assert parse_ktap("TAP version 13\n1..0 # SKIP no UFFD_FEATURE_MOVE\n").skip_reason == (
        "no UFFD_FEATURE_MOVE"
    )
    bailed = parse_ktap("1..4\nok 1 - a\nBail out! mmap failed (errno 12)\n")
    assert bailed.bailed_out and bailed.failures == ("Bail out! mmap failed (errno 12)",)


@pytest.mark.parametrize(
    ("facts", "outcome", "summary"),
    [
        (RunFacts(0, ktap=parse_ktap("1..1\nok 1 - x\n")), Outcome.PASS, "pass"),
        (RunFacts(1, ktap=parse_ktap(KTAP)), Outcome.FAIL, "fail: not ok 2 - bit 63 refused"),
        (RunFacts(0, ktap=parse_ktap(KTAP)), Outcome.FAIL, "exit 0 but KTAP reports failures"),
        (RunFacts(4, ktap=parse_ktap("1..0 # SKIP no NUMA\n")), Outcome.SKIP, "no NUMA"),
        (RunFacts(4), Outcome.SKIP, "without saying why"),
        (
            RunFacts(0, reports=("WARNING in zap_pte_range",)),
            Outcome.OOPS,
            "oops: WARNING in zap_pte_range",
        ),
        (RunFacts(None, timed_out=True), Outcome.HANG, "hang"),
        (
            RunFacts(None, timed_out=True, kernel_died=True, reports=("kernel BUG in f",)),
            Outcome.PANIC,
            "panic: kernel BUG in f",
        ),
        (RunFacts(139), Outcome.FAIL, "fail: killed by SIGSEGV (exit status 139)"),
        (RunFacts(134), Outcome.FAIL, "fail: killed by SIGABRT (exit status 134)"),
        (RunFacts(137), Outcome.FAIL, "fail: killed by SIGKILL"),
        (RunFacts(2), Outcome.FAIL, "fail: unexpected exit code 2"),
        (RunFacts(250), Outcome.FAIL, "fail: unexpected exit code 250"),  # no such signal
    ],
)
def test_classify(facts: RunFacts, outcome: Outcome, summary: str) -> None:
    verdict = classify(facts)
    assert verdict.outcome is outcome
    assert summary in verdict.summary


def test_a_crash_is_never_a_pass() -> None:
    assert (
        classify(RunFacts(0, reports=("BUG: kernel NULL pointer dereference in f",))).outcome
        is Outcome.OOPS
    )


def test_taint_letters() -> None:
    assert taint_letters(0) == "-"
    assert taint_letters(1 << 9) == "W"
    assert taint_letters((1 << 7) | (1 << 9) | (1 << 12)) == "DWO"


@pytest.mark.parametrize(("text", "count"), [("0", 1), ("0-1", 2), ("0,2-3", 3), ("", 0)])
def test_node_list_counting(text: str, count: int) -> None:
    from harness.session.needs import count_ranges as _count_ranges

    assert _count_ranges(text) == count


@pytest.mark.parametrize(
    ("facts", "outcome", "summary"),
    [
        (
            RunFacts(0, expected_report="^kernel BUG", expected_seen="kernel BUG in f"),
            Outcome.PASS,
            "pass: expected kernel report seen (kernel BUG in f)",
        ),
        (RunFacts(0, expected_report="^kernel BUG"), Outcome.FAIL, "none came"),
        (
            RunFacts(
                None,
                kernel_died=True,
                expected_report="^Kernel panic",
                expected_seen="Kernel panic: sysrq triggered crash",
            ),
            Outcome.PASS,
            "expected",
        ),
        (
            RunFacts(
                0,
                reports=("WARNING in g",),
                expected_report="^kernel BUG",
                expected_seen="kernel BUG in f",
            ),
            Outcome.OOPS,
            "oops: WARNING in g",
        ),
        (RunFacts(None, lost="SSH session lost: EOF"), Outcome.ERROR, "error: SSH session lost"),
    ],
)
def test_classify_expected_reports_and_lost_channels(
    facts: RunFacts, outcome: Outcome, summary: str
) -> None:
    verdict = classify(facts)
    assert verdict.outcome is outcome
    assert summary in verdict.summary
