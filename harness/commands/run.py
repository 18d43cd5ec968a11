"""``kharness run`` as an operation: pytest on the guest tests, in a fresh results directory.

The command line (:mod:`harness.commands.cli`), ``kharness rerun`` (:mod:`harness.commands.rerun`)
and the MCP server all start a run, or check what one would run, through here:
a :class:`RunRequest` says what to run, :func:`run_tests` runs it and says
where its results went.  Nothing calls the command line in-process to start a
run: that made rerun and the CLI import each other, and rerun had to guess
which new results directory was its own.
"""

from __future__ import annotations

import difflib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from harness.commands.adhoc import AdHocKernels
from harness.errors import UserError
from harness.paths import REPO_ROOT, results_base


@dataclass(frozen=True)
class RunRequest:
    """What to run: kernels, tests, where results go, and how guests boot."""

    kernels_file: Path
    kernels: tuple[str, ...] = ()  # names in kernels_file; none: all (unless ad hoc)
    tests: tuple[str, ...] = ()  # ``--test`` names; none: every guest test
    results_dir: str | Path | None = None  # the results base (default: results/)
    adhoc: AdHocKernels = field(default_factory=AdHocKernels)
    accel: str | None = None
    backend: str | None = None
    progress: str | None = None  # None: see progress_mode
    console: bool = False
    runs: int = 1
    keep_snapshots: bool = False
    jobs: str | None = None  # pytest-xdist -n
    hosts: str | None = None  # hosts.yaml
    pytest_args: tuple[str, ...] = ()

    def plugin_options(self) -> list[str]:
        """The options of the harness's pytest plugin this request sets."""
        argv = []
        if self.accel:
            argv.append(f"--accel={self.accel}")
        if self.backend:
            argv.append(f"--backend={self.backend}")
        argv.append(f"--progress={progress_mode(self.progress)}")
        if self.console:
            argv.append("--console")
        if self.runs != 1:
            argv.append(f"--runs={self.runs}")
        if self.keep_snapshots:
            argv.append("--keep-snapshots")
        return argv


@dataclass(frozen=True)
class RunOutcome:
    """pytest's exit code and the results directory (None: nothing ran, none is left)."""

    code: int
    run_dir: Path | None


def progress_mode(given: str | None) -> str:
    """--progress, else $KHARNESS_PROGRESS, else live on a terminal and plain lines in a log.

    (Plain pytest keeps quiet in a log unless asked; ``run`` is what CI calls.)
    """
    if given:
        return given
    return os.environ.get("KHARNESS_PROGRESS") or ("auto" if sys.stdout.isatty() else "plain")


def guest_test_paths(names: list[str], tests_root: Path = REPO_ROOT / "guest-tests") -> list[Path]:
    """``--test NAME`` values as the guest test files pytest should collect.

    A name is a file of guest-tests/c or guest-tests/sh without its suffix;
    a name that matches none is a UserError with a "did you mean" (KUnit
    suites and kselftests have no file: select those with ``-- -k NAME``).
    """
    from harness.testkinds.testdef import discover

    known = {p.stem: p for kind in ("c", "sh") for p in discover(tests_root / kind)}
    found = []
    for name in names:
        stem = name.removesuffix(".c").removesuffix(".sh")
        if stem not in known:
            close = difflib.get_close_matches(stem, list(known), n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise UserError(
                f"--test {name}: no guest test of that name in {tests_root}/c or /sh; {hint}"
                f"known: {', '.join(sorted(known))} (KUnit suites and kselftests: "
                "kharness run -- -k NAME)"
            )
        found.append(known[stem])
    return list(dict.fromkeys(found))


def run_tests(request: RunRequest) -> RunOutcome:
    """pytest guest-tests with evidence and JUnit XML in a fresh results directory.

    A mistake in the request (an unknown kernel or test, a tool missing) is
    one error before any results directory is made.
    """
    import pytest

    from harness.commands.adhoc import combine
    from harness.config import check_host_tools, load_kernels, select
    from harness.hosts import load_hosts
    from harness.results.evidence import drop_if_empty, latest_target, new_run_dir

    if request.hosts and request.jobs:
        raise UserError("-n and --hosts: give workers per host in the hosts file ('workers:')")
    hosts = load_hosts(Path(request.hosts).resolve()) if request.hosts else []
    kernels = request.kernels_file
    adhoc = request.adhoc
    # a mistake: one error, no results dir (ad-hoc kernels alone need no kernels.yaml)
    chosen = (
        select(load_kernels(kernels), list(request.kernels), kernels)
        if request.kernels or not adhoc.given
        else []
    )
    check_host_tools(combine(chosen, adhoc.specs(Path.cwd())))
    tests = guest_test_paths(list(request.tests))
    base = results_base(request.results_dir)
    previous = latest_target(base)
    run_dir = new_run_dir(base)
    argv = [
        *_where(hosts, tests),
        *(f"--tx={h.tx()}" for h in hosts),
        *(["-n", request.jobs] if request.jobs else []),
        "-v",
        "-ra",
        f"--run-dir={run_dir}",
        f"--junitxml={run_dir / 'junit.xml'}",
        f"--kernels-file={kernels}",
        *(f"--kernel={k}" for k in request.kernels),
        *adhoc.argv(),
        *request.plugin_options(),
        *request.pytest_args,
    ]
    print(f"results: {run_dir}")
    if hosts:
        os.chdir(REPO_ROOT)
    code = int(pytest.main(argv))
    if drop_if_empty(run_dir, previous):  # pytest refused the arguments: nothing ran
        print(f"nothing ran; {run_dir} removed")
        return RunOutcome(code, None)
    text = run_dir / "summary.txt"
    if text.is_file():
        print("\n" + text.read_text(), end="")
    return RunOutcome(code, run_dir)


def _where(hosts: list, tests: list[Path]) -> list[str]:
    """What pytest collects: guest-tests/, or the files ``--test`` named.

    With ssh hosts no path may be named (see harness.plugin.xdist): the guest
    tests come from testpaths, read in the project directory, and ``--test``
    becomes ``-k`` on the file names.
    """
    if not hosts:
        return [str(t) for t in tests] or [str(REPO_ROOT / "guest-tests")]
    where = ["-o", "testpaths=guest-tests", f"--rootdir={REPO_ROOT}"]
    if tests:
        where += ["-k", " or ".join(t.name for t in tests)]
    return where
