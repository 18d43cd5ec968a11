"""kselftests from the candidate tree: kernels.yaml, listing, the static build, KTAP subtests.

The build runs real make and gcc on a fake kernel tree (tests/unit/fake_kbuild.py)
whose tools/testing/selftests mimics kselftest's: O= gives the build directory
and the headers to compile against, TARGETS selects, install lists the tests.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest

from harness.config import load_kernels
from harness.errors import ConfigError
from harness.kernels.build import BuildSource
from harness.kernels.kselftest_build import build_targets, selftests_tree
from harness.outcome import Outcome
from harness.testkinds.kselftest import (
    DEFAULT_TIMEOUT,
    UNLIMITED_TIMEOUT,
    KselftestTest,
    interpreter,
    list_tests,
    settings_timeout,
    subtests,
)
from tests.unit.fake_kbuild import git_tree, make_tree, selftests_files

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "kselftest"
GOOD = "#include <linux/fake.h>\nint main(void) { return FAKE_UAPI_VERSION == 612 ? 0 : 1; }\n"
BROKEN = "int main(void) { return undeclared_thing; }\n"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KHARNESS_CACHE", str(tmp_path / "cache"))


def _kernels(tmp_path: Path, entries: str) -> Path:
    path = tmp_path / "kernels.yaml"
    path.write_text("kernels:\n" + textwrap.indent(textwrap.dedent(entries), "  "))
    return path


def _source(tmp_path: Path, tree: Path, targets: str) -> BuildSource:
    path = _kernels(
        tmp_path,
        f"""\
        - name: k
          build: {{source: {tree}, guest_config: false}}
          selftests: [{targets}]
        """,
    )
    (spec,) = load_kernels(path)
    assert isinstance(spec.source, BuildSource)
    assert spec.selftests == tuple(t.strip() for t in targets.split(","))
    return spec.source


# -- kernels.yaml ----------------------------------------------------------------


def test_selftests_on_a_kernel_not_built_from_source_names_kernel_key_and_fix(
    tmp_path: Path,
) -> None:
    image = tmp_path / "bzImage"
    image.write_bytes(b"\0" * 0x202 + b"HdrS" + b"\0" * 100)
    path = _kernels(
        tmp_path,
        f"""\
        - name: mine
          image: {{path: {image}}}
          selftests: [mm]
        """,
    )
    with pytest.raises(ConfigError) as err:
        load_kernels(path)
    text = str(err.value)
    assert "kernel #1 (mine): selftests: ['mm'] needs a kernel built from source (build:)" in text
    assert "remove selftests: here, or add a build: entry" in text


def test_a_selftests_entry_that_is_no_target_name_is_refused(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "linux")
    path = _kernels(
        tmp_path,
        f"""\
        - name: k
          build: {tree}
          selftests: ["../../etc", 3]
        """,
    )
    with pytest.raises(ConfigError, match=r"\(k\): selftests: '../../etc' is not a kselftest"):
        load_kernels(path)


# -- listing ---------------------------------------------------------------------


def test_tests_are_listed_from_the_target_makefile_without_writing_the_tree(
    tmp_path: Path,
) -> None:
    tree = make_tree(tmp_path / "linux", selftests_files({"vm": GOOD}))
    before = sorted(str(p) for p in tree.rglob("*"))
    assert list_tests(tree, "vm", "k") == ("vm_test", "run.sh")
    assert sorted(str(p) for p in tree.rglob("*")) == before


def test_an_unknown_target_names_the_kernel_and_the_closest_targets(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "linux", selftests_files({"mincore": GOOD, "timers": GOOD}))
    with pytest.raises(ConfigError) as err:
        list_tests(tree, "mincor", "my-fix")
    text = str(err.value)
    assert "kernel 'my-fix': selftests: 'mincor' is not a kselftest target" in text
    assert "did you mean mincore?" in text


def test_a_git_tree_is_listed_at_its_rev_without_a_checkout(tmp_path: Path) -> None:
    repo = git_tree(tmp_path / "linux", selftests_files({"vm": GOOD}))
    source = _source(tmp_path, repo, "vm")
    tree = selftests_tree(source, print)
    assert tree != repo and (tree / "tools/testing/selftests/vm/Makefile").is_file()
    assert list_tests(tree, "vm", "k") == ("vm_test", "run.sh")


# -- building --------------------------------------------------------------------


def test_a_target_builds_static_against_the_trees_own_headers(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "linux", selftests_files({"vm": GOOD}))
    built = build_targets(_source(tmp_path, tree, "vm"), ("vm",), print)["vm"]
    assert built.error is None, built.details
    assert built.tests == ("vm_test", "run.sh")
    assert built.timeout == 120.0  # from the target's settings file
    binary = built.directory / "vm_test"
    headers = subprocess.run(["readelf", "-l", str(binary)], capture_output=True, text=True)
    assert "INTERP" not in headers.stdout  # static: no dynamic loader needed in the guest
    assert subprocess.run([str(binary)]).returncode == 0  # compiled with the uapi value 612


def test_a_target_that_does_not_build_is_a_result_with_the_compiler_lines(
    tmp_path: Path,
) -> None:
    tree = make_tree(tmp_path / "linux", selftests_files({"vm": GOOD, "bad": BROKEN}))
    built = build_targets(_source(tmp_path, tree, "vm, bad"), ("vm", "bad"), print)
    assert built["vm"].error is None
    bad = built["bad"]
    assert bad.install is None
    assert bad.error is not None and bad.error.startswith("kselftest build of 'bad' failed")
    assert "'undeclared_thing' undeclared" in bad.details[0]
    assert bad.details[1].startswith("full log: ")


def test_a_git_tree_target_is_stored_and_reused(tmp_path: Path) -> None:
    repo = git_tree(tmp_path / "linux", selftests_files({"vm": GOOD}))
    source = _source(tmp_path, repo, "vm")
    first = build_targets(source, ("vm",), print)["vm"]
    assert first.error is None and first.seconds > 0
    lines: list[str] = []
    again = build_targets(source, ("vm",), lines.append)["vm"]
    assert again.install == first.install and again.seconds == 0.0
    assert not any("kselftest vm" in line for line in lines)  # no build this time


# -- settings, scripts, KTAP ---------------------------------------------------------


def test_settings_timeout_as_the_kselftest_runner_reads_it(tmp_path: Path) -> None:
    assert settings_timeout(tmp_path) == DEFAULT_TIMEOUT == 45.0
    (tmp_path / "settings").write_text("# comment\ntimeout=180\n")
    assert settings_timeout(tmp_path) == 180.0
    (tmp_path / "settings").write_text("timeout=0\n")  # the runner: no limit
    assert settings_timeout(tmp_path) == UNLIMITED_TIMEOUT


def test_script_interpreter_from_its_shebang(tmp_path: Path) -> None:
    cases = {"a": "#!/bin/bash\n", "b": "#!/usr/bin/env python3 -u\n", "c": "\x7fELF", "d": ""}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
    assert [interpreter(tmp_path / n) for n in "abcd"] == ["/bin/bash", "python3", None, None]


def test_kselftest_harness_output_becomes_one_subtest_each() -> None:
    found = subtests((DATA / "harness-output.txt").read_text())
    by_name = {s.name: s for s in found}
    assert list(by_name) == [
        "global.basic_interface",
        "global.check_anonymous_locked_pages",
        "global.check_huge_pages",
        "global.check_file_mmap",
        "global.check_tmpfs_mmap",
    ]
    assert by_name["global.check_huge_pages"].outcome is Outcome.SKIP
    assert by_name["global.check_tmpfs_mmap"].outcome is Outcome.FAIL
    assert any("Expected" in d for d in by_name["global.check_tmpfs_mmap"].details)
    assert by_name["global.basic_interface"].outcome is Outcome.PASS


def test_names_read_well_in_node_ids_and_records() -> None:
    test = KselftestTest("net/forwarding", "router.sh")
    assert test.node_name == "kselftest/net/forwarding/router.sh"
    assert test.record_name == "kselftest.net/forwarding.router.sh"


# -- pytest items (no boot: the broken target fails before one) --------------------


def _project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, targets: str) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    tree = make_tree(pytester.path / "linux", selftests_files({"vm": GOOD, "bad": BROKEN}))
    pytester.makeconftest('pytest_plugins = ["harness.plugin.hooks"]\n')
    (pytester.path / "guest-tests" / "c").mkdir(parents=True)
    (pytester.path / "kernels.yaml").write_text(
        f"kernels:\n  - name: k\n    build: {{source: {tree}, guest_config: false}}\n"
        f"    selftests: [{targets}]\n"
    )


def test_items_per_test_and_k_selects_by_target_or_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _project(pytester, monkeypatch, "vm, bad")
    result = pytester.runpytest_inprocess("guest-tests", "--collect-only", "-q", "-k", "vm")
    lines = result.stdout.str().splitlines()
    assert "kselftest/vm/vm_test::k" in lines and "kselftest/vm/run.sh::k" in lines
    assert not any("kselftest/bad/" in line for line in lines)
    result = pytester.runpytest_inprocess("guest-tests", "--collect-only", "-q", "-k", "bad_test")
    chosen = [line for line in result.stdout.str().splitlines() if line.startswith("kselftest/")]
    assert chosen == ["kselftest/bad/bad_test::k"]


def test_an_unknown_target_is_a_usage_error_before_anything_builds(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _project(pytester, monkeypatch, "vm, vn")
    result = pytester.runpytest_inprocess("guest-tests", "--results-dir=res")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "kernel 'k': selftests: 'vn' is not a kselftest target of its tree" in err
    assert not (pytester.path / "res").exists()


def test_a_target_that_does_not_build_errors_with_the_compiler_lines(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _project(pytester, monkeypatch, "vm, bad")
    result = pytester.runpytest_subprocess(
        "guest-tests", "--results-dir=res", "-k", "bad_test", timeout=300
    )
    result.assert_outcomes(errors=1, deselected=3)
    out = result.stdout.str()
    assert "ERROR at setup of kselftest/bad/bad_test::k" in out
    assert "build-fail: kselftest build of 'bad' failed" in out
    assert "'undeclared_thing' undeclared" in out and "Traceback" not in out
    (run,) = [p for p in (pytester.path / "res").iterdir() if p.name != "latest"]
    summary = json.loads((run / "summary.json").read_text())
    (record,) = summary["tests"]
    assert record["test"] == "kselftest.bad.bad_test" and record["outcome"] == "build-fail"
    assert record["evidence"].endswith("k/kselftest/bad/bad_test")


def test_building_in_a_plain_tree_slot_never_writes_the_pristine_tree(tmp_path: Path) -> None:
    files = selftests_files({"vm": GOOD})
    files["tools/testing/selftests/vm/Makefile"] = (
        "TEST_GEN_PROGS := vm_test\ninclude ../lib.mk\n"
        "$(OUTPUT)/vm_test: local_config.h\n"
        "local_config.h: FORCE\n> echo '#define GENERATED 1' > $@\nFORCE:\n"  # mm: check_config.sh
    )
    files["tools/testing/selftests/vm/local_config.h"] = "#define PRISTINE 1\n"
    tree = make_tree(tmp_path / "linux", files)
    built = build_targets(_source(tmp_path, tree, "vm"), ("vm",), print)["vm"]
    assert built.error is None, built.details
    pristine = tree / "tools/testing/selftests/vm/local_config.h"
    assert pristine.read_text() == "#define PRISTINE 1\n"


def test_a_failed_subtest_gets_its_assertions_from_stderr() -> None:
    """mincore on the 6.12 self-test kernel: /tmp is tmpfs, which does no read-ahead."""
    stdout = (DATA / "guest-6.12-stdout.txt").read_text()
    stderr = (DATA / "guest-6.12-stderr.txt").read_text()
    by_name = {s.name: s for s in subtests(stdout, stderr)}
    failed = by_name["global.check_file_mmap"]
    assert failed.outcome is Outcome.FAIL
    assert failed.details[-3:] == (
        "# mincore_selftest.c:260:check_file_mmap:Expected ra_pages (0) > 0 (0)",
        "# mincore_selftest.c:261:check_file_mmap:No read-ahead pages found in memory",
        "# check_file_mmap: Test failed",
    )
    assert by_name["global.check_tmpfs_mmap"].details == ()
