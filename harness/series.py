"""Per-patch mode: build and test the tree after each patch of a series.

``kharness series KERNEL`` takes a ``build:`` kernel of kernels.yaml, builds
its source without the series (the base), then applies the patches one at a
time, rebuilding incrementally in the same build slot and running the guest
tests after each.  The result is a matrix of step x test and, for every test,
the first patch that breaks it: the answer a reviewer wants for a
mailing-list series.  A patch that does not apply ends the run (the rest
cannot apply on top of it); a patch that does not build is a build-fail row
and the next patch is still tried (it may be the fix).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.config import KernelSpec, load_kernels, select
from harness.errors import BuildFailed, UserError
from harness.kernels.build import BuildSource, TreeBuild, build_cache
from harness.kernels.patches import Patch, PatchFailed, read_series
from harness.kernels.srctree import locate
from harness.outcome import Outcome
from harness.progress import for_stream
from harness.results import new_run_dir, write_json
from harness.trial import DEFAULT_TESTS_DIR, Trial, select_tests

_OK = (Outcome.PASS, Outcome.SKIP)
ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Step:
    """One row of the matrix: the tree after ``index`` patches."""

    index: int  # 0: the base, without the series
    label: str
    outcomes: tuple[tuple[str, Outcome], ...]
    build_seconds: float = 0.0
    error: str | None = None  # the build or apply failure, if any

    def outcome(self, test: str) -> Outcome | None:
        """This step's outcome for ``test`` (None: never ran)."""
        return dict(self.outcomes).get(test)


@dataclass(frozen=True)
class SeriesReport:
    """The matrix and, per test, the first step that broke it."""

    tests: tuple[str, ...]
    steps: tuple[Step, ...]

    def first_break(self, test: str) -> Step | None:
        """The first patch after which ``test`` fails (None if the base fails already)."""
        if self.broken_at_base(test):
            return None
        return next(
            (
                s
                for s in self.steps[1:]
                if s.outcome(test) is not None and s.outcome(test) not in _OK
            ),
            None,
        )

    def broken_at_base(self, test: str) -> bool:
        """Whether the test already fails without the series."""
        return bool(self.steps) and self.steps[0].outcome(test) not in _OK

    def render(self) -> str:
        """A plain-text matrix fit for a mail reply."""
        width = max([len(t) for t in self.tests] + [10])
        lines = ["step  " + "  ".join(t.ljust(width) for t in self.tests) + "  patch"]
        for step in self.steps:
            cells = [
                (step.outcome(t).value if step.outcome(t) else "-").ljust(width) for t in self.tests
            ]
            lines.append(f"{step.index:>4}  " + "  ".join(cells) + f"  {step.label}")
            if step.error:
                lines.append(f"      ({step.error.splitlines()[0][:150]})")
        lines.append("")
        for test in self.tests:
            lines.append(f"{test}: {self._verdict(test)}")
        return "\n".join(lines)

    def _verdict(self, test: str) -> str:
        if self.broken_at_base(test):
            return "already failing without the series"
        step = self.first_break(test)
        return f"first broken by patch {step.index}: {step.label}" if step else "not broken"


def run_series(
    source: BuildSource, patches: tuple[Patch, ...], trial: Trial, log: Callable[[str], None]
) -> SeriesReport:
    """Base build, then one incremental rebuild and test run per patch.

    The builds report to the trial's progress, as its boots and tests do.
    """
    names = tuple(t.name for t in trial.tests)
    steps: list[Step] = []
    progress = trial.progress
    with TreeBuild(
        source.recipe, log, build_cache(), meter=progress, label=source.short()
    ) as build:
        tree = locate(source.source, source.base, build.cache, source.rev, log, progress)
        build.checkout(tree)
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
            runs = trial.run(f"{index:02d}", built.image)
            steps.append(
                Step(
                    index,
                    label,
                    tuple((r.test, r.verdict.outcome) for r in runs),
                    round(built.seconds, 1),
                )
            )
    return SeriesReport(names, tuple(steps))


def _failed(index: int, label: str, names: tuple[str, ...], exc: BuildFailed) -> Step:
    error = f"{exc}\n{exc.details}"
    return Step(index, label, tuple((n, Outcome.BUILD_FAIL) for n in names), 0.0, error)


def _kernel(args: argparse.Namespace) -> KernelSpec:
    """The kernels.yaml entry named on the command line: a ``build:`` kernel."""
    path = Path(args.kernels_file).resolve() if args.kernels_file else ROOT / "kernels.yaml"
    spec = select(load_kernels(path), [args.kernel], path)[0]
    if not isinstance(spec.source, BuildSource):
        raise UserError(
            f"kernel '{args.kernel}' in {path} is a {spec.source.kind} kernel; "
            "series mode needs a 'build:' entry (a source tree to patch)"
        )
    return spec


def cmd_series(args: argparse.Namespace) -> int:
    """The ``series`` subcommand: matrix on stdout and in the results directory."""
    spec = _kernel(args)
    source = spec.source
    assert isinstance(source, BuildSource)
    extra = tuple(p for s in args.series for p in read_series(Path(s).resolve()).patches)
    patches = source.patches() + extra
    if not patches:
        raise UserError(
            f"kernel '{args.kernel}' has no series; give 'series:' in kernels.yaml or --series PATH"
        )
    run_dir = new_run_dir(Path(args.results_dir or ROOT / "results").resolve())
    # every step boots with the entry's cmdline, memory, CPUs, timeouts, ...
    progress = for_stream(sys.stderr)  # with the build's and the trial's lines
    tests = select_tests(args.test, Path(args.tests_dir))
    trial = Trial(run_dir, tests, progress.print, spec, progress)
    try:
        report = run_series(source, patches, trial, progress.print)
    finally:
        progress.close()
    text = report.render()
    (run_dir / "series.txt").write_text(text + "\n")
    breaks = {t: report.first_break(t) for t in report.tests}
    write_json(
        run_dir / "series.json",
        {
            "tests": report.tests,
            "steps": report.steps,
            "first_break": {t: s.index if s else None for t, s in breaks.items()},
        },
    )
    print(f"\n{text}\n\nresults: {run_dir}")
    return 1 if any(breaks.values()) else 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``series`` on the harness CLI."""
    p = subparsers.add_parser("series", help="build and test after each patch of a series")
    p.add_argument("kernel", help="a build: kernel of kernels.yaml (its series, or --series)")
    p.add_argument(
        "--series",
        action="append",
        default=[],
        metavar="PATH",
        help="more patches after the kernel's own (mbox, .patch or directory)",
    )
    p.add_argument(
        "--test",
        action="append",
        default=[],
        metavar="NAME",
        help="only this guest test (repeatable; default: all)",
    )
    p.add_argument("--tests-dir", default=str(DEFAULT_TESTS_DIR), help=argparse.SUPPRESS)
    p.add_argument("--results-dir", help="base directory for results (default: results/)")
    p.set_defaults(func=cmd_series)
