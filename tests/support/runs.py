"""A harness run in a pytester project: its kernels.yaml, its guest tests, what it left.

Shared by the plumbing tests (replayed guests) and the integration tests (real boots).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.support.junit import xunit2_problems
from tests.support.paths import GUEST_DATA, REPO
from tests.support.processes import default_sigint

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
