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
and the last step are compared (:mod:`harness.results.compare`), so a failure the
base already had is listed apart and never blamed on the series, and a test
that both passed and failed under ``--runs N`` is flaky, not a regression.
Every step is a "kernel" of the run's summary.json (``00`` the base, ``01``
after patch 1, ...), so summary.txt, kcidb.json and index.html show the
whole matrix; patchwork.json holds one check per patch against the base.

A step that turns a test from pass to fail is confirmed before it is blamed
(:mod:`harness.commands.confirm`): the test runs again on it and on the step before,
and only a clean split (all pass before, all bad after) names the patch;
series.json (:mod:`harness.results.series_record`) keeps the counts.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from harness.commands import confirm
from harness.commands.series_report import NotApplied, SeriesReport, Step
from harness.errors import BuildFailed
from harness.kernels import image_store
from harness.kernels.base import Exact, KernelImage
from harness.kernels.build import BuildSource, BuiltKernel, TreeBuild, build_cache
from harness.kernels.config_needs import host_config_file
from harness.kernels.patches import Patch, PatchFailed, PatchRefused, first_misfit
from harness.kernels.srctree import SourceTree, locate
from harness.outcome import NOT_COMPARABLE, Outcome
from harness.reporters import kcidb, patchwork, write_all
from harness.results import layout, pass_rate
from harness.results import series_record as rec
from harness.results.evidence import write_json
from harness.results.records import RunSummary
from harness.results.series_record import Confirmation
from harness.testkinds.trial import Trial

__all__ = ["NotApplied", "SeriesReport", "Step", "run_series", "write_reports"]


def run_series(
    source: BuildSource,
    patches: tuple[Patch, ...],
    trial: Trial,
    log: Callable[[str], None],
    runs: int = 1,
    base_patches: tuple[Patch, ...] = (),
    base: str = "",
    confirm_runs: int = 0,
) -> SeriesReport:
    """Base build, then one incremental rebuild and test run per patch.

    The builds report to the trial's progress, as its boots and tests do.
    ``runs``: how many times each test runs on each step (pass rates, flaky).
    ``base_patches`` (the kernel entry's own series when the series under
    test comes from ``--series``) are part of the base, not steps.  The
    whole series is first checked to apply on that base (seconds, no
    build): a series that does not is reported as such and nothing builds.
    ``confirm_runs``: how many times a test a step turned bad runs again on
    that step and the one before (:mod:`harness.commands.confirm`; 0: never).
    """
    names = tuple(t.name for t in trial.tests)
    steps: list[Step] = []
    found: list[Confirmation] = []
    config: str | None = None
    progress = trial.progress
    guests = confirm.StepGuests(trial, runs, confirm_runs, log)
    with (
        TreeBuild(source.recipe, log, build_cache(), meter=progress, label=source.short()) as build,
        guests,
    ):
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
        not_applied = _not_applying(patches, build, log)
        if not_applied is not None:
            return SeriesReport(names, (), not_applied, base)
        for index, patch in enumerate((None, *patches)):
            label = patch.label if patch else "base (no patches)"
            try:
                if patch is not None:
                    build.apply(patch)
                built = _built(source, tree, build, (*base_patches, *patches[:index]), index)
            except PatchFailed as exc:
                steps.append(_failed(index, label, names, exc))
                log(f"stopping: {exc}")
                break
            except BuildFailed as exc:
                steps.append(_failed(index, label, names, exc))
                continue
            if config is None:
                config = keep_config(built.image, trial.results, trial.spec)
            done = guests.run(f"{index:02d}", built.image)
            outcomes = tuple(
                (g[0].test, pass_rate.combine(g).verdict.outcome) for g in pass_rate.group(done)
            )
            exact = _exact(tree, (*base_patches, *patches[:index]))
            seconds = round(built.seconds, 1)
            steps.append(Step(index, label, outcomes, seconds, None, tuple(done), exact))
            found += guests.settle(steps[-1], steps[0])
    return SeriesReport(
        names, tuple(steps), None, base, tuple(found), confirm_runs if found else 0, config
    )


def _built(
    source: BuildSource, tree: SourceTree, build: TreeBuild, applied: tuple[Patch, ...], index: int
) -> BuiltKernel:
    """The step's kernel: an identical earlier build's (the image store: the bot's next start,
    another series on the same base) or built now, incrementally, and remembered."""
    key = source.image_key(tree, applied)
    cached = image_store.recall(build.cache, key)
    if cached is not None:
        build.progress(f"reusing {cached.origin}")
        return BuiltKernel(cached, (), 0.0, None)
    built = build.make(f"series-{index:02d}")
    image_store.remember(build.cache, key, built.image)
    return built


def _not_applying(
    patches: tuple[Patch, ...], build: TreeBuild, log: Callable[[str], None]
) -> NotApplied | None:
    """The first patch that does not apply on the base (a dry run, no build), if one does not."""
    misfit = first_misfit(patches, build.ws.src, build.ws.root / "preflight")
    if misfit is None:
        return None
    index, failed = misfit
    log(f"not building: {failed}")
    error = f"{failed}\n{failed.details}".strip()
    return NotApplied(index, patches[index - 1].label, error, isinstance(failed, PatchRefused))


