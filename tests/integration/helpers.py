"""Helpers shared by the integration tests (the fixtures live in conftest.py)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from harness.outcome import Outcome
from harness.session.extras import ExtrasKey
from tests.unit.test_junit_schema import xunit2_problems

if TYPE_CHECKING:
    from harness.records import TestRun
    from harness.session import KernelGuest

REPO = Path(__file__).resolve().parents[2]
GUEST_DATA = REPO / "tests" / "data" / "guest"
#: The kernel most integration tests boot: the default kernels.yaml's 6.12 entry.
DEBIAN_612 = '{package: "linux-image-6.12.*-amd64-unsigned", suite: bookworm-security}'
#: Environment variable holding this test session's tag (set by tests/integration/conftest.py).
#: Everything the session starts inherits it: pytester runs, CLI subprocesses, their QEMUs.
TEST_TAG = "KHARNESS_TEST_TAG"
#: What a harness QEMU's command line looks like (it carries harness.nonce).
HARNESS_QEMU = r"qemu-system.*harness\.nonce"

#: The report classes provoked through harness_oops.ko (tests/data/oops/capture) by
#: tests/data/guest/oops_trigger.h, on x86_64 (test_kernel_reports) and arm64
#: (test_arm64): case -> (outcome, title regex).  One table for both: the parser
#: titles arm64's own headers ("Unable to handle kernel NULL pointer dereference",
#: "Internal error: Oops - BUG") as their x86 counterparts (ARM64_FORMATS in
#: harness/oops/formats.py; the 6.12-arm64-* logs in tests/data/oops).
REPORT_CASES: dict[str, tuple[Outcome, str]] = {
    "warn": (Outcome.OOPS, r"^WARNING in harness_oops_warn$"),
    "bug": (Outcome.OOPS, r"^kernel BUG in harness_oops_bug$"),
    "null": (
        Outcome.OOPS,
        r"^BUG: unable to handle kernel NULL pointer dereference in harness_oops_null$",
    ),
    "softlockup": (Outcome.OOPS, r"^BUG: soft lockup in proc_reg_write$"),
    "hung": (Outcome.OOPS, r"^INFO: task hung in msleep$"),
    "sysrq": (Outcome.PANIC, r"^Kernel panic: sysrq triggered crash$"),
}

#: a guest test that sleeps on a kernel booted with kharness_test_sleep (xdist, remote hosts)
SLEEPER = r"""/* Sleeps on a kernel booted with kharness_test_sleep, else passes at once. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
int main(void) {
    char line[4096] = "";
    FILE *f = fopen("/proc/cmdline", "r");
    if (f && fgets(line, sizeof line, f) && strstr(line, "kharness_test_sleep"))
        sleep(100);
    return 0;
}
"""

#: a guest test that sleeps 3 s, then passes: long enough for progress lines to show it
SLOW = r"""/* Sleeps a few seconds, then passes: long enough to be seen running.
 * @timeout: 30
 */
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	printf("TAP version 13\n1..1\n");
	fflush(stdout);
	sleep(3);
	printf("ok 1 - slept\n");
	return 0;
}
"""
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
SUMMARY = re.compile(r"^=+ 1 passed in [\d.]+s(?: \([\d:]+\))? =+$")


def tagged_processes(pattern: str, tag: str) -> set[int]:
    """PIDs whose command line matches ``pattern`` and whose environment holds ``tag``.

    The environment is read from /proc/PID/environ, so a process is recognised
    after its parent died and it was reparented; other users' processes, or
    ones that exit while being read, are left out.
    """
    wanted = f"{TEST_TAG}={tag}".encode()
    regex = re.compile(pattern)
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            if not regex.search(cmdline.replace(b"\0", b" ").decode(errors="replace")):
                continue
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if wanted in environ.split(b"\0"):
            found.add(int(entry.name))
    return found


def harness_qemus() -> set[int]:
    """PIDs of harness QEMUs started by this test session (carrying its tag), nobody else's."""
    tag = os.environ.get(TEST_TAG)
    if not tag:
        raise RuntimeError(f"{TEST_TAG} is not set; tests/integration/conftest.py sets it")
    return tagged_processes(HARNESS_QEMU, tag)


def add_tests(project: pytest.Pytester, *names: str) -> None:
    """Copy guest tests by name from tests/data/guest or guest-tests/c."""
    for name in names:
        src = GUEST_DATA / f"{name}.c"
        if not src.exists():
            src = REPO / "guest-tests" / "c" / f"{name}.c"
        shutil.copy(src, project.path / "guest-tests" / "c")


def write_kernels(project: pytest.Pytester, body: str) -> None:
    """Write the project's kernels.yaml."""
    (project.path / "kernels.yaml").write_text(textwrap.dedent(body))


