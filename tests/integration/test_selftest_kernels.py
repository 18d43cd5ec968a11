"""Self-test kernels: put each reproducer's bug back into 6.12 and see the harness catch it.

Real builds, real boots.  Everything shares one build slot and runs in order:
the good kernel (one full build, ~7 min on 2 quiet cores, from tinyconfig +
guest.config), then each bug kernel as an incremental rebuild (reset to the
base, apply fix + bug, rebuild the few objects that changed), then a bisect
over a small history whose steps are incremental rebuilds too.

The suite builds them in the sandbox (``untrusted``, as the list bot must):
the bot, the series verdicts, the kselftest target and the ad-hoc ``--tree``
test use the same recipe (tests/integration/selftest_history.py), so a fresh
machine compiles the self-test kernel once for all of them, whichever module
runs first (tests/unit/test_selftest_slot.py keeps the recipes in step).

The source is Debian's linux-source-6.12, turned into a git history here
(base, two harmless commits, the bug, one harmless commit) so that the
kernels of kernels-selftest.yaml and the bisect use the same worktree and
build directory: switching between a plain copy and a git worktree would
rebuild everything.  The entries' series and expectations are read from
kernels-selftest.yaml unchanged; only their ``source`` points at the history's
base commit, which holds exactly the package's files.

The self-test kernels are built with line info (``debug_info: true``): the
BUG of selftest-bug-move must come out symbolized, naming the file and line
of the BUG_ON the patch put in and the maintainers of that file (from the
tree's own get_maintainer.pl); a boot that panics is named, symbolized, seconds
after the panic.

The self-test kernels also build in two KUnit suites (``kunit:`` in
kernels-selftest.yaml): their boot consoles must show every case of both
passing or skipping, one record per case; the bisect builds with the same
recipe, so it shares their build directory.

Last, one kselftest target (mincore: one static binary, five kselftest_harness
subtests) is built from the good kernel's tree in that same build directory
and run through pytest on the good kernel, reused from the cache: one boot.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import time
from pathlib import Path

import pytest

from harness.commands.adhoc import AdHocKernels, add_options
from harness.commands.bisect import BAD, GOOD, BisectPlan, bisect, confidence, read_steps
from harness.config import KernelSpec, load_kernels, untrusted
from harness.kernels.base import KernelImage
from harness.kernels.build import BuildRecipe, BuildSource, make_recipe
from harness.oops import ReportType
from harness.oops.frames import SourceLine
from harness.outcome import Outcome
from harness.reporters import text
from harness.results.records import KernelRecord, TestRun
from harness.results.summarize import failure_text, summarize
from harness.testkinds.kunit import parse_kunit, select
from harness.testkinds.trial import Trial, select_tests
from tests.integration.helpers import REPO, ready_boots
from tests.integration.selftest_history import BISECT_TEST, FRAGMENTS, History

pytestmark = [pytest.mark.build, pytest.mark.boot]

ORDER = ("selftest-good", "selftest-bug-api", "selftest-bug-faultaround", "selftest-bug-move")


# -- one slot for every suite build of the self-test kernel (no build, no boot) -------------
#
# On a fresh machine each distinct slot is a cold kernel build (5-7 minutes on 2 quiet cores,
# up to 28 loaded), and a sandboxed build never reads a trusted build's ccache.  The self-test
# kernels (kernels-selftest.yaml, made untrusted here), the bisect, the kselftest target's
# kernel, the series verdicts and the list bot (History.kernels_file; the bot's --sandbox
# leaves it as it is) and the ad-hoc --tree test (History.tree_options) each write the recipe
# their own way: these check, in a second, that they still agree.


def _history(tmp_path: Path) -> History:
    repo = tmp_path / "linux"
    (repo / ".git").mkdir(parents=True)  # validation only asks whether it is a git tree
    return History(repo, "a" * 40, "b" * 40, "c" * 40)


def _recipe(spec: KernelSpec) -> BuildRecipe:
    assert isinstance(spec.source, BuildSource), spec.source
    return spec.source.recipe


def test_the_selftest_recipe_is_sandboxed_with_line_info_and_kunit() -> None:
    recipe = make_recipe(fragments=FRAGMENTS, sandbox=True)
    assert recipe.sandbox
    assert [p.name for p in recipe.fragments] == [
        "guest.config",
        "selftest.config",
        "debuginfo.config",
        "kunit.config",
    ]


def test_every_writer_of_the_selftest_recipe_lands_in_one_slot(tmp_path: Path) -> None:
    history = _history(tmp_path)
    want = make_recipe(fragments=FRAGMENTS, sandbox=True).key()
    keys: dict[str, str] = {}
    for spec in load_kernels(REPO / "kernels-selftest.yaml"):  # the suite makes them untrusted
        keys[spec.name] = _recipe(untrusted(spec)).key()
    (bot,) = load_kernels(history.kernels_file(tmp_path, history.bug))
    keys["kernels_file"] = _recipe(bot).key()
    keys["the bot's --sandbox"] = _recipe(untrusted(bot)).key()
    kselftest = tmp_path / "kselftest.yaml"
    kselftest.write_text(
        f"kernels:\n  - name: selftest-good\n    build: {history.build_entry()}\n"
        "    selftests: [mincore]\n"
    )
    (spec,) = load_kernels(kselftest)
    keys["kselftest target"] = _recipe(spec).key()
    parser = argparse.ArgumentParser()
    add_options(parser.add_argument)
    options = parser.parse_args(history.tree_options())
    (tree,) = AdHocKernels.read(lambda dest: getattr(options, dest)).specs(tmp_path)
    keys["--tree"] = _recipe(tree).key()
    assert keys == dict.fromkeys(keys, want), keys


def test_selftest_good_is_the_history_recipe_and_the_fix() -> None:
    """The image store reuses selftest-good for the kselftest target only while they agree."""
    good = next(
        s for s in load_kernels(REPO / "kernels-selftest.yaml") if s.name == "selftest-good"
    )
    assert isinstance(good.source, BuildSource)
    assert [p.name for p in good.source.series] == ["uffd-move-devmap-migration-entry.patch"]
    assert dataclasses.replace(good.source.recipe, sandbox=True) == make_recipe(
        fragments=FRAGMENTS, sandbox=True
    )


@pytest.fixture(scope="module")
def specs(history: History) -> dict[str, KernelSpec]:
    """kernels-selftest.yaml, each source pointed at the history's base commit, sandboxed:
    the slot the bot's builds fill (see the module docstring)."""
    found = {}
    for spec in load_kernels(REPO / "kernels-selftest.yaml"):
        assert isinstance(spec.source, BuildSource)
        source = dataclasses.replace(spec.source, source=str(history.repo), rev=history.base)
        found[spec.name] = untrusted(dataclasses.replace(spec, source=source))
    assert sorted(found) == sorted(ORDER)
    return found


