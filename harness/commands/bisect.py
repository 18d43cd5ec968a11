"""Bisect a regression with the harness as ``git bisect run``'s predicate.

``kharness bisect --good REV --bad REV --test NAME --tree PATH`` checks the
range (good must be an ancestor of bad), takes the build slot of the chosen
config recipe, puts a git worktree of ``--tree`` there (the user's checkout
is never moved) and runs ``git bisect run python -m harness.commands.bisect step
PLAN``.  Each step builds whatever git checked out, incrementally in the same
O= directory (or boots the stored image when this commit was built with this
recipe before: a second bisect over the same range builds nothing), boots it
and runs the test, then answers in git's terms:

* 0 good: every run passed;
* 1 bad: a run failed (with ``--signature``: a kernel report whose title
  matches the regex, so that only the same bug counts);
* 125 skip: the commit did not build, did not boot, the test skipped, or
  (with ``--signature``) it failed differently: it says nothing about *this* bug;
* 255 abort: the harness itself could not work (QEMU missing, ...).

``--runs N`` repeats a flaky reproducer: bad as soon as one run is bad.
Each step records its runs and failures (``steps.jsonl``); at the end the
bisect says how sure it is (:func:`confidence`): runs per step, failures
seen, and the odds that a commit called good hid the bug.
``--kernel NAME`` boots every step with that kernels.yaml entry's settings
(cmdline, memory, CPUs, accel, timeouts, expectations; ``--kernels-file``
picks the file); without it, the defaults.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness import paths
from harness.config import KernelSpec, load_kernels, select, untrusted
from harness.errors import BisectRangeError, BuildFailed, HarnessError
from harness.gitrun import git_command, git_env, run_git
from harness.kernels import image_store
from harness.kernels.build import BuildRecipe, TreeBuild, build_cache
from harness.kernels.srctree import SourceTree, is_git_tree, resolve_rev
from harness.outcome import UNTESTABLE, Outcome
from harness.paths import REPO_ROOT
from harness.results.records import TestRun
from harness.testkinds.trial import DEFAULT_TESTS_DIR, Trial, select_tests

GOOD, BAD, SKIP, ABORT = 0, 1, 125, 255
_FIRST_BAD = re.compile(r"^([0-9a-f]{40}) is the first bad commit", re.MULTILINE)


@dataclass(frozen=True)
class Observation:
    """What one test run showed, reduced to what the bisect judgement needs."""

    outcome: Outcome
    summary: str
    titles: tuple[str, ...] = ()

    @classmethod
    def of(cls, run: TestRun) -> Observation:
        """From a runner TestRun."""
        return cls(run.verdict.outcome, run.verdict.summary, tuple(r.title for r in run.reports))


@dataclass(frozen=True)
class Judgement:
    """The exit code for git bisect run and why, with the evidence it rests on."""

    code: int
    reason: str
    runs: int = 0  # test runs this judgement saw
    failures: int = 0  # of them, runs that were bad (matching the signature, if any)


def judge_commit(observations: Sequence[Observation], signature: str | None) -> Judgement:
    """Good, bad or skip from the runs of one commit, counting runs and failures."""
    verdict = _judge(observations, signature)
    failures = sum(_judge([o], signature).code == BAD for o in observations)
    return dataclasses.replace(verdict, runs=len(observations), failures=failures)


def _judge(observations: Sequence[Observation], signature: str | None) -> Judgement:
    """Good, bad or skip (see the module docstring)."""
    other: str | None = None
    for obs in observations:
        if obs.outcome in UNTESTABLE:
            return Judgement(SKIP, f"cannot judge this commit: {obs.summary}")
        if not obs.outcome.is_failure:
            continue
        if signature is None:
            return Judgement(BAD, obs.summary)
        match = next((t for t in obs.titles if re.search(signature, t)), None)
        if match is not None:
            return Judgement(BAD, f"{obs.outcome.value} matching the signature: {match}")
        other = other or obs.summary
    if other is not None:
        return Judgement(SKIP, f"failed, but not with the signature: {other}")
    return Judgement(GOOD, f"{len(observations)} run(s) passed")


@dataclass(frozen=True)
class BisectPlan:
    """Everything a bisect step needs, written to a file for the step subprocess."""

    tree: Path
    test: str
    recipe: BuildRecipe
    results: Path
    signature: str | None = None
    runs: int = 1
    tests_dir: Path = DEFAULT_TESTS_DIR
    kernel: str | None = None  # a kernels.yaml entry whose settings each step boots with
    kernels_file: Path | None = None

    def spec(self) -> KernelSpec | None:
        """The kernels.yaml entry each step boots with (None: the defaults, on QEMU)."""
        spec = kernel_spec(self.kernel, self.kernels_file)
        return untrusted(spec) if spec is not None and self.recipe.sandbox else spec

    def save(self, path: Path) -> None:
        """Write the plan as JSON."""
        path.write_text(
            json.dumps(
                {
                    "tree": str(self.tree),
                    "test": self.test,
                    "results": str(self.results),
                    "signature": self.signature,
                    "runs": self.runs,
                    "tests_dir": str(self.tests_dir),
                    "base_config": self.recipe.base_config,
                    "fragments": [str(p) for p in self.recipe.fragments],
                    "make_options": list(self.recipe.make_options),
                    "sandbox": self.recipe.sandbox,
                    "kernel": self.kernel,
                    "kernels_file": str(self.kernels_file) if self.kernels_file else None,
                },
                indent=2,
            )
        )

    @classmethod
    def load(cls, path: Path) -> BisectPlan:
        """Read a plan written by :meth:`save`."""
        d = json.loads(path.read_text())
        recipe = BuildRecipe(
            d["base_config"],
            tuple(Path(p) for p in d["fragments"]),
            tuple(d["make_options"]),
            sandbox=bool(d.get("sandbox", False)),
        )
        return cls(
            Path(d["tree"]),
            d["test"],
            recipe,
            Path(d["results"]),
            d["signature"],
            d["runs"],
            Path(d["tests_dir"]),
            d.get("kernel"),
            Path(d["kernels_file"]) if d.get("kernels_file") else None,
        )


def kernel_spec(name: str | None, kernels_file: Path | None) -> KernelSpec | None:
    """The kernels.yaml entry ``name`` (None without a name); ConfigError if it is wrong."""
    if name is None:
        return None
    path = paths.kernels_file(kernels_file)
    return select(load_kernels(path), [name], path)[0]


# -- the predicate: one step of git bisect run --------------------------------------


def step(plan: BisectPlan, log: Callable[[str], None] = print) -> Judgement:
    """Build the checked-out commit, run the test, judge it."""
    cache = build_cache()
    with TreeBuild(plan.recipe, log, cache, lock=False) as build:
        commit = run_git(build.ws.src, "rev-parse", "HEAD").stdout.strip()
        subject = run_git(build.ws.src, "log", "-1", "--format=%s").stdout.strip()
        log(f"bisect step: {commit[:12]} {subject}")
        key = image_store.image_key(plan.recipe, commit)
        image = image_store.recall(cache, key)
        if image is not None:
            log(f"reusing {image.origin}")  # an earlier bisect (or entry) built this commit
        else:
            build.adopt(SourceTree(plan.tree, True, commit, f"{plan.tree} at {commit[:12]}"))
            try:
                image = build.make(f"bisect-{commit[:12]}").image
            except BuildFailed as exc:
                return _record(plan, commit, subject, Judgement(SKIP, f"does not build: {exc}"))
            image_store.remember(cache, key, image)
    trial = Trial(plan.results, select_tests([plan.test], plan.tests_dir), log, plan.spec())
    runs = trial.run(
        commit[:12],
        image,
        plan.runs,
        stop=lambda r: judge_commit([Observation.of(r)], plan.signature).code == BAD,
    )
    verdict = judge_commit([Observation.of(r) for r in runs], plan.signature)
    return _record(plan, commit, subject, verdict)


def _record(plan: BisectPlan, commit: str, subject: str, verdict: Judgement) -> Judgement:
    with (plan.results / "steps.jsonl").open("a") as out:
        out.write(
            json.dumps(
                {
                    "commit": commit,
                    "subject": subject,
                    "code": verdict.code,
                    "reason": verdict.reason,
                    "runs": verdict.runs,
                    "failures": verdict.failures,
                    "time": time.time(),
                }
            )
            + "\n"
        )
    seen = f" ({verdict.failures} bad of {verdict.runs} run(s))" if verdict.runs else ""
    print(
        f"bisect: {commit[:12]} -> {({GOOD: 'good', BAD: 'bad'}).get(verdict.code, 'skip')}: "
        f"{verdict.reason}{seen}",
        flush=True,
    )
    return verdict


def read_steps(results: Path) -> list[Judgement]:
    """The judgements the steps of a bisect recorded in ``steps.jsonl``."""
    path = results / "steps.jsonl"
    if not path.is_file():
        return []
    steps = []
    for line in path.read_text().splitlines():
        d = json.loads(line)
        steps.append(Judgement(d["code"], d["reason"], d.get("runs", 0), d.get("failures", 0)))
    return steps


def confidence(steps: Sequence[Judgement], runs: int) -> str:
    """How sure the bisection is: runs per step, failures seen, the odds a good was wrong.

    A commit is called good after ``runs`` clean runs.  The bad steps show how
    often the bug reproduces (failures per run; each bad step stops at its
    first failure, so this is the geometric estimate); a commit that really
    has the bug passes ``runs`` runs by chance with probability (1 - rate) **
    runs.  That chance, for one good step and for all of them, is the risk
    that the first bad commit is later than the one named.
    """
    good = [s for s in steps if s.code == GOOD]
    bad = [s for s in steps if s.code == BAD]
    skipped = [s for s in steps if s.code not in (GOOD, BAD)]
    lines = [
        f"bisect confidence: {len(steps)} step(s), {runs} run(s) per step: "
        f"{len(bad)} bad, {len(good)} good, {len(skipped)} skipped"
    ]
    bad_runs, failures = sum(s.runs for s in bad), sum(s.failures for s in bad)
    if bad_runs:
        rate = failures / bad_runs
        lines.append(
            f"  bad steps: {failures} failure(s) in {bad_runs} run(s): the bug reproduces "
            f"{rate:.0%} of runs"
        )
        if good:
            miss = (1 - rate) ** runs
            all_good = 1 - (1 - miss) ** len(good)
            lines.append(
                f"  good steps: {sum(s.runs for s in good)} run(s), all clean; at that rate a "
                f"buggy commit passes {runs} run(s) with probability {miss:.1%} "
                f"({all_good:.1%} that any of the {len(good)} good verdict(s) is wrong)"
            )
            if miss > 0.05:
                lines.append(f"  not sure: bisect again with --runs {_runs_for(rate)}")
    elif good:
        lines.append("  no bad step was tested (git used the --bad commit as given)")
    return "\n".join(lines)


def _runs_for(rate: float, risk: float = 0.01) -> int:
    """Runs per step for a ``risk`` chance of missing a bug reproducing at ``rate``."""
    if rate <= 0:
        return 10
    if rate >= 1:
        return 1
    n = 1
    while (1 - rate) ** n > risk and n < 50:
        n += 1
    return n


def step_main(argv: list[str]) -> int:
    """``python -m harness.commands.bisect step PLAN``: the exit code git bisect run reads."""
    try:
        return step(BisectPlan.load(Path(argv[0]))).code
    except HarnessError as exc:
        print(f"bisect: harness error, aborting the bisect: {exc}", file=sys.stderr)
        return ABORT


# -- the driver ------------------------------------------------------------------------


@dataclass(frozen=True)
class BisectResult:
    """The first bad commit (None if git could not tell) and where the log is."""

    first_bad: str | None
    subject: str
    log: Path
    output: str


def check_range(tree: Path, good: str, bad: str) -> tuple[str, str]:
    """Both commits, and a BisectRangeError unless good is a proper ancestor of bad."""
    if not is_git_tree(tree):
        raise BisectRangeError(f"--tree {tree} is not a git checkout; bisect needs history")
    good_c, bad_c = resolve_rev(tree, good), resolve_rev(tree, bad)
    if good_c == bad_c:
        raise BisectRangeError(
            f"--good {good} and --bad {bad} are the same commit {good_c[:12]}; nothing to bisect"
        )
    ancestor = run_git(tree, "merge-base", "--is-ancestor", good_c, bad_c, check=False)
    if ancestor.returncode != 0:
        raise BisectRangeError(
            f"--good {good} ({good_c[:12]}) is not an ancestor of --bad {bad} ({bad_c[:12]}); "
            "swapped? For a fix rather than a regression, use git bisect's terms by hand"
        )
    return good_c, bad_c


def bisect(
    plan: BisectPlan, good: str, bad: str, log: Callable[[str], None] = print
) -> BisectResult:
    """Run the whole bisection in a worktree of ``plan.tree`` and report its answer."""
    good_c, bad_c = check_range(plan.tree, good, bad)
    plan_file = plan.results / "plan.json"
    plan.save(plan_file)
    log_file = plan.results / "bisect.log"
    with TreeBuild(plan.recipe, log, build_cache()) as build:
        build.checkout(SourceTree(plan.tree, True, bad_c, f"{plan.tree} at {bad_c[:12]}"))
        src = build.ws.src
        run_git(src, "bisect", "start", bad_c, good_c)
        try:
            output = _bisect_run(src, plan_file, log_file, log)
            history = run_git(src, "bisect", "log", check=False).stdout
        finally:
            run_git(src, "bisect", "reset", check=False)
    with log_file.open("a") as out:
        out.write(f"\n--- git bisect log ---\n{history}")
    m = _FIRST_BAD.search(output)
    first = m.group(1) if m else None
    subject = run_git(plan.tree, "log", "-1", "--format=%s", first).stdout.strip() if first else ""
    return BisectResult(first, subject, log_file, output)


def _bisect_run(src: Path, plan_file: Path, log_file: Path, log: Callable[[str], None]) -> str:
    """``git bisect run`` with our predicate; everything to the log, verdicts to ``log``."""
    argv = git_command(src, "bisect", "run", sys.executable, "-m", "harness.commands.bisect")
    lines: list[str] = []
    with (
        log_file.open("w") as out,
        subprocess.Popen(
            [*argv, "step", str(plan_file)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=_step_env(),
        ) as proc,
    ):
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            out.flush()
            lines.append(line)
            if line.startswith(("bisect: ", "Bisecting: ")):
                log(line.rstrip())
    return "".join(lines)


def _step_env() -> dict[str, str]:
    env = git_env()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


if __name__ == "__main__":
    # Only git bisect run calls this module directly; people use `kharness bisect`.
    if sys.argv[1:2] == ["step"] and len(sys.argv) == 3:
        sys.exit(step_main(sys.argv[2:]))
    print(
        "usage: python -m harness.commands.bisect step PLAN (or: kharness bisect --help)",
        file=sys.stderr,
    )
    sys.exit(2)
