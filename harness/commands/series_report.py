"""A series run as values: the matrix of step x test, the breaks, the confirmations.

:func:`harness.commands.series.run_series` fills a :class:`SeriesReport`; this module
says what it means: which patch first broke which test (only what the
confirmation runs of :mod:`harness.commands.confirm` upheld), the plain-text matrix,
the lead a reviewer reads first, and the run as a summary whose kernels are
the steps (``00`` the base, ``01`` after patch 1, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.commands import confirm
from harness.kernels.base import Exact
from harness.outcome import OK, Outcome, is_flaky
from harness.results.compare import ChangeKind, Comparison, compare
from harness.results.records import KernelRecord, RunSummary, TestRecord, TestRun
from harness.results.series_record import Confirmation, ConfirmKind
from harness.results.summarize import build_summary, test_records


@dataclass(frozen=True)
class Step:
    """One row of the matrix: the tree after ``index`` patches."""

    index: int  # 0: the base, without the series
    label: str
    outcomes: tuple[tuple[str, Outcome], ...]
    build_seconds: float = 0.0
    error: str | None = None  # the build or apply failure, if any
    runs: tuple[TestRun, ...] = ()  # every run of every test (--runs N: several each)
    exact: Exact | None = None  # the tree's commit and the hashes of the patches applied

    @property
    def name(self) -> str:
        """The step's kernel name in the results directory: 00 the base, 01, ..."""
        return f"{self.index:02d}"

    def outcome(self, test: str) -> Outcome | None:
        """This step's outcome for ``test`` (None: never ran)."""
        return dict(self.outcomes).get(test)

    def flaky(self, test: str) -> bool:
        """Whether ``test`` both passed and failed in this step's runs."""
        return is_flaky(r.verdict.outcome for r in self.runs if r.test == test)


@dataclass(frozen=True)
class NotApplied:
    """A series that does not apply on its base: found before anything was built."""

    index: int  # 1: the first patch
    label: str
    error: str  # the patch program's words and the rejected hunk
    refused: bool = False  # it names a path outside the tree: refused, not tried


