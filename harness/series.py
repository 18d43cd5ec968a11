"""Per-patch mode: build and test the tree after each patch of a series.

``kharness series KERNEL`` takes a ``build:`` kernel of kernels.yaml, builds
its source without the series (the base), then applies the patches one at a
time, rebuilding incrementally in the same build slot and running the guest
tests after each.  The result is a matrix of step x test and, for every test,
the first patch that breaks it: the answer a reviewer wants for a
mailing-list series.  A patch that does not apply ends the run (the rest
cannot apply on top of it); a patch that does not build is a build-fail row
and the next patch is still tried (it may be the fix).

The run's reports lead with what the series made worse: the base (step 0)
and the last step are compared (:mod:`harness.compare`), so a failure the
base already had is listed apart and never blamed on the series, and a test
that both passed and failed under ``--runs N`` is flaky, not a regression.
Every step is a "kernel" of the run's summary.json (``00`` the base, ``01``
after patch 1, ...), so summary.txt, kcidb.json and index.html show the
whole matrix; patchwork.json holds one check per patch against the base.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness import pass_rate
from harness.compare import ChangeKind, Comparison, compare
from harness.errors import BuildFailed
from harness.evidence import write_json
from harness.kernels.base import Exact
from harness.kernels.build import BuildSource, TreeBuild, build_cache
from harness.kernels.patches import Patch, PatchFailed, PatchRefused, first_misfit
from harness.kernels.srctree import locate
from harness.outcome import OK, Outcome, is_flaky
from harness.records import KernelRecord, RunSummary, TestRecord, TestRun
from harness.reporters import patchwork, write_all
from harness.summarize import build_summary, test_records
from harness.trial import Trial


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

    def first_break(self, test: str) -> Step | None:
        """The first patch after which ``test`` fails (None if the base fails already)."""
        if self.broken_at_base(test):
            return None
        return next(
            (
                s
                for s in self.steps[1:]
                if s.outcome(test) is not None
                and s.outcome(test) not in OK
                and not s.flaky(test)  # flaky: never a break by itself
            ),
            None,
        )

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

    def lead(self, comparison: Comparison) -> str:
        """What a reviewer reads first: the regressions the series brings, then the rest."""
        regressions = comparison.regressions
        verdict = (
            f"{len(regressions)} regression(s) introduced by the series"
            if regressions
            else "no regressions introduced by the series"
        )
        lines = [f"kharness series: {verdict}"]
        sections = (
            ("Regressions (good on the base, failing after the series)", regressions),
            ("Flaky after the series (not counted as regressions)", comparison.of(_FLAKY)),
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
                lines.append(f"  {change.test}: {change.line().split(': ', 1)[1]}")
                step = self.first_break(change.test)
                if change in regressions and step is not None:
                    lines.append(f"    first broken by patch {step.index}: {step.label}")
        return "\n".join(lines)

    def _verdict(self, test: str) -> str:
        if self.broken_at_base(test):
            fix = next(
                (s for s in self.steps[1:] if s.outcome(test) in OK and not s.flaky(test)), None
            )
            if fix is not None and self.steps[-1].outcome(test) in OK:
                return f"failing without the series, fixed by patch {fix.index}: {fix.label}"
            return "already failing without the series"
        step = self.first_break(test)
        return f"first broken by patch {step.index}: {step.label}" if step else "not broken"


_FLAKY, _CHANGED, _STILL, _FIXED, _UNKNOWN = (
    ChangeKind.FLAKY,
    ChangeKind.CHANGED_CRASH,
    ChangeKind.STILL_FAILING,
    ChangeKind.FIXED,
    ChangeKind.NOT_COMPARABLE,
)


def _only(summary: RunSummary, kernel: str) -> RunSummary:
    return RunSummary(
        summary.run,
        tuple(k for k in summary.kernels if k.name == kernel),
        tuple(t for t in summary.tests if t.kernel == kernel),
    )


def _build_time(step: Step) -> dict[str, float]:
    return {"build": step.build_seconds} if step.build_seconds else {}


def run_series(
    source: BuildSource,
    patches: tuple[Patch, ...],
    trial: Trial,
    log: Callable[[str], None],
    runs: int = 1,
    base_patches: tuple[Patch, ...] = (),
    base: str = "",
) -> SeriesReport:
    """Base build, then one incremental rebuild and test run per patch.

    The builds report to the trial's progress, as its boots and tests do.
    ``runs``: how many times each test runs on each step (pass rates, flaky).
    ``base_patches`` (the kernel entry's own series when the series under
    test comes from ``--series``) are part of the base, not steps.  The
    whole series is first checked to apply on that base (seconds, no
    build): a series that does not is reported as such and nothing builds.
    """
    names = tuple(t.name for t in trial.tests)
    steps: list[Step] = []
    progress = trial.progress
    with TreeBuild(
        source.recipe, log, build_cache(), meter=progress, label=source.short()
    ) as build:
        tree = locate(
            source.source,
            source.base,
            build.cache,
            source.rev,
            log,
            progress,
            commits_only="kharness series",
        )
        build.checkout(tree)
        for patch in base_patches:
            build.apply(patch)
        misfit = first_misfit(patches, build.ws.src, build.ws.root / "preflight")
        if misfit is not None:
            index, failed = misfit
            log(f"not building: {failed}")
            error = f"{failed}\n{failed.details}".strip()
            refused = isinstance(failed, PatchRefused)
            not_applied = NotApplied(index, patches[index - 1].label, error, refused)
            return SeriesReport(names, (), not_applied, base)
        for index, patch in enumerate((None, *patches)):
            label = patch.label if patch else "base (no patches)"
            try:
                if patch is not None:
                    build.apply(patch)
                built = build.make(f"series-{index:02d}")
            except PatchFailed as exc:
                steps.append(_failed(index, label, names, exc))
                log(f"stopping: {exc}")
                break
            except BuildFailed as exc:
                steps.append(_failed(index, label, names, exc))
                continue
            done = trial.run(f"{index:02d}", built.image, runs)
            outcomes = tuple(
                (g[0].test, pass_rate.combine(g).verdict.outcome) for g in pass_rate.group(done)
            )
            exact = Exact(
                commit=tree.identity if tree.git else None,
                tree=tree.label,
                patches=tuple(
                    hashlib.sha256(p.text.encode()).hexdigest()
                    for p in (*base_patches, *patches[:index])
                ),
            )
            seconds = round(built.seconds, 1)
            steps.append(Step(index, label, outcomes, seconds, None, tuple(done), exact))
    return SeriesReport(names, tuple(steps), None, base)


def _failed(index: int, label: str, names: tuple[str, ...], exc: BuildFailed) -> Step:
    error = f"{exc}\n{exc.details}"
    return Step(index, label, tuple((n, Outcome.BUILD_FAIL) for n in names), 0.0, error)


def write_reports(report: SeriesReport, run_dir: Path) -> bool:
    """summary.json and every report, led by the regressions; True if any (or a break).

    A test broken by one patch and repaired by a later one is not a
    regression of the series, but it still fails the run: the series does
    not bisect cleanly.
    """
    summary = report.summary(run_dir.name)
    write_all(summary, run_dir)
    base = f"base: {report.base}\n\n" if report.base else ""
    if report.not_applied is not None:
        na = report.not_applied
        what = "was refused (a path outside the tree)" if na.refused else "does not apply"
        lead = f"kharness series: patch {na.index} {what}, nothing was built: {na.label}"
        (run_dir / "series.txt").write_text(f"{lead}\n\n{base}{na.error}\n")
        text = run_dir / "summary.txt"
        text.write_text(f"{lead}\n\n{text.read_text()}")
        write_json(
            run_dir / "series.json",
            {
                "tests": report.tests,
                "steps": [],
                "base": report.base,
                "not_applied": {
                    "index": na.index,
                    "patch": na.label,
                    "error": na.error,
                    "refused": na.refused,
                },
            },
        )
        return True
    if not report.steps:
        (run_dir / "series.txt").write_text("kharness series: nothing was built\n")
        return False
    comparison = report.against_base(summary)
    lead = report.lead(comparison)
    (run_dir / "series.txt").write_text(f"{lead}\n\n{base}{report.render()}\n")
    text = run_dir / "summary.txt"
    text.write_text(f"{lead}\n\n{text.read_text()}")
    (run_dir / patchwork.FILENAME).write_text(per_patch_checks(report, summary))
    breaks = {t: report.first_break(t) for t in report.tests}
    write_json(
        run_dir / "series.json",
        {
            "tests": report.tests,
            "base": report.base,
            "not_applied": None,
            "steps": [_step_json(s) for s in report.steps],
            "first_break": {t: s.index if s else None for t, s in breaks.items()},
            "comparison": comparison.to_json(),
        },
    )
    return bool(comparison.regressions) or any(breaks.values())


def _step_json(step: Step) -> dict[str, object]:
    return {
        "index": step.index,
        "label": step.label,
        "outcomes": {t: o.value for t, o in step.outcomes},
        "flaky": [t for t, _o in step.outcomes if step.flaky(t)],
        "build_seconds": step.build_seconds,
        "error": step.error,
    }


def per_patch_checks(report: SeriesReport, summary: RunSummary) -> str:
    """patchwork.json: the series' check (last step against the base) and one per patch."""
    url = os.environ.get(patchwork.URL_ENV)
    whole = patchwork.checks(summary, report.against_base(summary), url, "series")
    patches = []
    for n, step in enumerate(report.steps[1:], 1):
        found = patchwork.checks(summary, report.against_base(summary, n), url, "series")
        patches.append(
            {"index": step.index, "patch": step.label, "checks": [c.to_json() for c in found]}
        )
    doc = {"checks": [c.to_json() for c in whole], "patches": patches}
    return json.dumps(doc, indent=2) + "\n"
