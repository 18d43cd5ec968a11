"""Real kernel reports through the real harness: detect, title, attribute, recover.

A small module (tests/data/oops/capture/harness_oops.c) is built against the
Debian kernel's own headers and loaded into the guest; generated guest tests
make it BUG, WARN, dereference NULL, lock up, hang a task, or crash the kernel
through sysrq.  Each run must end with the right outcome and title, the next
test must run on a fresh boot, and no QEMU may be left behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from harness.config import load_kernels, select
from harness.errors import run_checked
from harness.outcome import Outcome
from harness.results.evidence import new_run_dir
from harness.session import KernelGuest, new_context
from harness.testkinds.testdef import read_test
from tests.integration.helpers import (
    GUEST_DATA,
    REPO,
    REPORT_CASES,
    TRIGGER_MODULE,
    check_report_case,
    run_with_module,
    write_trigger,
)

pytestmark = pytest.mark.boot
CAPTURE = REPO / "tests" / "data" / "oops" / "capture"


def _headers(release: str) -> Path:
    """Debian's headers for ``release``, installed with apt-get if need be (root)."""
    path = Path(f"/usr/src/linux-headers-{release}")
    if path.is_dir():
        return path
    if os.geteuid() != 0:
        pytest.skip(f"needs linux-headers-{release}: apt-get install linux-headers-{release}")
    cmd = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", f"linux-headers-{release}"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(cmd, env=env, capture_output=True, check=False).returncode != 0:
        run_checked(["apt-get", "update", "-qq"], env=env)
        run_checked(cmd, env=env)
    return path


#: Every report class on qemu; on virtme one oops, for what differs by backend: a report
#: read off virtme's console (earlycon on a second UART) and the fresh boot after it.  A
#: panic and the magic key through virtme's monitor are test_virtme_boot.py's; how a report
#: is titled does not depend on the backend (the parser's tests cover every class on real
#: logs, tests/unit/test_runner_policy.py the policy on replayed consoles).
VIRTME_CASES = ("warn",)
CASES = [pytest.param("qemu", c, id=f"qemu-{c}") for c in REPORT_CASES] + [
    pytest.param("virtme", c, id=f"virtme-{c}") for c in VIRTME_CASES
]


@pytest.fixture(scope="module")
def guest(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> KernelGuest:
    """A 6.12 guest under the backend ``request.param``; its tests trigger one report each."""
    work = tmp_path_factory.mktemp("oops")
    shutil.copy(GUEST_DATA / "oops_trigger.h", work)
    for case in REPORT_CASES:
        write_trigger(work, case)
    write_trigger(
        work, "expected_warn", "/*\n * @expect-report: ^WARNING in harness_oops_warn$\n */\n"
    )
    write_trigger(work, "stuck_bug", "/*\n * @timeout: 120\n */\n", "#define STUCK 1\n")
    shutil.copy(GUEST_DATA / "pass_after_hang.c", work)
    tests = [read_test(p) for p in sorted(work.glob("*.c"))]
    spec = select(load_kernels(REPO / "kernels.yaml"), ["debian-6.12"], REPO)[0]
    spec = replace(spec, backend=request.param)
    ctx = new_context(new_run_dir(work / "results"), tests, log=lambda _t: None)
    kernel_guest = KernelGuest(spec, ctx, tests)
    assert kernel_guest.prepare() is None
    assert kernel_guest.image is not None and kernel_guest.image.release
    build = work / "module"
    shutil.copytree(CAPTURE, build, ignore=shutil.ignore_patterns("*.sh", "*.txt", "*.md"))
    headers = _headers(kernel_guest.image.release)
    run_checked(["make", "-s", "-C", str(headers), f"M={build}", "modules"])
    kernel_guest.extras.get(TRIGGER_MODULE).path = build / "harness_oops.ko"
    yield kernel_guest
    kernel_guest.shutdown()


# The window's policy (an expected report, a report outside the window, giving up on a
# test stuck after its report) is the session's, whatever boots the guest: one real
# backend here, both policies on replayed consoles in tests/unit/test_runner_policy.py.
@pytest.mark.parametrize("guest", ["qemu"], indirect=True)
def test_expected_report_passes(guest: KernelGuest) -> None:
    run = run_with_module(guest, "trig_expected_warn")
    assert run.verdict.outcome is Outcome.PASS, run.verdict
    assert "expected kernel report seen" in run.verdict.summary


@pytest.mark.parametrize("guest", ["qemu"], indirect=True)
def test_module_load_is_not_blamed_on_a_test(guest: KernelGuest) -> None:
    run = run_with_module(guest, "pass_after_hang")
    assert run.verdict.outcome is Outcome.PASS
    assert run.new_taint == 0, "the out-of-tree module's taint came before the test"


@pytest.mark.parametrize("guest", ["qemu"], indirect=True)
def test_oops_then_stuck_ends_before_the_timeout(guest: KernelGuest) -> None:
    run = run_with_module(guest, "trig_stuck_bug")
    assert run.verdict.outcome is Outcome.OOPS, run.verdict
    assert run.verdict.summary == "oops: kernel BUG in harness_oops_bug"
    # the test never exits; the harness stops waiting once the report is complete
    assert run.seconds < 60, f"waited {run.seconds:.0f}s of a 120s timeout"


@pytest.mark.parametrize(("guest", "case"), CASES, indirect=["guest"])
def test_report_is_detected_titled_and_recovered(guest: KernelGuest, case: str) -> None:
    check_report_case(guest, case)
