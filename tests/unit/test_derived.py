"""What other modules derive instead of repeating: outcome sets, --runs, failing commands."""

from __future__ import annotations

import argparse
import sys

import pytest

from harness.commands.bisect import SKIP, Observation, judge_commit
from harness.errors import CommandFailed, run_checked
from harness.outcome import NOT_COMPARABLE, OK, UNTESTABLE, Outcome, is_flaky
from harness.results.pass_rate import runs_count


def test_sets_derived_from_the_rules_table() -> None:
    assert {Outcome.PASS, Outcome.SKIP} == OK
    assert {Outcome.ERROR, Outcome.NOT_RUN} == NOT_COMPARABLE
    untestable = {Outcome.SKIP, Outcome.BOOT_FAIL, Outcome.BUILD_FAIL, Outcome.ERROR}
    assert untestable | {Outcome.NOT_RUN} == UNTESTABLE


def test_bisect_skips_a_commit_whose_test_never_ran() -> None:
    judgement = judge_commit([Observation(Outcome.NOT_RUN, "not run: interrupted")], None)
    assert judgement.code == SKIP


@pytest.mark.parametrize(
    ("outcomes", "flaky"),
    [
        ((Outcome.PASS, Outcome.FAIL), True),
        ((Outcome.PASS, Outcome.HANG, Outcome.PASS), True),
        ((Outcome.PASS, Outcome.SKIP), False),
        ((Outcome.FAIL, Outcome.OOPS), False),
        ((Outcome.PASS, Outcome.ERROR), False),  # an error is not a failure of the test
    ],
)
def test_flaky_is_passed_and_failed(outcomes: tuple[Outcome, ...], flaky: bool) -> None:
    assert is_flaky(outcomes) is flaky


def test_runs_count_accepts_one_and_more() -> None:
    assert runs_count("3") == 3


@pytest.mark.parametrize(("text", "why"), [("0", "at least 1, got 0"), ("x", "not 'x'")])
def test_runs_count_refuses_with_the_reason(text: str, why: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=why):
        runs_count(text)


def test_a_failing_command_says_what_it_printed() -> None:
    script = "import sys; print('step 1 ok'); sys.exit('make: *** No rule to make target')"
    with pytest.raises(CommandFailed) as failed:
        run_checked([sys.executable, "-c", script])
    text = str(failed.value)
    assert "returned non-zero exit status 1" in text
    assert "step 1 ok" in text and "No rule to make target" in text