def _exact(tree: SourceTree, applied: tuple[Patch, ...]) -> Exact:
    """What a step was made from: the tree's commit and the hashes of the patches on it."""
    return Exact(
        commit=tree.identity if tree.git else None,
        tree=tree.label,
        patches=tuple(hashlib.sha256(p.text.encode()).hexdigest() for p in applied),
    )


def keep_config(image: KernelImage, run_dir: Path, spec: object) -> str | None:
    """The built kernel's .config copied beside series.json (``config-<kernel>.txt``): the
    config a maintainer needs to rebuild what was tested; its file name, or None."""
    found = host_config_file(image)
    if found is None:
        return None
    dest = run_dir / rec.config_name(getattr(spec, "name", None) or "series")
    shutil.copyfile(found, dest)
    return dest.name


def _failed(index: int, label: str, names: tuple[str, ...], exc: BuildFailed) -> Step:
    error = f"{exc}\n{exc.details}"
    return Step(index, label, tuple((n, Outcome.BUILD_FAIL) for n in names), 0.0, error)


def write_reports(report: SeriesReport, run_dir: Path, why_tests: str = "") -> bool:
    """summary.json, series.json and every report, led by the regressions; True if any.

    A test broken by one patch and repaired by a later one is not a
    regression of the series, but it still fails the run: the series does
    not bisect cleanly.  ``why_tests``: why these tests ran (the bot's
    relevance reason), kept for the reply.
    """
    summary = report.summary(run_dir.name)
    write_all(summary, run_dir)
    base = f"base: {report.base}\n\n" if report.base else ""
    record = rec.SeriesRecord(
        report.tests,
        report.base,
        confirm_runs=report.confirm_runs,
        config=report.config,
        why_tests=why_tests,
    )
    if report.not_applied is not None:
        na = report.not_applied
        what = "was refused (a path outside the tree)" if na.refused else "does not apply"
        lead = f"kharness series: patch {na.index} {what}, nothing was built: {na.label}"
        (run_dir / layout.SERIES_TXT).write_text(f"{lead}\n\n{base}{na.error}\n")
        text = run_dir / "summary.txt"
        text.write_text(f"{lead}\n\n{text.read_text()}")
        applied = rec.NotApplied(na.index, na.label, na.error, na.refused)
        write_json(run_dir / rec.FILENAME, replace(record, not_applied=applied).to_json())
        return True
    if not report.steps:
        (run_dir / layout.SERIES_TXT).write_text("kharness series: nothing was built\n")
        write_json(run_dir / rec.FILENAME, replace(record, untested="nothing was built").to_json())
        return False
    comparison = report.judged(report.against_base(summary))
    lead = report.lead(comparison)
    (run_dir / layout.SERIES_TXT).write_text(f"{lead}\n\n{base}{report.render()}\n")
    text = run_dir / "summary.txt"
    text.write_text(f"{lead}\n\n{text.read_text()}")
    (run_dir / patchwork.FILENAME).write_text(per_patch_checks(report, summary))
    verdicts = {(c.test, f"{c.after:02d}"): c.kind for c in report.confirmations}
    (run_dir / kcidb.FILENAME).write_text(kcidb.render(summary, verdicts))
    breaks = {t: report.first_break(t) for t in report.tests}
    record = replace(
        record,
        steps=tuple(_step_record(s) for s in report.steps),
        first_break=tuple((t, s.index) for t, s in breaks.items() if s is not None),
        regressions=tuple(c.test for c in comparison.regressions),
        confirmations=report.confirmations,
        untested=untested(report),
    )
    write_json(run_dir / rec.FILENAME, record.to_json() | {"comparison": comparison.to_json()})
    return bool(comparison.regressions) or any(breaks.values())


def untested(report: SeriesReport) -> str | None:
    """Why the run could not test the series at all (the base did not build or boot), else
    None: a verdict on the series needs a base that ran."""
    if not report.steps:
        return "nothing was built"
    base = report.steps[0]
    if base.error:
        return f"the base did not build: {base.error.splitlines()[0][:200]}"
    if base.outcomes and all(o in NOT_COMPARABLE for _t, o in base.outcomes):
        why = next((r.verdict.summary for r in base.runs), base.outcomes[0][1].value)
        what = "boot" if base.outcomes[0][1] is Outcome.BOOT_FAIL else "run its tests"
        return f"the base did not {what}: {why.splitlines()[0][:200] if why else what}"
    return None


def _step_record(step: Step) -> rec.StepRecord:
    return rec.StepRecord(
        step.index,
        step.label,
        step.outcomes,
        tuple(t for t, _o in step.outcomes if step.flaky(t)),
        step.build_seconds,
        step.error,
    )


def per_patch_checks(report: SeriesReport, summary: RunSummary) -> str:
    """patchwork.json: the series' check (last step against the base) and one per patch,
    with the confirmations' verdicts (an unstable or pre-existing failure is a warning)."""
    url = os.environ.get(patchwork.URL_ENV)
    whole = patchwork.checks(summary, report.judged(report.against_base(summary)), url, "series")
    patches = []
    for n, step in enumerate(report.steps[1:], 1):
        judged = report.judged(report.against_base(summary, n))
        found = patchwork.checks(summary, judged, url, "series")
        patches.append(
            {"index": step.index, "patch": step.label, "checks": [c.to_json() for c in found]}
        )
    doc = {"checks": [c.to_json() for c in whole], "patches": patches}
    return json.dumps(doc, indent=2) + "\n"
