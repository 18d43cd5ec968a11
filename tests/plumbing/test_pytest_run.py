"""End to end through pytest on replayed guests: outcomes, evidence, JUnit, errors, signals.

The subject is the plugin (translation of verdicts into pytest outcomes,
evidence, JUnit, usage errors, interrupts), so the guest is a replayed real
console (tests/data/replay); tests/integration/test_pytest_run.py keeps the
real-kernel smoke run and the tests whose subject is QEMU itself.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from harness.session import Policy
from tests.plumbing.helpers import replay_kernel
from tests.support.junit import xunit2_problems
from tests.support.runs import (
    add_tests,
    check_junit,
    ready_boots,
    start_sleeper_run,
    wait_until_sleeper_runs,
    write_kernels,
)


def _summary(project: pytest.Pytester) -> dict:
    (run,) = [p for p in (project.path / "res").iterdir() if p.name != "latest"]
    return json.loads((run / "summary.json").read_text())


def _outcomes_run(project: pytest.Pytester) -> pytest.RunResult:
    add_tests(
        project,
        "broken",
        "hang",
        "pass_after_hang",
        "fails",
        "skips",
        "xfails",
        "uffd_api_unknown_feature",
    )
    # the replayed hang blocks until its timeout, a real wait: 1 s here (4 s on a real guest)
    hang = project.path / "guest-tests" / "c" / "hang.c"
    hang.write_text(hang.read_text().replace("@timeout: 4\n", "@timeout: 1\n", 1))
    assert "@timeout: 1\n" in hang.read_text()
    expect = 'expect: {xfails: {outcome: fail, reason: "known to fail here"}}'
    write_kernels(project, f"kernels:\n  - {replay_kernel('d612', extra=expect)}\n")
    return project.runpytest_subprocess(
        "guest-tests", "-v", "-rA", "--results-dir=res", "--junitxml=junit.xml", timeout=120
    )


def test_one_run_of_every_outcome(project: pytest.Pytester) -> None:
    """One run (a hang's timeout is a real wait) read three ways: pytest's outcomes, the
    hang's fresh boot and evidence, JUnit."""
    result = _outcomes_run(project)
    _check_pytest_outcomes(project, result)
    _check_hang_gets_a_fresh_boot_and_evidence(project)
    _check_junit_carries_verdicts_and_evidence(project)


def _check_pytest_outcomes(project: pytest.Pytester, result: pytest.RunResult) -> None:
    result.assert_outcomes(passed=2, failed=2, skipped=1, xfailed=1, errors=1)
    out = result.stdout.str()
    assert "guest-tests/c/uffd_api_unknown_feature.c::d612 PASSED" in out
    assert "guest-tests/c/pass_after_hang.c::d612 PASSED" in out
    assert "error: the test does not compile" in out and "undeclared_symbol" in out
    assert "hang: no result before the timeout" in out
    assert "blocked tasks dumped with sysrq-w" in out
    assert "# expected 42, got 41\nnot ok 2 - answer" in out
    assert "this kernel lacks the frobnicator" in out
    assert "XFAIL guest-tests/c/xfails.c::d612 - fail: known to fail here" in out
    (run,) = [p for p in (project.path / "res").iterdir() if p.name != "latest"]
    made = json.loads((run / "provenance.json").read_text())
    assert made["kernels"] == ["d612"] and "xfails" in made["tests"]
    assert len(made["harness"]["commit"]) == 40
    assert (run / "kernels.yaml").read_text() == (project.path / "kernels.yaml").read_text()


def _check_hang_gets_a_fresh_boot_and_evidence(project: pytest.Pytester) -> None:
    summary = _summary(project)
    by_test = {t["test"]: t for t in summary["tests"]}
    assert by_test["hang"]["outcome"] == "hang"
    run_dir = Path(by_test["hang"]["evidence"]).parent.parent
    ready = ready_boots(run_dir / "d612")
    assert ready == [by_test["hang"]["boot"], by_test["pass_after_hang"]["boot"]], "no fresh boot"
    assert summary["kernels"]["d612"]["boots"] == ready[-1] == 2
    assert summary["kernels"]["d612"]["boot_taint"] == 0
    kernel = json.loads((run_dir / "d612" / "kernel.json").read_text())  # rewritten at the end
    assert (kernel["boots"], kernel["release"]) == (2, summary["kernels"]["d612"]["release"])
    assert "boot" in kernel["timings"], kernel
    evidence = Path(by_test["uffd_api_unknown_feature"]["evidence"])
    assert "ok 1 - " in (evidence / "stdout.txt").read_text()
    boot1 = evidence.parent / f"boot-{ready[0]}"
    assert "HARNESS-READY" in (boot1 / "console.log").read_text()
    assert "Show Blocked State" in (evidence.parent / "hang" / "console.txt").read_text()


def _check_junit_carries_verdicts_and_evidence(project: pytest.Pytester) -> None:
    evidence = Path(
        next(t for t in _summary(project)["tests"] if t["test"] == "uffd_api_unknown_feature")[
            "evidence"
        ]
    )
    check_junit(project.path / "junit.xml", evidence)


def test_kernel_that_panics_at_boot_errors_every_test_once(project: pytest.Pytester) -> None:
    add_tests(project, "pass_after_hang", "skips")
    write_kernels(project, f"kernels:\n  - {replay_kernel('broken-boot', 'boot-panic')}\n")
    result = project.runpytest_subprocess(
        "guest-tests", "--results-dir=res", "--junitxml=junit.xml", timeout=120
    )
    result.assert_outcomes(errors=2)
    assert xunit2_problems(project.path / "junit.xml") == []
    out = result.stdout.str()
    assert "boot-fail: the kernel panicked during boot" in out
    assert "Kernel panic - not syncing" in out  # the console tail is in the report
    summary = _summary(project)
    # tried Policy.boot_attempts times (TCG can crash a sound kernel in early boot), no more
    assert summary["kernels"]["broken-boot"]["boots"] == Policy().boot_attempts > 1
    assert summary["kernels"]["broken-boot"]["timings"]["boot"] < 120, "waited for the timeout"


def test_bad_kernels_yaml_is_one_clear_usage_error(project: pytest.Pytester) -> None:
    add_tests(project, "pass_after_hang")
    write_kernels(project, "kernels:\n  - name: x\n    debain: linux-image-6.12.*\n")
    result = project.runpytest_subprocess("guest-tests", timeout=60)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "unknown key 'debain'; did you mean 'debian'?" in err
    assert "Traceback" not in err + result.stdout.str()


def test_unknown_backend_is_a_usage_error_naming_the_known_ones(project: pytest.Pytester) -> None:
    add_tests(project, "pass_after_hang")
    write_kernels(project, f"kernels:\n  - {replay_kernel('d612')}\n")
    result = project.runpytest_subprocess("guest-tests", "--backend=nope", timeout=60)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "--backend nope: not a backend; known backends: qemu, replay, virtme" in err
    assert "Traceback" not in err + result.stdout.str()


def test_unknown_package_pattern_errors_that_kernel_only(project: pytest.Pytester) -> None:
    add_tests(project, "pass_after_hang")
    nosuch = '{name: nosuch, debian: {package: "linux-image-9.99.*-amd64", suite: bookworm}}'
    write_kernels(project, f"kernels:\n  - {nosuch}\n  - {replay_kernel('d612')}\n")
    result = project.runpytest_subprocess("guest-tests", "--results-dir=res", "-rA", timeout=300)
    result.assert_outcomes(passed=1, errors=1)
    assert "no amd64 package in bookworm matches 'linux-image-9.99.*-amd64'" in result.stdout.str()


def test_unmet_numa_need_skips_with_the_reason(project: pytest.Pytester) -> None:
    add_tests(project, "uffd_move_swap_pmd")
    write_kernels(project, f"kernels:\n  - {replay_kernel('no-numa', 'no-numa')}\n")
    result = project.runpytest_subprocess("guest-tests", "--results-dir=res", "-rs", timeout=120)
    result.assert_outcomes(skipped=1)
    assert "needs 2 NUMA nodes, the guest has 1" in result.stdout.str()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_interrupted_run_says_so_in_every_report(
    project: pytest.Pytester, sig: signal.Signals
) -> None:
    proc = start_sleeper_run(project, replay_kernel("d612"), "--junitxml=j.xml")
    try:
        wait_until_sleeper_runs(project, proc, 60)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
    assert "Traceback" not in out
    summary = _summary(project)
    assert summary["interrupted"] is True
    assert {(t["test"], t["outcome"]) for t in summary["tests"]} == {
        ("a_sleeps", "not-run"),
        ("pass_after_hang", "not-run"),
    }
    (run,) = [p for p in (project.path / "res").iterdir() if p.name != "latest"]
    text = (run / "summary.txt").read_text()
    assert "INTERRUPTED, 2 of 2 test(s) did not run" in text.splitlines()[0]
    assert "all results as expected" not in text
    assert "a_sleeps on d612" in text.split("Not run (interrupted):")[1]
    kcidb = json.loads((run / "kcidb.json").read_text())
    assert {t["status"] for t in kcidb["tests"]} == {"MISS"}