@dataclass(frozen=True)
class SeriesReport:
    """The matrix and, per test, the first step that broke it."""

    tests: tuple[str, ...]
    steps: tuple[Step, ...]
    not_applied: NotApplied | None = None
    base: str = ""  # which base the series was tested on, and why that one
    confirmations: tuple[Confirmation, ...] = ()  # the pass-to-fail steps run again
    confirm_runs: int = 0  # runs per side of each confirmation (0: none)
    config: str | None = None  # the kernel config used: a file beside series.json

    def confirmation(self, test: str, index: int) -> Confirmation | None:
        """What the runs again said about ``test`` turning bad on step ``index``."""
        return next((c for c in self.confirmations if c.test == test and c.after == index), None)

    def first_break(self, test: str) -> Step | None:
        """The first patch blamed for breaking ``test`` (None: not broken, or not blamed).

        A step whose confirmation found it unstable or pre-existing is not
        blamed, nor are the failing steps right after it (the same failure
        going on), nor a step whose every crash title the base showed too.
        """
        if self.broken_at_base(test):
            return None
        seen = confirm.titles_of(self.steps[0].runs) if self.steps else set()
        excused = False
        for step in self.steps[1:]:
            outcome = step.outcome(test)
            if outcome is None or step.flaky(test):  # flaky: never a break by itself
                continue
            if outcome in OK:
                excused = False
                continue
            checked = self.confirmation(test, step.index)
            if checked is not None:
                if checked.kind is ConfirmKind.REGRESSION:
                    return step
                excused = True
            elif not excused and not _seen_on_base(step, test, seen):
                return step
        return None

    def broken_at_base(self, test: str) -> bool:
        """Whether the test already fails without the series."""
        return bool(self.steps) and self.steps[0].outcome(test) not in OK

    def render(self) -> str:
        """A plain-text matrix fit for a mail reply."""
        width = max([len(t) for t in self.tests] + [10])
        lines = ["step  " + "  ".join(t.ljust(width) for t in self.tests) + "  patch"]
        for step in self.steps:
            cells = [self._cell(step, t).ljust(width) for t in self.tests]
            lines.append(f"{step.index:>4}  " + "  ".join(cells) + f"  {step.label}")
            if step.error:
                lines.append(f"      ({step.error.splitlines()[0][:150]})")
        lines.append("")
        for test in self.tests:
            lines.append(f"{test}: {self._verdict(test)}")
        for checked in self.confirmations:
            lines += ["", *checked.table()]
        return "\n".join(lines)

    @staticmethod
    def _cell(step: Step, test: str) -> str:
        outcome = step.outcome(test)
        if outcome is None:
            return "-"
        return "flaky" if step.flaky(test) else outcome.value

    def summary(self, run_id: str, interrupted: bool = False) -> RunSummary:
        """The run as a summary whose kernels are the steps (00 the base, 01, ...)."""
        records: list[TestRecord] = []
        kernels = []
        for step in self.steps:
            kernels.append(
                KernelRecord(step.name, step.label, timings=_build_time(step), exact=step.exact)
            )
            ran = test_records(step.runs)
            records += ran
            done = {t.test for t in ran}
            summary = f"build-fail: {(step.error or 'did not build').splitlines()[0][:200]}"
            records += [
                TestRecord(test, step.name, outcome, summary, details=(step.error or "",))
                for test, outcome in step.outcomes
                if test not in done
            ]
        return build_summary(run_id, kernels, records, interrupted=interrupted)

    def against_base(self, summary: RunSummary, index: int | None = None) -> Comparison:
        """Step ``index`` (default: the last) compared with the base, by test name."""
        step = self.steps[-1 if index is None else index]
        base = self.steps[0]
        return compare(_only(summary, base.name), _only(summary, step.name), {base.name: step.name})

    def judged(self, comparison: Comparison) -> Comparison:
        """``comparison`` with the confirmations' verdicts (nothing unconfirmed blamed)."""
        return confirm.judged(comparison, self)

    def lead(self, comparison: Comparison) -> str:
        """What a reviewer reads first: the regressions the series brings, then the rest.

        ``comparison`` is :meth:`judged`: a failure the confirmation runs found
        unstable is listed as such, one found on the step before as the base's.
        """
        regressions = comparison.regressions
        verdict = (
            f"{len(regressions)} regression(s) introduced by the series"
            if regressions
            else "no regressions introduced by the series"
        )
        lines = [f"kharness series: {verdict}"]
        unstable = {c.test for c in self.confirmations if c.kind is ConfirmKind.UNSTABLE}
        sections = (
            ("Regressions (good on the base, failing after the series)", regressions),
            (
                "Unstable when run again (a split result: no patch blamed)",
                [c for c in comparison.of(_FLAKY) if c.test in unstable],
            ),
            (
                "Flaky after the series (not counted as regressions)",
                [c for c in comparison.of(_FLAKY) if c.test not in unstable],
            ),
            ("Changed crash (the base failed too, differently)", comparison.of(_CHANGED)),
            ("Failures the base already had", comparison.of(_STILL)),
            ("Fixed by the series", comparison.of(_FIXED)),
            ("Not comparable", comparison.of(_UNKNOWN)),
        )
        for heading, changes in sections:
            if not changes:
                continue
            lines += ["", f"{heading}:"]
            for change in changes:
                line = change.line().split(": ", 1)[1]
                notes = [c.note for c in self.confirmations if c.test == change.test and c.note]
                if change.test in unstable or (notes and change.kind is _STILL):
                    line = "; ".join(notes)
                lines.append(f"  {change.test}: {line}")
                step = self.first_break(change.test)
                if change in regressions and step is not None:
                    checked = self.confirmation(change.test, step.index)
                    sure = f" (confirmed: {checked.counts()})" if checked else ""
                    lines.append(f"    first broken by patch {step.index}: {step.label}{sure}")
        return "\n".join(lines)

    def _verdict(self, test: str) -> str:
        if self.broken_at_base(test):
            fix = next(
                (s for s in self.steps[1:] if s.outcome(test) in OK and not s.flaky(test)), None
            )
            if fix is not None and self.steps[-1].outcome(test) in OK:
                return f"failing without the series, fixed by patch {fix.index}: {fix.label}"
            return "already failing without the series (pre-existing, not blamed)"
        step = self.first_break(test)
        if step is not None:
            return f"first broken by patch {step.index}: {step.label}"
        excused = [c for c in self.confirmations if c.test == test]
        if excused:
            last = excused[-1]
            return f"{last.kind.value} after patch {last.after}, not blamed: {last.note}"
        return "not broken"


_FLAKY, _CHANGED, _STILL, _FIXED, _UNKNOWN = (
    ChangeKind.FLAKY,
    ChangeKind.CHANGED_CRASH,
    ChangeKind.STILL_FAILING,
    ChangeKind.FIXED,
    ChangeKind.NOT_COMPARABLE,
)


def _seen_on_base(step: Step, test: str, seen: set[str]) -> bool:
    """Every crash title of ``test``'s runs on ``step`` was seen on the base already."""
    titles = confirm.titles_of([r for r in step.runs if r.test == test])
    return bool(titles) and titles <= seen


def _only(summary: RunSummary, kernel: str) -> RunSummary:
    return RunSummary(
        summary.run,
        tuple(k for k in summary.kernels if k.name == kernel),
        tuple(t for t in summary.tests if t.kernel == kernel),
    )


def _build_time(step: Step) -> dict[str, float]:
    return {"build": step.build_seconds} if step.build_seconds else {}
