"""Per-patch matrix logic and the bisect predicate's contract, without booting anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.commands.bisect import (
    BAD,
    GOOD,
    SKIP,
    BisectPlan,
    BisectRangeError,
    Judgement,
    Observation,
    check_range,
    confidence,
    judge_commit,
)
from harness.commands.bisect_cli import recipe_from_args
from harness.commands.cli import main
from harness.commands.series import SeriesReport, Step, run_series
from harness.display.progress import NO_PROGRESS
from harness.errors import UserError
from harness.kernels.base import KernelImage
from harness.kernels.build import BuildSource, make_recipe, touches_kconfig
from harness.kernels.config_fragments import FragmentError
from harness.kernels.patches import Patch, read_series
from harness.outcome import Outcome, Verdict
from harness.results import records
from tests.unit.fake_kbuild import format_patch, git, git_tree, make_tree

P, F, OOPS = Outcome.PASS, Outcome.FAIL, Outcome.OOPS


def _report(*rows: tuple[Outcome, Outcome]) -> SeriesReport:
    steps = tuple(
        Step(i, "base" if i == 0 else f"patch {i}", (("a", x), ("b", y)))
        for i, (x, y) in enumerate(rows)
    )
    return SeriesReport(("a", "b"), steps)


def test_first_break_names_the_first_failing_patch() -> None:
    report = _report((P, P), (P, P), (F, P), (F, OOPS))
    assert report.first_break("a").index == 2  # type: ignore[union-attr]
    assert report.first_break("b").index == 3  # type: ignore[union-attr]
    text = report.render()
    assert "a: first broken by patch 2: patch 2" in text
    assert "b: first broken by patch 3: patch 3" in text


def test_a_test_failing_at_base_is_not_blamed_on_a_patch() -> None:
    report = _report((F, P), (F, P))
    assert report.first_break("a") is None and report.broken_at_base("a")
    assert "a: already failing without the series (pre-existing, not blamed)" in report.render()
    assert "b: not broken" in report.render()


def test_judge_without_signature() -> None:
    assert judge_commit([Observation(P, "pass")] * 3, None).code == GOOD
    assert judge_commit([Observation(P, "pass"), Observation(F, "fail: x")], None).code == BAD
    assert judge_commit([Observation(Outcome.BUILD_FAIL, "build-fail")], None).code == SKIP
    assert judge_commit([Observation(Outcome.BOOT_FAIL, "boot-fail")], None).code == SKIP
    assert judge_commit([Observation(Outcome.SKIP, "no UFFDIO_MOVE")], None).code == SKIP


def test_judge_with_signature_counts_only_the_same_bug() -> None:
    sig = r"kernel BUG at mm/huge_memory\.c"
    same = Observation(OOPS, "oops", ("kernel BUG at mm/huge_memory.c:2471!",))
    other = Observation(OOPS, "oops", ("WARNING in move_pages",))
    plain_fail = Observation(F, "fail: not ok 3")
    assert judge_commit([same], sig).code == BAD
    assert judge_commit([other], sig).code == SKIP
    assert judge_commit([plain_fail], sig).code == SKIP
    assert judge_commit([other, same], sig).code == BAD  # flaky: any run with the bug is bad


def _two_branches(tmp_path: Path) -> Path:
    repo = git_tree(tmp_path / "linux")
    git(repo, "checkout", "-q", "-b", "side")
    (repo / "mm/memory.c").write_text("int fault(void) { return 5; }\n")
    git(repo, "commit", "-qam", "side change")
    git(repo, "checkout", "-q", "master")
    (repo / "mm/filemap.c").write_text("int map_pages(void) { return 6; }\n")
    git(repo, "commit", "-qam", "main change")
    return repo


def test_range_where_good_is_not_an_ancestor_of_bad_is_refused(tmp_path: Path) -> None:
    repo = _two_branches(tmp_path)
    with pytest.raises(BisectRangeError, match="is not an ancestor of --bad"):
        check_range(repo, "side", "master")
    with pytest.raises(BisectRangeError, match="same commit"):
        check_range(repo, "master", "master")
    with pytest.raises(UserError, match="'nosuch' is not a commit"):
        check_range(repo, "nosuch", "master")
    assert check_range(repo, "master~1", "master")[0] == git(repo, "rev-parse", "master~1").strip()


def test_bisect_cli_exits_non_zero_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = _two_branches(tmp_path)
    code = main(
        [
            "bisect",
            "--good",
            "side",
            "--bad",
            "master",
            "--tree",
            str(repo),
            "--test",
            "uffd_api_unknown_feature",
            "--results-dir",
            str(tmp_path / "r"),
        ]
    )
    assert code == 2
    assert "is not an ancestor of --bad master" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    code = main(
        [
            "bisect",
            "--good",
            "master~1",
            "--bad",
            "master",
            "--tree",
            str(tmp_path),
            "--test",
            "uffd_api_unknown_feature",
        ]
    )
    assert code == 2 and "is not a git checkout" in capsys.readouterr().err
    code = main(
        [
            "bisect",
            "--good",
            "master~1",
            "--bad",
            "master",
            "--tree",
            str(repo),
            "--test",
            "no_such_test",
        ]
    )
    assert code == 2 and "no guest test named no_such_test" in capsys.readouterr().err


def test_kernel_config_arguments(tmp_path: Path) -> None:
    fragment = tmp_path / "debug.config"
    fragment.write_text("CONFIG_KASAN=y\n")
    recipe = recipe_from_args(["defconfig", str(fragment)])
    assert recipe.base_config == "defconfig" and recipe.fragments[-1] == fragment
    assert recipe.fragments[0].name == "guest.config"
    with pytest.raises(FragmentError, match="does not exist"):
        recipe_from_args([str(tmp_path / "missing.config")])
    with pytest.raises(UserError, match="several base configs"):
        recipe_from_args(["tinyconfig", "defconfig"])


def test_plan_round_trips_through_its_file(tmp_path: Path) -> None:
    plan = BisectPlan(tmp_path, "t", recipe_from_args([]), tmp_path / "r", "BUG", 3)
    plan.save(tmp_path / "plan.json")
    assert BisectPlan.load(tmp_path / "plan.json") == plan


def test_series_cli_refuses_a_kernel_that_is_not_built_from_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kernels = tmp_path / "kernels.yaml"
    kernels.write_text("kernels:\n  - name: deb\n    debian: linux-image-6.12.*-amd64-unsigned\n")
    assert main(["--kernels-file", str(kernels), "series", "--kernel", "deb"]) == 2
    assert "series mode needs a 'build:' entry" in capsys.readouterr().err


class _RecordingTrial:
    """Stands in for the guest: 'fails' the test when the image holds 'return 9'."""

    def __init__(self, results: Path) -> None:
        self.results = results
        self.spec = None
        self.tests = [type("T", (), {"name": "t"})()]
        self.booted: list[str] = []
        self.progress = NO_PROGRESS

    def run(self, name: str, image: KernelImage, runs: int = 1) -> list[records.TestRun]:
        self.booted.append(name)
        bad = b"return 9" in image.vmlinuz.read_bytes()
        verdict = Verdict(Outcome.FAIL if bad else Outcome.PASS, "fail" if bad else "pass")
        return [records.TestRun("t", name, verdict, 0.0, Path("."))]


def test_per_patch_run_builds_incrementally_and_names_the_breaking_patch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KHARNESS_CACHE", str(tmp_path / "cache"))
    tree = make_tree(tmp_path / "linux")
    changes = [
        ("mm/filemap.c", "int map_pages(void) { return 2; }", "int map_pages(void) { return 3; }"),
        ("mm/memory.c", "int fault(void) { return 1; }", "#error half done"),
        ("mm/memory.c", "#error half done", "int fault(void) { return 9; }"),
    ]
    patches = _series(tmp_path, changes)
    source = BuildSource(str(tree), tmp_path, None, make_recipe(guest_config=False))
    trial = _RecordingTrial(tmp_path)
    lines: list[str] = []
    report = run_series(source, patches, trial, lines.append)  # type: ignore[arg-type]
    assert report.config == "config-series.txt", "the base's .config is kept beside the results"
    assert "CONFIG_" in (tmp_path / report.config).read_text()
    assert [s.outcome("t") for s in report.steps] == [P, P, Outcome.BUILD_FAIL, F]
    assert "error: half done" in (report.steps[2].error or "")
    assert report.first_break("t").index == 2  # type: ignore[union-attr]
    assert trial.booted == ["00", "01", "03"]  # no boot for the step that did not build
    logs = sorted((tmp_path / "cache/build/logs").glob("*series-0[13]*.log"))
    assert [_compiled_count(log) for log in logs] == [1, 1]  # one object per patch


def _series(tmp_path: Path, changes: list[tuple[str, str, str]]) -> tuple[Patch, ...]:
    """A series of one-line changes (path, old line, new line), read back as the CLI would."""
    mbox = tmp_path / "series.mbox"
    total = len(changes)
    mbox.write_text(
        "".join(
            format_patch(path, old, new, f"step {n}", f"{n}/{total}")
            for n, (path, old, new) in enumerate(changes, 1)
        )
    )
    return read_series(mbox).patches


def _compiled_count(log: Path) -> int:
    return sum(1 for line in log.read_text().splitlines() if line.startswith("  CC "))


def test_judgements_count_runs_and_failures() -> None:
    sig = r"kernel BUG in f"
    same = Observation(OOPS, "oops", ("kernel BUG in f",))
    other = Observation(OOPS, "oops", ("WARNING in g",))
    verdict = judge_commit([Observation(P, "pass"), other, same, same], sig)
    assert (verdict.code, verdict.runs, verdict.failures) == (BAD, 4, 2)
    clean = judge_commit([Observation(P, "pass")] * 3, None)
    assert (clean.code, clean.runs, clean.failures) == (GOOD, 3, 0)


def test_bisect_says_how_sure_it_is() -> None:
    # a bug that shows in 1 run of 2 (each bad step stops at its first failure)
    steps = [
        Judgement(BAD, "oops", 2, 1),
        Judgement(GOOD, "3 run(s) passed", 3, 0),
        Judgement(BAD, "oops", 2, 1),
        Judgement(SKIP, "does not build", 0, 0),
        Judgement(GOOD, "3 run(s) passed", 3, 0),
    ]
    text = confidence(steps, 3)
    assert text.splitlines()[0] == (
        "bisect confidence: 5 step(s), 3 run(s) per step: 2 bad, 2 good, 1 skipped"
    )
    assert "2 failure(s) in 4 run(s): the bug reproduces 50% of runs" in text
    # (1 - 0.5) ** 3 = 12.5% per good step; 1 - 0.875 ** 2 = 23.4% for either
    assert "probability 12.5% (23.4% that any of the 2 good verdict(s) is wrong)" in text
    assert "not sure: bisect again with --runs 7" in text  # 0.5 ** 7 < 1%
    sure = confidence([Judgement(BAD, "fail", 1, 1), Judgement(GOOD, "passed", 1, 0)], 1)
    assert "reproduces 100% of runs" in sure and "probability 0.0%" in sure
    assert "not sure" not in sure


def test_steps_are_read_back_from_the_results(tmp_path: Path) -> None:
    from harness.commands.bisect import _record, read_steps

    plan = BisectPlan(tmp_path, "t", make_recipe(guest_config=False), tmp_path)
    _record(plan, "a" * 40, "mm: x", Judgement(BAD, "oops", 2, 1))
    _record(plan, "b" * 40, "mm: y", Judgement(GOOD, "2 run(s) passed", 2, 0))
    assert read_steps(tmp_path) == [
        Judgement(BAD, "oops", 2, 1),
        Judgement(GOOD, "2 run(s) passed", 2, 0),
    ]


def test_a_base_failure_the_series_fixes_is_named_so() -> None:
    report = _report((F, P), (P, P), (P, P))
    assert "a: failing without the series, fixed by patch 1: patch 1" in report.render()
    assert report.first_break("a") is None


def test_a_series_configures_once_and_a_second_run_reuses_every_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Steps that touch no Kconfig keep the base's .config (no two config makes per step);
    one that does is configured again; the same series on the same commit is never
    rebuilt (the bot's next start, another series on that base)."""
    monkeypatch.setenv("KHARNESS_CACHE", str(tmp_path / "cache"))
    tree = git_tree(tmp_path / "linux", {"mm/Kconfig": "# memory options\n"})
    changes = [
        ("mm/filemap.c", "int map_pages(void) { return 2; }", "int map_pages(void) { return 3; }"),
        ("mm/Kconfig", "# memory options", "# memory options, more"),  # Kconfig: configured again
        ("mm/memory.c", "int fault(void) { return 1; }", "int fault(void) { return 4; }"),
    ]
    patches = _series(tmp_path, changes)
    source = BuildSource(str(tree), tmp_path, None, make_recipe(guest_config=False))
    first: list[str] = []
    report = run_series(source, patches, _RecordingTrial(tmp_path), first.append)  # type: ignore[arg-type]
    assert [s.outcome("t") for s in report.steps] == [P] * 4, [s.error for s in report.steps]
    kept = [line for line in first if line.startswith("config: as for the step before")]
    assert len(kept) == 2, first  # steps 1 and 3; step 2 changed Kconfig: configured again
    logs = set((tmp_path / "cache/build/logs").glob("*.log"))
    second: list[str] = []
    again = run_series(source, patches, _RecordingTrial(tmp_path), second.append)  # type: ignore[arg-type]
    assert [s.outcome("t") for s in again.steps] == [P] * 4
    assert sum(line.startswith("reusing ") for line in second) == 4, second
    assert set((tmp_path / "cache/build/logs").glob("*.log")) == logs, "nothing was built"
    assert [s.build_seconds for s in again.steps] == [0.0] * 4


