"""Confirmed before blamed: a test a patch turned from pass to fail is run again, both sides.

One unlucky run must not blame a patch on a public list.  When a step of a
series turns a test from pass to fail, oops, panic or hang, the test runs
``--confirm N`` more times (3 by default) on that step and on the step
before it, and the counts decide (:func:`classify`):

* ``regression``: every run before passed, every run after went bad;
* ``unstable``: a split result on either side, named so, no patch blamed;
* ``pre-existing``: it fails before the patch too (every run), or the crash
  title it shows was already seen on the base: not the series' doing.

The runs reuse what the series already has: the step's guest is still up
(under ``isolation: test``, the series' default, each run is a restore), and the step
before it was stopped with its saved ready state kept
(:meth:`~harness.session.KernelGuest.stop_guest`), so its runs start from a
restore, never a rebuild and, where the backend snapshots, never a cold
boot.  :class:`StepGuests` holds those two guests across the series loop.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from harness.kernels.base import KernelImage
from harness.outcome import Outcome
from harness.results.compare import ChangeKind, Comparison
from harness.results.pass_rate import count_of_runs
from harness.results.records import TestRun
from harness.results.series_record import Confirmation, ConfirmKind, RunResult
from harness.session import KernelGuest
from harness.testkinds.testdef import GuestTest

if TYPE_CHECKING:
    from harness.commands.series_report import SeriesReport, Step
    from harness.testkinds.trial import Trial

DEFAULT_RUNS = 3
#: what a patch can turn a passing test into and be asked to prove it
BAD = frozenset({Outcome.FAIL, Outcome.OOPS, Outcome.PANIC, Outcome.HANG})


def result(run: TestRun) -> RunResult:
    """One run as the confirmation keeps it: outcome, summary, crash titles, evidence."""
    titles = tuple(dict.fromkeys(r.title for r in run.reports))
    return RunResult(run.verdict.outcome, run.verdict.summary, titles, str(run.directory))


def titles_of(runs: Sequence[TestRun]) -> set[str]:
    """Every kernel report title the runs showed."""
    return {r.title for run in runs for r in run.reports}


def classify(
    before: Sequence[RunResult], after: Sequence[RunResult], base_titles: Collection[str] = ()
) -> tuple[ConfirmKind, str]:
    """The verdict of the runs before and after a patch, and, when not blamed, why."""
    bad_before = sum(r.outcome in BAD for r in before)
    passed_before = sum(r.outcome is Outcome.PASS for r in before)
    bad_after = sum(r.outcome in BAD for r in after)
    passed_after = sum(r.outcome is Outcome.PASS for r in after)
    if before and bad_before == len(before):
        return (
            ConfirmKind.PRE_EXISTING,
            f"it fails before the patch too ({bad_before}/{len(before)})",
        )
    seen = sorted({t for r in after for t in r.titles} & set(base_titles))
    if seen and all(set(r.titles) <= set(base_titles) for r in after if r.outcome in BAD):
        return ConfirmKind.PRE_EXISTING, f"the base shows the same crash: {', '.join(seen)}"
    if not before or passed_before < len(before):
        return ConfirmKind.UNSTABLE, (
            f"split before the patch: passed {passed_before} of {len(before)} runs"
        )
    if after and bad_after == len(after):
        return ConfirmKind.REGRESSION, ""
    return (
        ConfirmKind.UNSTABLE,
        f"split after the patch: passed {passed_after} of {len(after)} runs",
    )


def turned(before: Step, after: Step) -> list[str]:
    """Tests that passed on ``before`` (every run) and went bad on ``after`` (every run)."""
    return [
        test
        for test, outcome in after.outcomes
        if outcome in BAD
        and not after.flaky(test)
        and before.outcome(test) is Outcome.PASS
        and not before.flaky(test)
    ]


def judged(comparison: Comparison, report: SeriesReport) -> Comparison:
    """``comparison`` with the confirmations' verdicts: a regression not blamed on a patch
    becomes a failure the base has (pre-existing) or a flaky test (unstable)."""
    changes = []
    for change in comparison.changes:
        if change.kind is ChangeKind.REGRESSION and report.first_break(change.test) is None:
            kinds = {c.kind for c in report.confirmations if c.test == change.test}
            kind = ChangeKind.FLAKY if ConfirmKind.UNSTABLE in kinds else ChangeKind.STILL_FAILING
            change = replace(change, kind=kind)
        changes.append(change)
    return replace(comparison, changes=tuple(changes))


def confirm_count(text: str) -> int:
    """The argument type of ``--confirm``: N >= 0 (0: blame on one run, as before)."""
    return count_of_runs(text, 0, "0 (no confirmation) or more")


@dataclass
class _Held:
    """A tested step's guest, stopped with its ready state kept, and its next run number."""

    step: Step
    guest: KernelGuest
    attempt: int


