"""KUnit: KTAP read off the console into suites and cases, crashes attributed per case.

The KUnit text follows the format 6.12 prints (see tests/data/kunit/*.log,
captured from the KUnit kernel the integration test builds); the kernel
reports spliced into a case are cut from real Debian 6.12 console logs.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.config import parse_kernels
from harness.kernels.config_fragments import KUNIT_FRAGMENT
from harness.outcome import Outcome
from harness.testkinds.kunit import boot_console, parse_kunit, select
from tests.support.replay.script import Script, lines
from tests.unit.test_runner_policy import BOOT, NULL_OOPS, PANIC, excerpt, guest_with

KUNIT_LOGS = Path(__file__).resolve().parents[1] / "data" / "kunit"

HEAD = """[    0.812000] KTAP version 1
[    0.812001] 1..2
[    0.812002]     KTAP version 1
[    0.812003]     # Subtest: list-kunit-test
[    0.812004]     # module: list_test
[    0.812005]     1..3
[    0.812006]     ok 1 list_test_list_init
"""
FAILING_CASE = """[    0.812007]     # list_test_list_add: EXPECTATION FAILED at lib/list-test.c:41
[    0.812007]     Expected list.next == &b, but
[    0.812008]     not ok 2 list_test_list_add
"""
TAIL = """[    0.812009]     ok 3 list_test_list_del # SKIP not today
[    0.812010] # list-kunit-test: pass:1 fail:1 skip:1 total:3
[    0.812011] not ok 1 list-kunit-test
[    0.812012]     KTAP version 1
[    0.812013]     # Subtest: example
[    0.812014]     1..2
[    0.812015]         KTAP version 1
[    0.812016]         # Subtest: example_params_test
[    0.812017]         ok 1 example value 3
[    0.812018]         not ok 2 example value 2
[    0.812019]     ok 1 example_params_test
[    0.812020]     ok 2 example_skip_test # SKIP this test should be skipped
[    0.812021] ok 2 example
"""


NULL_TITLE = "BUG: unable to handle kernel NULL pointer dereference in harness_oops_null"


def test_suites_and_cases_with_their_outcomes() -> None:
    suites = parse_kunit(HEAD + FAILING_CASE + TAIL)
    assert [(s.name, s.outcome) for s in suites] == [
        ("list-kunit-test", Outcome.FAIL),
        ("example", Outcome.PASS),
    ]
    cases = {c.id: c for s in suites for c in s.cases}
    assert list(cases) == [
        "list-kunit-test.list_test_list_init",
        "list-kunit-test.list_test_list_add",
        "list-kunit-test.list_test_list_del",
        "example.example_params_test",  # its parameters are part of it, not cases
        "example.example_skip_test",
    ]
    add = cases["list-kunit-test.list_test_list_add"]
    assert add.outcome is Outcome.FAIL
    assert "EXPECTATION FAILED at lib/list-test.c:41" in add.summary
    assert cases["list-kunit-test.list_test_list_del"].summary == "not today"
    assert cases["example.example_params_test"].outcome is Outcome.PASS
    assert [s.name for s in select(suites, "list*")] == ["list-kunit-test"]


def test_a_report_inside_a_case_is_that_cases_oops() -> None:
    oops = NULL_OOPS + "\n"
    suites = parse_kunit(HEAD + oops + FAILING_CASE + TAIL)
    cases = {c.name: c for c in suites[0].cases}
    crashed = cases["list_test_list_add"]
    assert crashed.outcome is Outcome.OOPS
    assert crashed.summary == "oops: " + NULL_TITLE
    assert "harness_oops_null" in crashed.console
    assert cases["list_test_list_init"].outcome is Outcome.PASS  # the case before: clean
    assert suites[0].outcome is Outcome.OOPS


def test_a_case_that_panics_the_kernel_is_named_by_its_number() -> None:
    suites = parse_kunit(HEAD + PANIC + "\n")
    (suite,) = suites
    last = suite.cases[-1]
    assert (last.name, last.outcome) == ("case-2", Outcome.PANIC)
    assert last.summary.startswith("panic: ")
    assert "(in case 2 of list-kunit-test, before its result line)" in last.summary
    assert suite.outcome is Outcome.PANIC


def test_no_kunit_output_is_no_suites() -> None:
    assert parse_kunit(excerpt("6.12-boot", r"Linux version", r"Run /init")) == []


def test_kunit_globs_in_kernels_yaml_add_the_kunit_fragment_to_builds(tmp_path: Path) -> None:
    data = {
        "kernels": [
            {"name": "b", "build": {"source": "linux-source-6.12"}, "kunit": ["list*"]},
            {"name": "d", "debian": "linux-image-6.12.*-amd64-unsigned", "kunit": ["x"]},
        ]
    }
    problems: list[str] = []
    built, debian = parse_kernels(data, tmp_path / "kernels.yaml", problems)
    assert not problems
    assert built.kunit == ("list*",)
    assert built.source.recipe.fragments[-1] == KUNIT_FRAGMENT
    assert debian.kunit == ("x",)


def test_kunit_must_be_a_list_of_globs(tmp_path: Path) -> None:
    problems: list[str] = []
    data = {"kernels": [{"name": "b", "debian": "linux-image-6.12.*", "kunit": [""]}]}
    parse_kernels(data, tmp_path / "kernels.yaml", problems)
    assert any("kunit must be a list of suite names or globs" in p for p in problems)


@pytest.mark.parametrize("log", sorted(KUNIT_LOGS.glob("*.log")), ids=lambda p: p.name)
def test_real_kunit_consoles_parse(log: Path) -> None:
    suites = parse_kunit(log.read_text(errors="replace"))
    assert suites, f"{log.name}: no KUnit suites found"
    assert all(s.cases for s in suites)


def test_the_first_boots_console_holds_kunit_on_the_replay_backend(tmp_path: Path) -> None:
    guest, _ = guest_with(tmp_path, Script(BOOT + lines(HEAD + FAILING_CASE + TAIL)))
    try:
        problem, console = boot_console(guest)
    finally:
        guest.shutdown()
    assert problem is None
    assert [s.name for s in parse_kunit(console)] == ["list-kunit-test", "example"]


def test_the_plugin_adds_kunit_items_first_on_their_kernel(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = Path(__file__).resolve().parents[2]
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")]))
    )
    pytester.makeconftest('pytest_plugins = ["harness.plugin.hooks"]\n')
    (pytester.path / "kernels.yaml").write_text(
        "kernels:\n"
        '  - {name: k1, debian: "linux-image-6.12.*-amd64-unsigned"}\n'
        '  - {name: k2, debian: "linux-image-6.12.*-amd64-unsigned", kunit: [list*, example]}\n'
    )
    (pytester.path / "guest-tests" / "sh").mkdir(parents=True)
    (pytester.path / "guest-tests" / "sh" / "t.sh").write_text("#!/bin/sh\nexit 0\n")
    out = pytester.runpytest_inprocess("guest-tests", "--collect-only", "-q").stdout.lines
    ids = [line for line in out if "::" in line]
    assert ids == [
        "guest-tests/sh/t.sh::k1",
        "kunit/list*::k2",
        "kunit/example::k2",
        "guest-tests/sh/t.sh::k2",
    ]
    one = pytester.runpytest_inprocess("guest-tests/sh/t.sh", "--collect-only", "-q")
    assert not any("kunit/" in line for line in one.stdout.lines)
    picked = pytester.runpytest_inprocess("guest-tests", "--collect-only", "-q", "-k", "list")
    assert [line for line in picked.stdout.lines if "::" in line] == ["kunit/list*::k2"]