@pytest.mark.parametrize(
    ("path", "touches"),
    [
        ("mm/memory.c", False),
        ("drivers/net/Makefile", False),
        ("mm/Kconfig", True),
        ("arch/x86/Kconfig.debug", True),
        ("scripts/kconfig/conf.c", True),
        ("Makefile", True),
        ("arch/arm64/Makefile", True),
    ],
)
def test_which_patches_make_the_config_be_made_again(
    path: str, touches: bool, tmp_path: Path
) -> None:
    (tmp_path / "one.patch").write_text(format_patch(path, "a", "b", "one change"))
    (patch,) = read_series(tmp_path / "one.patch").patches
    assert touches_kconfig(patch) is touches


HOSTILE_HEADERS = [
    "diff --git a/mm/x.c b/mm/x.c\n--- a/mm/x.c\n+++ b/mm/x.c\n@@ -1 +1 @@\n-a\n+b\n",
    'diff --git "a/mm/\\303\\244\\nKconfig" "b/mm/\\303\\244\\nKconfig"\n',
    "--- a/" + "d/" * 20_000 + "Kconfig\n+++ b/x\n@@ -1,999999999 +1 @@\n-a\n",
    "diff --git a/mm/x.c b/scripts/../mm/x.c\nrename from mm/x.c\nrename to scripts/y\n",
    "\x00--- \n+++ \n@@ @@\n" * 3,
]


@pytest.mark.parametrize("text", HOSTILE_HEADERS)
def test_a_hostile_patch_never_breaks_the_kconfig_question(text: str) -> None:
    """A poster's diff decides whether a step is configured again: quoted and escaped names,
    a 60 kB path, lying hunk counts, NULs and renames into scripts/ are all just text."""
    patch = Patch("hostile", "From: x\n\n---\n" + text, "mail")
    assert isinstance(touches_kconfig(patch), bool)
    if "rename to scripts/" in text:
        assert touches_kconfig(patch), "a rename into scripts/ is a config input"