@pytest.fixture(scope="module")
def trial(tmp_path_factory: pytest.TempPathFactory) -> Trial:
    """One results directory and key set for every self-test kernel."""
    return Trial(tmp_path_factory.mktemp("selftest-results"), select_tests([]))


@pytest.mark.parametrize("name", ORDER)
def test_reproducers_on_selftest_kernel(
    name: str, specs: dict[str, KernelSpec], trial: Trial
) -> None:
    """Each bug kernel fails (or oopses) its reproducer and passes the others; good passes all."""
    spec = specs[name]
    started = time.monotonic()
    image = spec.source.resolve(print)
    built = time.monotonic() - started
    runs = trial.run(name, image)
    print(f"{name}: built in {built:.0f}s, tests in {time.monotonic() - started - built:.0f}s")
    got = {r.test: r.verdict.outcome for r in runs}
    want = {t.name: Outcome.PASS for t in trial.tests}
    want.update({test: e.outcome for test, e in spec.expect.items()})
    assert got == want, "\n".join(f"{r.test}: {r.verdict.summary}" for r in runs)
    first = ready_boots(trial.results / name)[0]  # a failed boot is retried
    _check_kunit(spec, trial.results / name / f"boot-{first}" / "console.log")
    if name == "selftest-bug-move":
        _check_symbolized(name, runs, image)


