"""The same reproducers on the same Debian kernel under both backends: the same outcomes.

The QEMU backend boots the harness's own initramfs; the virtme backend boots
the host's root filesystem through virtme-ng.  A verdict must not depend on
which one ran it, so the three reproducers of guest-tests/c run on Debian
6.12 under each (through pytest, as a user runs them) and their outcomes,
expectations and kernel reports are compared test by test.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import replace
from pathlib import Path

import pytest

from harness.config import load_kernels, select
from harness.machine.accel import Accel, _cpu_flags
from harness.outcome import Outcome
from harness.results.evidence import new_run_dir
from harness.session import KernelGuest, new_context
from harness.testkinds.testdef import read_test
from tests.integration.helpers import DEBIAN_612, REPO, write_kernels

pytestmark = pytest.mark.boot

REPRODUCERS = sorted(p.name for p in (REPO / "guest-tests" / "c").glob("*.c"))
EXPECT_612 = """\
    expect:
      uffd_move_swap_pmd:
        outcome: fail
        reason: spurious ENOENT on 6.8..6.16 x86-64 (see kernels.yaml)
"""


def _run(project: pytest.Pytester, backend: str) -> dict[str, dict]:
    result = project.runpytest_subprocess(
        "guest-tests", f"--backend={backend}", f"--results-dir=res-{backend}", "-rA", timeout=900
    )
    (run,) = [p for p in (project.path / f"res-{backend}").iterdir() if p.name != "latest"]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["kernels"]["d612"]["backend"] == backend
    assert result.ret in (0, 1), result.stdout.str()
    return {t["test"]: t for t in summary["tests"]}


def test_same_outcomes_under_qemu_and_virtme(project: pytest.Pytester) -> None:
    for name in REPRODUCERS:
        shutil.copy(REPO / "guest-tests" / "c" / name, project.path / "guest-tests" / "c")
    write_kernels(project, f"kernels:\n  - name: d612\n    debian: {DEBIAN_612}\n{EXPECT_612}")
    qemu = _run(project, "qemu")
    virtme = _run(project, "virtme")
    assert set(qemu) == set(virtme) == {Path(n).stem for n in REPRODUCERS}
    for test in qemu:
        q, v = qemu[test], virtme[test]
        seen = (test, q["outcome"], v["outcome"], q["summary"], v["summary"])
        assert q["outcome"] == v["outcome"], seen
        assert q["as_expected"] and v["as_expected"], seen
        assert [r["title"] for r in q["reports"]] == [r["title"] for r in v["reports"]], seen
    # uffd_move_swap_pmd needs 2 NUMA nodes and THP: it ran (not skipped) on both
    assert qemu["uffd_move_swap_pmd"]["outcome"] == "fail"


_KVM_BROKEN = Path("/dev/kvm").exists() and not (
    _cpu_flags(Path("/proc/cpuinfo").read_text()) & {"vmx", "svm"}
)


@pytest.mark.skipif(not _KVM_BROKEN, reason="needs /dev/kvm on a CPU without vmx/svm (CI's)")
def test_kvm_that_cannot_run_the_guest_fails_the_boot_with_qemus_message(tmp_path: Path) -> None:
    """--accel kvm where KVM cannot run a guest: QEMU's "KVM internal error" ends the boot.

    QEMU keeps running with the guest paused and the console empty, so only
    QEMU's own message can end the wait before the boot timeout.
    """
    spec = select(load_kernels(REPO / "kernels.yaml"), ["debian-6.12"], REPO)[0]
    tests = [read_test(REPO / "tests/data/guest/noop.c")]
    ctx = new_context(new_run_dir(tmp_path), tests, log=lambda _t: None, snapshots=False)
    guest = KernelGuest(replace(spec, accel=Accel.KVM), ctx, tests)
    try:
        assert guest.prepare() is None, guest.setup_error
        started = time.monotonic()
        verdict = guest.ensure_booted()
        seconds = time.monotonic() - started
    finally:
        guest.shutdown()
    assert verdict is not None and verdict.outcome is Outcome.BOOT_FAIL, verdict
    assert "QEMU stopped the guest" in verdict.summary, verdict.summary
    assert "KVM internal error" in verdict.summary and "emulation failure" in verdict.summary
    assert guest.boots == 1, "QEMU's own error is not a kernel's flake: no second boot"
    assert "no ready line" not in verdict.summary, "cut by QEMU's error, not the timeout"
    assert seconds < spec.timeouts.boot / 3, f"{seconds:.0f}s of a {spec.timeouts.boot}s timeout"
