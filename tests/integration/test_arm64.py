"""An arm64 guest under qemu-system-aarch64: the default kernels.yaml's debian-6.12-arm64.

One guest serves the whole module (CI budget: an arm64 boot costs about 18 s
under TCG): its shape, the sysrq key sent as a serial break, the reproducers
cross-compiled for arm64 with their real outcomes, and two arm64 report
classes: the real "Unable to handle kernel paging request" that
uffd_move_swap_pmd provokes on 6.12, and every class of REPORT_CASES (the table
test_kernel_reports provokes on x86_64) from harness_oops.ko cross-built
against Debian's arm64 headers.  Tests run in file order.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
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
    write_trigger,
)

pytestmark = pytest.mark.boot
CAPTURE = REPO / "tests" / "data" / "oops" / "capture"
GUEST_TESTS = REPO / "guest-tests"
REPRODUCERS = [*sorted((GUEST_TESTS / "c").glob("*.c")), GUEST_TESTS / "sh" / "thp_sysfs.sh"]


def _host_build_packages(version: str) -> None:
    """What the arm64 headers build with, from the host's (amd64) Debian packages.

    linux-kbuild-VER: the amd64 kbuild tools that build any arch's modules;
    linux-headers-VER-common: the arch-independent half of the headers, which
    the arm64 headers' Makefile includes (``include /usr/src/linux-headers-
    VER-common/Makefile``).  fetch_arm64_headers.py unpacks only the arm64
    half, so without this the build depended on test_kernel_reports having
    installed the amd64 headers (which pull in -common) earlier: on a fresh
    machine this module runs first and ``make modules`` failed with exit 2.
    """
    wanted = {
        f"linux-kbuild-{version}": Path(f"/usr/lib/linux-kbuild-{version}"),
        f"linux-headers-{version}-common": Path(f"/usr/src/linux-headers-{version}-common"),
    }
    missing = [package for package, path in wanted.items() if not path.is_dir()]
    if not missing:
        return
    if os.geteuid() != 0:
        pytest.skip(f"needs {' '.join(missing)}: apt-get install {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]
    if subprocess.run(cmd, env=env, capture_output=True, check=False).returncode != 0:
        run_checked(["apt-get", "update", "-qq"], env=env)
        run_checked(cmd, env=env)


def _cross_module(release: str, work: Path) -> Path:
    """harness_oops.ko cross-built against Debian's arm64 headers of ``release``."""
    version = release.removesuffix("-arm64")
    _host_build_packages(version)
    fetch = CAPTURE / "fetch_arm64_headers.py"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = run_checked([sys.executable, str(fetch), version, str(work / "headers")], env=env)
    build = work / "module"
    shutil.copytree(CAPTURE, build, ignore=shutil.ignore_patterns("*.sh", "*.txt", "*.md", "*.py"))
    run_checked(["make", "-s", "-C", done.stdout.strip(), f"M={build}", "modules"])
    return build / "harness_oops.ko"


@pytest.fixture(scope="module")
def guest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernelGuest]:
    """debian-6.12-arm64 with the reproducers and one trigger per report class, prepared once."""
    work = tmp_path_factory.mktemp("arm64")
    shutil.copy(GUEST_DATA / "oops_trigger.h", work)
    triggers = [write_trigger(work, case) for case in REPORT_CASES]
    tests = [read_test(p) for p in [*REPRODUCERS, *triggers, GUEST_DATA / "pass_after_hang.c"]]
    spec = select(load_kernels(REPO / "kernels.yaml"), ["debian-6.12-arm64"], REPO)[0]
    ctx = new_context(new_run_dir(work / "results"), tests, log=lambda _t: None)
    kernel_guest = KernelGuest(spec, ctx, tests)
    assert kernel_guest.prepare() is None, kernel_guest.setup_error
    assert kernel_guest.image is not None and kernel_guest.image.release
    module = _cross_module(kernel_guest.image.release, work)
    kernel_guest.extras.get(TRIGGER_MODULE).path = module
    yield kernel_guest
    kernel_guest.shutdown()


def _test(guest: KernelGuest, name: str):
    return next(t for t in guest.tests if t.name == name)


def test_guest_is_arm64_with_two_numa_nodes_and_thp(guest: KernelGuest) -> None:
    assert guest.ensure_booted() is None
    assert guest.channel is not None
    out = guest.channel.run(
        "uname -m; cat /sys/devices/system/node/online /sys/kernel/mm/transparent_hugepage/enabled;"
        " file=/opt/tests/uffd_api_unknown_feature; head -c 20 $file | od -An -tx1 | tr -d ' \\n'",
        30,
    )
    lines = out.stdout.splitlines()
    assert lines[0] == "aarch64"
    assert lines[1] == "0-1", "the reproducers' @needs: numa-nodes=2"
    assert "[always]" in lines[2]
    assert lines[3].endswith("b700"), "e_machine 183 (EM_AARCH64): cross-compiled reproducers"
    assert guest.machine is not None
    assert any("console=ttyAMA0" in a for a in guest.machine.command_line())


def test_sysrq_reaches_the_guest_as_a_serial_break(guest: KernelGuest) -> None:
    assert guest.ensure_booted() is None and guest.machine is not None
    console = guest.machine.console
    start = len(console.text().encode())
    assert guest.machine.magic_key("w")
    assert console.wait_for(rb"sysrq: Show Blocked State", 30, start), console.tail(10)
    assert guest.channel is not None and guest.channel.alive(), "sysrq-w leaves the guest running"


@pytest.mark.parametrize(
    "name", ["uffd_api_unknown_feature", "uffd_wp_punch_faultaround", "thp_sysfs"]
)
def test_reproducer_passes(guest: KernelGuest, name: str) -> None:
    run = guest.run(_test(guest, name))
    assert run.verdict.outcome is Outcome.PASS, run.verdict


def test_uffd_move_swap_pmd_oopses_on_arm64(guest: KernelGuest) -> None:
    """No spurious ENOENT on arm64: the migration-entry path runs on and faults."""
    run = guest.run(_test(guest, "uffd_move_swap_pmd"))
    assert run.verdict.outcome is Outcome.OOPS, run.verdict
    title = "BUG: unable to handle kernel paging request in pmd_migration_entry_wait"
    assert run.reports[0].title == title
    expected = guest.spec.expect["uffd_move_swap_pmd"]
    assert expected.outcome is run.verdict.outcome, "kernels.yaml holds the real outcome"


@pytest.mark.parametrize("case", list(REPORT_CASES))
def test_report_is_detected_titled_and_recovered(guest: KernelGuest, case: str) -> None:
    run = check_report_case(guest, case)
    if case == "warn":
        assert run.reports[0].rip == "harness_oops_warn", "read from arm64's 'pc :' line"