def default_sigint() -> None:
    """preexec_fn: SIGINT as on a terminal, even when this suite runs as a background job.

    A shell starts background jobs with SIGINT ignored, Python keeps an ignored
    SIGINT ignored, and a test that sends SIGINT would then wait in vain.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def ready_boots(kernel_dir: Path) -> list[int]:
    """The boots of a kernel's evidence directory that reached the ready line, in order.

    A boot that crashed before it got ready is retried (``Policy.boot_attempts``: TCG can
    crash a sound kernel in early boot, "Oops: int3" in
    tests/data/oops/6.12-tcg-int3-boot.log), so a test that counts boots
    counts these, and checks the others were failed boots, not lost ones.
    """
    found = []
    for boot in sorted(kernel_dir.glob("boot-*"), key=lambda p: int(p.name.split("-")[1])):
        record = boot / "boot.json"  # absent when the machine did not even start
        if record.is_file() and json.loads(record.read_text())["ready"] is not None:
            found.append(int(boot.name.split("-")[1]))
    return found


def write_trigger(work: Path, case: str, header: str = "", defines: str = "") -> Path:
    """trig_<case>.c: a guest test that provokes ``case`` through oops_trigger.h."""
    trigger = case.removeprefix("expected_").removeprefix("stuck_")
    body = f'{header}{defines}#define CASE "{trigger}"\n#include "oops_trigger.h"\n'
    path = work / f"trig_{case}.c"
    path.write_text(body)
    return path


@dataclass
class TriggerModule:
    """harness_oops.ko built for one guest's kernel (kept in the guest's extras)."""

    path: Path | None = None


#: where a report-class fixture leaves the trigger module it built for its guest
TRIGGER_MODULE = ExtrasKey("harness_oops.ko", TriggerModule)


def run_with_module(guest: KernelGuest, name: str) -> TestRun:
    """Run guest test ``name`` with harness_oops.ko (:data:`TRIGGER_MODULE`) loaded first."""
    assert guest.ensure_booted() is None, guest.setup_error
    assert guest.channel is not None
    module = guest.extras.get(TRIGGER_MODULE).path
    assert module is not None, "the fixture builds the trigger module before the tests"
    guest.channel.push(module.read_bytes(), "/tmp/harness_oops.ko")
    loaded = guest.channel.run(
        "grep -q ^harness_oops /proc/modules || insmod /tmp/harness_oops.ko", 30
    )
    assert loaded.exit_code == 0, loaded.stderr
    return guest.run(next(t for t in guest.tests if t.name == name))


def check_report_case(guest: KernelGuest, case: str) -> TestRun:
    """Provoke ``case``: its outcome, its title, attributed to its test, then a fresh boot.

    ``guest`` must hold trig_<case> and pass_after_hang; the latter must run on
    the next boot and pass (the kernel is not trusted after a report).
    """
    outcome, title = REPORT_CASES[case]
    run = run_with_module(guest, f"trig_{case}")
    assert run.verdict.outcome is outcome, run.verdict
    assert run.reports, "the report must be attributed to the test"
    assert re.search(title, run.reports[0].title), run.reports[0].title
    assert run.result is not None and run.verdict.summary.startswith(outcome.value)
    if outcome is Outcome.PANIC:
        assert run.seconds < 60, "a panic must end the test at once, not at its timeout"
    after = guest.run(next(t for t in guest.tests if t.name == "pass_after_hang"))
    assert after.verdict.outcome is Outcome.PASS, after.verdict
    assert after.boot > run.boot, "no test runs on a kernel that reported"
    # boots in between may only be retried boots that never got ready
    assert ready_boots(guest.directory)[-2:] == [run.boot, after.boot], (
        f"boot-{run.boot} -> boot-{after.boot}: a ready boot ran no test"
    )
    return run


#: a guest test that sleeps 100 s: a run to interrupt, or a guest to lose, mid-test
SLEEPS_100 = """/*
 * @timeout: 120
 */
#include <unistd.h>
int main(void) { sleep(100); return 0; }
"""


def start_sleeper_run(
    project: pytest.Pytester, kernel_entry: str, *extra: str
) -> subprocess.Popen[str]:
    """pytest in a subprocess on a project whose first test (a_sleeps) sleeps 100 s.

    ``kernel_entry``: the one kernels.yaml entry, named d612 (a real or a replayed kernel).
    """
    (project.path / "guest-tests" / "c" / "a_sleeps.c").write_text(SLEEPS_100)
    add_tests(project, "pass_after_hang")
    write_kernels(project, f"kernels:\n  - {kernel_entry}\n")
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "guest-tests", "--results-dir=res", *extra],
        cwd=project.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=default_sigint,
    )


def wait_until_sleeper_runs(
    project: pytest.Pytester, proc: subprocess.Popen[str], within: float
) -> None:
    """Until a_sleeps's start marker is on a d612 console (a retried boot's too), bounded."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and proc.poll() is None:
        logs = (project.path / "res").glob("*/d612/boot-*/console.log")
        if any("HARNESS-START a_sleeps" in log.read_text(errors="replace") for log in logs):
            return
        time.sleep(0.1)
    if proc.poll() is not None:
        out, _ = proc.communicate()
        pytest.fail(f"the run ended (exit {proc.returncode}) before its first test started:\n{out}")
    pytest.fail("the first test never started")


def check_junit(junit: Path, evidence: Path) -> None:
    """The JUnit file of the outcomes run (d612: uffd_api_unknown_feature passes, hang hangs).

    Valid xunit2; each guest test's kernel, outcome and evidence as suite properties
    and at the head of its system-out; the hang's failure message is its verdict.
    """
    assert xunit2_problems(junit) == []
    root = ET.parse(junit).getroot()
    cases = list(root.iter("testcase"))
    uffd = next(c for c in cases if "uffd_api_unknown_feature" in c.get("classname", ""))
    assert uffd.get("name") == "d612"
    assert uffd.find("properties") is None  # not allowed in an xunit2 testcase
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    node = "guest-tests/c/uffd_api_unknown_feature.c::d612"
    assert props[f"{node} kernel"] == "d612" and props[f"{node} outcome"] == "pass"
    assert props[f"{node} evidence"] == str(evidence)
    assert f"kernel: d612\noutcome: pass\nevidence: {evidence}\n" in (
        uffd.findtext("system-out") or ""
    )
    assert props["guest-tests/c/hang.c::d612 outcome"] == "hang"
    hang = next(c for c in cases if "hang" in c.get("classname", ""))
    failure = hang.find("failure")
    assert failure is not None
    assert failure.get("message") == "hang: no result before the timeout"
    assert "HARNESS-START hang" in (hang.findtext("system-out") or "")
    assert "TAP version 13" in (uffd.findtext("system-out") or "")
