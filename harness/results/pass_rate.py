"""A test run several times (``--runs N``): one verdict, a pass rate, flaky or not.

A reproducer for a race may fail one run in three.  Running it N times and
keeping every run tells a reader how sure a result is: "passed 2 of 3 runs"
is *flaky*, which a comparison of two runs never counts as a regression by
itself (a failure that comes and goes says nothing about what changed).

:func:`combine` turns the runs of one test on one kernel into the one
:class:`~harness.results.records.TestRun` that pytest raises and the summary records:
the first failing run (its evidence, its reports), with the pass rate in its
one-line summary.  The runs themselves become :class:`~harness.results.records.Attempt`
values of the summary's record.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterable, Sequence

from harness.outcome import Outcome, is_flaky
from harness.results.records import Attempt, TestRun


def attempt(run: TestRun) -> Attempt:
    """The summary's view of one of several runs."""
    return Attempt(
        run.verdict.outcome,
        run.verdict.summary,
        run.seconds,
        str(run.directory),
        tuple(r.title for r in run.reports),
    )


def group(runs: Iterable[TestRun]) -> list[list[TestRun]]:
    """Runs grouped by (test, kernel), in the order each pair first ran."""
    groups: dict[tuple[str, str], list[TestRun]] = {}
    for run in runs:
        groups.setdefault((run.test, run.kernel), []).append(run)
    return list(groups.values())


def combine(runs: Sequence[TestRun]) -> TestRun:
    """One TestRun standing for every run of one test on one kernel.

    A single run is returned as it is.  Several: the first run whose outcome
    is not a pass (else the first), with the pass rate in its summary and the
    seconds of all runs.
    """
    if not runs:
        raise ValueError("combine() needs at least one run")
    if len(runs) == 1:
        return runs[0]
    total = len(runs)
    passed = sum(r.verdict.outcome is Outcome.PASS for r in runs)
    index, chosen = next(
        ((i, r) for i, r in enumerate(runs) if r.verdict.outcome is not Outcome.PASS),
        (0, runs[0]),
    )
    if is_flaky(r.verdict.outcome for r in runs):
        summary = (
            f"flaky: passed {passed} of {total} runs; run {index + 1}: {chosen.verdict.summary}"
        )
    else:
        summary = f"{chosen.verdict.summary} (passed {passed} of {total} runs)"
    verdict = dataclasses.replace(chosen.verdict, summary=summary)
    return dataclasses.replace(chosen, verdict=verdict, seconds=sum(r.seconds for r in runs))


def runs_count(text: str) -> int:
    """The argument type of ``--runs`` (run, series, bisect, the pytest plugin): N >= 1.

    One check for every command line, made while the arguments are parsed,
    so a bad count is a usage error before any results directory exists.
    """
    return count_of_runs(text, 1, "at least 1")


def count_of_runs(text: str, least: int, wanted: str) -> int:
    """A number of runs given on a command line, ``least`` or more (``wanted`` says so in
    the error); argparse.ArgumentTypeError otherwise: ``--runs``, ``--confirm``."""
    try:
        runs = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a number of runs, not {text!r}") from None
    if runs < least:
        raise argparse.ArgumentTypeError(f"must be {wanted}, got {runs}")
    return runs