def _check_symbolized(name: str, runs: list[TestRun], image: KernelImage) -> None:
    """The BUG_ON's report: file:line of the BUG_ON, its callers, the file's maintainers."""
    assert image.debug is not None and image.debug.source is not None, image
    (run,) = [r for r in runs if r.test == "uffd_move_swap_pmd"]
    (report, *_) = [r for r in run.reports if r.type is not ReportType.PANIC]
    decoded = report.decoded
    assert decoded is not None, "no symbolized trace"
    line = _added_line(
        REPO / "guest-tests/bugs/uffd_move_swap_pmd.patch", "BUG_ON(!pmd_trans_huge("
    )
    where = f"mm/huge_memory.c:{line}"
    said = re.search(r"kernel BUG at (\S+):(\d+)!", report.text)  # the kernel's own word
    assert said and f"{said.group(1)}:{said.group(2)}" == where, report.text[:300]
    assert decoded.guilty == SourceLine("move_pages_huge_pmd", "mm/huge_memory.c", line)
    assert decoded.frames[0].ip and decoded.frames[0].where == where
    callers = [f.lines[-1].where for f in decoded.frames[1:] if f.reliable and f.lines]
    assert any(c.startswith("mm/userfaultfd.c:") for c in callers), callers  # move_pages()
    assert any(c.startswith("fs/userfaultfd.c:") for c in callers), callers  # the ioctl
    assert "Andrew Morton <akpm@linux-foundation.org>" in decoded.to
    assert "linux-mm@kvack.org" in decoded.cc
    assert f"RIP: {report.ip.text if report.ip else '?'} ({where})" in failure_text(run)
    kernel = KernelRecord(name, "build", image.origin, image.release)
    rendered = text.render(summarize("selftest", runs, [kernel], [], {}))
    assert where in rendered and "To: Andrew Morton <akpm@linux-foundation.org>" in rendered
    print(rendered)


def _added_line(patch: Path, text: str) -> int:
    """The line number, in the patched file, of the one added line holding ``text``."""
    number = 0
    for raw in patch.read_text().splitlines():
        hunk = re.match(r"@@ -\d+(?:,\d+)? \+(\d+)", raw)
        if hunk:
            number = int(hunk.group(1))
        elif raw.startswith("+") and not raw.startswith("+++"):
            if text in raw:
                return number
            number += 1
        elif raw.startswith(" "):
            number += 1
    raise AssertionError(f"no added line with {text!r} in {patch}")


def test_boot_panic_is_named_symbolized_and_quick(
    specs: dict[str, KernelSpec], trial: Trial
) -> None:
    """A kernel whose init cannot start panics at boot: boot-fail names and decodes it.

    ``rdinit=`` naming nothing makes the kernel fall back to ``init=``, which
    names nothing either: "Requested init ... failed" panics in kernel_init()
    (init/main.c; a tinyconfig kernel has no block layer, so no root mount is
    tried first).  The runner stops at the panic, not after the boot timeout,
    and the boot-fail carries the symbolized report.
    """
    spec = dataclasses.replace(
        specs["selftest-bug-move"],
        cmdline="rdinit=/does-not-exist init=/does-not-exist-either",
        timeouts=dataclasses.replace(specs["selftest-bug-move"].timeouts, boot=300),
    )
    image = spec.source.resolve(print)  # the bug-move build of the test above: cached
    broken = Trial(trial.results / "panic", select_tests(["uffd_api_unknown_feature"]), spec=spec)
    started = time.monotonic()
    (run,) = broken.run("selftest-no-root", image)
    assert time.monotonic() - started < 120, "waited for the boot timeout, not the panic"
    assert run.verdict.outcome is Outcome.BOOT_FAIL
    assert run.verdict.summary.startswith(
        "boot-fail: the kernel panicked during boot: Kernel panic: Requested init"
    ), run.verdict.summary
    (crash,) = run.reports
    assert crash.decoded is not None and crash.decoded.guilty is not None
    assert crash.decoded.guilty.file.startswith("init/"), crash.decoded
    assert "last console lines" in run.verdict.details[0]
    print(failure_text(run))


def _check_kunit(spec: KernelSpec, console: Path) -> None:
    """Each kunit: glob found its suite on the first boot; every case passed or skipped."""
    suites = parse_kunit(console.read_text(errors="replace"))
    for glob in spec.kunit:
        assert select(suites, glob), f"no KUnit suite '{glob}' in {console}"
    cases = [c for glob in spec.kunit for s in select(suites, glob) for c in s.cases]
    bad = [f"{c.id}: {c.summary}" for c in cases if c.outcome not in (Outcome.PASS, Outcome.SKIP)]
    assert not bad, "\n".join(bad)
    assert len(cases) > 20 and any(c.outcome is Outcome.SKIP for c in cases)
    print(f"{spec.name}: {len(cases)} KUnit cases passed or skipped")


