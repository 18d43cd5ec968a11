"""Relevance: which tests a series runs, from the paths its patches touch and the paths
each test covers (``@covers``, ``@always``, kernels.yaml ``covers:``)."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

from harness.config import load_kernels
from harness.errors import ConfigError
from harness.mail.message import parse
from harness.mail.relevance import (
    MAX_PATHS,
    CoveredTest,
    catalog,
    diff_paths,
    relevant_tests,
    touched_paths,
)
from harness.testkinds.covers import Coverage, matches, pattern_problem
from harness.testkinds.testdef import discover, read_test

REPO = Path(__file__).resolve().parents[2]


def _repo_tests() -> list:
    return [read_test(p) for d in ("c", "sh") for p in discover(REPO / "guest-tests" / d)]


@pytest.mark.parametrize(
    ("pattern", "path", "hit"),
    [
        ("mm/userfaultfd.c", "mm/userfaultfd.c", True),
        ("mm/userfaultfd.c", "mm/userfaultfd.h", False),
        ("mm/", "mm/damon/core.c", True),
        ("mm", "mm/memory.c", True),
        ("mm/", "mmx/a.c", False),
        ("mm/*.c", "mm/memory.c", True),
        ("mm/*.c", "mm/damon/core.c", False),
        ("mm/*.c", "mm/internal.h", False),
        ("drivers/**/uffd*.c", "drivers/a/b/uffd_x.c", True),
        ("include/linux/?fd.h", "include/linux/ufd.h", True),
        ("mm/huge_memory.c", "/mm/huge_memory.c", True),
    ],
)
def test_patterns_match_files_directories_and_globs(pattern: str, path: str, hit: bool) -> None:
    assert matches(pattern, path) is hit


@pytest.mark.parametrize("bad", ["/mm/", "../mm", "mm/../fs", "mm/$(rm -rf)", "mm\\x"])
def test_a_pattern_outside_the_tree_or_with_odd_characters_is_refused(bad: str) -> None:
    assert pattern_problem(bad) is not None


def test_the_repos_guest_tests_declare_what_they_cover() -> None:
    tests = {t.name: t.covers for t in _repo_tests()}
    assert {"uffd_api_unknown_feature", "uffd_move_swap_pmd", "uffd_wp_punch_faultaround"} <= set(
        tests
    )
    assert all(c.declared for c in tests.values()), tests
    assert "fs/userfaultfd.c" in tests["uffd_api_unknown_feature"].paths
    assert "mm/huge_memory.c" in tests["uffd_move_swap_pmd"].paths  # the bug patch's file
    assert {"mm/memory.c", "mm/filemap.c"} <= set(tests["uffd_wp_punch_faultaround"].paths)
    assert tests["thp_sysfs"].always


def test_a_series_on_userfaultfd_runs_the_uffd_tests_and_the_always_run_one() -> None:
    tests = catalog(_repo_tests(), [])
    r = relevant_tests(["mm/userfaultfd.c", "Documentation/mm/uffd.rst"], tests)
    assert r.relevant
    assert set(r.tests) == {"uffd_move_swap_pmd", "uffd_wp_punch_faultaround", "thp_sysfs"}
    (api,) = r.skipped
    assert api.test == "uffd_api_unknown_feature" and "touches none of" in api.why
    move = next(d for d in r.decisions if d.test == "uffd_move_swap_pmd")
    assert move.matched == ("mm/userfaultfd.c",) and move.why == "touches mm/userfaultfd.c"


def test_a_series_elsewhere_runs_nothing_not_even_the_always_run_test() -> None:
    r = relevant_tests(["net/core/dev.c", "drivers/gpu/drm/drm_drv.c"], catalog(_repo_tests(), []))
    assert not r.relevant and r.tests == ()
    why = {d.test: d.why for d in r.skipped}
    assert why["thp_sysfs"] == "always run, but the series touches no covered path"
    assert r.touched == ("net/core/dev.c", "drivers/gpu/drm/drm_drv.c")
    everything = relevant_tests(r.touched, catalog(_repo_tests(), []), test_all=True)
    assert len(everything.tests) == len(r.decisions)


def test_a_test_that_declares_nothing_never_runs_for_relevance() -> None:
    tests = [CoveredTest("quiet", Coverage()), CoveredTest("mm", Coverage(("mm/",)))]
    r = relevant_tests(["mm/memory.c"], tests)
    assert r.tests == ("mm",)
    assert r.skipped[0].why == "declares no @covers paths"


def test_header_tags_are_checked_with_the_line(tmp_path: Path) -> None:
    path = tmp_path / "t.c"
    path.write_text(
        "/*\n * @covers: mm/\n * @covers: fs/userfaultfd.c mm/\n * @always: true\n */\n"
    )
    assert read_test(path).covers == Coverage(("mm/", "fs/userfaultfd.c"), True)
    for header, words in (
        (" * @covers: ../etc/passwd", f"{path}:2: '../etc/passwd' must be relative"),
        (" * @covers:", "names no path"),
        (" * @always: yes", "@always must be true or false"),
    ):
        path.write_text(f"/*\n{header}\n */\n")
        with pytest.raises(ConfigError, match=words):
            read_test(path)


def _tree(tmp_path: Path) -> Path:
    src = tmp_path / "linux"
    for name in ("Makefile", "Kconfig", "arch/Kconfig", "scripts/kconfig/Makefile"):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text("")
    return src


def test_kernels_yaml_covers_kselftests_kunit_and_overrides_a_header(tmp_path: Path) -> None:
    path = tmp_path / "kernels.yaml"
    path.write_text(
        textwrap.dedent(f"""
        kernels:
          - name: k
            build: {{source: {_tree(tmp_path)}}}
            selftests: [mm]
            kunit: [list-kunit-test]
            covers:
              kselftest.mm: [mm/, include/linux/mm.h]
              kunit/list-kunit-test: {{paths: [lib/list-test.c], always: true}}
              uffd_api_unknown_feature: {{paths: [fs/userfaultfd.c]}}
        """)
    )
    (spec,) = load_kernels(path)
    tests = {t.name: t.coverage for t in catalog(_repo_tests(), [spec])}
    assert tests["kselftest.mm"] == Coverage(("mm/", "include/linux/mm.h"))
    assert tests["kunit/list-kunit-test"] == Coverage(("lib/list-test.c",), True)
    assert tests["uffd_api_unknown_feature"] == Coverage(("fs/userfaultfd.c",))
    r = relevant_tests(["mm/mincore.c"], catalog(_repo_tests(), [spec]))
    assert set(r.tests) == {"kselftest.mm", "kunit/list-kunit-test", "thp_sysfs"}


def test_kernels_yaml_covers_mistakes_are_named(tmp_path: Path) -> None:
    path = tmp_path / "kernels.yaml"
    path.write_text(
        textwrap.dedent(f"""
        kernels:
          - name: k
            build: {{source: {_tree(tmp_path)}}}
            selftests: [mm]
            covers:
              kselftest.net: [net/]
              kunit/nope: [lib/]
              thp_sysfs: {{paths: [/abs], alway: true}}
              uffd_move_swap_pmd: mm/
        """)
    )
    with pytest.raises(ConfigError) as info:
        load_kernels(path)
    text = str(info.value)
    assert "covers: kselftest.net: 'net' is not in this entry's selftests: ['mm']" in text
    assert "covers: kunit/nope: 'nope' is not in this entry's kunit" in text
    assert "'/abs' must be relative" in text and "unknown key 'alway'" in text
    assert "covers: uffd_move_swap_pmd: give a list of path patterns" in text


def _git(repo: Path, *args: str) -> str:
    base = ["git", "-C", str(repo), "-c", "user.name=Dev", "-c", "user.email=dev@example.org"]
    return subprocess.run([*base, *args], check=True, capture_output=True, text=True).stdout


def test_paths_come_from_real_git_patches_renames_included(tmp_path: Path) -> None:
    repo = tmp_path / "linux"
    (repo / "mm").mkdir(parents=True)
    (repo / "mm" / "userfaultfd.c").write_text("a\n")
    (repo / "mm" / "old name.c").write_text("x\n" * 20)
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "base")
    (repo / "mm" / "userfaultfd.c").write_text("b\n")
    _git(repo, "mv", "mm/old name.c", "mm/new.c")
    (repo / "include").mkdir()
    (repo / "include" / "x.h").write_text("h\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "mm: change")
    raw = _git(repo, "format-patch", "-M", "--stdout", "-1").encode()
    paths, truncated = touched_paths([parse(raw)])
    assert set(paths) == {"mm/userfaultfd.c", "mm/old name.c", "mm/new.c", "include/x.h"}
    assert not truncated


def test_hostile_bodies_are_bounded_and_never_raise() -> None:
    many = "".join(f"diff --git a/f{n}.c b/f{n}.c\n" for n in range(MAX_PATHS + 50))
    mail = parse(f"Subject: [PATCH] x\nMessage-ID: <a@b>\n\n{many}".encode())
    paths, truncated = touched_paths([mail])
    assert len(paths) == MAX_PATHS and truncated
    odd = "--- a/../../etc/passwd\n+++ /etc/shadow\ndiff --git a/\x00 b/\x00\n+++ b/" + "x" * 9999
    assert diff_paths(odd) == []
    assert diff_paths("\udcff\n--- \n+++ \t\n") == []