@dataclass
class StepGuests:
    """The guests of the series' steps: each step's tests, then the confirmations.

    ``confirm`` 0 shuts every guest down after its step, as a plain series
    run does.  Otherwise the last tested step's guest stays (stopped, its
    state saved) until the next tested step has been compared with it.
    """

    trial: Trial
    runs: int
    confirm: int
    log: Callable[[str], None]
    _prev: _Held | None = field(default=None, init=False)
    _current: KernelGuest | None = field(default=None, init=False)  # ran, not yet settled

    def __enter__(self) -> StepGuests:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._current is not None:
            self._current.shutdown()
        if self._prev is not None:
            self._prev.guest.shutdown()
        self._prev = self._current = None

    def run(self, name: str, image: KernelImage) -> list[TestRun]:
        """Every test ``runs`` times on ``image`` (:meth:`Trial.run`); with confirmations on,
        the same loop on a guest that stays for :meth:`settle`."""
        if not self.confirm:
            return self.trial.run(name, image, self.runs)
        guest = self.trial.guest(name, image)
        done: list[TestRun] = []
        try:
            for test in self.trial.tests:
                for attempt in range(self.runs):
                    run = guest.run(test, attempt + 1 if self.runs > 1 else 0)
                    done.append(run)
                    self.log(
                        f"{name}: {test.name} run {attempt + 1}/{self.runs}: {run.verdict.summary}"
                    )
        except BaseException:
            guest.shutdown()
            raise
        self._current = guest
        return done

    def settle(self, step: Step, base: Step) -> list[Confirmation]:
        """Compare ``step`` with the step tested before it, confirm what it turned, move on."""
        guest, prev = self._current, self._prev
        if guest is None:
            return []
        current = _Held(step, guest, self.runs + 1)
        found: list[Confirmation] = []
        if prev is not None:
            tests = [t for t in self.trial.tests if t.name in turned(prev.step, step)]
            if tests:
                found = self._confirm(tests, prev, current, titles_of(base.runs))
            prev.guest.shutdown()
        current.guest.stop_guest()  # its saved ready state stays: the next runs are restores
        self._prev, self._current = current, None
        return found

    def _confirm(
        self, tests: list[GuestTest], before: _Held, after: _Held, base_titles: set[str]
    ) -> list[Confirmation]:
        names = ", ".join(t.name for t in tests)
        self.log(
            f"confirming {names}: {self.confirm} run(s) on step {after.step.index} "
            f"and on step {before.step.index}"
        )
        after_runs = {t.name: self._repeat(after, t) for t in tests}  # its guest is up
        before_runs = {t.name: self._repeat(before, t) for t in tests}  # a restore
        seen = base_titles | titles_of(before.step.runs)
        found = []
        for test in tests:
            prior = tuple(result(r) for r in before_runs[test.name])
            later = tuple(result(r) for r in after_runs[test.name])
            kind, note = classify(prior, later, seen | {t for r in prior for t in r.titles})
            self.log(f"{test.name}: {kind.value}" + (f" ({note})" if note else ""))
            found.append(
                Confirmation(
                    test.name,
                    before.step.index,
                    before.step.label,
                    after.step.index,
                    after.step.label,
                    kind,
                    prior,
                    later,
                    note,
                )
            )
        return found

    def _repeat(self, held: _Held, test: GuestTest) -> list[TestRun]:
        done = []
        for n in range(self.confirm):
            run = held.guest.run(test, held.attempt)
            held.attempt += 1
            done.append(run)
            self.log(
                f"{held.step.name}: {test.name} confirmation {n + 1}/{self.confirm}: "
                f"{run.verdict.summary}"
            )
        return done