def test_bisect_names_the_bug_commit(
    history: History, specs: dict[str, KernelSpec], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """git bisect run with the harness as predicate finds the commit that put the bug in."""
    results = tmp_path_factory.mktemp("bisect-results")
    recipe = specs["selftest-good"].source.recipe  # the self-tests' build directory
    plan = BisectPlan(history.repo, BISECT_TEST, recipe, results)
    started = time.monotonic()
    result = bisect(plan, history.base, history.head)
    print(f"bisect in {time.monotonic() - started:.0f}s:\n{result.output[-1500:]}")
    assert result.first_bad == history.bug, result.output[-3000:]
    assert result.subject.startswith("SELFTEST BUG: userfaultfd")
    steps = [json.loads(line) for line in (results / "steps.jsonl").read_text().splitlines()]
    assert steps and all(s["code"] in (GOOD, BAD) for s in steps), steps
    assert any(s["commit"] == history.bug and s["code"] == BAD for s in steps)
    # how sure: every step ran the test once; each bad one saw its one failure
    assert all(s["runs"] == 1 and s["failures"] == int(s["code"] == BAD) for s in steps), steps
    assert "reproduces 100% of runs" in confidence(read_steps(results), 1)


def test_kselftest_target_from_the_kernel_tree(history: History, project: pytest.Pytester) -> None:
    """``selftests: [mincore, size]`` on the good kernel, ``-k mincore``: one boot.

    The kernel is the self-test kernels' (same recipe, tree and series as
    selftest-good, :meth:`History.build_entry`: reused from the image store,
    no kernel build; before they agreed it was a cold build of its own).
    mincore is built from that tree against its own headers, static, copied
    into the busybox guest and run with its runner timeout; its five
    kselftest_harness subtests become records.  On this guest check_file_mmap
    fails for real (its file is on tmpfs, which does no read-ahead):
    kernels.yaml expects that, keyed by the kselftest's name, so the item is
    a strict xfail.  ``size`` is listed but deselected
    by ``-k``: never built nor run.
    """
    (project.path / "kernels.yaml").write_text(
        "kernels:\n"
        "  - name: selftest-good\n"
        f"    build: {history.build_entry()}\n"
        "    selftests: [mincore, size]\n"
        "    expect:\n"
        "      kselftest.mincore.mincore_selftest:\n"
        "        {outcome: fail, reason: check_file_mmap needs read-ahead; /tmp is tmpfs}\n"
    )
    started = time.monotonic()
    result = project.runpytest_subprocess(
        "guest-tests", "--results-dir=res", "-rA", "-k", "mincore", timeout=1800
    )
    out = result.stdout.str()
    print(f"kselftest run in {time.monotonic() - started:.0f}s")
    result.assert_outcomes(xfailed=1, deselected=1)
    assert "XFAIL kselftest/mincore/mincore_selftest::selftest-good" in out, out[-3000:]
    assert "get_size" not in out
    (run,) = [p for p in (project.path / "res").iterdir() if p.name != "latest"]
    summary = json.loads((run / "summary.json").read_text())
    by_test = {t["test"]: t for t in summary["tests"]}
    main = by_test.pop("kselftest.mincore.mincore_selftest")
    assert main["outcome"] == "fail" and main["as_expected"], main
    assert main["evidence"].endswith("selftest-good/kselftest/mincore/mincore_selftest")
    assert "TAP version 13" in (Path(main["evidence"]) / "stdout.txt").read_text()
    subs = {
        k.removeprefix("kselftest.mincore.mincore_selftest.global."): v for k, v in by_test.items()
    }
    assert {k: v["outcome"] for k, v in subs.items()} == {
        "basic_interface": "pass",
        "check_anonymous_locked_pages": "pass",
        "check_huge_pages": "skip",  # tinyconfig: no CONFIG_HUGETLB_PAGE
        "check_file_mmap": "fail",
        "check_tmpfs_mmap": "pass",
    }
    assert "No read-ahead pages found in memory" in "\n".join(subs["check_file_mmap"]["details"])
    timings = summary["kernels"]["selftest-good"]["timings"]
    print(f"timings: {timings}, mincore ran {main['seconds']:.1f}s")
    assert len(ready_boots(run / "selftest-good")) == 1 and "kselftest-build" in timings
