"""End to end through pytest on a real kernel: the smoke run, and what only QEMU can show.

The plugin's plumbing (outcomes, evidence, JUnit, boot failures, usage errors,
interrupts) is tested on replayed guests in tests/plumbing/test_pytest_run.py;
here stay one real run of the same outcomes (the smoke test: real kernel, real
reproducers, real verdicts), the QEMU backend's port choice, and a QEMU
process killed under a test.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.integration.helpers import (
    DEBIAN_612,
    add_tests,
    check_junit,
    harness_qemus,
    ready_boots,
    start_sleeper_run,
    wait_until_sleeper_runs,
    write_kernels,
)

pytestmark = pytest.mark.boot


def _summary(project: pytest.Pytester) -> dict:
    (run,) = [p for p in (project.path / "res").iterdir() if p.name != "latest"]
    return json.loads((run / "summary.json").read_text())


def test_outcomes_recovery_and_evidence(project: pytest.Pytester) -> None:
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
    write_kernels(
        project,
        f"""
        kernels:
          - name: d612
            debian: {DEBIAN_612}
            expect:
              xfails: {{outcome: fail, reason: "known to fail here"}}
    """,
    )
    result = project.runpytest_subprocess(
        "guest-tests", "-v", "-rA", "--results-dir=res", "--junitxml=junit.xml", timeout=600
    )
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

    summary = _summary(project)
    by_test = {t["test"]: t for t in summary["tests"]}
    assert by_test["hang"]["outcome"] == "hang"
    run_dir = Path(by_test["hang"]["evidence"]).parent.parent
    ready = ready_boots(run_dir / "d612")  # a TCG crash in early boot is retried
    assert ready == [by_test["hang"]["boot"], by_test["pass_after_hang"]["boot"]], "no fresh boot"
    assert summary["kernels"]["d612"]["boots"] == ready[-1]
    assert summary["kernels"]["d612"]["boot_taint"] == 0
    evidence = Path(by_test["uffd_api_unknown_feature"]["evidence"])
    assert "ok 1 - " in (evidence / "stdout.txt").read_text()
    boot1 = evidence.parent / f"boot-{ready[0]}"
    assert "HARNESS-READY" in (boot1 / "console.log").read_text()
    assert "qemu-system-x86_64" in (boot1 / "qemu-cmdline.txt").read_text()
    # the hang probe pressed sysrq-w: the kernel's own line for it is in the test's console
    assert "sysrq: Show Blocked State" in (evidence.parent / "hang" / "console.txt").read_text()

    check_junit(project.path / "junit.xml", evidence)


def test_no_free_port_is_an_error_not_a_hang(project: pytest.Pytester) -> None:
    import socket

    add_tests(project, "pass_after_hang")
    write_kernels(project, f"kernels:\n  - {{name: d612, debian: {DEBIAN_612}}}\n")
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        result = project.runpytest_subprocess(
            "guest-tests", "--results-dir=res", "-rA", f"--port-range={port}-{port}", timeout=120
        )
    result.assert_outcomes(errors=1)
    assert f"no free TCP port on 127.0.0.1 in {port}-{port}" in result.stdout.str()


def test_qemu_killed_under_a_test_is_infrastructure_not_panic(project: pytest.Pytester) -> None:
    before = harness_qemus()
    proc = start_sleeper_run(project, f"{{name: d612, debian: {DEBIAN_612}}}", "-rA")
    try:
        wait_until_sleeper_runs(project, proc, 240)
        (victim,) = harness_qemus() - before
        subprocess.run(["kill", "-KILL", str(victim)], check=True)
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    summary = _summary(project)
    by_test = {t["test"]: t for t in summary["tests"]}
    assert by_test["a_sleeps"]["outcome"] == "error", (by_test["a_sleeps"], out)
    assert "the guest's process ended (killed by SIGKILL)" in by_test["a_sleeps"]["summary"]
    assert "panic" not in by_test["a_sleeps"]["summary"].replace("no panic on the console", "")
    assert by_test["pass_after_hang"]["outcome"] == "pass"
    (run,) = [p for p in (project.path / "res").iterdir() if p.name != "latest"]
    ready = ready_boots(run / "d612")  # a TCG crash in early boot is retried
    assert ready == [by_test["a_sleeps"]["boot"], by_test["pass_after_hang"]["boot"]], (
        "a fresh boot after QEMU died"
    )
    assert (run / "d612" / f"boot-{ready[0]}" / "qemu-stderr.txt").is_file()
